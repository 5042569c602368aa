"""Pull, push, import and export over both transfer backends: the daemon's own
stores in-process, and a running daemon over gRPC (as containerd-py-ctl uses it).
Bad registries (corrupt, truncated, missing, refusing) leave nothing behind."""
import io
import json
import os
import tarfile
import threading
import time
import uuid

import pytest

from containerd_py import errors, mediatypes as mt
from containerd_py.api.containerd.events import container_pb2
from containerd_py.assembly import Assembly
from containerd_py.client import Client
from containerd_py.client.client import RemoteBackend
from containerd_py.client.connection import Connection
from containerd_py.config import Config
from containerd_py.reference import parse
from containerd_py.remotes.hosts import host_config
from containerd_py.remotes.registry import Registry
from containerd_py.transfer import archive
from containerd_py.transfer.manifests import chain_ids, parse_platform
from containerd_py.transfer.pull import pull
from containerd_py.transfer.push import push
from imagebuild import OCI_INDEX, _json, build_image, digest, dir_, docker_archive, file_, oci_archive
from registries import Fault, proxy, skopeo_copy

pytestmark = pytest.mark.root


@pytest.fixture(params=["local", "remote"])
def backend(request, tmp_path):
    if request.param == "local":
        assembly = Assembly(Config(root=str(tmp_path / "root"), state=str(tmp_path / "state")))
        yield assembly.transfer
        assembly.close()
    else:
        conn = Connection(request.getfixturevalue("daemon").address)
        yield RemoteBackend(conn)
        conn.close()


def registry_client(host: str) -> Registry:
    return Registry(host_config(host, plain_http=True), backoff=0, retries=2)


def layers():
    return [[dir_("etc"), file_("etc/hostname", b"box\n"), file_("big", os.urandom(200_000))],
            [file_("etc/.wh.hostname"), file_("etc/motd", b"hi\n")]]


@pytest.fixture
def pushed(registry, tmp_path):
    image = build_image(layers())
    (tmp_path / "img.tar").write_bytes(oci_archive(image, "x/y:latest"))
    name = f"t{uuid.uuid4().hex[:10]}"
    skopeo_copy(str(tmp_path / "img.tar"), registry, f"{name}:v1")
    return f"{registry.host}/{name}:v1", image


def state(backend, ns):
    """What the namespace holds: image names, content digests, snapshot names."""
    sn = backend.snapshotter("overlayfs")
    return ({i.name for i in backend.images.list(ns, [])}, {i.digest for i in backend.content.list(ns, [])},
            {i.name for i in sn.walk(ns)})


def test_pull_fetches_labels_and_unpacks(backend, registry, pushed, ns):
    ref, image = pushed
    pulled = pull(backend, ns, registry_client(registry.host), parse(ref))
    assert pulled.name == ref and pulled.target.digest == image.manifest["digest"]
    names, blobs, snaps = state(backend, ns)
    assert blobs == set(image.blobs) and snaps == set(chain_ids(image.diff_ids))
    infos = {i.digest: i.labels for i in backend.content.list(ns, [])}
    assert infos[image.manifest["digest"]]["containerd.io/gc.ref.content.l.1"] == image.layer_digests[1]
    assert infos[image.config_digest]["containerd.io/gc.ref.snapshot.overlayfs"] == chain_ids(image.diff_ids)[-1]
    assert infos[image.layer_digests[0]]["containerd.io/uncompressed"] == image.diff_ids[0]
    assert all(l["containerd.io/distribution.source.127.0.0.1"] == parse(ref).repository for l in infos.values())
    # Pulling again changes nothing.
    pull(backend, ns, registry_client(registry.host), parse(ref))
    assert state(backend, ns) == (names, blobs, snaps)


def test_an_in_process_pull_publishes_what_one_through_the_services_does(registry, pushed, ns, tmp_path):
    """The daemon's own pull goes through no servicer; an Events subscriber sees its
    events all the same, for the stores publish them."""
    ref, image = pushed
    daemon = Assembly(Config(root=str(tmp_path / "root"), state=str(tmp_path / "state")))
    server = daemon.server()
    server.listen_unix(str(tmp_path / "c.sock"))
    server.start()
    client = Client(str(tmp_path / "c.sock"), ns)
    seen = []
    stream = client.events.subscribe([f"namespace=={ns}"])
    threading.Thread(target=lambda: seen.extend(stream), daemon=True).start()

    def mark(name: str) -> None:
        """Publishes a marker until the subscriber has it: then it has all that came before."""
        deadline = time.monotonic() + 30
        while not any(e.topic == f"/test/{name}" for e in seen):
            assert time.monotonic() < deadline, "the subscriber sees no events"
            daemon.events.publish(ns, f"/test/{name}", container_pb2.ContainerDelete(id=name))
            time.sleep(0.05)
    try:
        mark("subscribed")
        pull(daemon.transfer, ns, registry_client(registry.host), parse(ref))
        mark("pulled")
    finally:
        stream.close()
        client.close()
        server.stop(grace=0).wait()
        daemon.close()
    topics = [e.topic for e in seen if not e.topic.startswith("/test/")]
    assert [t for t in topics if t.startswith("/images/")] == ["/images/create"]
    assert [t for t in topics if t.startswith("/snapshot/")] == ["/snapshot/prepare", "/snapshot/commit"] * len(
        image.diff_ids)


def test_pull_chooses_the_platform_of_an_index(backend, registry, tmp_path, ns):
    amd, arm = build_image([[file_("arch", b"amd64")]]), build_image([[file_("arch", b"arm64")]], arch="arm64")
    index = _json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        dict(amd.manifest, platform={"os": "linux", "architecture": "amd64"}),
        dict(arm.manifest, platform={"os": "linux", "architecture": "arm64", "variant": "v8"})]})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        files = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": _json({
            "schemaVersion": 2, "manifests": [{"mediaType": OCI_INDEX, "digest": digest(index), "size": len(index),
                                               "annotations": {"org.opencontainers.image.ref.name": "multi"}}]}),
                 f"blobs/sha256/{digest(index)[7:]}": index}
        files.update({f"blobs/sha256/{d[7:]}": b for d, b in {**amd.blobs, **arm.blobs}.items()})
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    (tmp_path / "multi.tar").write_bytes(buf.getvalue())
    skopeo_copy(str(tmp_path / "multi.tar") + ":multi", registry, "multi:v1", "oci-archive", "--all")
    pulled = pull(backend, ns, registry_client(registry.host), parse(f"{registry.host}/multi:v1"),
                  parse_platform("linux/arm64"))
    assert pulled.target.media_type == mt.OCI_INDEX
    _, blobs, snaps = state(backend, ns)
    assert set(arm.blobs) <= blobs and not set(amd.blobs) & blobs
    assert snaps == {arm.diff_ids[0]}
    labels = backend.content.info(ns, pulled.target.digest).labels
    assert labels == {"containerd.io/gc.ref.content.m.0": arm.manifest["digest"],
                      "containerd.io/distribution.source.127.0.0.1": "multi"}


@pytest.mark.parametrize("fault, error, message", [
    (Fault("/blobs/", "corrupt"), errors.FailedPrecondition, "unexpected commit digest"),
    (Fault("/blobs/", "truncate"), errors.Unavailable, "after 3 attempts"),
    (Fault("/blobs/", "404"), errors.NotFound, "404 Not Found"),
    (Fault("/blobs/", "500"), errors.Unavailable, "500 Internal Server Error"),
    (Fault("/manifests/", "401", method="HEAD"), errors.Unauthenticated, "401 Unauthorized"),
])
def test_a_bad_registry_leaves_nothing(backend, registry, pushed, ns, fault, error, message):
    ref, image = pushed
    with proxy(registry) as p:
        p.faults.append(fault)
        bad = parse(ref.replace(registry.host, p.host))
        with pytest.raises(error, match=message):
            pull(backend, ns, registry_client(p.host), bad)
    assert state(backend, ns) == (set(), set(), set())
    # Still serving: the same pull from the good registry works.
    pull(backend, ns, registry_client(registry.host), parse(ref))


def test_push_then_pull_elsewhere(backend, registry, pushed, ns):
    ref, image = pushed
    r = registry_client(registry.host)
    pull(backend, ns, r, parse(ref))
    target = parse(f"{registry.host}/copy{uuid.uuid4().hex[:8]}:pushed")
    with proxy(registry) as p:
        via = parse(str(target).replace(registry.host, p.host))
        desc = push(backend, ns, registry_client(p.host), via, ref)
        mounts = [path for m, path, _ in p.log.requests if m == "POST" and "mount=" in path]
    assert desc.digest == image.manifest["digest"]
    assert len(mounts) == len(image.layer_digests) + 1  # layers and config came from the pulled repository
    other = ns + "-other"
    try:
        assert pull(backend, other, r, target).target == desc
    finally:
        for name in [i.name for i in backend.images.list(other, [])]:
            backend.images.delete(other, name)


@pytest.mark.parametrize("fmt", ["oci", "docker"])
def test_export_import_round_trip_and_skopeo_reads_the_export(backend, registry, pushed, ns, tmp_path, fmt):
    ref, image = pushed
    pull(backend, ns, registry_client(registry.host), parse(ref))
    with open(tmp_path / "out.tar", "wb") as f:
        archive.export_archive(backend, ns, f, [ref], fmt, None)
    other = ns + "-import"
    with open(tmp_path / "out.tar", "rb") as f:
        (imported,) = archive.import_archive(backend, other, f, parse_platform("linux/amd64"), "overlayfs")
    assert imported.name == ref
    _, blobs, snaps = state(backend, other)
    assert set(image.layer_digests) | {image.config_digest} <= blobs
    assert snaps == set(chain_ids(image.diff_ids))
    if fmt == "oci":
        assert imported.target.digest == image.manifest["digest"]
    name = f"exported{uuid.uuid4().hex[:8]}"
    skopeo_copy(str(tmp_path / "out.tar"), registry, f"{name}:v1", "oci-archive" if fmt == "oci" else "docker-archive")
    again = pull(backend, other, registry_client(registry.host), parse(f"{registry.host}/{name}:v1"))
    # skopeo may recompress layers; what they unpack to (the diff IDs) stays.
    manifest = json.loads(backend.content.open(other, again.target.digest).read())
    config = json.loads(backend.content.open(other, manifest["config"]["digest"]).read())
    assert config["rootfs"]["diff_ids"] == image.diff_ids


def test_import_of_a_docker_archive_writes_a_docker_manifest(backend, ns, tmp_path):
    image = build_image(layers(), compression="none")
    (imported,) = archive.import_archive(backend, ns, io.BytesIO(docker_archive(image, "foo:1")),
                                         parse_platform("linux/amd64"), "overlayfs")
    assert imported.name == "docker.io/library/foo:1" and imported.target.media_type == mt.DOCKER_MANIFEST
    manifest = json.loads(backend.content.open(ns, imported.target.digest).read())
    assert [l["mediaType"] for l in manifest["layers"]] == [mt.DOCKER_LAYER] * 2
    assert state(backend, ns)[2] == set(chain_ids(image.diff_ids))


@pytest.mark.parametrize("tar, message", [
    ({"oci-layout": b"{}", "index.json": b"nope"}, "index.json is not JSON"),
    ({"README": b"hi"}, "neither index.json nor manifest.json"),
    ({"blobs/sha256/" + "0" * 64: b"lies", "index.json": b'{"manifests": []}'}, "unexpected commit digest"),
])
def test_bad_archives_are_refused_and_leave_nothing(backend, ns, tar, message):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in tar.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    buf.seek(0)
    with pytest.raises(errors.InvalidArgument, match=message):
        archive.import_archive(backend, ns, buf, None, None)
    assert state(backend, ns)[:2] == (set(), set())
