"""devices: the allow/deny rules of ``linux.resources.devices`` in order,
then, as runc does, the devices every container may use, so that runc's
default "deny all" keeps a working /dev. Nodes of ``linux.devices`` get no
rule of their own (runc neither): the config allows them explicitly.
v1 writes them to devices.allow/deny; v2 compiles them into a device
program (``devicefilter``) attached to the container's cgroup."""
import os

from runpy_oci.cgroups.controller import Controller, WriteError
from runpy_oci.spec.fields import join

# runc 1.1's AllowedDevices: mknod of anything, the default /dev nodes,
# ptys, and tun.
DEFAULT_ALLOW = (
    "c *:* m", "b *:* m",
    "c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm", "c 5:0 rwm", "c 1:5 rwm", "c 1:9 rwm",
    "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm",
)


def _default_rules():
    """DEFAULT_ALLOW as (type, major, minor, access, allow) tuples."""
    out = []
    for line in DEFAULT_ALLOW:
        kind, numbers, access = line.split()
        major, minor = (None if n == "*" else int(n) for n in numbers.split(":"))
        out.append((kind, major, minor, access, True))
    return out


class Devices(Controller):
    v1 = "devices"
    v2 = ""  # no controller file: a device program on any v2 cgroup

    def requested(self, res):
        return res if res.devices else None

    def set_v1(self, d, res):
        for rule in res.devices:
            d.write("devices.allow" if rule.allow else "devices.deny", rule.v1_line(), rule.path)
        for line in DEFAULT_ALLOW:
            d.write("devices.allow", line, join(res.path, "devices"))

    def set_v2(self, d, res):
        from runpy_oci import kernel
        from runpy_oci.cgroups.devicefilter import compile_rules

        rules = [(r.type, r.major, r.minor, r.access, r.allow) for r in res.devices] + _default_rules()
        fd = os.open(d.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            kernel.get().attach_device_filter(compile_rules(rules), fd)
        except OSError as e:
            raise WriteError(f"{join(res.path, 'devices')}: cannot attach the device program to {d.path}: "
                             f"{e.strerror}", e.errno) from None
        finally:
            os.close(fd)


CONTROLLER = Devices()
