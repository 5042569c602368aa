"""`docker top` and `docker stats`: a running container's processes and its
resource use, read from the container's cgroup as dockerd reports them.

dockerd asks containerd for the task's pids and metrics; both come from the
cgroup the runtime made at the spec's cgroupsPath, which the engine knows
(its parent and the container's ID), so they are read from there: no process
is spawned for a sample, and cgroup v1 and v2 are read alike.
"""
import os
import posixpath
import re
import subprocess
import threading
from collections.abc import Iterator

from engine.errors import Conflict, InvalidParameter, System
from engine.services.containers import Publish
from engine.services.info import Machine
from engine.store import Container, ContainerStore, go_time
from engine.store.record import ZERO_TIME
from engine.textfiles import read_or_empty

CGROUP_ROOT = "/sys/fs/cgroup"
STATS_INTERVAL = 1.0  # seconds between samples of a stream, dockerd's collector's
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_NS = 1_000_000_000
_PS_FIELD = re.compile(r"\s+([^\s]*)=\s*(PID[^\s]*)")  # dockerd's validatePSArgs
_BLKIO_V1 = (("io_service_bytes_recursive", "io_service_bytes_recursive"),
             ("io_serviced_recursive", "io_serviced_recursive"), ("io_queue_recursive", "io_queued_recursive"),
             ("io_service_time_recursive", "io_service_time_recursive"),
             ("io_wait_time_recursive", "io_wait_time_recursive"), ("io_merged_recursive", "io_merged_recursive"),
             ("io_time_recursive", "time_recursive"), ("sectors_recursive", "sectors_recursive"))
# the memory.stat keys dockerd shows, cgroup v1 and v2
_MEMORY_V1 = ("cache", "rss", "rss_huge", "mapped_file", "dirty", "writeback", "pgpgin", "pgpgout", "pgfault",
              "pgmajfault", "inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable",
              "hierarchical_memory_limit", "hierarchical_memsw_limit", "total_cache", "total_rss", "total_rss_huge",
              "total_mapped_file", "total_dirty", "total_writeback", "total_pgpgin", "total_pgpgout",
              "total_pgfault", "total_pgmajfault", "total_inactive_anon", "total_active_anon",
              "total_inactive_file", "total_active_file", "total_unevictable")
_MEMORY_V2 = ("anon", "file", "kernel_stack", "slab", "sock", "shmem", "file_mapped", "file_dirty", "file_writeback",
              "anon_thp", "inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable",
              "slab_reclaimable", "slab_unreclaimable", "pgfault", "pgmajfault", "workingset_refault",
              "workingset_activate", "workingset_nodereclaim", "pgrefill", "pgscan", "pgsteal", "pgactivate",
              "pgdeactivate", "pglazyfree", "pglazyfreed", "thp_fault_alloc", "thp_collapse_alloc")


def _number(text: str) -> int:
    """A cgroup file's number; "max" (no limit) and what is missing are 0, as containerd reports them."""
    text = text.strip()
    return int(text) if text.isdigit() else 0


def _pairs(text: str) -> dict[str, int]:
    """A flat keyed file (memory.stat, cpu.stat): "key value" lines."""
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            out[key] = int(value)
    return out


def _blkio_entries(text: str) -> list[dict]:
    """v1 blkio lines "8:0 Read 4096" (the device-less "Total" line skipped), as containerd parses them."""
    entries = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 3 and ":" in fields[0] and fields[2].isdigit():
            major, _, minor = fields[0].partition(":")
            entries.append({"major": int(major), "minor": int(minor), "op": fields[1], "value": int(fields[2])})
        elif len(fields) == 2 and ":" in fields[0] and fields[1].isdigit():  # sectors, io_time: no op
            major, _, minor = fields[0].partition(":")
            entries.append({"major": int(major), "minor": int(minor), "op": "", "value": int(fields[1])})
    return entries


def network_stats(net_dev: str) -> dict[str, dict]:
    """A network namespace's interfaces but lo, from its /proc/net/dev, as
    dockerd's sandbox Statistics gives them."""
    found = {}
    for line in net_dev.splitlines()[2:]:
        name, _, counters = line.partition(":")
        values = [int(v) for v in counters.split()]
        if name.strip() == "lo" or len(values) < 12:
            continue
        found[name.strip()] = {"rx_bytes": values[0], "rx_packets": values[1], "rx_errors": values[2],
                               "rx_dropped": values[3], "tx_bytes": values[8], "tx_packets": values[9],
                               "tx_errors": values[10], "tx_dropped": values[11]}
    return found


def _system_cpu_usage() -> int:
    """The host's CPU time in nanoseconds, from /proc/stat's "cpu" line, as dockerd computes it."""
    for line in read_or_empty("/proc/stat").splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            return sum(int(v) for v in fields[1:8]) * _NS // _CLOCK_TICKS
    return 0


class CgroupReader:
    """The files of one container's cgroup: under each v1 controller's
    hierarchy, or the one v2 directory."""

    def __init__(self, path: str, version: int, root: str = CGROUP_ROOT):
        self.path, self.version, self.root = path.lstrip("/"), version, root

    def file(self, controller: str, name: str) -> str:
        base = self.root if self.version == 2 else os.path.join(self.root, controller)
        return read_or_empty(os.path.join(base, self.path, name))

    def pids(self) -> list[int]:
        return sorted({int(p) for p in self.file("pids", "cgroup.procs").split() if p.isdigit()})

    def sample(self, machine_memory: int) -> dict:
        """dockerd's Stats (without read/preread and the precpu sample)."""
        return self._v2(machine_memory) if self.version == 2 else self._v1(machine_memory)

    def _v1(self, machine_memory: int) -> dict:
        kernel_user = _pairs(self.file("cpuacct", "cpuacct.stat"))
        throttling = _pairs(self.file("cpu", "cpu.stat"))
        cpu_usage = {"total_usage": _number(self.file("cpuacct", "cpuacct.usage")),
                     "percpu_usage": [int(v) for v in self.file("cpuacct", "cpuacct.usage_percpu").split()],
                     "usage_in_kernelmode": kernel_user.get("system", 0) * _NS // _CLOCK_TICKS,
                     "usage_in_usermode": kernel_user.get("user", 0) * _NS // _CLOCK_TICKS}
        if not cpu_usage["percpu_usage"]:
            del cpu_usage["percpu_usage"]
        stat = _pairs(self.file("memory", "memory.stat"))
        memory = {"usage": _number(self.file("memory", "memory.usage_in_bytes")),
                  "max_usage": _number(self.file("memory", "memory.max_usage_in_bytes")),
                  "stats": {key: stat.get(key, 0) for key in sorted(_MEMORY_V1)},
                  "failcnt": _number(self.file("memory", "memory.failcnt")),
                  "limit": _number(self.file("memory", "memory.limit_in_bytes"))}
        blkio = {}
        for key, name in _BLKIO_V1:
            # containerd reads the CFQ scheduler's files and falls back to the throttle ones when they are empty
            entries = _blkio_entries(self.file("blkio", f"blkio.{name}"))
            if not entries and key in ("io_service_bytes_recursive", "io_serviced_recursive"):
                entries = _blkio_entries(self.file("blkio", f"blkio.throttle.{name.removesuffix('_recursive')}"))
            blkio[key] = entries
        return self._shaped(cpu_usage, throttling.get("nr_periods", 0), throttling.get("nr_throttled", 0),
                            throttling.get("throttled_time", 0), memory, blkio, machine_memory)

    def _v2(self, machine_memory: int) -> dict:
        cpu = _pairs(self.file("cpu", "cpu.stat"))
        stat = _pairs(self.file("memory", "memory.stat"))
        memory = {"usage": _number(self.file("memory", "memory.current")),
                  "stats": {key: stat.get(key, 0) for key in sorted(_MEMORY_V2)},
                  "failcnt": _pairs(self.file("memory", "memory.events")).get("oom", 0),
                  "limit": _number(self.file("memory", "memory.max"))}
        io_bytes = []
        for line in self.file("io", "io.stat").splitlines():
            device, *values = line.split()
            major, _, minor = device.partition(":")
            counts = dict(v.split("=", 1) for v in values if "=" in v)
            io_bytes += [{"major": int(major), "minor": int(minor), "op": op, "value": int(counts.get(key, 0))}
                         for op, key in (("read", "rbytes"), ("write", "wbytes"))]
        blkio = {key: None for key, _ in _BLKIO_V1}
        blkio["io_service_bytes_recursive"] = io_bytes or None
        cpu_usage = {"total_usage": cpu.get("usage_usec", 0) * 1000,
                     "usage_in_kernelmode": cpu.get("system_usec", 0) * 1000,
                     "usage_in_usermode": cpu.get("user_usec", 0) * 1000}
        return self._shaped(cpu_usage, cpu.get("nr_periods", 0), cpu.get("nr_throttled", 0),
                            cpu.get("throttled_usec", 0) * 1000, memory, blkio, machine_memory)

    def _shaped(self, cpu_usage, periods, throttled_periods, throttled_time, memory, blkio, machine_memory) -> dict:
        if machine_memory and memory["limit"] > machine_memory:  # no limit set: the machine's memory, as dockerd
            memory["limit"] = machine_memory
        pids = {"current": _number(self.file("pids", "pids.current")), "limit": _number(self.file("pids", "pids.max"))}
        return {"pids_stats": {k: v for k, v in pids.items() if v}, "blkio_stats": blkio, "num_procs": 0,
                "storage_stats": {},
                "cpu_stats": {"cpu_usage": cpu_usage, "system_cpu_usage": _system_cpu_usage(),
                              "online_cpus": os.cpu_count() or 1,
                              "throttling_data": {"periods": periods, "throttled_periods": throttled_periods,
                                                  "throttled_time": throttled_time}},
                "memory_stats": {k: v for k, v in memory.items() if v}}


_EMPTY_CPU = {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
              "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}


def empty_stats(record: Container) -> dict:
    """What dockerd answers for a container that is not running: Go's zero
    StatsJSON with the name and ID."""
    blkio = {key: None for key, _ in _BLKIO_V1}
    return {"read": ZERO_TIME, "preread": ZERO_TIME, "pids_stats": {}, "blkio_stats": blkio, "num_procs": 0,
            "storage_stats": {}, "cpu_stats": _EMPTY_CPU, "precpu_stats": _EMPTY_CPU, "memory_stats": {},
            "name": record.name, "id": record.id}


class StatsService:
    """top and stats over the container records; ``cgroup_parent`` and
    ``cgroup_version`` are the container service's."""

    def __init__(self, store: ContainerStore, cgroup_parent: str, cgroup_version: int, cgroup_root: str = CGROUP_ROOT,
                 publish: Publish = lambda *event: None):
        """``publish(record, action)`` reports dockerd's "top" event."""
        self.store, self.cgroup_parent, self.cgroup_version = store, cgroup_parent, cgroup_version
        self.cgroup_root, self.publish = cgroup_root, publish
        self.machine_memory = Machine().mem_total()

    def cgroup(self, record: Container) -> CgroupReader:
        """The container's cgroup, where the spec put it (engine.oci.spec: parent/ID)."""
        parent = record.host_config.get("CgroupParent") or self.cgroup_parent
        return CgroupReader(posixpath.normpath(posixpath.join(parent, record.id)), self.cgroup_version,
                            self.cgroup_root)

    # -- top -----------------------------------------------------------------------

    def top(self, ref: str, ps_args: str | None = None) -> dict:
        """``GET /containers/<id>/top``: the host's ``ps`` kept to the container's processes."""
        ps_args = ps_args or "-ef"
        for key, value in _PS_FIELD.findall(ps_args):
            if key != "pid":
                raise InvalidParameter(f'specifying "{key}={value}" is not allowed')
        record = self._running(ref)
        pids = self.cgroup(record).pids()
        args = ps_args.split(" ")
        found = subprocess.run(["ps", *args, "-q" + ",".join(map(str, pids))], capture_output=True)
        if found.returncode != 0:  # some options (f) cannot go with -q: all processes, filtered below
            found = subprocess.run(["ps", *args], capture_output=True)
            if found.returncode != 0:
                first = found.stderr.decode(errors="replace").split("\n", 1)[0]
                raise System(f"ps: {first or f'exit status {found.returncode}'}")
        listed = parse_ps(found.stdout.decode(errors="replace"), set(pids))
        self.publish(record, "top")
        return listed

    def _running(self, ref: str) -> Container:
        record = self.store.get(ref)
        if not record.state.running:
            raise Conflict(f"Container {record.id} is not running")
        if record.state.restarting:
            raise Conflict(f"Container {record.id} is restarting, wait until the container is running")
        return record

    # -- stats ---------------------------------------------------------------------

    def stats(self, ref: str, stream: bool = True, one_shot: bool = False,
              stopped: threading.Event | None = None) -> Iterator[dict]:
        """dockerd's StatsJSON samples: one each second while ``stream``
        (until ``stopped`` is set), else one — with its precpu sample taken a
        second earlier unless ``one_shot``, so a CPU percentage can be computed."""
        record = self.store.get(ref)
        stopped = stopped or threading.Event()
        if not stream:
            if not record.state.running or record.state.restarting:
                yield empty_stats(record)
                return
            if one_shot:
                yield self._sample(record, None)
                return
        previous = self._sample(record, None) if record.state.running else None
        if not stream:
            stopped.wait(STATS_INTERVAL)
            yield self._sample(record, previous)
            return
        while not stopped.is_set():
            if stopped.wait(STATS_INTERVAL):
                return
            if not record.state.running:
                previous = None
                yield empty_stats(record)
                continue
            current = self._sample(record, previous)
            yield current
            previous = current

    def _sample(self, record: Container, previous: dict | None) -> dict:
        sample = {"read": go_time(), "preread": previous["read"] if previous else ZERO_TIME}
        sample.update(self.cgroup(record).sample(self.machine_memory))
        sample["precpu_stats"] = previous["cpu_stats"] if previous else _EMPTY_CPU
        # dockerd's key order: precpu_stats follows cpu_stats
        ordered = {k: sample[k] for k in ("read", "preread", "pids_stats", "blkio_stats", "num_procs",
                                           "storage_stats", "cpu_stats", "precpu_stats", "memory_stats")}
        ordered.update(name=record.name, id=record.id)
        mode = record.host_config.get("NetworkMode") or ""
        if mode != "host" and not mode.startswith("container:"):  # its own namespace: its interfaces (none: none)
            networks = network_stats(read_or_empty(f"/proc/{record.state.pid}/net/dev"))
            if networks:
                ordered["networks"] = networks
        return ordered


def parse_ps(output: str, pids: set[int]) -> dict:
    """dockerd's parsePSOutput: the title line, and the lines of the
    container's pids (with the thread lines "-" after them, for ``ps m``);
    the columns after PID's last title are joined into the command."""
    lines = output.split("\n")
    titles = lines[0].split()
    if "PID" not in titles:
        raise System("Couldn't find PID field in ps output")
    pid_index = titles.index("PID")
    processes, in_container = [], False
    for line in lines[1:]:
        if not line:
            continue
        fields = line.split()
        if fields[pid_index] == "-":
            if in_container:
                processes.append(_joined(fields, len(titles)))
            continue
        try:
            pid = int(fields[pid_index])
        except ValueError:
            raise System(f"Unexpected pid '{fields[pid_index]}': invalid syntax") from None
        in_container = pid in pids
        if in_container:
            processes.append(_joined(fields, len(titles)))
    return {"Processes": processes, "Titles": titles}


def _joined(fields: list[str], columns: int) -> list[str]:
    return fields[:columns - 1] + [" ".join(fields[columns - 1:])]
