"""The daemon's configuration: containerd's config.toml shape, then flags on top.

Understood keys: `version` (1 or 2), `root`, `state`, `disabled_plugins`,
`[grpc] address, uid, gid, max_recv_message_size, max_send_message_size`,
`[debug] level`, and the garbage collector's `schedule_delay` and
`startup_delay` (Go durations such as "100ms") in
`[plugins."io.containerd.gc.v1.scheduler"]` (`[plugins.scheduler]` in
version 1 files). Other tables (CRI, plugins) are accepted and ignored, as
containerd ignores configuration of plugins it does not have.
"""
import re
import tomllib
from dataclasses import dataclass, field

from .errors import q

DEFAULT_ROOT = "/var/lib/containerd-py"
DEFAULT_STATE = "/run/containerd-py"
DEFAULT_ADDRESS = "/run/containerd-py/containerd.sock"
DEFAULT_CONFIG = "/etc/containerd-py/config.toml"
LOG_LEVELS = ("trace", "debug", "info", "warn", "warning", "error", "fatal", "panic")


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
    for key, kind in (("address", str), ("uid", int), ("gid", int),
                      ("max_recv_message_size", int), ("max_send_message_size", int)):
        if (value := _get(grpc, key, kind, "grpc.")) is not None:
            setattr(config, key, value)
    plugins = _get(data, "plugins", dict, "") or {}
    scheduler_key = "io.containerd.gc.v1.scheduler" if version == 2 else "scheduler"
    scheduler = _get(plugins, scheduler_key, dict, "plugins.") or {}
    for key in ("schedule_delay", "startup_delay"):
        where = f'plugins."{scheduler_key}".{key}'
        if (value := _get(scheduler, key, str, f'plugins."{scheduler_key}".')) is not None:
            setattr(config, f"gc_{key}", parse_duration(value, where))
    debug = _get(data, "debug", dict, "") or {}
    if (level := _get(debug, "level", str, "debug.")) is not None and level:
        if level not in LOG_LEVELS:
            raise ConfigError(f"debug.level: unknown level {q(level)}")
        config.log_level = level
    return config


def load(path: str, required: bool) -> Config:
    """Reads a config file; a missing one is an error only when `required`."""
    try:
        with open(path, encoding="utf-8") as f:
            return parse(f.read())
    except FileNotFoundError:
        if required:
            raise ConfigError(f"config file {path} does not exist") from None
        return Config()
