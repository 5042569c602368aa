"""OOM kills of a task, counted by the kernel in its memory cgroup: read when the
task's init exits, to tell whether /tasks/oom comes before /tasks/exit."""
import os


def memory_cgroup(pid: int) -> str:
    """The directory of pid's memory cgroup: the v1 memory hierarchy's, else the unified one's."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            entries = [line.rstrip("\n").split(":", 2) for line in f]
    except OSError:
        return ""
    for _, controllers, path in entries:
        if "memory" in controllers.split(","):
            return "/sys/fs/cgroup/memory" + path
    for hierarchy, _, path in entries:
        if hierarchy == "0" and os.path.exists("/sys/fs/cgroup/cgroup.controllers"):  # a pure v2 host
            return "/sys/fs/cgroup" + path
    return ""


def oom_kills(cgroup_dir: str) -> int:
    """The kernel's count of OOM kills in the cgroup (v1 memory.oom_control, v2 memory.events)."""
    for name in ("memory.oom_control", "memory.events"):
        try:
            with open(os.path.join(cgroup_dir, name)) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return 0
