"""The `--change` instructions of `docker import` and `docker commit`:
Dockerfile lines applied to an image's config, as dockerd's
dockerfile.BuildFromConfig applies the ones it allows there (its
validCommitCommands), with its errors."""
import json
import shlex

from engine import timestamps
from engine.errors import InvalidParameter

_HEALTHCHECK_OPTIONS = {"--interval": "Interval", "--timeout": "Timeout", "--start-period": "StartPeriod",
                        "--retries": "Retries"}


def _json_array(text: str) -> list[str] | None:
    """The exec form's JSON array of strings, or None when the text is not one."""
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, list) and all(isinstance(a, str) for a in parsed) else None


def _json_or_shell(text: str) -> list[str]:
    """An exec-form (JSON array) argument, or the shell form run by /bin/sh -c."""
    parsed = _json_array(text) if text.startswith("[") else None
    if parsed is not None:
        return parsed
    return ["/bin/sh", "-c", text] if text else ["/bin/sh", "-c"]  # dockerd's, for a bare CMD too


def _pairs(instruction: str, text: str) -> list[tuple[str, str]]:
    """ENV and LABEL arguments: key=value words, or the old form "key value"."""
    words = shlex.split(text)
    if not words:
        raise InvalidParameter(f"{instruction} requires at least one argument")
    if "=" not in words[0]:
        key, _, value = text.partition(" ")
        if not value.strip():
            raise InvalidParameter(f"{instruction} must have two arguments")
        return [(key, value.strip())]
    pairs = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or not key:
            raise InvalidParameter(f"{instruction} names can not be blank" if not key
                                   else f"Syntax error - can't find = in {word!r}. Must be of the form: name=value")
        pairs.append((key, value))
    return pairs


def _one(instruction: str, text: str) -> str:
    if not text:
        raise InvalidParameter(f"{instruction} requires exactly one argument")
    return text


def go_duration(text: str) -> int:
    """Go's time.ParseDuration, in nanoseconds ("1m30s", "500ms")."""
    value = timestamps.parse_duration(text)
    if value is None:
        raise InvalidParameter(f'time: invalid duration "{text}"')
    return value


def _healthcheck(text: str) -> dict:
    """HEALTHCHECK [--interval=... --timeout=... --start-period=... --retries=...] CMD command | NONE."""
    words = text.split()
    check: dict = {}
    while words and words[0].startswith("--"):
        flag, _, value = words.pop(0).partition("=")
        if flag not in _HEALTHCHECK_OPTIONS:
            raise InvalidParameter(f"Unknown flag: {flag.lstrip('-')}")
        check[_HEALTHCHECK_OPTIONS[flag]] = int(value) if flag == "--retries" else go_duration(value)
    kind = words[0].upper() if words else ""
    if kind == "NONE":
        return {"Test": ["NONE"]}
    if kind != "CMD" or len(words) < 2:
        raise InvalidParameter("Missing command after HEALTHCHECK CMD" if kind == "CMD"
                               else f'Unknown type "{kind}" in HEALTHCHECK (try CMD)')
    command = text[text.upper().index("CMD") + 3:].strip()
    exec_form = _json_array(command) if command.startswith("[") else None
    return {"Test": ["CMD", *exec_form] if exec_form is not None else ["CMD-SHELL", command], **check}


def _set_cmd(config: dict, text: str, state: dict) -> None:
    config["Cmd"], state["cmd_set"] = _json_or_shell(text), True


def _set_entrypoint(config: dict, text: str, state: dict) -> None:
    config["Entrypoint"] = _json_or_shell(text)
    if not state["cmd_set"]:
        config["Cmd"] = None  # a new entrypoint drops the inherited command, as in a Dockerfile


def _add_env(config: dict, text: str, state: dict) -> None:
    env = list(config.get("Env") or [])
    for key, value in _pairs("ENV", text):
        env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={value}"]
    config["Env"] = env


def _add_ports(config: dict, text: str, state: dict) -> None:
    if not text:
        raise InvalidParameter("EXPOSE requires at least one argument")
    config["ExposedPorts"] = {**(config.get("ExposedPorts") or {}),
                              **{port if "/" in port else f"{port}/tcp": {} for port in text.split()}}


def _add_volumes(config: dict, text: str, state: dict) -> None:
    paths = (_json_array(text) if text.startswith("[") else None) or text.split()
    if not paths:
        raise InvalidParameter("VOLUME requires at least one argument")
    config["Volumes"] = {**(config.get("Volumes") or {}), **{path: {} for path in paths}}


def _set_workdir(config: dict, text: str, state: dict) -> None:
    path = _one("WORKDIR", text)
    config["WorkingDir"] = path if path.startswith("/") else \
        "/" + "/".join(filter(None, [(config.get("WorkingDir") or "").strip("/"), path]))


# the instructions dockerd's commit takes (its validCommitCommands), each applied to the config
_INSTRUCTIONS = {
    "CMD": _set_cmd, "ENTRYPOINT": _set_entrypoint, "ENV": _add_env, "EXPOSE": _add_ports,
    "HEALTHCHECK": lambda config, text, state: config.update(Healthcheck=_healthcheck(text)),
    "LABEL": lambda config, text, state: config.update(Labels={**(config.get("Labels") or {}),
                                                              **dict(_pairs("LABEL", text))}),
    "ONBUILD": lambda config, text, state: config.update(OnBuild=(config.get("OnBuild") or []) + [text]),
    "USER": lambda config, text, state: config.update(User=_one("USER", text)),
    "VOLUME": _add_volumes, "WORKDIR": _set_workdir,
}


def apply_changes(config: dict, changes: list[str]) -> dict:
    """The Dockerfile-like ``--change`` instructions applied to an image config
    (dockerd's BuildFromConfig with the instructions a commit allows)."""
    config, state = dict(config), {"cmd_set": False}
    for line in changes:
        instruction, _, rest = line.strip().partition(" ")
        if not instruction:
            continue
        apply = _INSTRUCTIONS.get(instruction.upper())
        if apply is None:
            raise InvalidParameter(f"{instruction.lower()} is not a valid change command")
        apply(config, rest.strip(), state)
    return config
