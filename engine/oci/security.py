"""Capabilities, SecurityOpt and seccomp as dockerd 20.10 turns them into
the spec (moby's oci/caps, daemon/create.go's parseSecurityOpt and
profiles/seccomp).

The default seccomp profile is data (seccomp_default.json, moby's
profiles/seccomp/default.json of 20.10); its rules are filtered by the
container's bounding capabilities, the host's architecture and kernel.
"""
import json
import os
from dataclasses import dataclass

from engine.errors import InvalidParameter

# Docker's default set, in its order.
DEFAULT_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
)
# Every capability dockerd 20.10 knows (up to CAP_AUDIT_READ), by number:
# what --privileged and --cap-add ALL give.
ALL_CAPABILITIES = tuple("CAP_" + name for name in (
    "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE "
    "NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT "
    "SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE "
    "AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ"
).split())

# GOARCH to the profile's arch names, and those to libseccomp's (moby's tables).
_GO_TO_NATIVE = {"386": "x86", "mips64p32": "mips64n32", "mips64le": "mipsel64", "mips64p32le": "mips3l64n32"}
_NATIVE_TO_SECCOMP = {
    "x86": "SCMP_ARCH_X86", "amd64": "SCMP_ARCH_X86_64", "arm": "SCMP_ARCH_ARM", "arm64": "SCMP_ARCH_AARCH64",
    "mips64": "SCMP_ARCH_MIPS64", "mips64n32": "SCMP_ARCH_MIPS64N32", "mipsel64": "SCMP_ARCH_MIPSEL64",
    "mips3l64n32": "SCMP_ARCH_MIPSEL64N32", "mipsle": "SCMP_ARCH_MIPSEL", "ppc": "SCMP_ARCH_PPC",
    "ppc64": "SCMP_ARCH_PPC64", "ppc64le": "SCMP_ARCH_PPC64LE", "s390": "SCMP_ARCH_S390", "s390x": "SCMP_ARCH_S390X",
}
_PROFILE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seccomp_default.json")
UNCONFINED = "unconfined"


def normalize_capabilities(names, field):
    """CapAdd/CapDrop entries as CAP_ names (any case, with or without the
    prefix; ALL kept), or 400 in dockerd's words."""
    normalized = []
    for name in names:
        upper = name.upper()
        if upper != "ALL":
            upper = upper if upper.startswith("CAP_") else "CAP_" + upper
            if upper not in ALL_CAPABILITIES:
                raise InvalidParameter(f'invalid {field}: unknown capability: "{upper}"')
        normalized.append(upper)
    return tuple(normalized)


def capabilities(cap_add, cap_drop, privileged):
    """The bounding set: dockerd's TweakCapabilities over the default set."""
    if privileged:
        return list(ALL_CAPABILITIES)
    if not cap_add and not cap_drop:
        return list(DEFAULT_CAPABILITIES)
    if "ALL" in cap_add:
        return [c for c in ALL_CAPABILITIES if c not in cap_drop]
    if "ALL" in cap_drop:
        return list(cap_add)
    return [c for c in DEFAULT_CAPABILITIES if c not in cap_drop] + list(cap_add)


@dataclass(frozen=True)
class SecurityOptions:
    """HostConfig.SecurityOpt, parsed. ``seccomp`` is "" (the default
    profile), "unconfined", or a profile's JSON text."""
    no_new_privileges: bool = False
    seccomp: str = ""
    apparmor: str = ""
    labels: tuple[str, ...] = ()


_TRUE = {"1", "t", "T", "true", "TRUE", "True"}
_FALSE = {"0", "f", "F", "false", "FALSE", "False"}


def parse_security_opt(options) -> SecurityOptions:
    """dockerd's parseSecurityOpt, with its messages."""
    no_new_privileges, seccomp, apparmor, labels = False, "", "", []
    for opt in options:
        if opt == "no-new-privileges":
            no_new_privileges = True
            continue
        if opt == "disable":
            labels.append("disable")
            continue
        sep = "=" if "=" in opt else ":" if ":" in opt else None
        if sep is None:
            raise InvalidParameter(f"invalid --security-opt 1: {json.dumps(opt)}")
        key, value = opt.split(sep, 1)
        if key == "label":
            labels.append(value)
        elif key == "apparmor":
            apparmor = value
        elif key == "seccomp":
            seccomp = value
        elif key == "no-new-privileges" and value in _TRUE | _FALSE:
            no_new_privileges = value in _TRUE
        else:
            raise InvalidParameter(f"invalid --security-opt 2: {json.dumps(opt)}")
    if seccomp not in ("", UNCONFINED):
        load_profile(seccomp)  # a bad profile is refused at create, not at start
    return SecurityOptions(no_new_privileges, seccomp, apparmor, tuple(labels))


def load_profile(text):
    try:
        profile = json.loads(text)
    except ValueError as err:
        raise InvalidParameter(f"Decoding seccomp profile failed: {err}") from None
    if not isinstance(profile, dict) or not isinstance(profile.get("syscalls", []), list):
        raise InvalidParameter("Decoding seccomp profile failed: expected an object with a syscalls array")
    return profile


_default_profile = None


def default_profile():
    global _default_profile
    if _default_profile is None:
        with open(_PROFILE_PATH) as f:
            _default_profile = json.load(f)
    return _default_profile


def seccomp_for(security: SecurityOptions, privileged, bounding, arch, kernel):
    """linux.seccomp for the container, or None when it runs unconfined."""
    if privileged or security.seccomp == UNCONFINED:
        return None
    profile = load_profile(security.seccomp) if security.seccomp else default_profile()
    return resolve_profile(profile, bounding, arch, kernel)


def _kernel_at_least(kernel, wanted):
    parts = [int(p) for p in wanted.split(".")[:2]] + [0]
    return tuple(kernel) >= (parts[0], parts[1])


def _applies(rule, bounding, arch, kernel):
    excludes, includes = rule.get("excludes") or {}, rule.get("includes") or {}
    if arch in (excludes.get("arches") or ()):
        return False
    if any(c in bounding for c in excludes.get("caps") or ()):
        return False
    if excludes.get("minKernel") and _kernel_at_least(kernel, excludes["minKernel"]):
        return False
    if includes.get("arches") and arch not in includes["arches"]:
        return False
    if any(c not in bounding for c in includes.get("caps") or ()):
        return False
    if includes.get("minKernel") and not _kernel_at_least(kernel, includes["minKernel"]):
        return False
    return True


def _arg(arg):
    """A rule's argument filter as the spec's LinuxSeccompArg (valueTwo omitted when 0)."""
    out = {"index": arg.get("index", 0), "value": arg.get("value", 0)}
    if arg.get("valueTwo"):
        out["valueTwo"] = arg["valueTwo"]
    out["op"] = arg.get("op", "")
    return out


def resolve_profile(profile, bounding, goarch, kernel):
    """A Docker seccomp profile to the spec's form, as dockerd 20.10's
    setupSeccomp: architectures from archMap for this host, only the rules
    whose includes/excludes hold for these capabilities, arch and kernel.
    20.10 passes on defaultAction, architectures and syscalls only (no
    defaultErrnoRet, flags or listener)."""
    if not profile.get("defaultAction") and not profile.get("syscalls"):
        return None
    if profile.get("architectures") and profile.get("archMap"):
        raise InvalidParameter("'architectures' and 'archMap' were specified in the seccomp profile, "
                               "use either 'architectures' or 'archMap'")
    arch = _GO_TO_NATIVE.get(goarch, goarch)
    architectures = list(profile.get("architectures") or ())
    native = _NATIVE_TO_SECCOMP.get(arch)
    for entry in profile.get("archMap") or ():
        if native and entry.get("architecture") == native:
            architectures += [native, *(entry.get("subArchitectures") or ())]
            break
    spec = {"defaultAction": profile.get("defaultAction", "")}
    if architectures:
        spec["architectures"] = architectures
    syscalls = []
    for rule in profile.get("syscalls") or ():
        if not _applies(rule, bounding, arch, kernel):
            continue
        if rule.get("name") and rule.get("names"):
            raise InvalidParameter("'name' and 'names' were specified in the seccomp profile, "
                                   "use either 'name' or 'names'")
        out = {"names": [rule["name"]] if rule.get("name") else list(rule.get("names") or ()),
               "action": rule.get("action", "")}
        if rule.get("errnoRet") is not None:
            out["errnoRet"] = rule["errnoRet"]
        if rule.get("args"):
            out["args"] = [_arg(a) for a in rule["args"]]
        syscalls.append(out)
    if syscalls:
        spec["syscalls"] = syscalls
    return spec
