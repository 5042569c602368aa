"""docker-py 7 drives the container verbs at engine-py as it drives dockerd."""
import uuid

import docker
import pytest


@pytest.fixture
def client(dockerpy):
    return dockerpy


def test_containers_run_detached_wait_and_remove(client):
    container = client.containers.run("busybox", ["sh", "-c", "exit 4"], detach=True, labels={"k": "v"})
    try:
        assert client.containers.get(container.id[:12]).id == container.id
        assert container.wait() == {"StatusCode": 4, "Error": None}
        container.reload()
        assert container.status == "exited" and container.attrs["State"]["ExitCode"] == 4
        assert [c.id for c in client.containers.list(all=True, filters={"label": "k=v"})] == [container.id]
    finally:
        container.remove(force=True)
    with pytest.raises(docker.errors.NotFound) as missing:
        client.containers.get(container.id)
    assert f"No such container: {container.id}" in str(missing.value)


def test_stop_kill_pause_rename(client):
    name = f"dp-{uuid.uuid4().hex[:8]}"
    container = client.containers.run("busybox", ["sleep", "1000"], detach=True, name=name)
    try:
        container.pause()
        container.reload()
        assert container.status == "paused"
        container.unpause()
        container.rename(name + "-2")
        container.reload()
        assert container.name == name + "-2"
        container.kill(signal="SIGKILL")
        assert container.wait()["StatusCode"] == 137
        container.start()
        container.stop(timeout=1)
        container.reload()
        assert container.status == "exited"
    finally:
        container.remove(force=True)


def test_api_errors_are_docker_py_exceptions(client):
    with pytest.raises(docker.errors.ImageNotFound):
        client.containers.create("nosuchimage:latest")
    with pytest.raises(docker.errors.APIError) as bad:
        client.containers.create("busybox", name="bad/name")
    assert bad.value.status_code == 400 and "Invalid container name (bad/name)" in str(bad.value)
