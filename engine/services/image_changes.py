"""The `--change` instructions of `docker import` (and of `docker commit`):
Dockerfile lines applied to an image's config, as dockerd's
dockerfile.BuildFromConfig applies the ones it allows there."""
import json
import shlex

from engine.errors import InvalidParameter

ALLOWED = ("cmd", "entrypoint", "env", "expose", "label", "onbuild", "user", "volume", "workdir", "stopsignal")


def apply_changes(config: dict, changes: list[str]) -> dict:
    """A copy of config (a container config's keys) with the changes applied, in order."""
    config = dict(config)
    for line in changes:
        instruction, _, rest = line.strip().partition(" ")
        name, rest = instruction.lower(), rest.strip()
        if not name:
            continue
        if name not in ALLOWED:
            raise InvalidParameter(f"{name} is not a valid change command")
        _APPLY[name](config, rest, name)
    return config


def _json_list(rest: str) -> list[str] | None:
    if not rest.startswith("["):
        return None
    try:
        parsed = json.loads(rest)
    except ValueError:
        return None
    return parsed if isinstance(parsed, list) and all(isinstance(a, str) for a in parsed) else None


def _exec_form(rest: str) -> list[str]:
    """JSON form as given; shell form run by /bin/sh -c, as the builder does."""
    parsed = _json_list(rest)
    if parsed is not None:
        return parsed
    return ["/bin/sh", "-c", rest] if rest else []


def _pairs(rest: str, name: str) -> list[tuple[str, str]]:
    """`k=v k2="v 2"`, or the old `k v` form with one pair."""
    words = shlex.split(rest)
    if not words:
        raise InvalidParameter(f"{name.upper()} requires at least one argument")
    if "=" not in words[0]:
        key, _, value = rest.partition(" ")
        if not value.strip():
            raise InvalidParameter(f"{name.upper()} must have two arguments")
        return [(key, value.strip())]
    pairs = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or not key:
            raise InvalidParameter(f"Syntax error - can't find = in \"{word}\". Must be of the form: name=value")
        pairs.append((key, value))
    return pairs


def _cmd(config, rest, name):
    config["Cmd"] = _exec_form(rest)


def _entrypoint(config, rest, name):
    config["Entrypoint"] = _exec_form(rest)


def _env(config, rest, name):
    env = list(config.get("Env") or [])
    for key, value in _pairs(rest, name):
        env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={value}"]
    config["Env"] = env


def _label(config, rest, name):
    config["Labels"] = {**(config.get("Labels") or {}), **dict(_pairs(rest, name))}


def _expose(config, rest, name):
    ports = dict(config.get("ExposedPorts") or {})
    for port in rest.split():
        ports[port if "/" in port else f"{port}/tcp"] = {}
    config["ExposedPorts"] = ports


def _volume(config, rest, name):
    paths = _json_list(rest) or rest.split()
    config["Volumes"] = {**(config.get("Volumes") or {}), **{p: {} for p in paths}}


def _onbuild(config, rest, name):
    config["OnBuild"] = list(config.get("OnBuild") or []) + [rest]


def _setter(key):
    def apply(config, rest, name):
        config[key] = rest
    return apply


_APPLY = {"cmd": _cmd, "entrypoint": _entrypoint, "env": _env, "label": _label, "expose": _expose,
          "volume": _volume, "onbuild": _onbuild, "user": _setter("User"), "workdir": _setter("WorkingDir"),
          "stopsignal": _setter("StopSignal")}
