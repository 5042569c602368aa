"""Builds and registries: an image the engine built, pushed to a registry
and pulled and run by real dockerd (a build's layers are plain tars, as
dockerd's layer store keeps them, which registries and dockerd's pull take
as they are); a FROM pulled from a registry that wants the CLI's credentials."""
import pytest

from test_images_push import private_registry, reachable  # noqa: F401 (fixture)
from test_images_service import busybox_tar, daemon, registry  # noqa: F401 (fixtures)
from test_containers_api import unique
from registries import skopeo_copy  # (on the path test_images_service puts it)

pytestmark = pytest.mark.root


def test_a_built_image_pushed_is_pulled_and_run_by_dockerd(engine_py, dockerd, reachable, tmp_path):  # noqa: F811
    (tmp_path / "hello.txt").write_text("copied in\n")
    (tmp_path / "Dockerfile").write_text('FROM busybox\nRUN echo run > /run.txt\nCOPY hello.txt /\n'
                                         'CMD ["cat", "/run.txt", "/hello.txt"]\n')
    name = f"{reachable.host}/{unique('built')}:v1"
    engine_py.docker("build", "-q", "-t", name, str(tmp_path), cli="20.10")  # its legacy builder by default
    try:
        engine_py.docker("push", name)
        dockerd.docker("pull", name)
        assert dockerd.docker("run", "--rm", name).stdout == "run\ncopied in\n"
    finally:
        engine_py.docker("rmi", name, check=False)
        dockerd.docker("rmi", name, check=False)


def test_a_from_of_a_private_registry_pulls_with_the_clis_credentials(engine_py, dockerd, busybox_tar,  # noqa: F811
                                                                      tmp_path):
    """After `docker login`, the CLI sends its credentials as X-Registry-Config; the FROM's pull uses them."""
    with private_registry(engine_py, dockerd) as private:
        skopeo_copy(str(busybox_tar), private, "secret/base:1")
        (tmp_path / "Dockerfile").write_text(f"FROM {private.host}/secret/base:1\nRUN echo on the private base\n")
        refused = engine_py.docker("build", "-t", "from-private", str(tmp_path), check=False, cli="20.10")
        assert refused.returncode != 0 and "no basic auth credentials" in refused.stderr + refused.stdout
        engine_py.docker("login", "-u", "user", "--password-stdin", private.host, input="secret", cli="20.10")
        try:
            built = engine_py.docker("build", "-t", "from-private", str(tmp_path), cli="20.10")
            assert "on the private base" in built.stdout and "Successfully tagged from-private:latest" in built.stdout
        finally:
            engine_py.docker("logout", private.host, cli="20.10")
            engine_py.docker("rmi", "from-private", f"{private.host}/secret/base:1", check=False)
