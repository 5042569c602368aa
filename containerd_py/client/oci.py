"""The runtime-spec a container gets from the client: containerd's Unix defaults
(oci.WithDefaultSpec) with the image's config applied (oci.WithImageConfig), then
the user's command, environment, mounts and terminal."""
import copy

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
         "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
         "CAP_AUDIT_WRITE"]
_TMPFS = ["nosuid", "strictatime", "mode=755", "size=65536k"]
_DEFAULT = {
    "ociVersion": "1.1.0",
    "root": {"path": "rootfs"},
    "process": {
        "user": {"uid": 0, "gid": 0}, "cwd": "/", "env": [DEFAULT_PATH],
        "capabilities": {"bounding": _CAPS, "effective": _CAPS, "permitted": _CAPS},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    },
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": _TMPFS},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": _TMPFS},
    ],
    "linux": {
        "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                        "/proc/scsi"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount", "network")],
    },
}


def merge_env(base: list[str], extra: list[str]) -> list[str]:
    """extra's KEY=VALUE entries replace base's of the same key, the rest are appended."""
    out = list(base)
    for item in extra:
        key = item.split("=", 1)[0]
        out = [e for e in out if e.split("=", 1)[0] != key] + [item]
    return out


def _user(spec_user: str) -> dict:
    """An image's User as numbers: "uid[:gid]"; names other than root need the rootfs' passwd."""
    if not spec_user or spec_user == "root":
        return {"uid": 0, "gid": 0}
    uid, _, gid = spec_user.partition(":")
    if not uid.isdigit() or (gid and not gid.isdigit()):
        raise ValueError(f"image user {spec_user!r}: only numeric uid[:gid] is supported")
    return {"uid": int(uid), "gid": int(gid or uid)}


def parse_mount(text: str) -> dict:
    """ctr's --mount: "type=bind,src=/a,dst=/b,options=rbind:ro"."""
    fields = dict(part.split("=", 1) for part in text.split(",") if "=" in part)
    dst = fields.get("dst") or fields.get("destination") or fields.get("target")
    if not dst or not dst.startswith("/"):
        raise ValueError(f"--mount {text!r}: dst must be an absolute path")
    kind = fields.get("type", "bind")
    options = [o for o in fields.get("options", "rbind" if kind == "bind" else "").split(":") if o]
    return {"destination": dst, "type": kind, "source": fields.get("src") or fields.get("source", kind),
            "options": options}


def spec_for(image_config: dict, args: list[str], env: list[str], mounts: list[dict],
             terminal: bool, cwd: str = "", user: str = "") -> dict:
    spec = copy.deepcopy(_DEFAULT)
    config = image_config.get("config") or {}
    process = spec["process"]
    process["env"] = merge_env(process["env"], config.get("Env") or [])
    process["env"] = merge_env(process["env"], env)
    command = (config.get("Entrypoint") or []) + (args or config.get("Cmd") or [])
    if not command:
        raise ValueError("no command given and the image has neither Entrypoint nor Cmd")
    process["args"] = command
    process["cwd"] = cwd or config.get("WorkingDir") or "/"
    process["user"] = _user(user or config.get("User", ""))
    process["terminal"] = terminal
    if terminal:
        process["env"] = merge_env(process["env"], ["TERM=xterm"])
    spec["mounts"] += mounts
    return spec
