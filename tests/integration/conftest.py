"""Integration fixtures: a private --root per test, bundles copied from one
busybox template per session, and a finalizer that removes every container
(and checks no cgroup of it is left) even when the test fails."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNPY = os.path.join(os.path.dirname(sys.executable), "runpy-oci")


@pytest.fixture(scope="session")
def busybox_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("template") / "bundle"
    subprocess.run(["bash", os.path.join(REPO, "bundles/make-busybox-bundle.sh"), str(path)],
                   check=True, capture_output=True)
    return path


class Runtime:
    binary = RUNPY

    def __init__(self, root):
        self.root = root
        self.ids = []

    def __call__(self, *args, input=None, timeout=30):
        """Run a verb; output goes through files, not pipes, because a created
        or detached container inherits them and would hold a pipe open."""
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            r = subprocess.run([RUNPY, "--root", self.root, *args], input=input, stdout=out, stderr=err,
                               text=True, timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(r.args, r.returncode, out.read(), err.read())

    def new_id(self):
        cid = "it-" + uuid.uuid4().hex[:10]
        self.ids.append(cid)
        return cid


@pytest.fixture
def runtime(tmp_path):
    rt = Runtime(str(tmp_path / "state"))
    yield rt
    for cid in rt.ids:
        rt("delete", "--force", cid)
    leftovers = [cid for cid in rt.ids if _cgroup_dirs(cid)]
    assert not leftovers, f"cgroups left behind for {leftovers}"


def _cgroup_dirs(name):
    found = []
    for dirpath, dirnames, _ in os.walk("/sys/fs/cgroup"):
        if name in dirnames:
            found.append(os.path.join(dirpath, name))
    return found


@pytest.fixture
def bundle(busybox_template, tmp_path):
    """A fresh bundle; call it with config changes (a function on the dict)."""
    path = tmp_path / "bundle"
    shutil.copytree(busybox_template, path, symlinks=True)
    config = json.loads((path / "config.json").read_text())
    config["root"]["readonly"] = False
    config["process"]["terminal"] = False

    def make(args=("true",), change=None):
        c = json.loads(json.dumps(config))
        c["process"]["args"] = list(args)
        if change:
            change(c)
        (path / "config.json").write_text(json.dumps(c))
        return str(path)

    make.path = path
    return make
