"""The daemon's configuration: containerd's config.toml shape, then flags on top.

Understood keys: `version` (1 or 2), `root`, `state`, `disabled_plugins`,
`[grpc] address, uid, gid, max_recv_message_size, max_send_message_size`,
`[debug] level`, and the garbage collector's `schedule_delay` and
`startup_delay` (Go durations such as "100ms") in
`[plugins."io.containerd.gc.v1.scheduler"]` (`[plugins.scheduler]` in
version 1 files); `render` writes them all (`containerd-py config default`).
Any other key or table (CRI, plugins we do not have) is ignored and listed
in `Config.ignored`, for the daemon to warn about, as containerd warns.
"""
import json
import re
import tomllib
from dataclasses import dataclass, field

from .errors import q

DEFAULT_ROOT = "/var/lib/containerd-py"
DEFAULT_STATE = "/run/containerd-py"
DEFAULT_ADDRESS = "/run/containerd-py/containerd.sock"
DEFAULT_CONFIG = "/etc/containerd-py/config.toml"
LOG_LEVELS = ("trace", "debug", "info", "warn", "warning", "error", "fatal", "panic")
SCHEDULER = "io.containerd.gc.v1.scheduler"
_GRPC_KEYS = (("address", str), ("uid", int), ("gid", int), ("max_recv_message_size", int),
              ("max_send_message_size", int))
_SCHEDULER_KEYS = ("schedule_delay", "startup_delay")


class ConfigError(Exception):
    """A config file that cannot be used; the message names the key."""


@dataclass
class Config:
    root: str = DEFAULT_ROOT
    state: str = DEFAULT_STATE
    address: str = DEFAULT_ADDRESS
    uid: int = 0
    gid: int = 0
    max_recv_message_size: int = 16 << 20
    max_send_message_size: int = 16 << 20
    log_level: str = "info"
    disabled_plugins: list[str] = field(default_factory=list)
    gc_schedule_delay: float = 0.0  # seconds from a deletion to the collection it triggers
    gc_startup_delay: float = 0.1
    ignored: list[str] = field(default_factory=list, compare=False)  # keys of the file not understood

    def plugin_disabled(self, plugin_type: str, plugin_id: str) -> bool:
        """Version 2 files name plugins by URI (type.id), version 1 files by id."""
        return f"{plugin_type}.{plugin_id}" in self.disabled_plugins or plugin_id in self.disabled_plugins


def _get(table: dict, key: str, kind: type, where: str):
    value = table.get(key)
    if value is None:
        return None
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise ConfigError(f"{where}{key}: expected {kind.__name__}, got {type(value).__name__}")
    return value


_DURATION = re.compile(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def parse_duration(text: str, where: str) -> float:
    """A Go duration ("1h30m", "100ms", "0") in seconds."""
    if text == "0":
        return 0.0
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ConfigError(f"{where}: invalid duration {q(text)}")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def format_duration(seconds: float) -> str:
    """Seconds as Go prints a time.Duration ("0s", "100ms", "1m30s")."""
    ns = round(seconds * 1e9)
    if ns < 1000:
        return f"{ns}ns" if ns else "0s"
    for unit, scale in (("µs", 10**3), ("ms", 10**6)):
        if ns < scale * 1000:
            return f"{_decimal(ns / scale)}{unit}"
    hours, rest = divmod(ns, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "") + f"{_decimal(rest / 1e9)}s"


def _decimal(value: float) -> str:
    return f"{value:.9f}".rstrip("0").rstrip(".")


def _unknown(table: dict, known: dict, path: tuple[str, ...] = ()) -> list[str]:
    """Keys of table that known (key -> nested known table, or None for a leaf) lacks,
    space-joined as containerd names them ("plugins io.containerd.grpc.v1.cri")."""
    found = []
    for key, value in table.items():
        if key not in known:
            found.append(" ".join(path + (key,)))
        elif known[key] is not None and isinstance(value, dict):
            found += _unknown(value, known[key], path + (key,))
    return found


def parse(text: str) -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"invalid TOML: {e}") from None
    config = Config()
    version = _get(data, "version", int, "")
    if version not in (None, 1, 2):
        raise ConfigError(f"version: unsupported config version {version}")
    for key in ("root", "state"):
        if (value := _get(data, key, str, "")) is not None:
            setattr(config, key, value)
    disabled = _get(data, "disabled_plugins", list, "")
    if disabled is not None:
        if not all(isinstance(p, str) for p in disabled):
            raise ConfigError("disabled_plugins: expected a list of strings")
        config.disabled_plugins = disabled
    grpc = _get(data, "grpc", dict, "") or {}
    for key, kind in _GRPC_KEYS:
        if (value := _get(grpc, key, kind, "grpc.")) is not None:
            setattr(config, key, value)
    plugins = _get(data, "plugins", dict, "") or {}
    scheduler_key = SCHEDULER if version == 2 else "scheduler"
    scheduler = _get(plugins, scheduler_key, dict, "plugins.") or {}
    for key in _SCHEDULER_KEYS:
        where = f'plugins."{scheduler_key}".{key}'
        if (value := _get(scheduler, key, str, f'plugins."{scheduler_key}".')) is not None:
            setattr(config, f"gc_{key}", parse_duration(value, where))
    debug = _get(data, "debug", dict, "") or {}
    if (level := _get(debug, "level", str, "debug.")) is not None and level:
        if level not in LOG_LEVELS:
            raise ConfigError(f"debug.level: unknown level {q(level)}")
        config.log_level = level
    config.ignored = _unknown(data, {
        "version": None, "root": None, "state": None, "disabled_plugins": None,
        "grpc": {key: None for key, _ in _GRPC_KEYS}, "debug": {"level": None},
        "plugins": {scheduler_key: {key: None for key in _SCHEDULER_KEYS}}})
    return config


def render(config: Config) -> str:
    """config as a version 2 config.toml with every key containerd-py understands."""
    def value(v) -> str:
        return json.dumps(v, ensure_ascii=False) if isinstance(v, (str, list)) else str(v)
    grpc = "".join(f"  {key} = {value(getattr(config, key))}\n" for key, _ in _GRPC_KEYS)
    scheduler = "".join(f'    {key} = "{format_duration(getattr(config, "gc_" + key))}"\n' for key in _SCHEDULER_KEYS)
    return (f"version = 2\nroot = {value(config.root)}\nstate = {value(config.state)}\n"
            f"disabled_plugins = {value(config.disabled_plugins)}\n\n"
            f"[grpc]\n{grpc}\n[debug]\n  level = {value(config.log_level)}\n\n"
            f'[plugins]\n\n  [plugins."{SCHEDULER}"]\n{scheduler}')


def load(path: str, required: bool) -> Config:
    """Reads a config file; a missing one is an error only when `required`."""
    try:
        with open(path, encoding="utf-8") as f:
            return parse(f.read())
    except FileNotFoundError:
        if required:
            raise ConfigError(f"config file {path} does not exist") from None
        return Config()
