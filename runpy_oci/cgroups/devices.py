"""devices (v1): the allow/deny rules of ``linux.resources.devices`` in order,
then, as runc does, the devices every container may use, so that runc's
default "deny all" keeps a working /dev. Nodes of ``linux.devices`` get no
rule of their own (runc neither): the config allows them explicitly."""
from runpy_oci.cgroups.controller import Controller, unsupported
from runpy_oci.spec.fields import join

# runc 1.1's AllowedDevices: mknod of anything, the default /dev nodes,
# ptys, and tun.
DEFAULT_ALLOW = (
    "c *:* m", "b *:* m",
    "c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm", "c 5:0 rwm", "c 1:5 rwm", "c 1:9 rwm",
    "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm",
)


class Devices(Controller):
    v1 = "devices"
    # v2 enforces device rules with an eBPF program only; not loaded yet.
    v2 = ""

    def requested(self, res):
        return res if res.devices else None

    def set_v1(self, d, res):
        for rule in res.devices:
            d.write("devices.allow" if rule.allow else "devices.deny", rule.v1_line(), rule.path)
        for line in DEFAULT_ALLOW:
            d.write("devices.allow", line, join(res.path, "devices"))

    def set_v2(self, d, res):
        unsupported(join(res.path, "devices"), "device rules on cgroup v2 need an eBPF program, "
                                           "which runpy-oci does not load")


CONTROLLER = Devices()
