"""The create request's body checked against the Go types dockerd decodes it
into (runconfig.ContainerConfigWrapper: container.Config with HostConfig and
NetworkingConfig beside it), so a wrong type is refused before anything is
made, in the words of Go's encoding/json — and a value such as a list of
Labels never reaches a record that `docker ps` would then choke on.

dockerd 20.10 answers such a body with 500 (its decode errors carry no
errdefs kind); engine.errors.BadBody keeps that status.
"""
import json

from engine.errors import BadBody

_KIND = {str: "string", bool: "bool", int: "number", float: "number", list: "array", dict: "object"}
_INT_RANGES = {"int64": (-(1 << 63), (1 << 63) - 1), "int": (-(1 << 63), (1 << 63) - 1),
               "uint16": (0, (1 << 16) - 1), "uint64": (0, (1 << 64) - 1), "uint": (0, (1 << 64) - 1)}

# Go types by field; ("[]", T) a slice of T, ("map", T) a map of string to T,
# ("struct", NAME, FIELDS) a nested struct. "strslice" is docker's StrSlice
# (a string or an array of strings, reported as "string").
_STRINGS = ("[]", "string")
_STRING_MAP = ("map", "string")
_RESTART_POLICY = ("struct", "RestartPolicy", {"Name": "string", "MaximumRetryCount": "int"})
_LOG_CONFIG = ("struct", "LogConfig", {"Type": "string", "Config": _STRING_MAP})
_HEALTH = ("struct", "HealthConfig", {"Test": _STRINGS, "Interval": "int64", "Timeout": "int64",
                                      "StartPeriod": "int64", "Retries": "int"})
_ULIMIT = ("struct", "Ulimit", {"Name": "string", "Hard": "int64", "Soft": "int64"})
_DEVICE = ("struct", "DeviceMapping", {"PathOnHost": "string", "PathInContainer": "string",
                                       "CgroupPermissions": "string"})
_MOUNT = ("struct", "Mount", {"Type": "string", "Source": "string", "Target": "string", "ReadOnly": "bool",
                              "Consistency": "string", "BindOptions": "object", "VolumeOptions": "object",
                              "TmpfsOptions": "object"})

CONFIG = {
    "Hostname": "string", "Domainname": "string", "User": "string", "AttachStdin": "bool", "AttachStdout": "bool",
    "AttachStderr": "bool", "ExposedPorts": ("map", "object", "nat.PortSet"), "Tty": "bool", "OpenStdin": "bool",
    "StdinOnce": "bool", "Env": _STRINGS, "Cmd": "strslice", "Healthcheck": _HEALTH, "ArgsEscaped": "bool",
    "Image": "string", "Volumes": ("map", "object", "map[string]struct {}"), "WorkingDir": "string",
    "Entrypoint": "strslice", "NetworkDisabled": "bool", "MacAddress": "string", "OnBuild": _STRINGS,
    "Labels": _STRING_MAP, "StopSignal": "string", "StopTimeout": "int", "Shell": "strslice",
}
HOST_CONFIG = {
    "Binds": _STRINGS, "ContainerIDFile": "string", "LogConfig": _LOG_CONFIG, "NetworkMode": "string",
    "PortBindings": ("map", "any", "nat.PortMap"), "RestartPolicy": _RESTART_POLICY, "AutoRemove": "bool",
    "VolumeDriver": "string", "VolumesFrom": _STRINGS, "CapAdd": "strslice", "CapDrop": "strslice",
    "CgroupnsMode": "string", "Dns": _STRINGS, "DnsOptions": _STRINGS, "DnsSearch": _STRINGS,
    "ExtraHosts": _STRINGS, "GroupAdd": _STRINGS, "IpcMode": "string", "Cgroup": "string", "Links": _STRINGS,
    "OomScoreAdj": "int", "PidMode": "string", "Privileged": "bool", "PublishAllPorts": "bool",
    "ReadonlyRootfs": "bool", "SecurityOpt": _STRINGS, "StorageOpt": _STRING_MAP, "Tmpfs": _STRING_MAP,
    "UTSMode": "string", "UsernsMode": "string", "ShmSize": "int64", "Sysctls": _STRING_MAP, "Runtime": "string",
    "Isolation": "string", "CpuShares": "int64", "Memory": "int64", "NanoCpus": "int64", "CgroupParent": "string",
    "BlkioWeight": "uint16", "CpuPeriod": "int64", "CpuQuota": "int64", "CpuRealtimePeriod": "int64",
    "CpuRealtimeRuntime": "int64", "CpusetCpus": "string", "CpusetMems": "string", "Devices": ("[]", _DEVICE),
    "DeviceCgroupRules": _STRINGS, "KernelMemory": "int64", "KernelMemoryTCP": "int64",
    "MemoryReservation": "int64", "MemorySwap": "int64", "MemorySwappiness": "int64", "OomKillDisable": "bool",
    "PidsLimit": "int64", "Ulimits": ("[]", _ULIMIT), "CpuCount": "int64", "CpuPercent": "int64",
    "IOMaximumIOps": "uint64", "IOMaximumBandwidth": "uint64", "MaskedPaths": _STRINGS,
    "ReadonlyPaths": _STRINGS, "Init": "bool", "Mounts": ("[]", _MOUNT), "ConsoleSize": ("[]", "uint"),
}
WRAPPER = {**CONFIG, "HostConfig": ("struct", "HostConfig", HOST_CONFIG), "NetworkingConfig": "object"}


def decode_create_body(raw: bytes) -> dict:
    """The body as a dict whose values have the Go types dockerd reads;
    BadBody (500) for what Go's decoder would refuse."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise BadBody(_syntax_error(err)) from None
    if not isinstance(body, dict):
        raise BadBody(f"json: cannot unmarshal {_kind(body)} into Go value of type runconfig.ContainerConfigWrapper")
    _check_struct(body, WRAPPER, "ContainerConfigWrapper", "")
    return body


def _kind(value) -> str:
    return _KIND.get(type(value), "value")


def _syntax_error(err) -> str:
    message = getattr(err, "msg", str(err))
    if isinstance(err, json.JSONDecodeError) and err.pos >= len(err.doc):
        return "unexpected EOF"
    return f"invalid JSON: {message}"


def _check_struct(obj: dict, fields: dict, struct: str, path: str) -> None:
    for key, value in obj.items():
        go_type = fields.get(key)
        if go_type is not None and value is not None:
            _check(value, go_type, struct, f"{path}{key}")


def _refused(value, struct: str, path: str, go_type: str) -> BadBody:
    """Go names a number by its text only when the target is an integer."""
    kind = f"number {value:g}" if isinstance(value, float) and go_type in _INT_RANGES else _kind(value)
    return BadBody(f"json: cannot unmarshal {kind} into Go struct field {struct}.{path} of type {go_type}")


def _check(value, go_type, struct: str, path: str) -> None:
    if isinstance(go_type, str):
        _check_plain(value, go_type, struct, path)
        return
    shape = go_type[0]
    if shape == "[]":
        if not isinstance(value, list):
            raise _refused(value, struct, path, _name(go_type))
        for item in value:
            if item is not None:
                _check(item, go_type[1], struct, path)
    elif shape == "map":
        if not isinstance(value, dict):
            raise _refused(value, struct, path, _name(go_type))
        if go_type[1] != "any":
            for item in value.values():
                if item is not None:
                    _check(item, go_type[1], struct, path)
    else:  # a struct: its fields are reported under its own type name
        if not isinstance(value, dict):
            raise _refused(value, struct, path, f"container.{go_type[1]}")
        _check_struct(value, go_type[2], go_type[1], f"{path}.")


def _name(go_type) -> str:
    if len(go_type) == 3 and go_type[0] == "map":
        return go_type[2]
    inner = go_type[1] if isinstance(go_type[1], str) else go_type[1][1]
    return f"[]{inner}" if go_type[0] == "[]" else f"map[string]{inner}"


def _check_plain(value, go_type: str, struct: str, path: str) -> None:
    if go_type == "strslice":
        if not (isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))):
            raise _refused(value, struct, path, "string")
        return
    if go_type == "any":
        return
    if go_type == "object":
        if not isinstance(value, dict):
            raise _refused(value, struct, path, "map[string]interface {}")
        return
    if go_type == "string":
        ok = isinstance(value, str)
    elif go_type == "bool":
        ok = isinstance(value, bool)
    else:
        ok = isinstance(value, int) and not isinstance(value, bool)
        if ok and not _INT_RANGES[go_type][0] <= value <= _INT_RANGES[go_type][1]:
            raise BadBody(f"json: cannot unmarshal number {value} into Go struct field {struct}.{path} "
                          f"of type {go_type}")
    if not ok:
        raise _refused(value, struct, path, go_type)
