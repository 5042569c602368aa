"""The diff service's overlay path: the changes read from an overlay's upper
directory alone are the changes the side-by-side walk of both trees finds
(additions, modifications, deletions as whiteouts, a directory replaced as
an opaque one, a file replaced by a directory), and the differ takes that
path only for an overlay over exactly the lower tree's layers."""
import os
import shutil
import subprocess

import pytest

from containerd_py.diff.changes import changes, overlay_changes
from containerd_py.diff.walking import _upper_over
from containerd_py.types import Mount

pytestmark = pytest.mark.root


@pytest.fixture
def overlay(tmp_path):
    lower, upper, work, merged = (tmp_path / name for name in ("lower", "upper", "work", "merged"))
    for d in (lower, upper, work, merged):
        d.mkdir()
    for path in ("etc/passwd", "var/cache/a", "var/cache/b", "home/user/.profile", "opaque/old", "was-file",
                 "bin/true"):
        os.makedirs(lower / os.path.dirname(path), exist_ok=True)
        (lower / path).write_text(path)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={lower},upperdir={upper},workdir={work}", str(merged)], check=True)
    try:
        yield lower, upper, merged
    finally:
        subprocess.run(["umount", str(merged)], check=True)


def test_the_upper_directory_gives_the_walks_changes(overlay):
    lower, upper, merged = overlay
    os.makedirs(merged / "new/deeper")
    (merged / "new/deeper/file").write_text("added")
    with open(merged / "etc/passwd", "a") as f:
        f.write("guest\n")
    os.unlink(merged / "var/cache/b")
    shutil.rmtree(merged / "home")
    shutil.rmtree(merged / "opaque")
    os.makedirs(merged / "opaque")
    (merged / "opaque/new").write_text("replaced")
    os.unlink(merged / "was-file")
    os.makedirs(merged / "was-file")
    os.chmod(merged / "bin/true", 0o700)
    walked = changes(str(merged), str(lower))
    assert os.getxattr(upper / "opaque", "trusted.overlay.opaque") == b"y"
    assert sorted(overlay_changes(str(upper), str(lower)), key=lambda c: c.path) == sorted(walked,
                                                                                           key=lambda c: c.path)


def test_the_overlay_path_only_over_the_same_layers():
    upper = [Mount("overlay", "overlay", ["workdir=/w", "upperdir=/u", "lowerdir=/a:/b"])]
    assert _upper_over(upper, [Mount("overlay", "overlay", ["lowerdir=/a:/b"])]) == "/u"
    assert _upper_over(upper, [Mount("overlay", "overlay", ["lowerdir=/b"])]) == ""
    assert _upper_over([Mount("overlay", "overlay", ["upperdir=/u", "lowerdir=/a"])],
                       [Mount("bind", "/a", ["ro", "rbind"])]) == "/u"
    assert _upper_over([Mount("overlay", "overlay", ["upperdir=/u", "lowerdir=/a", "metacopy=on"])],
                       [Mount("bind", "/a", ["ro", "rbind"])]) == ""
    assert _upper_over([Mount("bind", "/u", ["rw", "rbind"])], []) == ""
