"""Applying ``linux.resources`` and reading statistics, controller by
controller, on whatever layout the host has.

Controller modules are imported only when the config asks for what they
apply (``create`` is a hot path; the default config asks for devices only).
"""
from runpy_oci.errors import ConfigError
from runpy_oci.spec.fields import join

# module in runpy_oci.cgroups, the Resources attribute it applies and its
# JSON key (None: statistics only).
CONTROLLERS = (
    ("memory", "memory", "memory"),
    ("cpu", "cpu", "cpu"),
    ("cpuset", "cpu", "cpu"),
    ("cpuacct", None, None),
    ("pids", "pids", "pids"),
    ("blkio", "block_io", "blockIO"),
    ("hugetlb", "hugepage_limits", "hugepageLimits"),
    ("devices", "devices", "devices"),
    ("net_cls", "network", "network"),
    ("net_prio", "network", "network"),
    ("rdma", "rdma", "rdma"),
    ("unified", "unified", "unified"),
)


def load(name):
    return __import__(f"runpy_oci.cgroups.{name}", fromlist=["CONTROLLER"]).CONTROLLER


def apply(cgroup, res):
    """Write every requested limit into the container's cgroup; ConfigError
    naming the field for what this host cannot express."""
    for name, attr, key in CONTROLLERS:
        if attr is None or not getattr(res, attr):
            continue
        ctrl = load(name)
        part = ctrl.requested(res)
        if part is None:
            continue
        d = cgroup.dir_for(ctrl, enable=True)
        if d is None:
            raise ConfigError(f"{join(res.path, key)}: the host has no {name} cgroup controller for this container")
        if d.version == 1:
            ctrl.set_v1(d, part)
        else:
            ctrl.set_v2(d, part)


def stats(cgroup):
    """runc's stats "data" object for ``events --stats``."""
    out = {"cpu": {}, "memory": {}, "pids": {}, "blkio": {}, "hugetlb": {}}
    for name, _, _ in CONTROLLERS:
        ctrl = load(name)
        d = cgroup.dir_for(ctrl)
        if d is not None:
            ctrl.stats(d, out)
    return out
