"""runc's `events --stats` JSON as containerd's cgroup v1 Metrics message, the
Any that Tasks.Metrics returns and `ctr tasks metrics` decodes."""
from ..api.containerd.cgroups import metrics_v1_pb2 as pb

TYPE_URL = "io.containerd.cgroups.v1.Metrics"  # containerd's type URLs are bare message names

# runc's memory "raw" keys -> MemoryStat fields (the rest are named alike)
_RAW_NAMES = {"pgpgin": "pg_pg_in", "pgpgout": "pg_pg_out", "pgfault": "pg_fault", "pgmajfault": "pg_maj_fault",
              "hierarchical_memsw_limit": "hierarchical_swap_limit"}
_BLKIO = {"ioServiceBytesRecursive": "io_service_bytes_recursive", "ioServicedRecursive": "io_serviced_recursive",
          "ioQueueRecursive": "io_queued_recursive", "ioServiceTimeRecursive": "io_service_time_recursive",
          "ioWaitTimeRecursive": "io_wait_time_recursive", "ioMergedRecursive": "io_merged_recursive",
          "ioTimeRecursive": "io_time_recursive", "sectorsRecursive": "sectors_recursive"}


def _u64(value) -> int:
    """runc reports "unlimited" as -1 or as the kernel's huge page-rounded maximum; both fit uint64."""
    return value % (1 << 64) if isinstance(value, int) else 0


def _entry(msg, data: dict) -> None:
    for key in ("limit", "usage", "max", "failcnt"):
        setattr(msg, key, _u64(data.get(key, 0)))


def from_runc_stats(stats: dict) -> pb.Metrics:
    data = stats.get("data") or {}
    m = pb.Metrics()
    cpu = data.get("cpu") or {}
    usage = cpu.get("usage") or {}
    m.cpu.usage.total, m.cpu.usage.kernel, m.cpu.usage.user = (_u64(usage.get(k, 0)) for k in ("total", "kernel",
                                                                                             "user"))
    m.cpu.usage.per_cpu.extend(_u64(v) for v in usage.get("percpu") or [])
    throttling = cpu.get("throttling") or {}
    for key in ("periods", "throttled_periods", "throttled_time"):
        setattr(m.cpu.throttling, key, _u64(throttling.get(key, 0)))
    memory = data.get("memory") or {}
    fields = pb.MemoryStat.DESCRIPTOR.fields_by_name
    for key, value in (memory.get("raw") or {}).items():
        name = _RAW_NAMES.get(key, key)
        if name in fields and fields[name].type == fields[name].TYPE_UINT64:
            setattr(m.memory, name, _u64(value))
    for key, name in (("usage", "usage"), ("swap", "swap"), ("kernel", "kernel"), ("kernelTCP", "kernel_tcp")):
        if key in memory:
            _entry(getattr(m.memory, name), memory[key])
    pids = data.get("pids") or {}
    m.pids.current, m.pids.limit = _u64(pids.get("current", 0)), _u64(pids.get("limit", 0))
    for key, name in _BLKIO.items():
        for e in (data.get("blkio") or {}).get(key) or []:
            getattr(m.blkio, name).add(op=e.get("op", ""), major=_u64(e.get("major", 0)),
                                       minor=_u64(e.get("minor", 0)), value=_u64(e.get("value", 0)))
    for pagesize, h in sorted((data.get("hugetlb") or {}).items()):
        m.hugetlb.add(pagesize=pagesize, usage=_u64(h.get("usage", 0)), max=_u64(h.get("max", 0)),
                      failcnt=_u64(h.get("failcnt", 0)))
    return m
