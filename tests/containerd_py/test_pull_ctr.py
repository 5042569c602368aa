"""ctr pulling from a registry through our daemon, against real containerd doing the
same (differential), and ctr and our client reading what the other pushed."""
import shutil
import subprocess
import sys
import uuid

import pytest

from imagebuild import build_image, oci_archive
from registries import skopeo_copy
from test_ctr_peer import busybox_layers, chain_id, content_table, normalized, rootfs_tree

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(shutil.which("ctr") is None, reason="ctr (Debian package containerd) not installed")]


def ctl(address: str, ns: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "containerd_py.client", "-a", address, "-n", ns, *args],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


@pytest.fixture
def in_registry(registry, tmp_path):
    image = build_image(busybox_layers())
    (tmp_path / "img.tar").write_bytes(oci_archive(image, "x/busybox:latest"))
    repo = f"busybox{uuid.uuid4().hex[:8]}"
    skopeo_copy(str(tmp_path / "img.tar"), registry, f"{repo}:v1")
    return f"{registry.host}/{repo}:v1", image


def test_ctr_pull_matches_containerd(both, in_registry):
    ours, theirs = both
    ref, image = in_registry
    for c in both:
        out = c("images", "pull", "--plain-http", ref).stdout
        assert f"unpacking linux/amd64 {image.manifest['digest']}" in out
    assert normalized(ours("images", "ls").stdout) == normalized(theirs("images", "ls").stdout)
    assert content_table(ours) == content_table(theirs)
    assert normalized(ours("snapshots", "ls").stdout) == normalized(theirs("snapshots", "ls").stdout)
    top = chain_id(image.diff_ids)
    assert rootfs_tree(ours.address, ours.ns, top) == rootfs_tree(theirs.address, theirs.ns, top)
    # And removing with --sync collects everything the image held, on both.
    for c in both:
        c("images", "rm", "--sync", ref)
        assert content_table(c) == [] and normalized(c("snapshots", "ls").stdout) == ["KEY PARENT KIND"]


def test_our_client_pull_matches_ctr_pull(both, in_registry):
    """containerd-py-ctl against real containerd gives what ctr gives against ours."""
    ours, theirs = both
    ref, image = in_registry
    ours("images", "pull", "--plain-http", ref)
    result = ctl(theirs.address, theirs.ns, "pull", "--plain-http", ref)
    assert result.returncode == 0, result.stderr
    assert content_table(ours) == content_table(theirs)
    assert normalized(ours("snapshots", "ls").stdout) == normalized(theirs("snapshots", "ls").stdout)


def test_ctr_pulls_what_our_client_pushed(ctr, daemon, registry, in_registry, ns):
    ref, image = in_registry
    result = ctl(daemon.address, ns, "pull", "--plain-http", ref)
    assert result.returncode == 0, result.stderr
    pushed = f"{registry.host}/ours{uuid.uuid4().hex[:8]}:pushed"
    result = ctl(daemon.address, ns, "push", "--plain-http", "--chunk-size", "65536", pushed, ref)
    assert result.returncode == 0, result.stderr
    ctr("images", "pull", "--plain-http", pushed)
    assert image.manifest["digest"] in ctr("images", "ls").stdout
    assert chain_id(image.diff_ids) in ctr("snapshots", "ls").stdout
