"""docker-py 7's container calls for top, stats, diff, export, the archive
API and commit, at engine-py."""
import io
import tarfile

import docker
import pytest

pytestmark = pytest.mark.root


@pytest.fixture
def client(dockerpy):
    return dockerpy


@pytest.fixture
def running(client):
    container = client.containers.run("busybox", ["sh", "-c", "mkdir /d && echo one > /d/one && sleep 1000"],
                                      detach=True)
    while not _exists(container, "/d/one"):
        pass  # the command has not made it yet
    yield container
    container.remove(force=True)


def _exists(container, path: str) -> bool:
    try:
        container.get_archive(path)
        return True
    except docker.errors.NotFound:
        return False


def test_top_stats_and_diff(running):
    top = running.top()
    assert "PID" in top["Titles"] and any("sleep 1000" in p[-1] for p in top["Processes"])
    stats = running.stats(stream=False)
    assert stats["id"] == running.id and stats["memory_stats"]["usage"] > 0
    stream = running.stats(decode=True)
    assert next(stream)["name"] == "/" + running.name
    stream.close()
    assert {"Path": "/d/one", "Kind": 1} in running.diff()


def test_archive_both_ways_and_export(running):
    chunks, described = running.get_archive("/d")
    assert described["name"] == "d" and described["mode"] & (1 << 31)
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tf:
        assert tf.extractfile("d/one").read() == b"one\n"
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tf:
        info = tarfile.TarInfo("two")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"two"))
    assert running.put_archive("/d", out.getvalue()) is True
    with tarfile.open(fileobj=io.BytesIO(b"".join(running.get_archive("/d/two")[0]))) as tf:
        assert tf.extractfile("two").read() == b"two"
    with pytest.raises(docker.errors.NotFound, match="Could not find the file /nothing in container"):
        running.get_archive("/nothing")
    with tarfile.open(fileobj=io.BytesIO(b"".join(running.export()))) as tf:
        assert "d/two" in tf.getnames()


def test_commit(client, running):
    # the low-level call: Container.commit inspects the image after, which the image routes serve
    image_id = client.api.commit(running.id, "dockerpy-committed", "v1", message="from docker-py",
                                 changes=["CMD cat /d/one"])["Id"]
    try:
        assert image_id.startswith("sha256:")
        child = client.containers.run("dockerpy-committed:v1", detach=True)
        try:
            assert child.wait()["StatusCode"] == 0
            assert child.attrs["Image"] == image_id and child.attrs["Config"]["Cmd"] == ["/bin/sh", "-c", "cat /d/one"]
        finally:
            child.remove(force=True)
    finally:
        client.images.remove("dockerpy-committed:v1")
