"""memory: limit, reservation, swap, kernel, swappiness, OOM killer."""
import os

from runpy_oci.cgroups.controller import Controller, unsupported
from runpy_oci.errors import ConfigError


def _v2_value(n):
    return "max" if n == -1 else n


def swap_v2(memory, swap, field):
    """runc's conversion of the spec's memory+swap total to memory.swap.max (swap alone)."""
    if memory == -1 and swap == 0:
        return -1
    if swap in (-1, 0):
        return swap
    if memory in (None, 0, -1):
        raise ConfigError(f"{field}: a swap limit needs a memory limit on cgroup v2")
    return swap - memory


class Memory(Controller):
    v1 = "memory"
    v2 = "memory"

    def requested(self, res):
        return res.memory

    def set_v1(self, d, m):
        self._limit_and_swap_v1(d, m)
        for value, name, key in (
            (m.reservation, "memory.soft_limit_in_bytes", "reservation"),
            (m.kernel, "memory.kmem.limit_in_bytes", "kernel"),
            (m.kernel_tcp, "memory.kmem.tcp.limit_in_bytes", "kernelTCP"),
            (m.swappiness, "memory.swappiness", "swappiness"),
        ):
            if value is not None:
                d.write(name, value, f"{m.path}.{key}")
        if m.disable_oom_killer:
            d.write("memory.oom_control", 1, f"{m.path}.disableOOMKiller")
        if m.use_hierarchy:
            d.write("memory.use_hierarchy", 1, f"{m.path}.useHierarchy")

    @staticmethod
    def _limit_and_swap_v1(d, m):
        """The kernel keeps memory <= memory+swap at every step, so the order
        of the two writes depends on whether the total grows or shrinks."""
        swap = m.swap
        if swap is None and m.limit == -1 and d.has("memory.memsw.limit_in_bytes"):
            swap = -1  # runc: unlimited memory means unlimited swap too
        writes = []
        if m.limit is not None:
            writes.append(("memory.limit_in_bytes", m.limit, f"{m.path}.limit"))
        if swap is not None:
            memsw = ("memory.memsw.limit_in_bytes", swap, f"{m.path}.swap")
            if not d.has(memsw[0]):
                unsupported(memsw[2], "the host has no swap accounting (memory.memsw.limit_in_bytes)")
            current = d.read_int(memsw[0])
            growing = swap == -1 or (current != -1 and swap >= current)
            writes.insert(0, memsw) if growing else writes.append(memsw)
        for name, value, field in writes:
            d.write(name, value, field)

    def set_v2(self, d, m):
        if m.limit is not None:
            d.write("memory.max", _v2_value(m.limit), f"{m.path}.limit")
        if m.swap is not None:
            field = f"{m.path}.swap"
            d.write("memory.swap.max", _v2_value(swap_v2(m.limit, m.swap, field)), field)
        if m.reservation is not None:
            d.write("memory.low", _v2_value(m.reservation), f"{m.path}.reservation")
        for value, key in ((m.kernel, "kernel"), (m.kernel_tcp, "kernelTCP"), (m.swappiness, "swappiness")):
            if value is not None:
                unsupported(f"{m.path}.{key}", "cgroup v2 has no such per-cgroup setting")
        if m.disable_oom_killer:
            unsupported(f"{m.path}.disableOOMKiller", "cgroup v2 cannot disable the OOM killer")

    def stats(self, d, out):
        if d.version == 1:
            def usage(prefix):
                return {"limit": d.read_int(prefix + "limit_in_bytes"), "usage": d.read_int(prefix + "usage_in_bytes"),
                        "max": d.read_int(prefix + "max_usage_in_bytes"), "failcnt": d.read_int(prefix + "failcnt")}
            raw = d.read_keyed("memory.stat")
            out["memory"] = {"cache": raw.get("total_cache", 0), "usage": usage("memory."),
                             "swap": usage("memory.memsw."), "kernel": usage("memory.kmem."),
                             "kernelTCP": usage("memory.kmem.tcp."), "raw": raw}
        else:
            raw = d.read_keyed("memory.stat")
            out["memory"] = {
                "cache": raw.get("file", 0),
                "usage": {"limit": d.read_int("memory.max"), "usage": d.read_int("memory.current"),
                          "max": d.read_int("memory.peak"), "failcnt": d.read_keyed("memory.events").get("max", 0)},
                "swap": {"limit": d.read_int("memory.swap.max"), "usage": d.read_int("memory.swap.current")},
                "raw": raw,
            }


CONTROLLER = Memory()


class OomWatch:
    """Tells when the kernel OOM-kills in the container's memory cgroup, for
    ``events``: on v1 an eventfd registered for memory.oom_control; on v2 a
    poll of memory.events, whose change the kernel signals (POLLPRI), and
    its oom_kill count. ``fileno()`` is what to wait on; ``fired()`` reads it."""

    def __init__(self, d):
        import select

        self._dir, self._v1 = d, d.version == 1
        self._poll = select.poll()
        if self._v1:
            self._fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
            control = os.open(os.path.join(d.path, "memory.oom_control"), os.O_RDONLY | os.O_CLOEXEC)
            try:
                d.write("cgroup.event_control", f"{self._fd} {control}", "memory.oom_control")
            finally:
                os.close(control)
            self._poll.register(self._fd, select.POLLIN)
        else:
            self._fd = os.open(os.path.join(d.path, "memory.events"), os.O_RDONLY | os.O_CLOEXEC)
            self._kills = self._count()
            self._poll.register(self._fd, select.POLLPRI | select.POLLERR)

    def _count(self):
        os.lseek(self._fd, 0, os.SEEK_SET)
        for line in os.read(self._fd, 4096).decode().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def wait(self, timeout):
        """True if an OOM kill happened within `timeout` seconds."""
        if not self._poll.poll(int(timeout * 1000)):
            return False
        if self._v1:
            try:
                os.read(self._fd, 8)
            except BlockingIOError:
                return False
            # the eventfd also fires when the cgroup goes away: that is no OOM
            return os.path.exists(os.path.join(self._dir.path, "memory.oom_control"))
        kills = self._count()
        fired, self._kills = kills > self._kills, kills
        return fired

    def close(self):
        os.close(self._fd)
