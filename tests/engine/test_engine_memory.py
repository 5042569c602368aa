"""The engine's memory: no grpcio in it (its C core is ~20 MiB resident, as
much as the rest of the engine); the engine talks to containerd through
containerd_py's client library, whose gRPC channel is its own, on h2."""
import hashlib
import subprocess
import sys
import uuid

import pytest

from containerd_py import digest as digests
from containerd_py.identifiers import random_uuid


def test_importing_the_engine_loads_no_grpc_module():
    code = ("import sys, engine.daemon, engine.assembly\n"
            "print('\\n'.join(m for m in sys.modules if m.split('.')[0].startswith('grpc') or m.endswith('_grpc')))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split() == []


def test_the_engine_loads_tls_and_urllib_only_for_a_registry():
    """ssl, http.client and urllib.request are several MiB the engine needs only to pull, push or log in."""
    code = ("import sys, engine.daemon, engine.assembly\n"
            "print(' '.join(m for m in ('ssl', 'http.client', 'urllib.request') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split() == []


def test_the_daemons_map_openssls_libcrypto_only_to_hash_a_layer():
    """hashlib (and hmac, which secrets imports) load libcrypto: ~4 MiB resident
    in an engine that otherwise hashes only manifests, configs and chain IDs,
    and in a containerd-py that has not yet been given a blob."""
    for imports in ("engine.daemon, engine.assembly", "containerd_py.daemon, containerd_py.assembly"):
        assert _loaded_after(imports, ("_hashlib", "hashlib", "hmac", "secrets")) == []


def _loaded_after(imports: str, modules: tuple[str, ...]) -> list[str]:
    code = f"import sys, {imports}\nprint(' '.join(m for m in {modules!r} if m in sys.modules))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()


def test_the_daemons_load_zstandard_only_for_a_zstd_layer():
    """~1 MiB each; ctypes.util (which runs ldconfig) and tomllib (hosts.toml) are not needed either."""
    assert _loaded_after("engine.daemon, engine.assembly", ("zstandard", "tomllib", "ctypes.util")) == []
    assert _loaded_after("containerd_py.daemon, containerd_py.assembly", ("zstandard", "ctypes.util")) == []


def test_the_daemons_make_their_uuid_without_the_uuid_and_platform_modules():
    assert _loaded_after("engine.daemon, engine.assembly", ("uuid", "platform")) == []
    assert _loaded_after("containerd_py.daemon, containerd_py.assembly", ("uuid", "platform")) == []


def test_a_random_uuid_is_a_version_4_uuid():
    made = random_uuid()
    assert str(uuid.UUID(made)) == made and uuid.UUID(made).version == 4
    assert uuid.UUID(made).variant == uuid.RFC_4122 and random_uuid() != made


def test_the_engine_dates_its_replies_without_the_email_package():
    assert _loaded_after("engine.daemon, engine.assembly", ("email",)) == []


def test_a_small_digest_is_hashlibs_sha256():
    data = b'{"architecture":"amd64"}'
    assert digests.of_small(data) == "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.mark.root
def test_the_running_engine_has_no_grpc_library_mapped(engine_py):
    assert engine_py.docker("version").returncode == 0  # a call through to containerd-py made
    with open(f"/proc/{engine_py.proc.pid}/maps") as f:
        assert [line for line in f if "grpc" in line] == []


_BUFFER_CHURN = """
import sys
from containerd_py.content.heap import limit_arenas
limit_arenas(2, fixed_mmap_threshold=sys.argv[1] == "fixed")
def anon_kib():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("RssAnon:"))
before = anon_kib()
for _ in range(4):
    buffer = b"x" * (8 << 20)  # written: its pages are resident while it lives
    del buffer
print(anon_kib() - before)
"""


def _retained_kib(threshold: str) -> int:
    return int(subprocess.run([sys.executable, "-c", _BUFFER_CHURN, threshold], capture_output=True, text=True,
                              check=True).stdout)


def test_big_freed_buffers_go_back_to_the_kernel_with_the_engines_heap_settings():
    """As the engine sets glibc's heaps (engine.daemon.main): the 8 MiB buffers
    of a `docker load` do not stay resident once freed, as they do by default."""
    assert _retained_kib("dynamic") >= 4 << 10  # glibc's default keeps one: what the setting is for
    assert _retained_kib("fixed") < 1 << 10
