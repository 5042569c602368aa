"""Removing a cgroup directory with whatever the run left below it."""
import os


def remove(path: str) -> list[str]:
    """rmdir `path` and its child cgroups, children first; what could not be
    removed (still in use), with why."""
    left = []
    for sub, _, _ in sorted(os.walk(path), key=lambda w: -len(w[0])):
        try:
            os.rmdir(sub)
        except OSError as e:
            left.append(f"{sub}: {e.strerror}")
    return left


def remove_in_every_hierarchy(relative: str) -> list[str]:
    """`remove` of /<relative> under each mounted hierarchy (cgroup v1's and the cgroup2 one beside them)."""
    left = []
    for hierarchy in (e.path for e in os.scandir("/sys/fs/cgroup") if e.is_dir()):
        if os.path.isdir(hierarchy + relative):
            left += remove(hierarchy + relative)
    return left
