"""The image verbs through docker-py 7 at engine-py: list, get, history, tag,
remove, save, load, import, prune, and pull, push, login and search at a
loopback registry inside the engine's network namespace."""
import json

import docker
import pytest

from test_containers_api import unique
from test_containers_dockerpy import client  # noqa: F401  (a fixture over the session's dockerpy)
from test_images_push import private_registry, reachable  # noqa: F401  (fixtures)
from test_images_service import busybox_tar, daemon, registry  # noqa: F401
from imagebuild import file_, layer_tar
from registries import skopeo_copy

pytestmark = pytest.mark.root


def test_list_get_history_tag_remove(client):
    busybox = client.images.get("busybox")
    assert "busybox:latest" in busybox.tags and busybox.id.startswith("sha256:")
    assert busybox.id in [i.id for i in client.images.list()]
    assert isinstance(busybox.history(), list)
    name = unique("py")
    assert busybox.tag(name, "v1")
    assert f"{name}:v1" in client.images.get(f"{name}:v1").tags
    client.images.remove(f"{name}:v1")
    with pytest.raises(docker.errors.ImageNotFound, match=f"No such image: {name}:v1"):
        client.images.get(f"{name}:v1")


def test_save_load_import_prune(client):
    name = f"{unique('py')}:v1"
    client.images.get("busybox").tag(name)
    data = b"".join(client.images.get(name).save(named=name))
    client.images.remove(name)
    (loaded,) = client.images.load(data)
    assert name in loaded.tags
    client.images.remove(name)

    rootfs = layer_tar([file_(unique("file"), b"x" * 10)])
    answer = client.api.import_image_from_data(rootfs, changes=["ENV X=1"])
    image_id = json.loads(answer)["status"]
    assert client.images.get(image_id).attrs["Config"]["Env"] == ["X=1"]
    pruned = client.images.prune(filters={"dangling": True})
    assert {"Deleted": image_id} in pruned["ImagesDeleted"] and pruned["SpaceReclaimed"] == 10


def test_pull_push_search(client, reachable):  # noqa: F811
    repo = f"{reachable.host}/{unique('py')}"
    client.images.get("busybox").tag(repo, "v1")
    try:
        messages = list(client.images.push(repo, "v1", stream=True, decode=True))
        assert messages[0] == {"status": f"The push refers to repository [{repo}]"}
        assert messages[-1]["aux"]["Tag"] == "v1" and messages[-1]["aux"]["Digest"].startswith("sha256:")
        client.images.remove(f"{repo}:v1")
        pulled = client.images.pull(repo, "v1")
        assert f"{repo}:v1" in pulled.tags
        found = client.images.search(repo)
        assert [r["name"] for r in found] == [repo]
    finally:
        client.images.remove(f"{repo}:v1", force=True)


def test_login(client, engine_py, dockerd, busybox_tar):  # noqa: F811
    with private_registry(engine_py, dockerd) as private:
        skopeo_copy(str(busybox_tar), private, "secret/busybox:1")
        with pytest.raises(docker.errors.APIError, match="401 Unauthorized"):
            client.login("user", "wrong", registry=private.host, reauth=True)
        assert client.login("user", "secret", registry=private.host, reauth=True)["Status"] == "Login Succeeded"
        pulled = client.images.pull(f"{private.host}/secret/busybox", "1",
                                    auth_config={"username": "user", "password": "secret"})
        assert f"{private.host}/secret/busybox:1" in pulled.tags
        client.images.remove(f"{private.host}/secret/busybox:1")
