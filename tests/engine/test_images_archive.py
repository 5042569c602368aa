"""Save, load and import at the service level, over containerd-py and real
containerd: the archive's layout, load's stream messages (quiet or not, an
OCI archive, an unnamed image, a name taken from another image), and
nothing left when an archive or a layer is refused."""
import gzip
import io
import json
import tarfile

import pytest

from test_images_service import busybox_tar, containerd, daemon, images, registry  # noqa: F401  (fixtures)
from dockerd_oracle import docker_archive
from imagebuild import file_, layer_tar  # noqa: E402  (on the path once test_images_service is imported)

from engine.errors import InvalidParameter, NotFound
from engine.services.image_archive import ImageArchives
from engine.services.image_changes import apply_changes

pytestmark = pytest.mark.root


def _tar(files: dict[str, bytes]) -> bytes:
    return layer_tar([file_(name, data) for name, data in files.items()])
BUSYBOX = "docker.io/library/busybox:latest"  # the name make-busybox-image.py gives it


def reader(data: bytes):
    return io.BytesIO(data).read


def load(archives: ImageArchives, data: bytes, quiet: bool = True) -> list[dict]:
    return list(archives.load(reader(data), quiet))


@pytest.fixture
def archives(images, busybox_tar):  # noqa: F811
    """The service with busybox loaded from its OCI archive."""
    service = ImageArchives(images)
    assert load(service, busybox_tar.read_bytes()) == [{"stream": "Loaded image: busybox:latest\n"}]
    return service


def saved(archives: ImageArchives, *names: str) -> tuple[bytes, dict]:
    data = b"".join(archives.save(list(names)))
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        files = {m.name: tf.extractfile(m).read() if m.isfile() else None for m in tf.getmembers()}
    return data, files


def test_save_writes_dockerds_layout_for_several_images(archives):
    images = archives.images
    images.tag("busybox", "copy", "1")
    images.tag("busybox", "copy", "2")
    image_id = images.inspect("busybox")["Id"]
    _, files = saved(archives, "busybox", "copy")  # a name alone: every tag of it
    manifest = json.loads(files["manifest.json"])
    assert manifest == [{"Config": image_id[7:] + ".json", "RepoTags": ["busybox:latest", "copy:1", "copy:2"],
                         "Layers": manifest[0]["Layers"]}]
    (layer,) = manifest[0]["Layers"]
    v1_id = layer.split("/")[0]
    assert json.loads(files["repositories"]) == {"busybox": {"latest": v1_id}, "copy": {"1": v1_id, "2": v1_id}}
    assert files[f"{v1_id}/VERSION"] == b"1.0" and files[v1_id] is None
    assert json.loads(files[f"{v1_id}/json"])["id"] == v1_id
    assert tarfile.open(fileobj=io.BytesIO(files[layer])).getnames()  # uncompressed
    assert json.loads(files[image_id[7:] + ".json"])["rootfs"]["diff_ids"] == images.inspect("busybox")["RootFS"][
        "Layers"]


def test_save_errors_in_dockerds_words(archives):
    for name, message in (("nosuch", "No such image: nosuch"), ("nosuch:1", "reference does not exist"),
                          ("sha256:" + "a" * 64, "No such image: sha256:" + "a" * 64)):
        with pytest.raises(NotFound) as e:
            archives.save([name])
        assert str(e.value) == message


def test_load_renames_a_taken_name_and_keeps_the_old_image_dangling(archives):
    images = archives.images
    old_id = images.inspect("busybox")["Id"]
    archives.import_image(reader(_tar({"x": b"x"})), repo="busybox", tag="latest")
    assert [s["RepoTags"] for s in images.list() if s["Id"] == old_id] == [["<none>:<none>"]]  # as dockerd
    unnamed, files = saved(archives, old_id)
    replaced_id = images.inspect("busybox")["Id"]
    manifest = json.loads(files["manifest.json"])
    manifest[0]["RepoTags"] = ["busybox:latest"]
    named = _tar({**{k: v for k, v in files.items() if v is not None}, "manifest.json": json.dumps(manifest).encode()})
    assert load(archives, named) == [
        {"stream": f"The image busybox:latest already exists, renaming the old one with ID {replaced_id} to empty "
                   "string\n"},
        {"stream": "Loaded image: busybox:latest\n"}]
    assert images.inspect("busybox")["Id"] == old_id
    assert images.inspect(replaced_id)["RepoTags"] == []
    assert load(archives, unnamed) == [{"stream": f"Loaded image ID: {old_id}\n"}]
    assert images.inspect("busybox")["RepoTags"] == ["busybox:latest"]


def test_load_not_quiet_reports_each_layer(images, busybox_tar):  # noqa: F811
    messages = load(ImageArchives(images), busybox_tar.read_bytes(), quiet=False)
    assert [m.get("status") for m in messages] == ["Loading layer", None]
    assert messages[0]["id"] and messages[0]["progressDetail"]["current"] == messages[0]["progressDetail"]["total"]
    assert messages[-1] == {"stream": "Loaded image: busybox:latest\n"}


def test_a_refused_archive_ends_the_stream_and_leaves_nothing(images):  # noqa: F811
    archives = ImageArchives(images)
    for data in (b"not a tar" * 200, _tar({"other": b"x"}), _tar({"manifest.json": b'[{"Config":"c.json"}]'})):
        (message,) = load(archives, data)
        assert set(message) == {"errorDetail", "error"}
    assert images.door.list() == [] and images.door.client.content.list([]) == []


def test_import_makes_a_one_layer_image_with_changes(images):  # noqa: F811
    archives = ImageArchives(images)
    done = archives.import_image(reader(_tar({"bin/app": b"#!/bin/sh\n"})), repo="imported", tag="1",
                                 changes=['CMD ["/bin/app"]', "ENV A=1"], message="made here")
    info = images.inspect("imported:1")
    assert list(done) == [{"status": info["Id"]}]
    assert info["Comment"] == "made here" and len(info["RootFS"]["Layers"]) == 1
    assert info["Config"]["Cmd"] == ["/bin/app"] and info["Config"]["Env"] == ["A=1"]
    assert images.history("imported:1")[0]["Comment"] == "made here"
    assert images.door.client.snapshots("overlayfs").stat(info["RootFS"]["Layers"][0]).name  # unpacked


def test_import_refusals_leave_nothing(images):  # noqa: F811
    archives = ImageArchives(images)
    for kwargs, message in (({"repo": "Bad"}, "invalid reference format: repository name must be lowercase"),
                            ({"repo": "x@sha256:" + "a" * 64}, "cannot import digest reference"),
                            ({"changes": ["FROM x"]}, "from is not a valid change command")):
        with pytest.raises(InvalidParameter, match=f"^{message}$"):
            archives.import_image(reader(_tar({"a": b"a"})), **kwargs)
    with pytest.raises(InvalidParameter):
        archives.import_image(reader(b"\x01" * 4096))
    assert images.door.list() == [] and images.door.client.content.list([]) == []


def test_changes_as_the_builder_applies_them():
    config = apply_changes({}, ["CMD echo hi", 'ENTRYPOINT ["/init"]', "ENV A=1 B='two words'", "ENV C 3",
                                "LABEL a=b", "EXPOSE 80 53/udp", "USER nobody", "WORKDIR /w", "VOLUME /v /x",
                                "HEALTHCHECK --interval=5s --retries=3 CMD wget -q x", "ONBUILD RUN true", "ENV A=9"])
    assert config == {"Cmd": ["/bin/sh", "-c", "echo hi"], "Entrypoint": ["/init"], "Env": ["B=two words", "C=3",
                      "A=9"], "Labels": {"a": "b"}, "ExposedPorts": {"80/tcp": {}, "53/udp": {}}, "User": "nobody",
                      "WorkingDir": "/w", "Volumes": {"/v": {}, "/x": {}},
                      "Healthcheck": {"Test": ["CMD-SHELL", "wget -q x"], "Interval": 5_000_000_000, "Retries": 3},
                      "OnBuild": ["RUN true"]}
    assert apply_changes({}, ['HEALTHCHECK CMD ["true"]', "HEALTHCHECK NONE"]) == {"Healthcheck": {"Test": ["NONE"]}}
    assert apply_changes({}, ['HEALTHCHECK CMD ["true"]'])["Healthcheck"] == {"Test": ["CMD", "true"]}
    for line in ("RUN x", "STOPSIGNAL SIGINT"):
        with pytest.raises(InvalidParameter, match=f"^{line.split()[0].lower()} is not a valid change command$"):
            apply_changes({}, [line])


def test_load_of_a_docker_archive_with_compressed_layers(images, busybox_tar, tmp_path):  # noqa: F811
    """docker 25's save and dockerd_oracle.docker_archive keep the blobs compressed, under blobs/."""
    archive = tmp_path / "docker.tar"
    docker_archive(str(busybox_tar), str(archive), "gz/busybox:1")
    assert load(ImageArchives(images), archive.read_bytes()) == [{"stream": "Loaded image: gz/busybox:1\n"}]
    assert images.inspect("gz/busybox:1")["Config"]["Cmd"] == ["sh"]


def test_import_of_a_gzip_tarball(images):  # noqa: F811
    (done,) = ImageArchives(images).import_image(reader(gzip.compress(_tar({"z": b"zipped"}))), repo="gz")
    info = images.inspect("gz")
    assert done == {"status": info["Id"]}
    assert info["RootFS"]["Layers"][0] == images.door.resolve(images.get("gz").target).layers[0].digest
