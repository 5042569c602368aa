"""The engine's memory: no grpcio in it (its C core is ~20 MiB resident, as
much as the rest of the engine); the engine talks to containerd through
containerd_py's client library, whose gRPC channel is its own, on h2."""
import subprocess
import sys

import pytest


def test_importing_the_engine_loads_no_grpc_module():
    code = ("import sys, engine.daemon, engine.assembly\n"
            "print('\\n'.join(m for m in sys.modules if m.split('.')[0].startswith('grpc') or m.endswith('_grpc')))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split() == []


def test_the_engine_loads_tls_and_urllib_only_for_a_registry():
    """ssl, http.client and urllib.request are several MiB the engine needs only to pull, push or log in."""
    code = ("import sys, engine.daemon, engine.assembly\n"
            "print(' '.join(m for m in ('ssl', 'http.client', 'urllib.request') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split() == []


@pytest.mark.root
def test_the_running_engine_has_no_grpc_library_mapped(engine_py):
    assert engine_py.docker("version").returncode == 0  # a call through to containerd-py made
    with open(f"/proc/{engine_py.proc.pid}/maps") as f:
        assert [line for line in f if "grpc" in line] == []
