"""A container's record as dockerd keeps it: the body of
``containers/<id>/config.v2.json`` (its HostConfig apart, in
``hostconfig.json``), the same keys and time format, so a user who knows
dockerd's data-root finds what they expect and ``inspect`` is a re-shaping of
what is on disk, not a translation.

Times are Go's RFC 3339 with nanoseconds (trailing zeros dropped) and the
zero time "0001-01-01T00:00:00Z" for "never", as dockerd writes and shows them.
"""
import os
import time
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from functools import cached_property

ZERO_TIME = "0001-01-01T00:00:00Z"
STATES = ("created", "running", "paused", "restarting", "removing", "exited", "dead")
HEALTH_STATES = ("starting", "healthy", "unhealthy", "none")


def go_time(ns: int | None = None) -> str:
    """``ns`` (default: now) as Go's time.RFC3339Nano in UTC."""
    if ns is None:
        ns = time.time_ns()
    seconds, nanos = divmod(ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{stamp}.{fraction}Z" if fraction else f"{stamp}Z"


def parse_go_time(text: str) -> int:
    """Nanoseconds since the epoch of a time Go wrote with RFC3339Nano (any
    offset); the zero time is far in the past, so it sorts first."""
    main, _, rest = text.partition(".")
    nanos, offset = 0, ""
    if rest:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        nanos, offset = int(rest[:digits].ljust(9, "0")[:9]), rest[digits:]
    else:
        main, offset = main[:19], main[19:]
    stamp = datetime.fromisoformat(main + ("+00:00" if offset in ("Z", "z") else offset))
    return int((stamp - datetime(1970, 1, 1, tzinfo=timezone.utc)).total_seconds()) * 1_000_000_000 + nanos


def new_id() -> str:
    """64 random hex digits, as moby's stringid: never one whose 12-character
    short form is all digits, which the CLI would take for a number."""
    while True:
        candidate = os.urandom(32).hex()
        if not candidate[:12].isdigit():
            return candidate


_JSON_KIND = {str: "string", bool: "boolean", int: "number", list: "array", dict: "object"}


def _typed_fields(cls, data: dict, where: str = "") -> dict:
    """The attributes named in ``cls._KEYS`` from ``data`` (absent or null:
    the default), each of its field's JSON type, so a hand-edited or damaged
    record is refused at load, not when a list trips over it."""
    kinds = {f.name: f.type for f in fields(cls)}
    found = {}
    for attr, key in cls._KEYS:
        value = data.get(key)
        if value is None:
            continue
        kind = kinds[attr] if kinds[attr] in _JSON_KIND else dict  # "dict | None"
        if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
            raise TypeError(f"{where}{key} is not a JSON {_JSON_KIND[kind]}")
        found[attr] = value
    return found


@dataclass
class State:
    """config.v2.json's State; ``status`` is derived as dockerd derives it."""
    running: bool = False
    paused: bool = False
    restarting: bool = False
    oom_killed: bool = False
    removal_in_progress: bool = False
    dead: bool = False
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    started_at: str = ZERO_TIME
    finished_at: str = ZERO_TIME
    health: dict | None = None

    _KEYS = (("running", "Running"), ("paused", "Paused"), ("restarting", "Restarting"),
             ("oom_killed", "OOMKilled"), ("removal_in_progress", "RemovalInProgress"), ("dead", "Dead"),
             ("pid", "Pid"), ("exit_code", "ExitCode"), ("error", "Error"), ("started_at", "StartedAt"),
             ("finished_at", "FinishedAt"), ("health", "Health"))

    @property
    def status(self) -> str:
        """dockerd's StateString: what ``{{.State.Status}}`` and the status filter see."""
        if self.running:
            return "paused" if self.paused else "restarting" if self.restarting else "running"
        if self.removal_in_progress:
            return "removing"
        if self.dead:
            return "dead"
        return "created" if self.started_at == ZERO_TIME else "exited"

    @property
    def health_status(self) -> str:
        return self.health.get("Status", "none") if self.health else "none"

    # dockerd's transitions (container/state.go), so every service moves a
    # container's state the same way; ``now`` is a go_time() stamp

    def set_running(self, pid: int, now: str, initial: bool = True) -> None:
        """The task started (``initial``) or was found running after a restart."""
        self.error, self.running, self.paused, self.restarting = "", True, False, False
        self.exit_code, self.pid = 0, pid
        if initial:
            self.started_at = now

    def set_stopped(self, exit_code: int, exited_at: str, oom_killed: bool = False) -> None:
        self.running = self.paused = self.restarting = False
        self.pid, self.finished_at, self.exit_code, self.oom_killed = 0, exited_at, exit_code, oom_killed

    def set_restarting(self, exit_code: int, exited_at: str, oom_killed: bool = False) -> None:
        """Exited, and its restart policy will start it again: still "running"
        to ``ps``, as in dockerd."""
        self.set_stopped(exit_code, exited_at, oom_killed)
        self.running = self.restarting = True

    def set_start_failed(self, message: str, exit_code: int = 128) -> None:
        """A start that never ran the process: dockerd's 127/126 for a missing
        or non-executable command, 128 otherwise."""
        self.error = message
        if self.exit_code == 0:
            self.exit_code = exit_code

    def to_disk(self) -> dict:
        return {key: getattr(self, attr) for attr, key in self._KEYS}

    @classmethod
    def from_disk(cls, data: dict) -> "State":
        return cls(**_typed_fields(cls, data, "State."))

    def inspect(self) -> dict:
        shown = {"Status": self.status}
        shown.update((key, value) for key, value in self.to_disk().items() if key != "RemovalInProgress")
        if self.health is None:
            del shown["Health"]
        return shown


@dataclass
class Container:
    """One container's record. Config and HostConfig stay the JSON objects
    the API took (after the engine's defaults), so they round-trip untouched."""
    id: str
    name: str  # with dockerd's leading slash
    image: str  # the image ID ("sha256:...")
    config: dict
    host_config: dict
    path: str = ""
    args: list = field(default_factory=list)
    created: str = field(default_factory=go_time)
    state: State = field(default_factory=State)
    network_settings: dict = field(default_factory=dict)
    mount_points: dict = field(default_factory=dict)
    log_path: str = ""
    driver: str = ""
    os: str = "linux"
    mount_label: str = ""
    process_label: str = ""
    app_armor_profile: str = ""
    seccomp_profile: str = ""
    no_new_privileges: bool = False
    restart_count: int = 0
    has_been_started_before: bool = False
    has_been_manually_stopped: bool = False
    managed: bool = False
    resolv_conf_path: str = ""
    hostname_path: str = ""
    hosts_path: str = ""
    shm_path: str = ""
    # Not on disk: bumped by every save, so what was derived from an older
    # revision (the encoded ps entry) is known to be stale.
    revision: int = field(default=0, compare=False, repr=False)
    encoded_summary: tuple | None = field(default=None, compare=False, repr=False)

    # attribute -> config.v2.json key, for the plain fields (State, Config and
    # HostConfig are handled apart)
    _KEYS = (("id", "ID"), ("created", "Created"), ("managed", "Managed"), ("path", "Path"), ("args", "Args"),
             ("image", "Image"), ("network_settings", "NetworkSettings"), ("log_path", "LogPath"),
             ("name", "Name"), ("driver", "Driver"), ("os", "OS"), ("mount_label", "MountLabel"),
             ("process_label", "ProcessLabel"), ("restart_count", "RestartCount"),
             ("has_been_started_before", "HasBeenStartedBefore"),
             ("has_been_manually_stopped", "HasBeenManuallyStopped"), ("mount_points", "MountPoints"),
             ("app_armor_profile", "AppArmorProfile"), ("hostname_path", "HostnamePath"),
             ("hosts_path", "HostsPath"), ("shm_path", "ShmPath"), ("resolv_conf_path", "ResolvConfPath"),
             ("seccomp_profile", "SeccompProfile"), ("no_new_privileges", "NoNewPrivileges"))

    @property
    def labels(self) -> dict:
        return self.config.get("Labels") or {}

    @cached_property
    def created_ns(self) -> int:
        """Created as a number, for ordering; a record's creation time never changes."""
        return parse_go_time(self.created)

    def to_disk(self) -> dict:
        """config.v2.json's body (HostConfig is written apart)."""
        body = {"StreamConfig": {}, "State": self.state.to_disk()}
        for attr, key in self._KEYS:
            body[key] = getattr(self, attr)
            if key == "Args":
                body["Config"] = self.config  # where dockerd has it
        return body

    @classmethod
    def from_disk(cls, body: dict, host_config: dict) -> "Container":
        """The record from config.v2.json and hostconfig.json's objects;
        KeyError/TypeError/ValueError when they are not a container's."""
        if not isinstance(body, dict) or not isinstance(host_config, dict):
            raise TypeError("not a JSON object")
        plain = _typed_fields(cls, body)
        for required in ("id", "name", "created"):
            if required not in plain:
                raise KeyError(dict(cls._KEYS)[required])
        parse_go_time(plain["created"])
        plain.setdefault("image", "")
        config, state = body.get("Config"), body.get("State")
        config, state = {} if config is None else config, {} if state is None else state
        labels = config.get("Labels") if isinstance(config, dict) else None
        for key, value in (("Config", config), ("State", state), ("Config.Labels", labels)):
            if value is not None and not isinstance(value, dict):
                raise TypeError(f"{key} is not a JSON object")
        return cls(config=config, host_config=host_config, state=State.from_disk(state), **plain)

    def inspect(self, graph_driver: dict | None = None, mounts: list | None = None,
                exec_ids: list | None = None) -> dict:
        """``GET /containers/<id>/json`` in dockerd's key order; the parts
        other services own (the snapshot's GraphDriver, the resolved Mounts,
        running execs) are passed in."""
        return {
            "Id": self.id, "Created": self.created, "Path": self.path, "Args": self.args,
            "State": self.state.inspect(), "Image": self.image, "ResolvConfPath": self.resolv_conf_path,
            "HostnamePath": self.hostname_path, "HostsPath": self.hosts_path, "LogPath": self.log_path,
            "Name": self.name, "RestartCount": self.restart_count, "Driver": self.driver, "Platform": self.os,
            "MountLabel": self.mount_label, "ProcessLabel": self.process_label,
            "AppArmorProfile": self.app_armor_profile, "ExecIDs": exec_ids or None, "HostConfig": self.host_config,
            "GraphDriver": graph_driver or {"Data": None, "Name": self.driver},
            "Mounts": mounts if mounts is not None else [], "Config": self.config,
            "NetworkSettings": inspect_network_settings(self.network_settings),
        }


_SANDBOX_KEYS = (("Bridge", ""), ("SandboxID", ""), ("HairpinMode", False), ("LinkLocalIPv6Address", ""),
                 ("LinkLocalIPv6PrefixLen", 0), ("Ports", None), ("SandboxKey", ""), ("SecondaryIPAddresses", None),
                 ("SecondaryIPv6Addresses", None))
# inspect's top-level copies of the default ("bridge") network's endpoint, for
# templates such as {{.NetworkSettings.IPAddress}}
_DEFAULT_ENDPOINT_KEYS = (("EndpointID", ""), ("Gateway", ""), ("GlobalIPv6Address", ""), ("GlobalIPv6PrefixLen", 0),
                          ("IPAddress", ""), ("IPPrefixLen", 0), ("IPv6Gateway", ""), ("MacAddress", ""))


def endpoints(network_settings: dict) -> dict:
    """The Networks map as the API shows it (without the on-disk bookkeeping)."""
    return {name: {key: value for key, value in (endpoint or {}).items() if key != "IPAMOperational"}
            for name, endpoint in (network_settings.get("Networks") or {}).items()}


def inspect_network_settings(network_settings: dict) -> dict:
    """config.v2.json's NetworkSettings in inspect's shape."""
    shown = {key: network_settings.get(key, default) for key, default in _SANDBOX_KEYS}
    bridge = (network_settings.get("Networks") or {}).get("bridge") or {}
    shown.update((key, bridge.get(key, default)) for key, default in _DEFAULT_ENDPOINT_KEYS)
    shown["Networks"] = endpoints(network_settings)
    shown["Ports"] = network_settings.get("Ports") or {}  # dockerd's empty map until ports are published (#7)
    return shown

