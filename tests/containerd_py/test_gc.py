"""Garbage collection with containerd's labels and leases: what nothing references
goes, what anything references stays."""
import datetime
import hashlib
import os
import time

import grpc
import pytest

from conftest import START_DEADLINE, Client, our_daemon_argv, running
from containerd_py.api.containerd.services import (content_pb2, images_pb2, leases_pb2, snapshots_pb2)
from containerd_py.api.containerd.types import descriptor_pb2

pytestmark = pytest.mark.root
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def put(client, ns, data: bytes, labels=None, lease=None) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    md = client.md(ns) + ([("containerd-lease", lease)] if lease else [])
    list(client.content.Write(iter([content_pb2.WriteContentRequest(
        action=content_pb2.COMMIT, ref=digest, data=data, total=len(data), expected=digest, labels=labels)]),
        metadata=md))
    return digest


def blobs(client, ns) -> set[str]:
    return {i.digest for r in client.content.List(content_pb2.ListContentRequest(), metadata=client.md(ns))
            for i in r.info}


def snapshot_names(client, ns) -> set[str]:
    return {i.name for r in client.snapshots.List(snapshots_pb2.ListSnapshotsRequest(snapshotter="overlayfs"),
                                                  metadata=client.md(ns)) for i in r.info}


def committed(client, ns, name, parent="", lease=None):
    md = client.md(ns) + ([("containerd-lease", lease)] if lease else [])
    client.snapshots.Prepare(snapshots_pb2.PrepareSnapshotRequest(snapshotter="overlayfs", key=name + "-a",
                                                                  parent=parent), metadata=md)
    client.snapshots.Commit(snapshots_pb2.CommitSnapshotRequest(snapshotter="overlayfs", name=name, key=name + "-a"),
                            metadata=md)


def collect(client, ns):
    """A synchronous collection: deleting a lease with sync waits for it."""
    client.leases.Create(leases_pb2.CreateRequest(id="trigger"), metadata=client.md(ns))
    client.leases.Delete(leases_pb2.DeleteRequest(id="trigger", sync=True), metadata=client.md(ns))


def image(client, ns, name, digest, size):
    target = descriptor_pb2.Descriptor(media_type=OCI_MANIFEST, digest=digest, size=size)
    client.images.Create(images_pb2.CreateImageRequest(image=images_pb2.Image(name=name, target=target)),
                         metadata=client.md(ns))


def test_references_roots_and_leases(client, ns):
    layer = put(client, ns, b"layer")
    committed(client, ns, "base")
    committed(client, ns, "top", parent="base")
    config = put(client, ns, b"config", {"containerd.io/gc.ref.snapshot.overlayfs": "top"})
    manifest_data = b"manifest"
    manifest = put(client, ns, manifest_data, {"containerd.io/gc.ref.content.config": config,
                                               "containerd.io/gc.ref.content.l.0": layer})
    image(client, ns, "img", manifest, len(manifest_data))
    rooted = put(client, ns, b"rooted", {"containerd.io/gc.root": "yes"})
    client.leases.Create(leases_pb2.CreateRequest(id="keep"), metadata=client.md(ns))
    leased = put(client, ns, b"leased", lease="keep")
    committed(client, ns, "leased-snap", lease="keep")
    loose = put(client, ns, b"loose")
    committed(client, ns, "loose-base")
    committed(client, ns, "loose-top", parent="loose-base")

    collect(client, ns)
    assert blobs(client, ns) == {layer, config, manifest, rooted, leased}
    assert snapshot_names(client, ns) == {"base", "top", "leased-snap"}
    assert loose not in blobs(client, ns)

    client.images.Delete(images_pb2.DeleteImageRequest(name="img", sync=True), metadata=client.md(ns))
    assert blobs(client, ns) == {rooted, leased}
    assert snapshot_names(client, ns) == {"leased-snap"}
    client.leases.Delete(leases_pb2.DeleteRequest(id="keep", sync=True), metadata=client.md(ns))
    assert blobs(client, ns) == {rooted} and snapshot_names(client, ns) == set()


def test_lease_resources_are_recorded_and_unknown_leases_refused(client, ns):
    client.leases.Create(leases_pb2.CreateRequest(id="l1"), metadata=client.md(ns))
    digest = put(client, ns, b"in l1", lease="l1")
    resources = client.leases.ListResources(leases_pb2.ListResourcesRequest(id="l1"), metadata=client.md(ns))
    assert {(r.type, r.id) for r in resources.resources} == {("content", digest), ("ingests", digest)}
    with pytest.raises(grpc.RpcError) as e:
        put(client, ns, b"no such lease", lease="missing")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND and "lease" in e.value.details()
    assert "sha256:" + hashlib.sha256(b"no such lease").hexdigest() not in blobs(client, ns)
    client.leases.Delete(leases_pb2.DeleteRequest(id="l1", sync=True), metadata=client.md(ns))
    assert blobs(client, ns) == set()


def test_expired_leases_end_at_collection(client, ns):
    past = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    client.leases.Create(leases_pb2.CreateRequest(id="old", labels={"containerd.io/gc.expire": past}),
                         metadata=client.md(ns))
    put(client, ns, b"expiring", lease="old")
    collect(client, ns)
    assert blobs(client, ns) == set()
    assert [l.id for l in client.leases.List(leases_pb2.ListRequest(), metadata=client.md(ns)).leases] == []


def test_a_deletion_schedules_a_collection():
    """With the default scheduler, deleting an image soon collects its content unasked."""
    with running(our_daemon_argv, "cpy-gc") as proc:
        client = Client(proc.address)
        try:
            data = os.urandom(100)
            digest = put(client, "gc", data, {"containerd.io/gc.root": "1"})
            image(client, "gc", "img", digest, len(data))
            client.content.Update(content_pb2.UpdateRequest(info=content_pb2.Info(digest=digest)),
                                  metadata=client.md("gc"))  # drop the root label; the image holds it now
            client.images.Delete(images_pb2.DeleteImageRequest(name="img"), metadata=client.md("gc"))
            deadline = time.monotonic() + START_DEADLINE  # only guards against a hang
            while digest in blobs(client, "gc") and time.monotonic() < deadline:
                time.sleep(0.05)
            assert digest not in blobs(client, "gc"), proc.log()
        finally:
            client.close()


@pytest.mark.parametrize("level, logged", [("debug", True), ("info", False)])
def test_collections_are_logged_at_debug(level, logged):
    """As containerd does: at info, a daemon that collects often would log little else."""
    with running(lambda w: our_daemon_argv(w, "-l", level), "cpy-gc") as proc:
        client = Client(proc.address)
        try:
            digest = put(client, "gc", os.urandom(100))
            collect(client, "gc")
            assert digest not in blobs(client, "gc")
        finally:
            client.close()
        proc.stop()
        levels = {line.split()[1] for line in proc.log().splitlines() if "garbage collected: 1 blobs" in line}
        assert levels == ({"level=debug"} if logged else set()), proc.log()
