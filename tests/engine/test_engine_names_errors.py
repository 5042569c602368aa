"""Container names as dockerd makes and checks them, and the error kinds'
HTTP statuses."""
import random

import pytest

from engine import errors, names


def test_generated_names_are_adjective_surname_from_dockers_lists():
    rng = random.Random(7)
    for _ in range(200):
        left, right = names.random_name(0, rng).split("_")
        assert left in names.LEFT and right in names.RIGHT
    assert len(names.LEFT) == 108 and len(names.RIGHT) == 236
    assert {"admiring", "zealous"} <= set(names.LEFT) and {"albattani", "wozniak", "turing"} <= set(names.RIGHT)


class Rigged:
    """choice() hands out the given picks in turn; randrange the given digit."""

    def __init__(self, picks, digit=3):
        self.picks, self.digit = list(picks), digit

    def choice(self, seq):
        pick = self.picks.pop(0)
        assert pick in seq
        return pick

    def randrange(self, n):
        return self.digit


def test_steve_wozniak_is_not_boring():
    assert names.random_name(0, Rigged(["boring", "wozniak", "boring", "turing"])) == "boring_turing"


def test_retries_add_a_digit_and_end_with_the_short_id():
    taken = {"happy_turing"}
    rng = Rigged(["happy", "turing", "happy", "turing"], digit=4)
    assert names.generate_name("f" * 64, taken.__contains__, rng) == "happy_turing4"
    assert names.generate_name("0123456789abcdef" * 4, lambda name: True) == "0123456789ab"


@pytest.mark.parametrize("name", ["ab", "web-1", "/web_1.x", "A9"])
def test_valid_names(name):
    assert names.validate_name(name) == name.lstrip("/")


@pytest.mark.parametrize("name", ["a/b", "-web", "_x", "", "/", "na me", "é", "a"])  # one character is too few
def test_invalid_names_in_dockerds_words(name):
    with pytest.raises(errors.InvalidParameter) as info:
        names.validate_name(name)
    assert str(info.value) == f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"


@pytest.mark.parametrize("kind, status", [
    (errors.InvalidParameter, 400), (errors.Unauthorized, 401), (errors.Forbidden, 403), (errors.NotFound, 404),
    (errors.Conflict, 409), (errors.NotModified, 304), (errors.Unimplemented, 501), (errors.Unavailable, 503),
    (errors.System, 500), (errors.EngineError, 500), (ValueError, 500),
])
def test_each_error_kind_has_dockerds_status(kind, status):
    assert errors.http_status(kind("x")) == status


def test_a_subclass_keeps_its_kinds_status():
    class NoSuchContainer(errors.NotFound):
        pass

    assert errors.http_status(NoSuchContainer("No such container: x")) == 404
