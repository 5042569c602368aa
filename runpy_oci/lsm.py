"""AppArmor and SELinux fields: runpy-oci applies neither.

Where the host has no such LSM the fields cannot take effect anyway: they
are accepted and ignored, with a debug log (as crun does for mountLabel;
runc and crun refuse the process labels there). Where the host does have
one, a container that asks to be confined must not run unconfined: the
field is refused, by name.
"""
import os

from runpy_oci.errors import RuntimeFailure

_APPARMOR_ENABLED = "/sys/module/apparmor/parameters/enabled"  # "Y" when AppArmor is on (runc reads the same)
_SELINUX_FS = "/sys/fs/selinux/enforce"                         # exists while SELinux is on


def apparmor_enabled() -> bool:
    try:
        with open(_APPARMOR_ENABLED) as f:
            return f.read().strip() == "Y"
    except OSError:
        return False


def selinux_enabled() -> bool:
    return os.path.exists(_SELINUX_FS)


def check(process, mount_label: str = "") -> None:
    """Refuses (RuntimeFailure) what the host's LSM would have to enforce;
    logs at debug level what it ignores."""
    from runpy_oci import log

    for where, value, on, lsm in (("process.apparmorProfile", process.apparmor_profile, apparmor_enabled, "AppArmor"),
                                  ("process.selinuxLabel", process.selinux_label, selinux_enabled, "SELinux"),
                                  ("linux.mountLabel", mount_label, selinux_enabled, "SELinux")):
        if not value:
            continue
        if on():
            raise RuntimeFailure(f"{where} {value!r}: {lsm} is enabled on this host, and runpy-oci does not apply it")
        log.debug(f"{where} {value!r} ignored: the host has no {lsm}")
