"""An image the engine built, pushed to a registry and pulled and run by
real dockerd: a build's layers are plain tars (as dockerd's layer store
keeps them), which registries and dockerd's pull take as they are."""
import pytest

from test_images_push import reachable  # noqa: F401 (fixture)
from test_images_service import busybox_tar, daemon, registry  # noqa: F401 (fixtures)
from test_containers_api import unique

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
