"""A container's seccomp filter as BPF, for its exec'd processes: generated
by libseccomp once (runpy_oci.seccomp), kept in the container's state
directory, and loaded straight into the kernel, as seccomp_load loads what
it generates. The generation is most of the filter's cost (~11 ms of a
~38 ms exec with docker's default profile); a cached program neither
loads libseccomp nor generates.

Keyed by config.json's bytes: an exec after the bundle's config.json
changed gets the filter of the new one, as it would from libseccomp. Never
for a profile with SCMP_ACT_NOTIFY rules, whose listener fd comes from
libseccomp's load.
"""
import os

from runpy_oci import kernel as k
from runpy_oci.errors import RuntimeFailure

CACHE_FILE = "seccomp.bpf"  # in the container's state directory
# seccomp(2)'s flags for linux.seccomp.flags, as seccomp_load passes them.
_KERNEL_FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": 1, "SECCOMP_FILTER_FLAG_LOG": 2, "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4}


class Program:
    """A filter's BPF and seccomp(2) flags, loaded as seccomp_load loads what it generates."""

    def __init__(self, code, sc):
        self.code = code
        self.flags = 0
        for flag in sc.flags:
            self.flags |= _KERNEL_FLAGS[flag]

    def load(self):
        try:
            k.get().seccomp_set_filter(self.code, self.flags)
        except OSError as e:
            raise RuntimeFailure(f"linux.seccomp: cannot load the filter: {e.strerror}") from None

    def load_for(self, agent_fd, channel):
        """As runpy_oci.seccomp.Filter's; ``agent_fd`` is None (no agent without SCMP_ACT_NOTIFY)."""
        self.load()


def cached_program(sc, state_dir, config_path):
    """The filter of ``sc`` as a Program: from CACHE_FILE in ``state_dir`` if
    it was generated from the same config.json, else generated and kept there
    (best effort: a cache that cannot be written costs the next exec the
    generation, nothing else). The file holds config.json's bytes (its
    length first, 8 bytes) and the program (no hash: hashlib alone takes
    ~3 ms to import)."""
    path = os.path.join(state_dir, CACHE_FILE)
    try:
        with open(config_path, "rb") as f:
            config = f.read()
        key = len(config).to_bytes(8, "little") + config
    except OSError:
        key = None
    try:
        with open(path, "rb") as f:
            cached = f.read()
    except OSError:
        cached = b""
    if key is not None and cached.startswith(key):
        return Program(cached[len(key):], sc)
    from runpy_oci import seccomp

    code = seccomp.Filter(sc).export()
    if key is not None:
        _keep(path, key + code)
    return Program(code, sc)


def _keep(path, data):
    """Written whole (temp, rename), readable by root alone: config.json's environment may hold secrets."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600), "wb") as f:
            f.write(data)
        os.rename(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
