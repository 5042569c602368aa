"""docker-py 7's volumes API at engine-py and at dockerd 20.10, side by side:
create/get/list/remove/prune, and containers.run with a named volume."""
import docker
import pytest

from test_networks_cli import unique


@pytest.fixture(params=["engine-py", "dockerd"])
def client(request):
    daemon = request.getfixturevalue("engine_py" if request.param == "engine-py" else "dockerd")
    made = docker.DockerClient(base_url=f"unix://{daemon.socket}", version="auto")
    yield made
    made.close()


def test_volumes_through_docker_py(client):
    name = unique("vol")
    try:
        volume = client.volumes.create(name, labels={"k": "v"})
        assert (volume.name, volume.attrs["Driver"], volume.attrs["Labels"], volume.attrs["Scope"]) == \
            (name, "local", {"k": "v"}, "local")
        assert client.volumes.get(name).attrs == volume.attrs
        assert [v.name for v in client.volumes.list(filters={"label": "k=v"}) if v.name == name] == [name]
        out = client.containers.run("busybox", "sh -c 'echo hi > /data/f; cat /data/f'", remove=True,
                                    volumes={name: {"bind": "/data", "mode": "rw"}})
        assert out == b"hi\n"
        with pytest.raises(docker.errors.NotFound, match="no such volume"):
            client.volumes.get(unique("vol"))
        assert name in (client.volumes.prune(filters={"label": "k=v"})["VolumesDeleted"] or [])
        with pytest.raises(docker.errors.NotFound):
            client.volumes.get(name)
    finally:
        try:
            client.volumes.get(name).remove(force=True)
        except docker.errors.NotFound:
            pass
