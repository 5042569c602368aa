"""Container names as dockerd makes and checks them.

Generated names are adjective_surname from moby's pkg/namesgenerator lists
(kept as data in names.json), never "boring_wozniak"; from the second try on
a random digit is appended, and after six taken names dockerd falls back to
the short ID. User-given names must match ``[a-zA-Z0-9][a-zA-Z0-9_.-]+``.
"""
import json
import os
import random
import re

from engine.errors import InvalidParameter

VALID_NAME_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"
_VALID_NAME = re.compile(f"^{VALID_NAME_CHARS}+$")
GENERATE_TRIES = 6

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "names.json")) as _f:
    _LISTS = json.load(_f)
LEFT: tuple[str, ...] = tuple(_LISTS["left"])
RIGHT: tuple[str, ...] = tuple(_LISTS["right"])


def random_name(retry: int = 0, rng=random) -> str:
    """One candidate: adjective_surname, plus a digit when ``retry`` > 0."""
    while True:
        name = f"{rng.choice(LEFT)}_{rng.choice(RIGHT)}"
        if name != "boring_wozniak":  # Steve Wozniak is not boring
            break
    if retry > 0:
        name += str(rng.randrange(10))
    return name


def generate_name(container_id: str, is_taken, rng=random) -> str:
    """A free name for a new container, without the leading slash: six random
    tries (``is_taken(name)`` says whether one is in use), then the short ID."""
    for retry in range(GENERATE_TRIES):
        name = random_name(retry, rng)
        if not is_taken(name):
            return name
    return container_id[:12]


def validate_name(name: str) -> str:
    """The name without its optional leading slash, or InvalidParameter in
    dockerd's words (the name quoted as the client sent it)."""
    bare = name[1:] if name.startswith("/") else name
    if not _VALID_NAME.match(bare):
        raise InvalidParameter(f"Invalid container name ({name}), only {VALID_NAME_CHARS} are allowed")
    return bare
