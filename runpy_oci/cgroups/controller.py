"""What every controller module implements, and the directory it works on.

A controller turns its part of ``linux.resources`` into writes to cgroup
files, once for v1 (its own hierarchy) and once for v2 (the unified one),
and reads its statistics back for ``events --stats``. Which directory and
which version apply is decided by ``runpy_oci.cgroups.resources``; the
controller only knows files. Every write names the JSON field it comes from,
so a value the host refuses is reported against the config.
"""
import os

from runpy_oci.errors import ConfigError, RuntimeFailure


class WriteError(RuntimeFailure):
    """The kernel refused a value; ``errno`` says why."""

    def __init__(self, message, errno):
        super().__init__(message)
        self.errno = errno


class Dir:
    """A cgroup directory of the container in one hierarchy."""

    __slots__ = ("path", "version")

    def __init__(self, path, version):
        self.path = path
        self.version = version

    def write(self, name, value, field):
        """One write(2), as cgroup files need; a refusal names ``field``."""
        path = os.path.join(self.path, name)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ConfigError(f"{field}: the host's cgroup has no {name}, so this limit cannot be applied") from None
        except OSError as e:
            raise RuntimeFailure(f"{field}: cannot open {path}: {e.strerror}") from None
        try:
            os.write(fd, str(value).encode())
        except OSError as e:
            raise WriteError(f"{field}: cannot write {value!r} to {path}: {e.strerror}", e.errno) from None
        finally:
            os.close(fd)

    def read(self, name):
        """The file's text without the trailing newline, or None if it is absent."""
        try:
            with open(os.path.join(self.path, name)) as f:
                return f.read().rstrip("\n")
        except (FileNotFoundError, OSError):
            return None

    def read_int(self, name, default=0):
        text = self.read(name)
        if text is None or not text.strip():
            return default
        text = text.strip()
        return -1 if text == "max" else int(text)

    def read_keyed(self, name):
        """A "key value" per line file (memory.stat, cpu.stat) as a dict of ints."""
        out = {}
        for line in (self.read(name) or "").splitlines():
            key, _, value = line.partition(" ")
            if value.strip().lstrip("-").isdigit():
                out[key] = int(value)
        return out

    def has(self, name):
        return os.path.exists(os.path.join(self.path, name))


def unsupported(field, why):
    """A requested limit this host's cgroups cannot express: an error, never a silent drop."""
    raise ConfigError(f"{field}: cannot be applied: {why}")


class Controller:
    """Interface of one controller module (memory, cpu, pids, ...)."""

    #: hierarchy name on cgroup v1 (None: the controller does not exist on v1)
    v1 = None
    #: name in cgroup.controllers on v2; "" for what every v2 cgroup has (core
    #: files); None: the controller does not exist on v2
    v2 = None

    def requested(self, res):
        """This controller's part of a Resources object, or None/empty if not asked for."""
        raise NotImplementedError

    def set_v1(self, d, part):
        raise NotImplementedError

    def set_v2(self, d, part):
        raise NotImplementedError

    def stats(self, d, out):
        """Add this controller's statistics to ``out`` (runc's stats JSON "data")."""
