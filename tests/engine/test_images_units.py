"""The image services' pure parts, without a daemon: push progress as
dockerd's messages, platforms, insecure registries and mirrors."""
import pytest

from containerd_py.transfer import progress as p
from containerd_py.types import Descriptor
from engine.errors import InvalidParameter
from engine.services.image_push import PushProgress
from engine.services.images import check_platform
from engine.services.registries import is_insecure, mirror_host

LAYER = Descriptor("application/vnd.docker.image.rootfs.diff.tar.gzip", "sha256:" + "a" * 64, 2 << 20)
CONFIG = Descriptor("application/vnd.docker.container.image.v1+json", "sha256:" + "c" * 64, 100)


def test_push_progress_names_layers_by_diff_id_and_throttles_bars():
    seen = []
    progress = PushProgress(seen.append, {LAYER.digest: "sha256:" + "d" * 64}, lambda digest: "other/repo")
    progress.update("config", CONFIG, p.PUSHED, CONFIG.size)  # not shown, as dockerd shows no config
    for done in range(0, LAYER.size + 1, 64 << 10):
        progress.update("layer", LAYER, p.UPLOADING, done)
    progress.update("layer", LAYER, p.PUSHED, LAYER.size)
    progress.update("layer", LAYER, p.MOUNTED, LAYER.size)
    progress.update("layer", LAYER, p.ALREADY_PUSHED, LAYER.size)
    assert {m["id"] for m in seen} == {"d" * 12}
    bars = [m for m in seen if m["status"] == "Pushing"]
    assert 1 < len(bars) <= 5 and bars[-1]["progressDetail"] == {"current": LAYER.size, "total": LAYER.size}
    assert [m["status"] for m in seen[len(bars):]] == ["Pushed", "Mounted from other/repo", "Layer already exists"]
    assert seen[-1] == {"status": "Layer already exists", "progressDetail": {}, "id": "d" * 12}


@pytest.mark.parametrize("platform", ["", "linux", "linux/amd64", "LINUX/AMD64", "linux/x86_64", "linux/amd64/v1"])
def test_platforms_the_engine_pulls(platform):
    check_platform(platform)


@pytest.mark.parametrize("platform,message", [
    ("linux/arm64", "image platform linux/arm64 is not supported: engine-py pulls linux/amd64 images"),
    ("windows", "image platform windows is not supported: engine-py pulls linux/amd64 images"),
    ("linux//x", '"linux//x": unknown operating system or architecture: invalid argument'),
    ("a/b/c/d", '"a/b/c/d": unknown operating system or architecture: invalid argument')])
def test_other_platforms_are_refused(platform, message):
    with pytest.raises(InvalidParameter) as e:
        check_platform(platform)
    assert str(e.value) == message


def test_insecure_registries_take_names_and_cidrs():
    entries = ("myreg:5000", "10.1.0.0/16", "fd00::/8", "not a cidr/x")
    assert is_insecure("myreg:5000", entries) and is_insecure("10.1.2.3:5000", entries)
    assert is_insecure("[fd00::1]:5000", entries) and is_insecure("10.1.2.3", entries)
    assert not is_insecure("10.2.0.1:5000", entries) and not is_insecure("myreg", entries)
    assert not is_insecure("example.com:5000", entries)


def test_mirrors_are_urls():
    assert mirror_host("http://127.0.0.1:5000") == ("127.0.0.1:5000", True)
    assert mirror_host("https://mirror.example") == ("mirror.example", False)
    assert mirror_host("mirror.example:5000/") == ("mirror.example:5000", False)
