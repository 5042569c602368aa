"""The diff service's Diff (`ctr snapshots diff`): the changes of a snapshot
against its parent as a layer, from our daemon and from real containerd,
entry for entry alike."""
import io
import os
import shutil
import subprocess
import tarfile

import pytest

from conftest import mounted
from containerd_py.client import Client
from test_ctr_peer import NAME, busybox_layers, chain_id
from imagebuild import build_image, oci_archive

CAPABILITY = "SCHILY.xattr.security.capability"
pytestmark = [pytest.mark.root,
              pytest.mark.skipif(shutil.which("ctr") is None, reason="ctr (Debian package containerd) not installed")]


def _changed(client: Client, parent: str) -> None:
    """A snapshot "work" on parent, changed through its mounts: added, modified, deleted, chmod'ed."""
    with mounted(client.snapshots("overlayfs").prepare("work", parent)) as root:
        os.makedirs(f"{root}/new/deeper")
        with open(f"{root}/new/deeper/file", "w") as f:
            f.write("added")
        with open(f"{root}/etc/passwd", "a") as f:
            f.write("guest:x:405:100::/:/bin/sh\n")
        os.unlink(f"{root}/var/cache/b")
        shutil.rmtree(f"{root}/home")
        os.chmod(f"{root}/bin/true", 0o700)
        os.symlink("/etc/passwd", f"{root}/etc/link")
        os.link(f"{root}/new/deeper/file", f"{root}/new/hard")
        subprocess.run(["setcap", "cap_net_raw+ep", f"{root}/new/deeper/file"], check=True)


def _entries(layer: bytes) -> list[tuple]:
    with tarfile.open(fileobj=io.BytesIO(layer)) as tf:
        return [(m.name.rstrip("/"), m.type, m.mode, m.uid, m.gid, m.size, m.linkname,
                 tf.extractfile(m).read() if m.isreg() else b"", m.pax_headers.get(CAPABILITY))
                for m in tf.getmembers()]


def test_a_snapshots_diff_is_the_layer_containerd_makes(both, tmp_path):
    image = build_image(busybox_layers(), compression="none")
    (tmp_path / "image.tar").write_bytes(oci_archive(image, NAME))
    layers = []
    for c in both:
        c("images", "import", str(tmp_path / "image.tar"))
        client = Client(c.address, c.ns)
        try:
            with client.backend.leased(c.ns):  # or real containerd's collector takes the snapshot meanwhile
                _changed(client, chain_id(image.diff_ids))
                made = subprocess.run(["ctr", "--address", c.address, "-n", c.ns, "snapshots", "diff",
                                       "--media-type", "application/vnd.oci.image.layer.v1.tar", "work"],
                                      capture_output=True, timeout=120)
                client.snapshots("overlayfs").remove("work")
        finally:
            client.close()
        assert made.returncode == 0, made.stderr
        layers.append(_entries(made.stdout))
    assert layers[0] == layers[1]
    names = [entry[0] for entry in layers[0]]
    assert [entry[-1] is not None for entry in layers[0] if entry[0] == "new/deeper/file"] == [True]
    assert ".wh.home" in names and "var/cache/.wh.b" in names and "home/x" not in names
