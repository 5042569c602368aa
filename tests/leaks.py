"""What a test's daemons may leave behind under their directory: mounts and
processes (shims, say), found and ended by the fixtures' finalizers."""
import os
import signal


def mounts_under(path: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p == path or p.startswith(path.rstrip("/") + "/")]


def kill_processes_mentioning(path: str) -> list[str]:
    """Processes whose command line names a path under `path`: killed, and listed."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if any(path.encode() in a for a in argv) and int(entry) != os.getpid():
            found.append(f"pid {entry}: {b' '.join(argv).decode(errors='replace')[:200]}")
            try:
                os.kill(int(entry), signal.SIGKILL)
            except ProcessLookupError:
                pass
    return found
