"""containerd-py-ctl as a person uses it: pull with progress, listings, removal,
namespaces, and clear errors with exit status 1."""
import io
import subprocess
import sys
import uuid

import pytest

from containerd_py.client.cli.progress import Display
from containerd_py.transfer import progress as p
from containerd_py.types import Descriptor
from imagebuild import build_image, dir_, file_, oci_archive
from registries import skopeo_copy

pytestmark = pytest.mark.root


def ctl(daemon, ns, *args):
    return subprocess.run([sys.executable, "-m", "containerd_py.client", "-a", daemon.address, "-n", ns, *args],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_pull_ls_rm(daemon, registry, ns, tmp_path):
    image = build_image([[dir_("d"), file_("d/f", b"x" * 5000)], [file_("g", b"g")]])
    (tmp_path / "img.tar").write_bytes(oci_archive(image, "x/y:latest"))
    repo = f"cli{uuid.uuid4().hex[:8]}"
    skopeo_copy(str(tmp_path / "img.tar"), registry, f"{repo}:v1")
    ref = f"{registry.host}/{repo}:v1"
    pulled = ctl(daemon, ns, "pull", "--plain-http", ref)
    assert pulled.returncode == 0, pulled.stderr
    lines = pulled.stdout.splitlines()
    assert lines[0] == f"v1: Pulling from {repo}"
    for d in image.layer_digests:  # not a terminal: one line per change of state, in order
        short = d[7:19]
        states = [l.split(": ", 1)[1].split(" [")[0] for l in lines if l.startswith(short + ":")]
        assert states == ["Waiting", "Downloading", "Download complete", "Extracting", "Pull complete"]
    assert lines[-2:] == [f"Digest: {image.manifest['digest']}", f"Status: Downloaded image for {ref}"]
    listed = ctl(daemon, ns, "images", "ls").stdout.splitlines()
    assert listed[0].split() == ["REF", "TYPE", "DIGEST", "SIZE", "PLATFORMS"]
    assert listed[1].split()[0] == ref and listed[1].split()[-1] == "linux/amd64"
    assert set(ctl(daemon, ns, "content", "ls", "-q").stdout.split()) == set(image.blobs)
    assert len(ctl(daemon, ns, "snapshots", "ls").stdout.splitlines()) == 3
    assert ctl(daemon, ns, "images", "rm", "--sync", ref).stdout.split() == [ref]
    assert ctl(daemon, ns, "content", "ls", "-q").stdout == ""
    assert ctl(daemon, ns, "snapshots", "ls").stdout.splitlines() == ["KEY  PARENT  KIND"]


def test_namespaces(daemon, ns):
    assert ctl(daemon, ns, "namespaces", "create", ns, "a=b").returncode == 0
    # Columns are as wide as the longest name of any test's namespace.
    assert [ns, "a=b"] in [line.split() for line in ctl(daemon, ns, "namespaces", "ls").stdout.splitlines()]
    assert ctl(daemon, ns, "namespaces", "rm", ns).stdout.split() == [ns]
    assert ns not in ctl(daemon, ns, "namespaces", "ls", "-q").stdout.split()


@pytest.mark.parametrize("args, message", [
    (["pull", "--plain-http", "{registry}/missing:v1"], "not found"),
    (["pull", "Bad/Ref"], "invalid repository path component"),
    (["images", "rm", "nope"], 'image "nope": not found'),
    (["import", "/dev/null"], "reading the archive"),
])
def test_errors_are_one_line_and_exit_1(daemon, registry, ns, args, message):
    result = ctl(daemon, ns, *[a.format(registry=registry.host) for a in args])
    assert result.returncode == 1 and message in result.stderr and result.stderr.startswith("containerd-py-ctl: ")
    assert "Traceback" not in result.stderr


def test_unreachable_daemon(tmp_path):
    result = subprocess.run([sys.executable, "-m", "containerd_py.client", "-a", str(tmp_path / "none.sock"),
                             "--connect-timeout", "1", "images", "ls"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "connecting to" in result.stderr


def test_terminal_display_redraws_in_place():
    out = io.StringIO()
    display = Display(out, tty=True)
    a, b = Descriptor("l", "sha256:" + "a" * 64, 1000), Descriptor("l", "sha256:" + "b" * 64, 10)
    display.update("layer", a, p.DOWNLOADING, 500)
    display.update("layer", b, p.WAITING)
    display.update("layer", a, p.DOWNLOADED, 1000)
    display.update("config", b, p.DOWNLOADED)  # not a layer: not shown
    frames = out.getvalue().split("\x1b[2K")
    assert frames[1] == "aaaaaaaaaaaa: Downloading [===================>                    ] 500B/1.0kB\n\x1b[1A"
    assert out.getvalue().count("\x1b[2A") == 1  # the third update moved up over both rows
    assert frames[-2:] == ["aaaaaaaaaaaa: Download complete\n", "bbbbbbbbbbbb: Waiting\n"]


def test_leases(daemon, ns):
    made = ctl(daemon, ns, "leases", "create", "a=b")
    assert made.returncode == 0, made.stderr
    lease_id = made.stdout.strip()
    named = ctl(daemon, ns, "leases", "create", "--id", "mine", "--expires", "0").stdout
    assert named == "mine\n"
    rows = {line.split()[0]: line.split()[2] for line in ctl(daemon, ns, "leases", "ls").stdout.splitlines()[1:]}
    assert rows["mine"] == "-" and rows[lease_id].startswith("a=b,containerd.io/gc.expire=")
    assert ctl(daemon, ns, "leases", "rm", lease_id, "mine").stdout.split() == [lease_id, "mine"]
    assert ctl(daemon, ns, "leases", "ls", "-q").stdout == ""
