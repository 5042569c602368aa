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
