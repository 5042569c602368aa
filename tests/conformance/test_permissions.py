"""An unprivileged user who runs the runtime against root's --root is told
"permission denied", as runc and crun tell them: not "container does not
exist", and never a container's state."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from . import harness
from .harness import Runtime

pytestmark = pytest.mark.root

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.fixture
def passable_root(runtime_path, workdir, request):
    """The runtime with its --root in a directory anyone may pass through, as /run is."""
    outer = Path(tempfile.mkdtemp(prefix=f"{harness.PREFIX}-", dir="/tmp"))
    outer.chmod(0o711)
    rt = Runtime(runtime_path, outer / "root", workdir.sub("io"), name=harness.runtime_name(runtime_path))
    rt.root.rmdir()  # the runtime makes its root, with the mode it chooses
    yield rt
    rt.cleanup()
    shutil.rmtree(outer, ignore_errors=True)


def as_nobody(runtime, root, *args):
    return subprocess.run([*NOBODY, runtime.binary, "--root", str(root), *args],
                          capture_output=True, text=True, timeout=30)


def assert_denied(cp):
    assert cp.returncode == 1, cp
    assert "permission denied" in cp.stderr.lower(), cp.stderr


@pytest.mark.parametrize("verb", [("state",), ("kill",), ("delete",), ("delete", "--force")], ids=" ".join)
def test_verbs_on_roots_container_are_denied(passable_root, bundle, verb):
    rt = passable_root
    bundle.set_args("sleep", "600")
    cid = rt.new_id("perm")
    rt.check(rt.create(cid, bundle.path), "create")
    cp = as_nobody(rt, rt.root, *verb, cid)
    assert_denied(cp)
    assert cid not in cp.stdout
    assert rt.status(cid) == "created"


def test_an_unknown_id_under_roots_root_is_denied(passable_root):
    passable_root.check(passable_root.list(), "list")  # the runtime has made its root
    assert_denied(as_nobody(passable_root, passable_root.root, "state", "nosuch"))


def test_list_of_roots_root_is_denied(passable_root, bundle):
    cid = passable_root.new_id("permlist")
    passable_root.check(passable_root.create(cid, bundle.path), "create")
    cp = as_nobody(passable_root, passable_root.root, "list")
    assert_denied(cp)
    assert cid not in cp.stdout


@pytest.mark.deviation("crun", "does not make a missing --root; says 'No such file or directory'")
@pytest.mark.parametrize("verb", ["state", "list"])
def test_a_root_the_user_cannot_make_is_denied(passable_root, verb):
    missing = passable_root.root.parent / "not-made"
    cp = as_nobody(passable_root, missing, verb, *(["x"] if verb == "state" else []))
    assert_denied(cp)
    assert not missing.exists()
