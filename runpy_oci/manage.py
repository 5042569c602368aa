"""The verbs that act on a live container's cgroup: pause, resume, ps,
update, stats. Each takes the container's lock for its duration."""

from runpy_oci.cgroups import Cgroup
from runpy_oci.errors import RuntimeFailure, WrongState
from runpy_oci.state import Container


def _open(root, container_id, lock=True):
    return Container.load(root, container_id, lock=lock)


def _freeze(root, container_id, frozen):
    from runpy_oci.cgroups.freezer import CONTROLLER as freezer

    c = _open(root, container_id)
    try:
        status = c.status()
        if frozen and status != "running":
            raise WrongState("container not running")
        if not frozen and status != "paused":
            raise WrongState("container not paused")
        d = Cgroup(c.data.get("cgroup_paths", {})).dir_for(freezer)
        if d is None:
            raise RuntimeFailure("the host has no freezer for the container's cgroup")
        freezer.set_state(d, frozen)
    finally:
        c.close()


def pause(root, container_id):
    _freeze(root, container_id, True)


def resume(root, container_id):
    _freeze(root, container_id, False)


def pids(root, container_id):
    """Host pids of every process in the container's cgroup."""
    c = _open(root, container_id, lock=False)
    try:
        if c.status() == "stopped":
            return []
        return Cgroup(c.data.get("cgroup_paths", {})).pids()
    finally:
        c.close()


def update(root, container_id, resources):
    """Apply a spec Resources object to a container that has not stopped."""
    c = _open(root, container_id)
    try:
        if c.status() == "stopped":
            raise WrongState("container not running")
        Cgroup(c.data.get("cgroup_paths", {})).apply(resources)
    finally:
        c.close()


def stats(root, container_id):
    """runc's ``events --stats`` object for the container."""
    from runpy_oci.cgroups import resources

    c = _open(root, container_id, lock=False)
    try:
        if c.status() == "stopped":
            raise WrongState("container not running")
        data = resources.stats(Cgroup(c.data.get("cgroup_paths", {})))
    finally:
        c.close()
    data.update(intel_rdt={}, network_interfaces=None)
    return {"type": "stats", "id": container_id, "data": data}


def oom_watch(root, container_id):
    """An OomWatch on the container's memory cgroup, or None if it has none."""
    from runpy_oci.cgroups.memory import CONTROLLER as memory, OomWatch

    c = _open(root, container_id, lock=False)
    try:
        d = Cgroup(c.data.get("cgroup_paths", {})).dir_for(memory)
    finally:
        c.close()
    return OomWatch(d) if d is not None else None


_UNITS = "kmgtp"


def parse_bytes(text, flag):
    """Docker's RAMInBytes, as runc's update flags take it: "512", "64m", "1GiB", "-1"."""
    t = text.strip().lower()
    if t == "-1":
        return -1
    for tail in ("ib", "b"):
        if t.endswith(tail):
            t = t[:-len(tail)]
            break
    unit = 1
    if t[-1:].isalpha() and t[-1] in _UNITS:
        unit, t = 1024 ** (_UNITS.index(t[-1]) + 1), t[:-1]
    try:
        value = float(t)
    except ValueError:
        value = -1.0
    if value < 0:
        raise RuntimeFailure(f"invalid value {text!r} for flag --{flag}")
    return int(value * unit)


# fields whose values are byte sizes ("64m") or text; all others are integers
_BYTE_FIELDS = {("memory", k) for k in ("limit", "reservation", "swap", "kernel", "kernelTCP")}
_TEXT_FIELDS = {("cpu", "cpus"), ("cpu", "mems")}


def update_resources(settings, document=None):
    """A Resources object from ``update``'s flags, (flag, section, key, text)
    each, over an optional ``-r`` LinuxResources document (flags win, as in runc)."""
    from runpy_oci import fastjson
    from runpy_oci.errors import ConfigError
    from runpy_oci.spec.fields import Fields
    from runpy_oci.spec.resources import Resources

    data = {}
    if document is not None:
        try:
            data = fastjson.loads(document)
        except ValueError as e:
            raise ConfigError(f"resources: invalid JSON: {e}") from None
    for flag, section, key, value in settings:
        if (section, key) in _BYTE_FIELDS:
            value = parse_bytes(value, flag)
        elif (section, key) not in _TEXT_FIELDS:
            if not value.lstrip("-").isdigit():
                raise RuntimeFailure(f"invalid value {value!r} for flag --{flag}")
            value = int(value)
        data.setdefault(section, {})[key] = value
    return Resources(Fields(data, ""))
