"""Small files: read as text where "absent" and "empty" mean the same (the
host's /etc files, /proc and cgroup files that come and go with
processes), and written so that a crash leaves the old content or the new."""
import os
from collections.abc import Callable
from typing import TextIO

TEMP_PREFIX = ".tmp-"  # a writer's temp file, beside its target (a reader of the directory sweeps them)


def read_or_empty(path: str) -> str:
    """The file's text, or "" when it cannot be read (gone, or never there)."""
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def write_atomically(path: str, write: Callable[[TextIO], object]) -> None:
    """``path`` holds the old content or all of the new (``write(file)``'s),
    whatever happens: a temp file beside it, fsynced, renamed over it, the
    directory fsynced."""
    directory, base = os.path.split(path)
    temp = os.path.join(directory, f"{TEMP_PREFIX}{base}-{os.urandom(4).hex()}")  # one per writer
    try:
        with open(temp, "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.rename(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
    fsync_dir(directory)


def fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
