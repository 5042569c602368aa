"""pull, push, login and search through the docker CLI at engine-py, against
loopback docker-registry processes served inside the engine's network
namespace and dockerd's, so that both daemons reach one registry under one
name and their output can be compared line by line."""
import contextlib
import os
import re
import subprocess
import uuid

import pytest

from test_images_service import busybox_tar, daemon, registry  # noqa: F401  (fixtures)
from test_containers_api import unique
from test_images_vs_dockerd import registry_in
from dockerd_oracle import DOCKER_CLI
from imagebuild import file_, layer_tar
from registries import docker_registry, free_port, skopeo_copy

from containerd_py.client import Client
from engine.containerd.images import ContainerdImages
from engine.errors import InvalidParameter, NotFound, Unauthorized
from engine.services.images import ImageService
from engine.services.registries import RegistryAccess

pytestmark = pytest.mark.root
CLIS = ("28", "20.10")


@pytest.fixture(scope="module")
def reachable(engine_py, dockerd, registry):  # noqa: F811
    """The session's registry, on its address inside both daemons' namespaces too."""
    with registry_in(engine_py.netns, registry), registry_in(dockerd.netns, registry):
        yield registry


@contextlib.contextmanager
def private_registry(engine_py, dockerd):
    """A registry with a password (user/secret), reachable by both daemons."""
    with docker_registry(htpasswd_user=("user", "secret")) as private, registry_in(engine_py.netns, private), \
            registry_in(dockerd.netns, private):
        yield private


def masked(text: str) -> list[str]:
    """Output lines with digests and sizes made comparable; dockerd's racy Waiting left out."""
    lines = [re.sub(r"sha256:[0-9a-f]{64}", "sha256:X", line) for line in text.splitlines()]
    lines = [re.sub(r"size: \d+", "size: N", line) for line in lines]
    return [line for line in lines if not line.endswith(": Waiting")]


def fresh_layer(tmp_path) -> str:
    """A root filesystem tar no registry has seen: its layer is pushed, not found or mounted."""
    path = tmp_path / "rootfs.tar"
    path.write_bytes(layer_tar([file_("data", uuid.uuid4().hex.encode() * 50)]))
    return str(path)


@pytest.fixture
def both_imported(engine_py, dockerd, reachable, tmp_path):
    """The same root filesystem imported into both daemons as <registry>/<fresh repo>:v1 each."""
    rootfs = fresh_layer(tmp_path)
    ours, theirs = f"{reachable.host}/{unique('ours')}:v1", f"{reachable.host}/{unique('theirs')}:v1"
    engine_py.docker("import", rootfs, ours)
    dockerd.docker("import", rootfs, theirs)
    yield ours, theirs
    engine_py.docker("rmi", "-f", ours, check=False)
    dockerd.docker("rmi", "-f", theirs, check=False)


def test_push_output_matches_dockerd(engine_py, dockerd, both_imported):
    ours, theirs = both_imported
    pushed = engine_py.docker("push", ours, cli="20.10").stdout
    expected = masked(dockerd.docker("push", theirs).stdout.replace(theirs.split(":v1")[0], ours.split(":v1")[0]))
    assert masked(pushed) == expected
    assert masked(pushed)[0] == f"The push refers to repository [{ours.split(':v1')[0]}]"
    assert re.fullmatch(r"[0-9a-f]{12}: Pushed", masked(pushed)[-2])
    digest = re.search(r"digest: (sha256:[0-9a-f]{64})", pushed)[1]
    assert f"{ours.split(':v1')[0]}@{digest}" in engine_py.docker("inspect", "-f", "{{.RepoDigests}}", ours).stdout
    # Again: the registry has the layer.
    again = masked(engine_py.docker("push", ours, cli="20.10").stdout)
    assert again == masked(dockerd.docker("push", theirs).stdout.replace(theirs.split(":v1")[0],
                                                                         ours.split(":v1")[0]))
    assert again[-2].endswith(": Layer already exists")


@pytest.mark.parametrize("cli", CLIS)
def test_push_then_pull_back(engine_py, reachable, cli):
    name = f"{reachable.host}/{unique('round')}:v1"
    repo = name.rsplit(":", 1)[0]
    engine_py.docker("tag", "busybox", name)
    try:
        pushed = engine_py.docker("push", name, cli=cli).stdout.splitlines()
        assert pushed[0] == f"The push refers to repository [{repo}]"
        assert re.fullmatch(r"v1: digest: sha256:[0-9a-f]{64} size: \d+", pushed[-1])
        engine_py.docker("rmi", name, cli=cli)
        pulled = engine_py.docker("pull", name, cli=cli).stdout.splitlines()
        assert pulled[0] == f"v1: Pulling from {repo.split('/', 1)[1]}"
        assert pulled[-3:] == [f"Digest: {pushed[-1].split()[2]}", f"Status: Downloaded newer image for {name}", name]
    finally:
        engine_py.docker("rmi", name, check=False)


def test_push_errors_match_dockerd(engine_py, dockerd, reachable):
    for name in (f"{reachable.host}/nosuch-repo:v1", f"{reachable.host}/nosuch-repo", "Bad/Name"):
        ours = engine_py.docker("push", name, check=False, cli="20.10")
        theirs = dockerd.docker("push", name, check=False)
        assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr)


def dockerd_login(dockerd, tmp_path, host: str, password: str) -> subprocess.CompletedProcess:
    """`docker login` at dockerd, keeping what it stores in a directory of the test's own."""
    env = {**os.environ, "DOCKER_CONFIG": str(tmp_path / "dockerd-config")}
    return subprocess.run([DOCKER_CLI, "-H", f"unix://{dockerd.socket}", "login", "-u", "user", "--password-stdin",
                           host], input=password, capture_output=True, text=True, env=env, timeout=120)


def test_login_checks_the_credentials_as_dockerd(engine_py, dockerd, busybox_tar, tmp_path):  # noqa: F811
    with private_registry(engine_py, dockerd) as private:
        skopeo_copy(str(busybox_tar), private, "secret/busybox:1")
        name = f"{private.host}/secret/busybox:1"
        engine_py.docker("tag", "busybox", name)
        dockerd.docker("tag", "busybox", name)
        for verb in ("pull", "push"):  # no credentials yet: dockerd's words, a 500 (the CLI asks no login)
            ours = engine_py.docker(verb, name, check=False, cli="20.10")
            theirs = dockerd.docker(verb, name, check=False)
            assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr)
        dockerd.docker("rmi", name)
        engine_py.docker("rmi", name)
        for password in ("wrong", "secret"):
            ours = engine_py.docker("login", "-u", "user", "--password-stdin", private.host, input=password,
                                    check=False, cli="20.10")
            theirs = dockerd_login(dockerd, tmp_path, private.host, password)
            where = re.compile(r"stored unencrypted in \S+")  # each CLI's own config directory
            assert (ours.returncode, ours.stdout, where.sub("", ours.stderr)) == \
                (theirs.returncode, theirs.stdout, where.sub("", theirs.stderr))
        # The CLI now sends the stored credentials: pull and push work.
        assert engine_py.docker("pull", name).stdout.splitlines()[-1] == name
        engine_py.docker("tag", name, f"{private.host}/secret/copy:2")
        assert "2: digest: sha256:" in engine_py.docker("push", f"{private.host}/secret/copy:2").stdout
        engine_py.docker("rmi", name, f"{private.host}/secret/copy:2")
        engine_py.docker("logout", private.host)


def test_search_answers_from_the_registry_catalog(engine_py, reachable, busybox_tar):  # noqa: F811
    repo = unique("searchable")
    skopeo_copy(str(busybox_tar), reachable, f"{repo}/thing:1")
    found = engine_py.docker("search", "--format", "{{.Name}} {{.StarCount}}", f"{reachable.host}/{repo}").stdout
    assert found.splitlines() == [f"{reachable.host}/{repo}/thing 0"]
    assert engine_py.docker("search", f"{reachable.host}/nothing-like-it-{repo}").stdout.splitlines()[1:] == []
    bad = engine_py.docker("search", "--filter", "stars=x", f"{reachable.host}/{repo}", check=False)
    assert bad.returncode == 1 and "Invalid filter 'stars=x'" in bad.stderr


def test_search_of_a_plain_term_asks_the_mirror(registry, busybox_tar):  # noqa: F811
    skopeo_copy(str(busybox_tar), registry, "library/mirrored:1")
    access = RegistryAccess(mirrors=(f"http://{registry.host}",))
    found = access.search("mirrored")
    assert found == [{"star_count": 0, "is_official": True, "name": "mirrored", "is_automated": False,
                      "description": ""}]
    assert access.search("mirrored", filters_param='{"is-official":{"false":true}}') == []
    assert access.search("mirrored", limit="1") == found
    for limit, message in (("0", "Limit 0 is outside the range of [1, 100]"),
                           ("x", 'strconv.Atoi: parsing "x": invalid syntax')):
        with pytest.raises(InvalidParameter, match=f"^{re.escape(message)}$"):
            access.search("mirrored", limit=limit)
    with pytest.raises(InvalidParameter, match=r"^Invalid filter 'is-official=\[maybe\]'$"):
        access.search("mirrored", filters_param='{"is-official":{"maybe":true}}')
    with pytest.raises(InvalidParameter, match="^Invalid filter 'nope'$"):
        access.search("mirrored", filters_param='{"nope":{"1":true}}')


def test_login_service_words(busybox_tar):  # noqa: F811
    with docker_registry(htpasswd_user=("user", "secret")) as private:
        access = RegistryAccess()
        assert access.login({"username": "user", "password": "secret", "serveraddress": private.host}) == \
            {"IdentityToken": "", "Status": "Login Succeeded"}
        with pytest.raises(Unauthorized) as e:
            access.login({"username": "user", "password": "nope", "serveraddress": f"http://{private.host}"})
        assert str(e.value) == f"login attempt to http://{private.host}/v2/ failed with status: 401 Unauthorized"


def test_pull_output_matches_dockerd(engine_py, dockerd, reachable, tmp_path):
    """Both pull one image (the same blobs) from the registry: the same lines, dockerd's racy
    Waiting and Verifying Checksum left out (it may skip them on a fast transfer)."""
    rootfs = fresh_layer(tmp_path)
    name = f"{reachable.host}/{unique('pulled')}:v1"
    engine_py.docker("import", rootfs, name)
    engine_py.docker("push", name)
    engine_py.docker("rmi", name)
    racy = (": Waiting", ": Verifying Checksum")
    try:
        ours = [line for line in engine_py.docker("pull", name, cli="20.10").stdout.splitlines()
                if not line.endswith(racy)]
        theirs = [line for line in dockerd.docker("pull", name).stdout.splitlines() if not line.endswith(racy)]
        assert ours == theirs
        assert ours[-1] == name and re.fullmatch(r"[0-9a-f]{12}: Pull complete", ours[-4])
        again = engine_py.docker("pull", name, cli="20.10").stdout
        assert again == dockerd.docker("pull", name).stdout
        assert f"Status: Image is up to date for {name}" in again
    finally:
        engine_py.docker("rmi", name, check=False)
        dockerd.docker("rmi", name, check=False)


@pytest.mark.parametrize("cli", CLIS)
def test_push_without_a_tag(engine_py, reachable, cli):
    repo = f"{reachable.host}/{unique('tags')}"
    for tag in ("a", "b"):
        engine_py.docker("tag", "busybox", f"{repo}:{tag}")
    try:
        pushed = engine_py.docker("push", "--all-tags", repo, cli=cli).stdout
        assert re.search(r"^a: digest: sha256:", pushed, re.M) and re.search(r"^b: digest: sha256:", pushed, re.M)
    finally:
        engine_py.docker("rmi", f"{repo}:a", f"{repo}:b", check=False)


def test_docker_hub_images_are_pulled_from_the_mirror(daemon, registry, busybox_tar):  # noqa: F811
    """registry-mirrors: a short name is asked of the first mirror that answers (one that does
    not is passed over), and named as Docker Hub's image."""
    skopeo_copy(str(busybox_tar), registry, "library/mirrored:1")
    client = Client(daemon.address, unique("engine"))
    try:
        service = ImageService(ContainerdImages(client), mirrors=("http://127.0.0.1:1", f"http://{registry.host}"))
        messages = list(service.pull("mirrored", "1"))
        assert messages[0] == {"status": "Pulling from library/mirrored", "id": "1"}
        assert messages[-1] == {"status": "Status: Downloaded newer image for mirrored:1"}
        assert service.inspect("mirrored:1")["RepoTags"] == ["mirrored:1"]
        with pytest.raises(NotFound, match="^manifest for nosuch:latest not found"):
            ImageService(ContainerdImages(client), mirrors=(f"http://{registry.host}",)).pull("nosuch", "latest")
        with pytest.raises(NotFound, match="^repository nosuch not found$"):  # every tag: none
            ImageService(ContainerdImages(client), mirrors=(f"http://{registry.host}",)).pull("nosuch")
    finally:
        for image in client.images.list([]):
            client.images.delete(image.name, sync=True)
        client.close()


def test_pull_of_every_tag_matches_dockerd(engine_py, dockerd, reachable, tmp_path):
    repo = f"{reachable.host}/{unique('every')}"
    engine_py.docker("import", fresh_layer(tmp_path), f"{repo}:a")
    engine_py.docker("tag", f"{repo}:a", f"{repo}:b")
    engine_py.docker("push", "--all-tags", repo)
    engine_py.docker("rmi", f"{repo}:a", f"{repo}:b")
    racy = (": Waiting", ": Verifying Checksum")
    try:
        ours = [line for line in engine_py.docker("pull", "-a", repo, cli="20.10").stdout.splitlines()
                if not line.endswith(racy)]
        theirs = [line for line in dockerd.docker("pull", "-a", repo).stdout.splitlines() if not line.endswith(racy)]
        assert ours == theirs
        assert ours[-2:] == [f"Status: Downloaded newer image for {repo}", repo]
    finally:
        engine_py.docker("rmi", f"{repo}:a", f"{repo}:b", check=False)
        dockerd.docker("rmi", f"{repo}:a", f"{repo}:b", check=False)


def test_a_registry_that_does_not_answer_as_dockerd(engine_py, dockerd):
    """dockerd asks a registry's /v2/ first: its words for a pull and a push nothing answers."""
    name = f"127.0.0.1:{free_port()}/{unique('nobody')}:v1"
    subprocess.run(["ip", "-n", dockerd.netns, "link", "set", "lo", "up"], check=True)  # as the engine's
    engine_py.docker("tag", "busybox", name)
    dockerd.docker("tag", "busybox", name)
    try:
        for verb in ("pull", "push"):
            ours = engine_py.docker(verb, name, check=False, cli="20.10")
            theirs = dockerd.docker(verb, name, check=False)
            assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr)
    finally:
        engine_py.docker("rmi", name, check=False)
        dockerd.docker("rmi", name, check=False)


def test_a_layer_pushed_to_another_repository_is_mounted_as_dockerd(engine_py, dockerd, both_imported):
    """The second repository of the registry gets the layer by a cross-repository mount."""
    outputs = []
    for daemon, first in ((engine_py, both_imported[0]), (dockerd, both_imported[1])):
        repo = first.split(":v1")[0]
        second = f"{repo}-again:v1"
        daemon.docker("push", first)
        daemon.docker("tag", first, second)
        try:
            pushed = daemon.docker("push", second, **({"cli": "20.10"} if daemon is engine_py else {})).stdout
        finally:
            daemon.docker("rmi", second)
        outputs.append(masked(pushed.replace(repo, "REPO").replace(repo.split("/", 1)[1], "REPO")))
    ours, theirs = outputs
    assert re.fullmatch(r"[0-9a-f]{12}: Mounted from REPO", ours[-2])
    assert ours == theirs
