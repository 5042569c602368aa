"""The image verbs through the real docker CLI (28 and 20.10) at engine-py:
images, inspect, history, tag, rmi, save, load, import, image prune; a
loopback registry (served inside the engine's network namespace) for pull,
push, login and search in test_images_push.py."""
import contextlib
import io
import json
import subprocess
import sys
import tarfile
import time

import pytest

import test_images_service  # noqa: F401  (puts containerd_py's test helpers on the path)
from imagebuild import file_, layer_tar
from engine_daemon import START_DEADLINE
from registries import free_port
from test_containers_api import unique
from test_vs_dockerd import UnixConnection

CLIS = ("28", "20.10")
pytestmark = pytest.mark.root


@pytest.fixture
def tagged(engine_py):
    """A fresh name for busybox (removed after)."""
    name = f"{unique('img')}:v1"
    engine_py.docker("tag", "busybox", name)
    yield name
    engine_py.docker("rmi", "-f", name, check=False)


def rootfs_tar(path, files: dict[str, bytes]) -> None:
    path.write_bytes(layer_tar([file_(name, data, 0o755) for name, data in files.items()]))


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
        history = ("history", "--format", "{{.CreatedBy}}|{{.Comment}}|{{.Size}}", name)
        assert engine_py.docker(*history, cli="20.10").stdout == dockerd.docker(*history).stdout
    finally:
        engine_py.docker("rmi", name, check=False)
        dockerd.docker("rmi", name, check=False)


def test_import_errors_as_dockerd(engine_py, dockerd, tmp_path):
    rootfs = tmp_path / "rootfs.tar"
    rootfs_tar(rootfs, {"a": b"a"})
    for args in (["--change", "FROM busybox"], ["--change", "STOPSIGNAL 9"], ["--change", "FOO x"],
                 [str(rootfs), "Bad"], [str(rootfs), "x@sha256:" + "a" * 64]):
        if args[0].startswith("--"):
            args = [*args, str(rootfs)]
        ours = engine_py.docker("import", *args, check=False, cli="20.10")
        theirs = dockerd.docker("import", *args, check=False)
        assert (ours.returncode, ours.stderr) == (theirs.returncode, theirs.stderr) != (0, "")


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


def api(socket_path: str, method: str, path: str, body: bytes | None = None) -> tuple[int, dict, bytes]:
    conn = UnixConnection(socket_path)
    try:
        conn.request(method, f"/v1.41{path}", body=body)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_single_image_get_and_load_with_progress_as_dockerd(engine_py, dockerd):
    """GET /images/{name}/get and a load that is not quiet, through the API as dockerd answers them."""
    status, headers, body = api(engine_py.socket, "GET", "/images/busybox/get")
    assert (status, headers["content-type"]) == (200, "application/x-tar")
    with tarfile.open(fileobj=io.BytesIO(body)) as tf:
        assert json.load(tf.extractfile("manifest.json"))[0]["RepoTags"] == ["busybox:latest"]
    for daemon in (engine_py, dockerd):
        status, headers, reply = api(daemon.socket, "POST", "/images/load?quiet=0", body)
        messages = [json.loads(line) for line in reply.splitlines()]
        assert (status, headers["content-type"]) == (200, "application/json")
        assert messages[-1] == {"stream": "Loaded image: busybox:latest\n"}, daemon
    ours, theirs = (api(d.socket, "GET", "/images/nosuch/get") for d in (engine_py, dockerd))
    assert (ours[0], json.loads(ours[2])) == (theirs[0], json.loads(theirs[2]))


def test_rmi_of_an_image_a_container_uses_as_dockerd(engine_py, dockerd, tmp_path):
    """Refused (409) by name and by ID while a created container uses it; forced, the name goes."""
    rootfs = tmp_path / "rootfs.tar"
    rootfs_tar(rootfs, {"bin/true": b"x"})
    name = f"{unique('used')}:v1"
    outputs = []
    for daemon, flags in ((engine_py, ()), (dockerd, ("--runtime", "dump"))):
        image_id = daemon.docker("import", str(rootfs), name).stdout.strip()
        container = daemon.docker("create", *flags, name, "/bin/true").stdout.strip()
        try:
            by_name = daemon.docker("rmi", name, check=False)
            by_id = daemon.docker("rmi", image_id[7:19], check=False)
            forced = daemon.docker("rmi", "-f", name)
            mask = lambda text: text.replace(image_id, "I").replace(container[:12], "C").replace(image_id[7:19], "I")
            outputs.append([(r.returncode, mask(r.stdout), mask(r.stderr)) for r in (by_name, by_id, forced)])
        finally:
            daemon.docker("rm", "-f", container)
            daemon.docker("rmi", "-f", image_id, check=False)
    ours, theirs = outputs
    assert ours[0][0] == 1 and "(must force) - container C is using its referenced image I" in ours[0][2]
    assert ours == theirs


def image_events(daemon, since: str, until: str) -> list[str]:
    return daemon.docker("events", "--since", since, "--until", until, "--filter", "type=image", "--format",
                         "{{.Action}} {{.Actor.Attributes.name}}").stdout.splitlines()


def test_image_events_as_dockerd(engine_py, dockerd, tmp_path):
    """tag, save, load, rmi and import, seen by `docker events` on both daemons."""
    rootfs = tmp_path / "rootfs.tar"
    rootfs_tar(rootfs, {"x": b"x"})
    name = f"{unique('evented')}:v1"
    seen = []
    for daemon in (engine_py, dockerd):
        since = f"{time.time():.9f}"
        daemon.docker("tag", "busybox", name)
        daemon.docker("save", "-o", str(tmp_path / "x.tar"), name)
        daemon.docker("rmi", name)
        daemon.docker("load", "-i", str(tmp_path / "x.tar"))
        daemon.docker("rmi", name)
        image_id = daemon.docker("import", str(rootfs)).stdout.strip()
        daemon.docker("rmi", image_id)
        events = image_events(daemon, since, f"{time.time():.9f}")
        busybox_id = daemon.docker("inspect", "-f", "{{.Id}}", "busybox").stdout.strip()
        seen.append([e.replace(busybox_id, "B").replace(image_id, "I") for e in events])
    ours, theirs = seen
    assert ours == theirs
    assert ours[0] == f"tag {name}" and "save B" in ours and "load B" in ours and "import I" in ours


def test_save_and_load_of_several_images(engine_py, tagged, tmp_path):
    rootfs = tmp_path / "rootfs.tar"
    rootfs_tar(rootfs, {unique("f"): b"other"})
    other = f"{unique('other')}:v2"
    engine_py.docker("import", str(rootfs), other)
    try:
        archive = tmp_path / "two.tar"
        engine_py.docker("save", "-o", str(archive), tagged, other)
        with tarfile.open(archive) as tf:
            assert [e["RepoTags"] for e in json.load(tf.extractfile("manifest.json"))] == [[tagged], [other]]
        engine_py.docker("rmi", tagged, other)
        assert engine_py.docker("load", "-i", str(archive)).stdout.splitlines() == [
            f"Loaded image: {tagged}", f"Loaded image: {other}"]
    finally:
        engine_py.docker("rmi", other, check=False)


@contextlib.contextmanager
def served_files(netns: str, directory, port: int):
    """python's http.server for directory on 127.0.0.1:port inside netns."""
    subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
    proc = subprocess.Popen(["nsenter", f"--net=/run/netns/{netns}", sys.executable, "-m", "http.server", "-b",
                             "127.0.0.1", "-d", str(directory), str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True)
    probe = ["nsenter", f"--net=/run/netns/{netns}", sys.executable, "-c",
             f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=5).close()"]
    deadline = time.monotonic() + START_DEADLINE
    try:
        while subprocess.run(probe, capture_output=True).returncode != 0:
            assert proc.poll() is None and time.monotonic() < deadline, "http.server did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_import_from_a_url_as_dockerd(engine_py, dockerd, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    rootfs_tar(site / "rootfs.tar", {"x": b"from a url"})
    port = free_port()
    name = f"{unique('fetched')}:v1"
    outputs = []
    for daemon in (engine_py, dockerd):
        with served_files(daemon.netns, site, port) as url:
            ok = daemon.docker("import", f"{url}/rootfs.tar", name, **({"cli": "20.10"} if daemon is engine_py else {}))
            missing = daemon.docker("import", f"{url}/nosuch.tar", check=False,
                                    **({"cli": "20.10"} if daemon is engine_py else {}))
        image_id = ok.stdout.splitlines()[-1]
        comment = daemon.docker("inspect", "-f", "{{.Comment}}", name).stdout
        daemon.docker("rmi", name)
        outputs.append((ok.stdout.replace(image_id, "I"), comment, missing.returncode, missing.stderr))
    ours, theirs = outputs
    assert ours[0] == f"Downloading from http://127.0.0.1:{port}/rootfs.tar\nI\n"
    assert ours == theirs


@pytest.mark.parametrize("cli", CLIS)
def test_pull_for_another_platform_is_refused(engine_py, cli):
    refused = engine_py.docker("pull", "--platform", "linux/arm64", "busybox", check=False, cli=cli)
    assert refused.returncode == 1
    assert "image platform linux/arm64 is not supported: engine-py pulls linux/amd64 images" in refused.stderr
