"""The image service over a private containerd-py and over real containerd,
pulling from a local docker-registry: each operation's JSON in
dockerd's shape, the progress stream's sequence, and the errors in dockerd's
words and classes."""
import base64
import importlib.util
import json
import sys
import uuid
from pathlib import Path

import pytest

CPY_TESTS = Path(__file__).resolve().parents[1] / "containerd_py"


def _containerd_py_conftest():
    """containerd_py's conftest, under the module name its registries module imports
    it by (a conftest of ours would shadow it, so none exists)."""
    loaded = sys.modules.get("conftest")
    if loaded is not None and Path(loaded.__file__).parent == CPY_TESTS:
        return loaded
    if str(CPY_TESTS) not in sys.path:
        sys.path.insert(0, str(CPY_TESTS))
    spec = importlib.util.spec_from_file_location("conftest", CPY_TESTS / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["conftest"] = module
    spec.loader.exec_module(module)
    return module


_cpy = _containerd_py_conftest()
busybox_tar, containerd, daemon, registry = _cpy.busybox_tar, _cpy.containerd, _cpy.daemon, _cpy.registry
from registries import Fault, docker_registry, proxy, skopeo_copy  # noqa: E402  (needs the conftest above)

from containerd_py.client import Client  # noqa: E402
from engine.containerd.images import SIZE_LABEL, ContainerdImages  # noqa: E402
from engine.errors import Conflict, InvalidParameter, NotFound, Unauthorized, http_status  # noqa: E402
from engine.filters import Filters  # noqa: E402
from engine.services.images import ImageService  # noqa: E402

pytestmark = pytest.mark.root


@pytest.fixture(scope="session")
def served(registry, busybox_tar):
    """The registry with busybox as busybox:latest and as other/busybox:1.0."""
    skopeo_copy(str(busybox_tar), registry, "busybox:latest")
    skopeo_copy(str(busybox_tar), registry, "other/busybox:1.0")
    return registry


class Users:
    """The containers said to use an image (the container service's answer, faked)."""

    def __init__(self):
        self.by_image: dict[str, list[tuple[str, bool]]] = {}

    def __call__(self, image_id):
        return self.by_image.get(image_id, [])


def make_service(address: str):
    client = Client(address, f"engine-{uuid.uuid4().hex[:10]}")
    users = Users()
    return ImageService(ContainerdImages(client), users), users, client


@pytest.fixture(params=["containerd-py", "containerd"])
def images(request):
    """The service over our daemon or over real containerd, in a namespace of the test's own."""
    service, users, client = make_service(request.getfixturevalue(
        "daemon" if request.param == "containerd-py" else "containerd").address)
    service.users, service.events = users, []
    service.publish = lambda *event: service.events.append(event)
    yield service
    for image in client.images.list([]):
        client.images.delete(image.name, sync=True)
    client.close()


def pull(service, ref, tag="latest"):
    return list(service.pull(ref, tag))


def test_pull_stream_lists_dockerd_messages_in_order(images, served):
    ref = f"{served.host}/busybox"
    messages = pull(images, ref)
    statuses = [m["status"] for m in messages]
    assert messages[0] == {"status": "Pulling from busybox", "id": "latest"}  # the path in the registry
    layer = {m["id"] for m in messages[1:-2]}
    assert len(layer) == 1
    per_layer = [s for m, s in zip(messages, statuses) if m.get("id") in layer]
    assert per_layer[0] == "Pulling fs layer"
    assert per_layer[-4:] == ["Download complete", "Extracting", "Extracting", "Pull complete"]
    assert set(per_layer[1:-5]) == {"Downloading"}
    downloading = [m for m in messages if m["status"] == "Downloading"]
    assert downloading[-1]["progressDetail"]["current"] == downloading[-1]["progressDetail"]["total"]
    assert downloading[-1]["progress"].startswith("[" + "=" * 50 + ">] ")
    target = images.door.get(f"{ref}:latest").target.digest
    assert messages[-2:] == [{"status": f"Digest: {target}"},
                             {"status": f"Status: Downloaded newer image for {ref}:latest"}]

    again = pull(images, ref)
    assert again == [messages[0], {"status": f"Digest: {target}"},
                     {"status": f"Status: Image is up to date for {ref}:latest"}]


def test_pull_of_an_image_here_under_another_name_shows_no_layers(images, served):
    pull(images, f"{served.host}/busybox")
    messages = pull(images, f"{served.host}/other/busybox", "1.0")
    assert [m["status"] for m in messages] == [
        "Pulling from other/busybox", messages[1]["status"],
        f"Status: Downloaded newer image for {served.host}/other/busybox:1.0"]
    assert messages[1]["status"].startswith("Digest: sha256:")


def test_pull_errors_before_the_stream_are_raised_in_dockerd_words(images, served):
    with pytest.raises(InvalidParameter, match="^invalid reference format: repository name must be lowercase$"):
        images.pull("BusyBox")
    with pytest.raises(InvalidParameter, match="^invalid tag format$"):
        images.pull(f"{served.host}/busybox", "bad:tag")
    with pytest.raises(InvalidParameter, match="^invalid reference format$"):
        images.pull("a:b:c")
    with pytest.raises(NotFound) as e:
        images.pull(f"{served.host}/nosuch", "latest")
    assert str(e.value) == f"manifest for {served.host}/nosuch:latest not found: manifest unknown: manifest unknown"
    assert http_status(e.value) == 404


def test_a_pull_for_another_platform_is_refused(images, served):
    for platform in ("linux/amd64", "linux", "Linux/x86_64"):
        assert list(images.pull(f"{served.host}/busybox", "latest", platform=platform))[-1]["status"].startswith(
            "Status: ")
    with pytest.raises(InvalidParameter, match="^image platform linux/arm64 is not supported: engine-py pulls "
                                               "linux/amd64 images$"):
        images.pull(f"{served.host}/busybox", "latest", platform="linux/arm64")
    with pytest.raises(InvalidParameter, match='^"a//b": unknown operating system or architecture: '
                                               'invalid argument$'):
        images.pull(f"{served.host}/busybox", "latest", platform="a//b")


def test_a_pull_failing_midway_ends_its_stream_with_the_error_and_leaves_nothing(images, served):
    with proxy(served) as front:
        front.faults.append(Fault("/blobs/", "corrupt"))
        stream = images.pull(f"{front.host}/busybox")  # the manifest resolves: the failure comes in the stream
        messages = list(stream)
    assert messages[0] == {"status": "Pulling from busybox", "id": "latest"}
    last = messages[-1]
    assert set(last) == {"errorDetail", "error"} and last["errorDetail"] == {"message": last["error"]}
    assert "sha256:" in last["error"]
    assert images.door.list() == [] and images.list() == []
    assert images.door.client.content.list([]) == []


def test_pull_from_a_registry_with_a_password_takes_x_registry_auth(images, busybox_tar):
    with docker_registry(htpasswd_user=("user", "secret")) as private:
        skopeo_copy(str(busybox_tar), private, "busybox:latest")
        with pytest.raises(Unauthorized):
            images.pull(f"{private.host}/busybox")
        auth = base64.urlsafe_b64encode(json.dumps({"username": "user", "password": "secret"}).encode()).decode()
        messages = list(images.pull(f"{private.host}/busybox", "latest", auth))
    assert messages[-1] == {"status": f"Status: Downloaded newer image for {private.host}/busybox:latest"}


def test_a_name_without_a_tag_pulls_every_tag(images, served, busybox_tar):
    """dockerd's `pull -a`: each tag in turn, the repository named in the status line."""
    for tag in ("a", "b"):
        skopeo_copy(str(busybox_tar), served, f"alltags/busybox:{tag}")
    ref = f"{served.host}/alltags/busybox"
    messages = list(images.pull(ref))
    starts = [m for m in messages if m["status"].startswith("Pulling from")]
    assert sorted(m["id"] for m in starts) == ["a", "b"]  # in the registry's order
    assert {m["status"] for m in starts} == {"Pulling from alltags/busybox"}
    assert len([m for m in messages if m["status"].startswith("Digest: sha256:")]) == 2
    assert messages[-1] == {"status": f"Status: Downloaded newer image for {ref}"}
    assert images.inspect(f"{ref}:a")["RepoTags"] == [f"{ref}:a", f"{ref}:b"]
    assert list(images.pull(ref))[-1] == {"status": f"Status: Image is up to date for {ref}"}
    with pytest.raises(NotFound, match=f"^repository {served.host}/nosuch not found$"):
        images.pull(f"{served.host}/nosuch")


def test_list_and_inspect_in_dockerd_shape(images, served):
    ref = f"{served.host}/busybox"
    pull(images, ref)
    (summary,) = images.list()
    target = images.door.get(f"{ref}:latest").target.digest
    config_digest = images.door.resolve(images.door.get(f"{ref}:latest").target).config_digest
    assert summary["Id"] == config_digest
    assert summary["RepoTags"] == [f"{ref}:latest"]
    assert summary["RepoDigests"] == [f"{ref}@{target}"]
    assert summary["Created"] == 1599999999 + 1  # 2020-09-13T12:26:40Z, the archive's config
    assert summary["Size"] == summary["VirtualSize"] > 0
    # Measured once, kept on the layer's content for the next daemon to read.
    (layer,) = images.door.resolve(images.door.get(f"{ref}:latest").target).layers
    assert images.door.client.content.info(layer.digest).labels[SIZE_LABEL] == str(summary["Size"])
    assert (summary["ParentId"], summary["SharedSize"], summary["Containers"], summary["Labels"]) == ("", -1, -1, None)

    info = images.inspect(f"{ref}:latest")
    assert info == images.inspect(config_digest[7:19]) == images.inspect(config_digest)
    assert info["Id"] == config_digest and info["RepoTags"] == [f"{ref}:latest"]
    assert info["Created"] == "2020-09-13T12:26:40Z"
    assert (info["Architecture"], info["Os"]) == ("amd64", "linux")
    assert info["Config"]["Cmd"] == ["sh"] and info["Config"]["Hostname"] == "" and info["Config"]["Labels"] is None
    assert info["RootFS"]["Type"] == "layers" and len(info["RootFS"]["Layers"]) == 1
    assert info["Metadata"] == {"LastTagTime": "0001-01-01T00:00:00Z"}
    assert list(info) == ["Id", "RepoTags", "RepoDigests", "Parent", "Comment", "Created", "Container",
                          "ContainerConfig", "DockerVersion", "Author", "Config", "Architecture", "Os", "Size",
                          "VirtualSize", "GraphDriver", "RootFS", "Metadata"]


def test_missing_and_invalid_images_are_dockerd_errors(images):
    for ref, message in [("nosuch", "No such image: nosuch:latest"), ("nosuch:1", "No such image: nosuch:1"),
                         ("sha256:" + "a" * 64, f"No such image: sha256:{'a' * 64}"),
                         ("a" * 64, f"No such image: sha256:{'a' * 64}")]:
        for call in (images.history, images.remove):
            with pytest.raises(NotFound) as e:
                call(ref)
            assert str(e.value) == message
        with pytest.raises(NotFound) as e:
            images.inspect(ref)
        assert str(e.value) == f"no such image: {ref}: {message}"  # dockerd's inspect says which name
    with pytest.raises(InvalidParameter, match="^invalid reference format: repository name must be lowercase$"):
        images.history("BusyBox")


def test_tag_adds_a_name_with_its_time_and_remove_untags_then_deletes(images, served):
    ref = f"{served.host}/busybox"
    pull(images, ref)
    new = images.tag(f"{ref}:latest", "mine", "v1")
    assert new.familiar() == "mine:v1"
    info = images.inspect("mine:v1")
    assert info["RepoTags"] == [f"{ref}:latest", "mine:v1"]
    assert info["Metadata"]["LastTagTime"] != "0001-01-01T00:00:00Z"
    with pytest.raises(InvalidParameter, match="^refusing to create a tag with a digest reference$"):
        images.tag("mine:v1", f"x@{info['RepoDigests'][0].split('@')[1]}")
    with pytest.raises(InvalidParameter, match="^invalid tag format$"):
        images.tag("mine:v1", "x", "-bad")
    with pytest.raises(NotFound, match="^No such image: nosuch:latest$"):
        images.tag("nosuch", "x")

    assert images.remove("mine:v1") == [{"Untagged": "mine:v1"}]
    target = info["RepoDigests"][0]
    layers = info["RootFS"]["Layers"]
    assert images.remove(ref) == [{"Untagged": f"{ref}:latest"}, {"Untagged": target},
                                  {"Deleted": info["Id"]}, {"Deleted": layers[0]}]
    assert images.list() == []
    assert images.door.client.snapshots("overlayfs").walk() == []  # collected before the answer
    image_id = info["Id"]
    assert images.events == [("pull", f"{ref}:latest", ref), ("tag", image_id, "mine:v1"),
                             ("untag", image_id, image_id), ("untag", image_id, image_id),
                             ("delete", image_id, image_id)]  # the digest goes with its tag, silently, as dockerd


def pulled_for_a_container(images, served, running: bool) -> tuple[str, str]:
    """busybox pulled, and a container said to use it: its reference and ID."""
    ref = f"{served.host}/busybox"
    pull(images, ref)
    image_id = images.inspect(ref)["Id"]
    images.users.by_image[image_id] = [("c0ffee" * 10 + "abcd", running)]
    return ref, image_id


def test_remove_conflicts_with_containers_as_dockerd(images, served):
    ref, image_id = pulled_for_a_container(images, served, running=False)
    with pytest.raises(Conflict) as e:
        images.remove(ref)
    assert str(e.value) == (f'conflict: unable to remove repository reference "{ref}" (must force) - container '
                            f"c0ffeec0ffee is using its referenced image {image_id[7:19]}")
    with pytest.raises(Conflict, match=f"^conflict: unable to delete {image_id[7:19]} \\(must be forced\\) - image is "
                                       "being used by stopped container c0ffeec0ffee$"):
        images.remove(image_id[7:19])

    # A running user: forced, the names go and the image stays for it, listed as dangling.
    images.users.by_image[image_id] = [("c0ffee" * 10 + "abcd", True)]
    digest_ref = images.inspect(ref)["RepoDigests"][0]
    assert images.remove(ref, force=True) == [{"Untagged": f"{ref}:latest"}, {"Untagged": digest_ref}]
    (dangling,) = images.list()
    assert (dangling["Id"], dangling["RepoTags"], dangling["RepoDigests"]) == (
        image_id, ["<none>:<none>"], ["<none>@<none>"])
    assert images.list(Filters.parse('{"dangling":{"true":true}}')) == [dangling]
    assert images.list(Filters.parse('{"dangling":{"false":true}}')) == []
    with pytest.raises(Conflict, match=f"^conflict: unable to delete {image_id[7:19]} \\(cannot be forced\\) - image "
                                       "is being used by running container c0ffeec0ffee$"):
        images.remove(image_id, force=True)
    images.tag(image_id, "again")  # named again, it is no longer dangling
    assert [i.name for i in images.door.list()] == ["docker.io/library/again:latest"]
    assert images.remove("again", force=True) == [{"Untagged": "again:latest"}]

    # A stopped user does not keep a forced removal from deleting it (its snapshot keeps its layers).
    images.users.by_image[image_id] = [("c0ffee" * 10 + "abcd", False)]
    assert images.remove(image_id, force=True)[0] == {"Deleted": image_id}
    assert images.list() == []


def test_remove_by_name_of_an_image_a_stopped_container_uses_deletes_it_when_forced(images, served):
    ref, image_id = pulled_for_a_container(images, served, running=False)
    assert {"Deleted": image_id} in images.remove(ref, force=True)


def test_remove_by_id_of_an_image_in_two_repositories_must_be_forced(images, served):
    ref = f"{served.host}/busybox"
    pull(images, ref)
    images.tag(ref, "mine")
    image_id = images.inspect(ref)["Id"]
    with pytest.raises(Conflict, match=f"^conflict: unable to delete {image_id[7:19]} \\(must be forced\\) - image "
                                       "is referenced in multiple repositories$"):
        images.remove(image_id)
    records = images.remove(image_id, force=True)
    untagged = [r["Untagged"] for r in records if "Untagged" in r]
    assert untagged == [f"{ref}:latest", untagged[1], "mine:latest"]
    assert untagged[1].startswith(f"{ref}@sha256:")
    assert {"Deleted": image_id} in records


def test_list_filters(images, served):
    pull(images, f"{served.host}/busybox")
    images.tag(f"{served.host}/busybox", "mine/app", "v1")
    by = lambda raw: [(s["RepoTags"], s["RepoDigests"]) for s in images.list(Filters.parse(json.dumps(raw)))]
    assert by({"reference": {"mine/*": True}}) == [(["mine/app:v1"], None)]
    assert by({"reference": {"mine/app:v1": True}}) == [(["mine/app:v1"], None)]
    assert by({"reference": {"mine": True}}) == []  # a path.Match glob: * stops at /
    assert by({"label": {"nope": True}}) == []
    assert by({"dangling": {"true": True}}) == []
    assert len(by({"dangling": {"false": True}})) == 1
    with pytest.raises(InvalidParameter, match=r"^Invalid filter 'dangling=\[maybe\]'$"):
        images.list(Filters.parse('{"dangling":{"maybe":true}}'))
    with pytest.raises(InvalidParameter, match="^Invalid filter 'name'$"):
        images.list(Filters.parse('{"name":{"x":true}}'))
    assert by({"before": {"mine/app:v1": True}}) == [] == by({"since": {"mine/app:v1": True}})
    with pytest.raises(NotFound, match="^No such image: nosuch:latest$"):
        images.list(Filters.parse('{"since":{"nosuch":true}}'))


def test_history_entries_newest_first(images, served):
    pull(images, f"{served.host}/busybox")
    # busybox's config has no history: dockerd answers an empty list.
    assert images.history(f"{served.host}/busybox") == []
