"""containerd_py's client library: a proxy per service over gRPC, usable by the
command line and the engine alike, against containerd-py and real containerd."""
import hashlib
import json
import subprocess
import sys
import threading

import pytest

from containerd_py import errors
from containerd_py.client import Client, ContainerOptions
from containerd_py.client.connection import Connection
from containerd_py.snapshots.snapshotter import Kind
from containerd_py.transfer import archive
from containerd_py.transfer.manifests import DEFAULT_PLATFORM
from test_tasks_ctr import IMAGE

SERVER_SIDE = ("containerd_py.services", "containerd_py.assembly", "containerd_py.daemon", "containerd_py.rpc.server",
               "containerd_py.rpc.connection", "containerd_py.rpc.call", "containerd_py.rpc.listener",
               "containerd_py.metadata.sqlite", "containerd_py.metadata.db", "containerd_py.events.exchange",
               "containerd_py.tasks", "containerd_py.gc", "containerd_py.content.local", "containerd_py.diff.walking",
               "containerd_py.snapshots.leased", "containerd_py.snapshots.overlay", "containerd_py.snapshots.native",
               "containerd_py.transfer.local")


def test_the_client_imports_nothing_of_the_server():
    code = ("import sys, containerd_py.client, containerd_py.client.cli, containerd_py.client.cio\n"
            "print('\\n'.join(m for m in sys.modules if m.startswith('containerd_py')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert [m for m in loaded if m.startswith(SERVER_SIDE)] == []


def test_the_client_loads_no_grpcio():
    """grpcio's C core is ~20 MiB of resident memory: the client speaks HTTP/2 through h2 instead."""
    code = ("import sys, containerd_py.client, containerd_py.client.cli, containerd_py.client.cio\n"
            "print('\\n'.join(m for m in sys.modules if m.split('.')[0].startswith('grpc') or m.endswith('_grpc')))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split() == []


@pytest.fixture(params=["containerd-py", "containerd"])
def client(request, ns):
    """The library against our daemon and against real containerd, in a namespace of the test's own."""
    daemon = request.getfixturevalue("daemon" if request.param == "containerd-py" else "containerd")
    c = Client(daemon.address, ns)
    yield c
    c.close()


@pytest.mark.root
def test_images_and_containers_through_the_library(client, ns, busybox_tar):
    with open(busybox_tar, "rb") as f:
        (image,) = archive.import_archive(client.backend, ns, f, DEFAULT_PLATFORM, "overlayfs")
    assert [i.name for i in client.images.list([])] == [IMAGE] == [image.name]
    assert client.images.get(IMAGE).target == image.target

    created = client.new_container("lib1", IMAGE, ContainerOptions(args=["true"], env=["A=b"]))
    assert (created.id, created.image, created.runtime, created.snapshot_key) == ("lib1", IMAGE,
                                                                                 "io.containerd.runc.v2", "lib1")
    (listed,) = client.containers.list([])
    assert listed.id == "lib1" and listed.created_at > 0
    process = json.loads(listed.spec.value)["process"]
    assert process["args"] == ["true"] and "A=b" in process["env"]
    assert [s.name for s in client.snapshots("overlayfs").walk() if s.kind == Kind.ACTIVE] == ["lib1"]
    assert client.tasks.list() == []
    with pytest.raises(errors.NotFound):
        client.tasks.get("lib1")

    client.remove_container("lib1")
    assert client.containers.list([]) == []
    assert [s.name for s in client.snapshots("overlayfs").walk() if s.kind == Kind.ACTIVE] == []
    assert ns in [n.name for n in client.namespaces.list()]
    assert client.version.version().version


@pytest.mark.root
def test_errors_come_back_as_domain_errors(client):
    with pytest.raises(errors.NotFound, match='image "nope"'):
        client.images.get("nope")
    with pytest.raises(errors.NotFound):
        client.containers.get("nope")


def _commands(group, path=()):
    for name, command in group.commands.items():
        yield path + (name,), command
        if hasattr(command, "commands"):
            yield from _commands(command, path + (name,))


def test_every_ctl_command_and_option_says_what_it_does():
    from containerd_py.client.cli import cli

    missing = [" ".join(path) for path, command in _commands(cli) if not (command.help or "").strip()]
    missing += [f"{' '.join(path)} {param.opts[0]}" for path, command in [((), cli), *_commands(cli)]
                for param in command.params if param.param_type_name == "option" and not param.help]
    assert missing == []


def test_ctl_version_has_ctrs_shape():
    """ctr --version prints `ctr github.com/containerd/containerd 1.6.20`; ours `containerd-py-ctl <version>`."""
    from containerd_py import __version__

    for flag in ("--version", "-v"):
        shown = subprocess.run([sys.executable, "-m", "containerd_py.client", flag], capture_output=True, text=True)
        assert (shown.returncode, shown.stdout) == (0, f"containerd-py-ctl {__version__}\n")


def test_a_lease_goes_only_with_the_calls_of_its_block():
    """A client shared by threads (the engine's): one thread's pull lease is not another's."""
    conn, other = Connection("/nonexistent.sock"), Connection("/nonexistent.sock")
    seen = {}
    try:
        with conn.leased("l1"):
            outside = threading.Thread(target=lambda: seen.update(thread=conn.md("ns")))
            outside.start()
            outside.join()
            seen.update(block=conn.md("ns"), other=other.md("ns"))
        seen.update(after=conn.md("ns"))
    finally:
        conn.close()
        other.close()
    plain = [("containerd-namespace", "ns")]
    assert seen == {"block": plain + [("containerd-lease", "l1")], "thread": plain, "other": plain, "after": plain}


@pytest.mark.root
def test_a_big_blob_through_the_content_streams_and_its_delete_as_an_event(client, ns):
    """24 MiB each way, more than a window or a message holds (flow control,
    on containerd's HTTP/2 as on ours); an event stream ended by close()."""
    subscription = client.events.subscribe([f"namespace=={json.dumps(ns)}"])
    guard = threading.Timer(60, subscription.close)  # a hang ends the stream: no event, the test fails
    guard.start()
    try:
        data = b"".join(bytes([i]) * (1 << 20) for i in range(24))
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        writer = client.content.writer("big-blob", len(data), digest)
        try:
            for offset in range(0, len(data), 1 << 20):
                writer.write(data[offset:offset + (1 << 20)])
            assert writer.commit(len(data), digest, {}) == digest
        finally:
            writer.close()
        with client.content.open(digest) as f:
            assert f.read() == data
        client.content.delete(digest)
        envelope = next(iter(subscription), None)
        assert envelope is not None and (envelope.namespace, envelope.topic) == (ns, "/content/delete")
    finally:
        guard.cancel()
        subscription.close()
    assert list(subscription) == []  # closed: it ends, with no error
