"""containerd_py's client library: a proxy per service over gRPC, usable by the
command line and the engine alike, against containerd-py and real containerd."""
import subprocess
import sys

SERVER_SIDE = ("containerd_py.services", "containerd_py.server", "containerd_py.daemon", "containerd_py.rpc",
               "containerd_py.metadata.sqlite", "containerd_py.events.exchange", "containerd_py.tasks")


def test_the_client_imports_nothing_of_the_server():
    code = ("import sys, containerd_py.client, containerd_py.client.cli\n"
            "print('\\n'.join(m for m in sys.modules if m.startswith('containerd_py')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert [m for m in loaded if m.startswith(SERVER_SIDE)] == []
