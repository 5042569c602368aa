"""A build's options from the `POST /build` query, as dockerd 20.10's
newImageBuildOptions and its tagger read them (the docker CLI 28 and 20.10,
docker-py and compose send them so).

Bad values are refused with dockerd's words ("error reading build args:
json: cannot unmarshal number into Go value of type string", "invalid
reference format: repository name must be lowercase"); where 20.10 answers
such a client mistake with a 500 the answer here is 400, as in
engine.filters. Limits a RUN container gets (memory, cpu, ulimits) are kept
as the HostConfig keys dockerd puts them under; numbers that do not parse
are 0, as dockerd's Int64ValueOrZero makes them.
"""
import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Mapping

from engine.errors import InvalidParameter
from engine.reference import parse_normalized
from engine.services.images import check_platform

DEFAULT_DOCKERFILE = "Dockerfile"
_GO_INT = re.compile(r"^[+-]?[0-9]+$")
_INT64 = (-(1 << 63), (1 << 63) - 1)
_JSON_KIND = {str: "string", bool: "bool", int: "number", float: "number", list: "array", dict: "object"}
# query parameter -> the HostConfig key of a RUN container's limit
_INT_LIMITS = {"memory": "Memory", "memswap": "MemorySwap", "cpushares": "CpuShares", "cpuperiod": "CpuPeriod",
               "cpuquota": "CpuQuota"}
_TEXT_LIMITS = {"cpusetcpus": "CpusetCpus", "cpusetmems": "CpusetMems"}


@dataclass(frozen=True)
class BuildOptions:
    tags: tuple[str, ...] = ()          # as dockerd prints them ("x:latest": `latest` added), each once
    dockerfile: str = DEFAULT_DOCKERFILE  # path inside the context as sent
    quiet: bool = False                 # `q`
    no_cache: bool = False
    pull: bool = False
    remove: bool = True                 # `rm`
    force_remove: bool = False          # `forcerm`
    build_args: dict[str, str | None] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    target: str = ""
    network_mode: str = ""              # "" or "default": as a plain docker run
    cache_from: tuple[str, ...] = ()
    extra_hosts: tuple[str, ...] = ()
    shm_size: int = 0
    resources: dict = field(default_factory=dict)  # HostConfig keys: Memory, MemorySwap, CpuShares, CpuPeriod,
    #                                                CpuQuota, CpusetCpus, CpusetMems, Ulimits (only those given)
    registry_config: dict = field(default_factory=dict)  # X-Registry-Config: registry -> AuthConfig
    platform: str = ""                  # "" or linux/amd64 (anything else is refused)
    cgroup_parent: str = ""             # `cgroupparent`


def parse_build_query(query: Mapping[str, list[str]], headers: Mapping[str, str]) -> BuildOptions:
    """The options, or InvalidParameter naming what is wrong; checked in
    dockerd's order (the options, then the tags, then the platform)."""
    def arg(name: str) -> str:
        values = query.get(name)
        return values[0] if values else ""

    if "securityopt" in query:
        raise InvalidParameter("The daemon on this platform does not support setting security options on build")
    if arg("outputs"):
        _decode_json(arg("outputs"), "", "[]types.ImageBuildOutput", list)
    shm_size = _parse_int(arg("shmsize")) if arg("shmsize") else 0
    if arg("isolation").lower() not in ("", "default"):
        raise InvalidParameter(f'Unsupported isolation: "{arg("isolation")}"')
    resources = {key: value for name, key in _INT_LIMITS.items() if (value := _int_or_zero(arg(name)))}
    resources.update({key: arg(name) for name, key in _TEXT_LIMITS.items() if arg(name)})
    if arg("ulimits"):
        ulimits = _ulimits(arg("ulimits"))
        if ulimits:
            resources["Ulimits"] = ulimits
    build_args = _string_map(arg("buildargs"), "error reading build args", "map[string]*string", nullable=True)
    labels = _string_map(arg("labels"), "error reading labels", "map[string]string", nullable=False)
    cache_from = _decode_json(arg("cachefrom"), "", "[]string", list) if arg("cachefrom") else []
    for item in cache_from:
        _check_kind(item, str, "string", "")
    if arg("version") not in ("", "1"):
        raise InvalidParameter("buildkit is not supported by engine-py: use the legacy builder (version=1)"
                               if arg("version") == "2" else f'invalid version "{arg("version")}"')
    if _bool(arg("squash")):
        raise InvalidParameter("squash is only supported with experimental mode")
    _check_remote(arg("remote"))
    tags = _tags(query.get("t", []))
    check_platform(arg("platform"))
    return BuildOptions(
        tags=tags, dockerfile=arg("dockerfile") or DEFAULT_DOCKERFILE, quiet=_bool(arg("q")),
        no_cache=_bool(arg("nocache")), pull=_bool(arg("pull")),
        remove=_bool(arg("forcerm")) or arg("rm") == "" or _bool(arg("rm")), force_remove=_bool(arg("forcerm")),
        build_args=build_args, labels=labels, target=arg("target"),
        network_mode=arg("networkmode"), cache_from=tuple(item or "" for item in cache_from),
        extra_hosts=tuple(query.get("extrahosts", [])), shm_size=shm_size, resources=resources,
        registry_config=registry_config(headers.get("x-registry-config", "")), platform=arg("platform"),
        cgroup_parent=arg("cgroupparent"))


def _bool(value: str) -> bool:
    """httputils.BoolValue: anything but "", "0", "no", "false", "none"."""
    return value.strip().lower() not in ("", "0", "no", "false", "none")


def _parse_int(value: str) -> int:
    """strconv.ParseInt(value, 10, 64), with its error."""
    if not _GO_INT.match(value):
        raise InvalidParameter(f'strconv.ParseInt: parsing "{value}": invalid syntax')
    number = int(value)
    if not _INT64[0] <= number <= _INT64[1]:
        raise InvalidParameter(f'strconv.ParseInt: parsing "{value}": value out of range')
    return number


def _int_or_zero(value: str) -> int:
    """httputils.Int64ValueOrZero: what does not parse is 0."""
    try:
        return _parse_int(value)
    except InvalidParameter:
        return 0


def _go_syntax_error(error: json.JSONDecodeError) -> str:
    """Go's encoding/json words for the usual syntax errors (Python's otherwise)."""
    if error.pos >= len(error.doc):
        return "unexpected end of JSON input"
    rest = error.doc[error.pos:]
    char = repr(rest[0])[1:-1]
    literal = next((word for word in ("true", "false", "null") if word[0] == rest[0]), None)
    if error.msg == "Expecting value" and literal:
        for expected, got in zip(literal, rest):
            if expected != got:
                return f"invalid character '{repr(got)[1:-1]}' in literal {literal} (expecting '{expected}')"
        return "unexpected end of JSON input"
    if error.msg == "Expecting value":
        return f"invalid character '{char}' looking for beginning of value"
    if error.msg == "Extra data":
        return f"invalid character '{char}' after top-level value"
    return error.msg


def _decode_json(text: str, context: str, go_type: str, kind: type):
    """The JSON value of a parameter, of the Go type's kind (null is its zero value)."""
    prefix = f"{context}: " if context else ""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidParameter(prefix + _go_syntax_error(error)) from None
    if value is None:
        return kind()
    _check_kind(value, kind, go_type, prefix)
    return value


def _check_kind(value, kind: type, go_type: str, prefix: str) -> None:
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool) and kind is not bool):
        raise InvalidParameter(f"{prefix}json: cannot unmarshal {_JSON_KIND.get(type(value), 'value')} "
                               f"into Go value of type {go_type}")


def _string_map(text: str, context: str, go_type: str, nullable: bool) -> dict:
    """A JSON object of strings (`buildargs` keeps a null as None: an arg named without a value)."""
    if not text:
        return {}
    mapping = _decode_json(text, context, go_type, dict)
    for value in mapping.values():
        _check_kind(value, str, "string", f"{context}: ")
    return mapping if nullable else {key: value or "" for key, value in mapping.items()}


def _ulimits(text: str) -> list[dict]:
    """`ulimits`: a JSON list of units.Ulimit, re-encoded as dockerd's HostConfig has them."""
    context = "error reading ulimit settings"
    ulimits = []
    for item in _decode_json(text, context, "[]*units.Ulimit", list):
        if item is None:
            continue
        _check_kind(item, dict, "units.Ulimit", f"{context}: ")
        fields = {key.lower(): value for key, value in item.items()}  # Go matches field names case-insensitively
        ulimit = {}
        for name, go_type, kind in (("Name", "string", str), ("Hard", "int64", int), ("Soft", "int64", int)):
            value = fields.get(name.lower())
            if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
                raise InvalidParameter(f"{context}: json: cannot unmarshal {_JSON_KIND.get(type(value), 'value')} "
                                       f"into Go struct field Ulimit.{name} of type {go_type}")
            ulimit[name] = value if value is not None else kind()
        ulimits.append(ulimit)
    return ulimits


def _check_remote(remote: str) -> None:
    """A context to fetch (a URL, a git repository) cannot be: the engine builds what the request carries."""
    if not remote:
        return
    if remote == "client-session":
        raise InvalidParameter("experimental session with v1 builder is no longer supported, "
                               "use builder version v2 (BuildKit) instead")
    if re.match(r"^(https?://|git://|git@|github\.com/)", remote):
        raise InvalidParameter(f"remote context {remote}: engine-py builds only from the context sent "
                               "in the request")
    raise InvalidParameter(f"remoteURL ({remote}) could not be recognized as URL")


def _tags(names: list[str]) -> tuple[str, ...]:
    """dockerd's sanitizeRepoAndTags: empty ones skipped, `latest` added, each once."""
    tags = []
    for name in names:
        if not name:
            continue
        ref = parse_normalized(name)
        if ref.digest:
            raise InvalidParameter("build tag cannot contain a digest")
        tag = ref.tag_name_only().familiar()
        if tag not in tags:
            tags.append(tag)
    return tuple(tags)


def registry_config(header: str) -> dict:
    """X-Registry-Config: base64url of a JSON map registry -> AuthConfig;
    dockerd ignores what does not decode (a pull without auth works too)."""
    if not header:
        return {}
    try:
        decoded = json.loads(base64.urlsafe_b64decode(header.encode()))
    except (binascii.Error, ValueError):
        return {}
    if not isinstance(decoded, dict):
        return {}
    return {registry: auth for registry, auth in decoded.items() if isinstance(auth, dict)}
