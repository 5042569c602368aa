"""Version, Introspection, Namespaces, Images, Leases, Snapshots and Diff over gRPC."""

import grpc
import pytest
from google.protobuf import empty_pb2, field_mask_pb2

from conftest import mounted
from containerd_py.api.containerd.services import (content_pb2, diff_pb2, images_pb2, introspection_pb2,
                                                   leases_pb2, namespaces_pb2 as ns_pb, snapshots_pb2)
from containerd_py.api.containerd.types import descriptor_pb2
from containerd_py.types import Mount
from imagebuild import compress, digest, dir_, file_, layer_tar

pytestmark = pytest.mark.root

DIGEST = "sha256:" + "ab" * 32


def code_of(call, *args, **kwargs):
    with pytest.raises(grpc.RpcError) as e:
        result = call(*args, **kwargs)
        if hasattr(result, "__next__"):
            list(result)
    return e.value.code(), e.value.details()


def mask(*paths):
    return field_mask_pb2.FieldMask(paths=list(paths))


def test_version_and_server(client):
    v = client.version.Version(empty_pb2.Empty())
    assert v.version.startswith("1.6.") and v.revision
    first = client.introspection.Server(empty_pb2.Empty())
    assert len(first.uuid) == 36 and first.pid > 0
    assert client.introspection.Server(empty_pb2.Empty()).uuid == first.uuid


def test_plugins_list_and_filter(client):
    plugins = client.introspection.Plugins(introspection_pb2.PluginsRequest()).plugins
    ids = {(p.type, p.id) for p in plugins}
    assert {("io.containerd.snapshotter.v1", "overlayfs"), ("io.containerd.snapshotter.v1", "native"),
            ("io.containerd.content.v1", "content"), ("io.containerd.grpc.v1", "snapshots")} <= ids
    assert all(not p.HasField("init_err") for p in plugins)
    only = client.introspection.Plugins(introspection_pb2.PluginsRequest(
        filters=["type==io.containerd.snapshotter.v1"])).plugins
    assert sorted(p.id for p in only) == ["native", "overlayfs"]
    assert all(p.platforms and p.exports["root"] for p in only)


def test_namespaces_lifecycle(client, ns):
    created = client.namespaces.Create(ns_pb.CreateNamespaceRequest(
        namespace=ns_pb.Namespace(name=ns, labels={"a": "1", "b": "2"}))).namespace
    assert dict(created.labels) == {"a": "1", "b": "2"}
    code, _ = code_of(client.namespaces.Create, ns_pb.CreateNamespaceRequest(namespace=ns_pb.Namespace(name=ns)))
    assert code == grpc.StatusCode.ALREADY_EXISTS
    updated = client.namespaces.Update(ns_pb.UpdateNamespaceRequest(
        namespace=ns_pb.Namespace(name=ns, labels={"a": "9"}), update_mask=mask("labels.a", "labels.b"))).namespace
    assert dict(updated.labels) == {"a": "9"}
    got = client.namespaces.Get(ns_pb.GetNamespaceRequest(name=ns)).namespace
    assert dict(got.labels) == {"a": "9"}
    assert ns in [n.name for n in client.namespaces.List(ns_pb.ListNamespacesRequest()).namespaces]
    client.namespaces.Delete(ns_pb.DeleteNamespaceRequest(name=ns))
    code, details = code_of(client.namespaces.Get, ns_pb.GetNamespaceRequest(name=ns))
    assert code == grpc.StatusCode.NOT_FOUND and details == f'namespace "{ns}": not found'


def test_namespace_names_are_identifiers(client):
    code, details = code_of(client.namespaces.Create, ns_pb.CreateNamespaceRequest(
        namespace=ns_pb.Namespace(name="bad/name")))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "must match" in details
    code, _ = code_of(client.images.List, images_pb2.ListImagesRequest(), metadata=[("containerd-namespace", "../x")])
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def image(name, labels=None, media_type="application/vnd.oci.image.manifest.v1+json"):
    return images_pb2.Image(name=name, labels=labels or {}, target=descriptor_pb2.Descriptor(
        media_type=media_type, digest=DIGEST, size=123))


def test_images_lifecycle(client, ns):
    md = client.md(ns)
    created = client.images.Create(images_pb2.CreateImageRequest(image=image("x:1", {"a": "b"})), metadata=md).image
    assert created.created_at.seconds > 0 and created.target.digest == DIGEST
    code, details = code_of(client.images.Create, images_pb2.CreateImageRequest(image=image("x:1")), metadata=md)
    assert code == grpc.StatusCode.ALREADY_EXISTS and details == 'image "x:1": already exists'
    new_target = image("x:1", media_type="application/vnd.oci.image.index.v1+json")
    updated = client.images.Update(images_pb2.UpdateImageRequest(image=new_target, update_mask=mask("target")),
                                   metadata=md).image
    assert updated.target.media_type.endswith("index.v1+json") and dict(updated.labels) == {"a": "b"}
    client.images.Create(images_pb2.CreateImageRequest(image=image("y:1", {"role": "base"})), metadata=md)
    names = [i.name for i in client.images.List(images_pb2.ListImagesRequest(), metadata=md).images]
    assert names == ["x:1", "y:1"]
    only = client.images.List(images_pb2.ListImagesRequest(filters=["labels.role==base", "name==x:1"]),
                              metadata=md).images
    assert [i.name for i in only] == ["x:1", "y:1"]
    assert client.images.List(images_pb2.ListImagesRequest(), metadata=client.md(ns + "-other")).images == []
    client.images.Delete(images_pb2.DeleteImageRequest(name="x:1"), metadata=md)
    code, _ = code_of(client.images.Get, images_pb2.GetImageRequest(name="x:1"), metadata=md)
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = code_of(client.images.Update, images_pb2.UpdateImageRequest(image=image("x:1")), metadata=md)
    assert code == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("bad, message", [
    (images_pb2.Image(name="", target=descriptor_pb2.Descriptor(media_type="m", digest=DIGEST, size=1)), "Name"),
    (images_pb2.Image(name="n", target=descriptor_pb2.Descriptor(media_type="m", digest="sha256:1", size=1)),
     "Target.Digest"),
    (images_pb2.Image(name="n", target=descriptor_pb2.Descriptor(media_type="m", digest=DIGEST, size=0)),
     "Target.Size"),
    (images_pb2.Image(name="n", target=descriptor_pb2.Descriptor(digest=DIGEST, size=1)), "Target.MediaType"),
])
def test_invalid_images_are_refused(client, ns, bad, message):
    code, details = code_of(client.images.Create, images_pb2.CreateImageRequest(image=bad), metadata=client.md(ns))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and message in details


def test_namespace_with_objects_cannot_be_deleted(client, ns):
    client.images.Create(images_pb2.CreateImageRequest(image=image("held")), metadata=client.md(ns))
    code, details = code_of(client.namespaces.Delete, ns_pb.DeleteNamespaceRequest(name=ns))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "must be empty" in details and "images" in details
    client.images.Delete(images_pb2.DeleteImageRequest(name="held"), metadata=client.md(ns))
    client.snapshots.Prepare(snapshots_pb2.PrepareSnapshotRequest(snapshotter="native", key="k"),
                             metadata=client.md(ns))
    code, details = code_of(client.namespaces.Delete, ns_pb.DeleteNamespaceRequest(name=ns))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "snapshots" in details
    client.snapshots.Remove(snapshots_pb2.RemoveSnapshotRequest(snapshotter="native", key="k"),
                            metadata=client.md(ns))
    client.namespaces.Delete(ns_pb.DeleteNamespaceRequest(name=ns))


def test_leases(client, ns):
    md = client.md(ns)
    lease = client.leases.Create(leases_pb2.CreateRequest(id="12345-ab_c-", labels={"containerd.io/gc.expire": "x"}),
                                 metadata=md).lease
    assert lease.id == "12345-ab_c-" and lease.created_at.seconds > 0
    code, _ = code_of(client.leases.Create, leases_pb2.CreateRequest(id="12345-ab_c-"), metadata=md)
    assert code == grpc.StatusCode.ALREADY_EXISTS
    res = leases_pb2.Resource(id=DIGEST, type="content")
    client.leases.AddResource(leases_pb2.AddResourceRequest(id=lease.id, resource=res), metadata=md)
    client.leases.AddResource(leases_pb2.AddResourceRequest(
        id=lease.id, resource=leases_pb2.Resource(id="k", type="snapshots/overlayfs")), metadata=md)
    listed = client.leases.ListResources(leases_pb2.ListResourcesRequest(id=lease.id), metadata=md).resources
    assert [(r.type, r.id) for r in listed] == [("content", DIGEST), ("snapshots/overlayfs", "k")]
    code, _ = code_of(client.leases.AddResource, leases_pb2.AddResourceRequest(
        id=lease.id, resource=leases_pb2.Resource(id="x", type="bogus")), metadata=md)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    client.leases.DeleteResource(leases_pb2.DeleteResourceRequest(id=lease.id, resource=res), metadata=md)
    assert len(client.leases.ListResources(leases_pb2.ListResourcesRequest(id=lease.id), metadata=md).resources) == 1
    assert [l.id for l in client.leases.List(leases_pb2.ListRequest(filters=["id==12345-ab_c-"]),
                                             metadata=md).leases] == [lease.id]
    client.leases.Delete(leases_pb2.DeleteRequest(id=lease.id), metadata=md)
    code, _ = code_of(client.leases.Delete, leases_pb2.DeleteRequest(id=lease.id), metadata=md)
    assert code == grpc.StatusCode.NOT_FOUND


def test_snapshots_service_dispatch_and_errors(client, ns):
    md = client.md(ns)
    code, details = code_of(client.snapshots.Prepare, snapshots_pb2.PrepareSnapshotRequest(
        snapshotter="btrfs", key="k"), metadata=md)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "snapshotter not loaded: btrfs" in details
    mounts = client.snapshots.Prepare(snapshots_pb2.PrepareSnapshotRequest(
        snapshotter="overlayfs", key="k", labels={"a": "b"}), metadata=md).mounts
    assert [(m.type, list(m.options)) for m in mounts] == [("bind", ["rw", "rbind"])]
    assert list(client.snapshots.Mounts(snapshots_pb2.MountsRequest(snapshotter="overlayfs", key="k"),
                                        metadata=md).mounts) == list(mounts)
    client.snapshots.Commit(snapshots_pb2.CommitSnapshotRequest(snapshotter="overlayfs", name="c", key="k"),
                            metadata=md)
    child = client.snapshots.Prepare(snapshots_pb2.PrepareSnapshotRequest(
        snapshotter="overlayfs", key="child", parent="c"), metadata=md).mounts
    assert child[0].type == "overlay" and any(o.startswith("lowerdir=") for o in child[0].options)
    info = client.snapshots.Stat(snapshots_pb2.StatSnapshotRequest(snapshotter="overlayfs", key="child"),
                                 metadata=md).info
    assert (info.parent, info.kind) == ("c", snapshots_pb2.ACTIVE)
    listed = [i.name for r in client.snapshots.List(snapshots_pb2.ListSnapshotsRequest(snapshotter="overlayfs"),
                                                    metadata=md) for i in r.info]
    assert listed == ["c", "child"]
    code, _ = code_of(client.snapshots.Remove, snapshots_pb2.RemoveSnapshotRequest(snapshotter="overlayfs", key="c"),
                      metadata=md)
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    usage = client.snapshots.Usage(snapshots_pb2.UsageRequest(snapshotter="overlayfs", key="c"), metadata=md)
    assert usage.inodes >= 1
    for key in ("child", "c"):
        client.snapshots.Remove(snapshots_pb2.RemoveSnapshotRequest(snapshotter="overlayfs", key=key), metadata=md)


def put_blob(client, ns, data: bytes) -> str:
    list(client.content.Write(iter([content_pb2.WriteContentRequest(
        action=content_pb2.COMMIT, ref=f"r-{digest(data)}", data=data, expected=digest(data))]),
        metadata=client.md(ns)))
    return digest(data)


@pytest.mark.parametrize("snapshotter", ["overlayfs", "native"])
@pytest.mark.parametrize("compression, media_type", [
    ("gzip", "application/vnd.oci.image.layer.v1.tar+gzip"),
    ("zstd", "application/vnd.oci.image.layer.v1.tar+zstd"),
    ("none", "application/vnd.docker.image.rootfs.diff.tar"),
])
def test_diff_apply_onto_snapshot_mounts(client, ns, snapshotter, compression, media_type):
    md = client.md(ns)
    raw = layer_tar([dir_("etc"), file_("etc/motd", b"hi")])
    blob = compress(raw, compression)
    d = put_blob(client, ns, blob)
    mounts = client.snapshots.Prepare(snapshots_pb2.PrepareSnapshotRequest(snapshotter=snapshotter, key="ex"),
                                      metadata=md).mounts
    applied = client.diff.Apply(diff_pb2.ApplyRequest(diff=descriptor_pb2.Descriptor(
        media_type=media_type, digest=d, size=len(blob)), mounts=mounts), metadata=md).applied
    assert (applied.digest, applied.size) == (digest(raw), len(raw))
    assert applied.media_type == "application/vnd.oci.image.layer.v1.tar"
    with mounted([Mount(m.type, m.source, list(m.options)) for m in mounts]) as root:
        with open(f"{root}/etc/motd", "rb") as f:
            assert f.read() == b"hi"
    client.snapshots.Remove(snapshots_pb2.RemoveSnapshotRequest(snapshotter=snapshotter, key="ex"), metadata=md)


def test_diff_apply_errors(client, ns):
    md = client.md(ns)
    blob = put_blob(client, ns, b"definitely not a tar archive" * 40)
    mounts = client.snapshots.Prepare(snapshots_pb2.PrepareSnapshotRequest(snapshotter="native", key="ex"),
                                      metadata=md).mounts
    try:
        def apply(media_type, dgst=blob):
            return client.diff.Apply(diff_pb2.ApplyRequest(diff=descriptor_pb2.Descriptor(
                media_type=media_type, digest=dgst, size=1), mounts=mounts), metadata=md)
        code, details = code_of(apply, "application/vnd.oci.image.layer.v1.tar+encrypted")
        assert code == grpc.StatusCode.UNIMPLEMENTED and "unsupported diff media type" in details
        code, details = code_of(apply, "application/vnd.oci.image.layer.v1.tar")
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "invalid layer" in details
        code, _ = code_of(apply, "application/vnd.oci.image.layer.v1.tar", DIGEST)
        assert code == grpc.StatusCode.NOT_FOUND
    finally:
        client.snapshots.Remove(snapshots_pb2.RemoveSnapshotRequest(snapshotter="native", key="ex"), metadata=md)
