"""The image verbs through the real docker CLI (28 and 20.10) at engine-py:
images, inspect, history, tag, rmi, save, load, import, image prune; a
loopback registry (served inside the engine's network namespace) for pull,
push, login and search in test_images_push.py."""
import io
import json
import tarfile
import uuid

import pytest

CLIS = ("28", "20.10")
pytestmark = pytest.mark.root


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def tagged(engine_py):
    """A fresh name for busybox (removed after)."""
    name = f"{unique('img')}:v1"
    engine_py.docker("tag", "busybox", name)
    yield name
    engine_py.docker("rmi", "-f", name, check=False)


def rootfs_tar(path, files: dict[str, bytes]) -> None:
    with tarfile.open(path, "w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tf.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("cli", CLIS)
def test_images_inspect_history(engine_py, cli):
    docker = engine_py.docker
    listed = docker("images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}", cli=cli).stdout
    info = json.loads(docker("image", "inspect", "busybox", cli=cli).stdout)[0]
    assert f"busybox:latest {info['Id']}" in listed.splitlines()
    assert "busybox:latest" in info["RepoTags"] and info["Os"] == "linux" and info["RootFS"]["Type"] == "layers"
    assert docker("inspect", "-f", "{{.Config.Cmd}} {{.Architecture}}", "busybox", cli=cli).stdout.strip() == \
        "[sh] amd64"
    assert docker("history", "-q", "busybox", cli=cli).returncode == 0
    missing = docker("image", "inspect", "nosuch-image", check=False, cli=cli)
    assert missing.returncode == 1 and "No such image: nosuch-image" in missing.stderr


@pytest.mark.parametrize("cli", CLIS)
def test_tag_and_rmi(engine_py, cli):
    docker = engine_py.docker
    name = f"{unique('tag')}:v1"
    docker("tag", "busybox", name, cli=cli)
    repo = name.split(":")[0]
    assert docker("images", "--format", "{{.Repository}}:{{.Tag}}", repo, cli=cli).stdout.split() == [name]
    assert docker("rmi", name, cli=cli).stdout.splitlines() == [f"Untagged: {name}"]
    again = docker("rmi", name, check=False, cli=cli)
    assert again.returncode == 1 and f"No such image: {name}" in again.stderr
    bad = docker("tag", "busybox", "Bad/Name", check=False, cli=cli)
    assert bad.returncode != 0 and "invalid reference format" in bad.stderr


@pytest.mark.parametrize("cli", CLIS)
def test_save_then_load_round_trips_in_dockerds_layout(engine_py, tagged, tmp_path, cli):
    docker = engine_py.docker
    image_id = docker("inspect", "-f", "{{.Id}}", tagged, cli=cli).stdout.strip()
    archive = tmp_path / "saved.tar"
    docker("save", "-o", str(archive), tagged, cli=cli)
    with tarfile.open(archive) as tf:
        names = tf.getnames()
        (entry,) = json.load(tf.extractfile("manifest.json"))
        repositories = json.load(tf.extractfile("repositories"))
        layer = tf.getmember(entry["Layers"][0])
        with tf.extractfile(layer) as f:
            assert tarfile.open(fileobj=f).getnames()  # the layer is a plain tar
    assert entry["Config"] == image_id[7:] + ".json" and entry["RepoTags"] == [tagged]
    repo, tag = tagged.split(":")
    assert repositories == {repo: {tag: entry["Layers"][-1].split("/")[0]}}
    assert {f"{entry['Layers'][0].split('/')[0]}/VERSION", f"{entry['Layers'][0].split('/')[0]}/json"} <= set(names)

    docker("rmi", tagged, cli=cli)
    loaded = docker("load", "-i", str(archive), cli=cli)
    assert loaded.stdout.splitlines() == [f"Loaded image: {tagged}"]
    assert docker("inspect", "-f", "{{.Id}}", tagged, cli=cli).stdout.strip() == image_id


def test_save_errors_and_untagged_save_load(engine_py, tmp_path):
    docker = engine_py.docker
    missing = docker("save", "-o", str(tmp_path / "x.tar"), "nosuch-image:1", check=False)
    assert missing.returncode == 1 and "reference does not exist" in missing.stderr
    image_id = docker("inspect", "-f", "{{.Id}}", "busybox").stdout.strip()
    archive = tmp_path / "by-id.tar"
    docker("save", "-o", str(archive), image_id[7:19])
    with tarfile.open(archive) as tf:
        (entry,) = json.load(tf.extractfile("manifest.json"))
        assert "repositories" not in tf.getnames()
    assert entry["RepoTags"] is None
    assert docker("load", "-i", str(archive)).stdout.splitlines() == [f"Loaded image ID: {image_id}"]
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not a tar at all" * 100)
    refused = docker("load", "-i", str(bad), check=False)
    assert refused.returncode == 1 and refused.stderr.strip()


def test_save_is_loaded_by_dockerd_and_dockerds_save_by_us(engine_py, dockerd, tagged, tmp_path):
    """The archives cross: the same image ID on both sides."""
    image_id = engine_py.docker("inspect", "-f", "{{.Id}}", tagged).stdout.strip()
    ours = tmp_path / "ours.tar"
    engine_py.docker("save", "-o", str(ours), tagged)
    try:
        assert dockerd.docker("load", "-i", str(ours)).stdout.splitlines() == [f"Loaded image: {tagged}"]
        assert dockerd.docker("inspect", "-f", "{{.Id}}", tagged).stdout.strip() == image_id
        theirs = tmp_path / "theirs.tar"
        dockerd.docker("tag", tagged, f"{tagged}-back")
        dockerd.docker("save", "-o", str(theirs), f"{tagged}-back")
    finally:
        dockerd.docker("rmi", tagged, f"{tagged}-back", check=False)
    try:
        assert engine_py.docker("load", "-i", str(theirs)).stdout.splitlines() == [f"Loaded image: {tagged}-back"]
        assert engine_py.docker("inspect", "-f", "{{.Id}}", f"{tagged}-back").stdout.strip() == image_id
    finally:
        engine_py.docker("rmi", f"{tagged}-back", check=False)


@pytest.mark.parametrize("cli", CLIS)
def test_import_with_changes_as_dockerd(engine_py, dockerd, tmp_path, cli):
    rootfs = tmp_path / "rootfs.tar"
    rootfs_tar(rootfs, {"hello": b"#!/bin/sh\necho hi\n", "etc/motd": b"welcome\n"})
    name = f"{unique('imported')}:v1"
    changes = ["--change", 'CMD ["/hello"]', "--change", "ENV A=1 B=2", "--change", "WORKDIR /etc",
               "--change", "LABEL x=y", "--change", "EXPOSE 80"]
    out = engine_py.docker("import", *changes, str(rootfs), name, cli=cli).stdout.strip()
    theirs_out = dockerd.docker("import", *changes, str(rootfs), name).stdout.strip()
    try:
        assert out.startswith("sha256:") and len(out) == 71 and theirs_out.startswith("sha256:")
        fields = "{{json .Config}} {{.Comment}} {{len .RootFS.Layers}} {{.Os}} {{.Architecture}}"
        ours = engine_py.docker("inspect", "-f", fields, name, cli="20.10").stdout  # the dockerd fixture's CLI
        assert ours == dockerd.docker("inspect", "-f", fields, name).stdout
        assert engine_py.docker("inspect", "-f", "{{.Id}}", name).stdout.strip() == out
    finally:
        engine_py.docker("rmi", name, check=False)
        dockerd.docker("rmi", name, check=False)


def test_import_errors(engine_py, tmp_path):
    rootfs = tmp_path / "rootfs.tar"
    rootfs_tar(rootfs, {"a": b"a"})
    bad_change = engine_py.docker("import", "--change", "FROM busybox", str(rootfs), check=False)
    assert bad_change.returncode == 1 and "from is not a valid change command" in bad_change.stderr
    bad_repo = engine_py.docker("import", str(rootfs), "Bad", check=False)
    assert bad_repo.returncode == 1 and "invalid reference format" in bad_repo.stderr


@pytest.mark.parametrize("cli", CLIS)
def test_image_prune_removes_dangling_images_only(engine_py, tmp_path, cli):
    rootfs = tmp_path / "rootfs.tar"
    rootfs_tar(rootfs, {unique("file"): b"data" * 100})
    dangling = engine_py.docker("import", str(rootfs), cli=cli).stdout.strip()
    listed = engine_py.docker("images", "-q", "--no-trunc", "--filter", "dangling=true", cli=cli).stdout.split()
    assert dangling in listed
    pruned = engine_py.docker("image", "prune", "-f", cli=cli).stdout
    assert f"deleted: {dangling}" in pruned and "Total reclaimed space: 400B" in pruned
    assert dangling not in engine_py.docker("images", "-q", "--no-trunc", cli=cli).stdout.split()
    assert "busybox" in engine_py.docker("images", "--format", "{{.Repository}}", cli=cli).stdout.split()
    bad = engine_py.docker("image", "prune", "-f", "--filter", "nosuch=1", check=False, cli=cli)
    assert bad.returncode == 1 and "Invalid filter 'nosuch'" in bad.stderr
