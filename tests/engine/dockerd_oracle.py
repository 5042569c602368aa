"""Real dockerd (Debian's docker.io) as the oracle for the engine's tests.

(Not a conftest.py: containerd_py's tests import their conftest by module
name, which a second conftest.py in one pytest run could shadow. The
session fixture `dockerd` in tests/conftest.py runs `running_dockerd()`, so
one dockerd serves every module of a run.)

`running_dockerd()` starts a private dockerd (its own data-root, exec-root,
pidfile, socket and supervised containerd) inside a network namespace the
test creates, with a runtime named "dump" that copies each bundle's
config.json aside and fails, so every `docker start` yields the spec dockerd
generated and runs nothing. The finalizer removes every container, stops the
daemons, unmounts and deletes everything under its directory and the
namespace, and fails the run if something had to be forced.
"""
import contextlib
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

import cgroup_trees
from engine_daemon import stop_docker_daemon, wait_answering
from leaks import mounts_under

REPO = Path(__file__).resolve().parents[2]
RUNPY_OCI = os.path.join(os.path.dirname(sys.executable), "runpy-oci")  # the checkout's, beside its Python
DOCKER_CLI = next((p for p in ("/usr/bin/docker", "/usr/local/bin/docker") if os.access(p, os.X_OK)), "docker")
DUMP_RUNTIME = """#!/bin/sh
# An OCI runtime that runs nothing: `create` copies the bundle's config.json
# to {dump}/<id>.json and fails; every other verb succeeds.
bundle=""; prev=""; last=""
for arg in "$@"; do
    [ "$prev" = "--bundle" ] || [ "$prev" = "-b" ] && bundle=$arg
    prev=$arg; last=$arg
done
case " $* " in
    *" create "*) cp "$bundle/config.json" "{dump}/$last.json"; echo "spec dumped" >&2; exit 1;;
esac
exit 0
"""


def docker_archive(oci_tar: str, out: str, tag: str) -> None:
    """An OCI layout tarball (bundles/make-busybox-image.py) as a docker-archive
    that dockerd 20.10's `docker load` takes: the same blobs plus manifest.json."""
    with tarfile.open(oci_tar) as src:
        files = {m.name: src.extractfile(m).read() for m in src.getmembers() if m.isfile()}
    index = json.loads(files["index.json"])
    manifest = json.loads(files["blobs/sha256/" + index["manifests"][0]["digest"][7:]])
    files["manifest.json"] = json.dumps([{
        "Config": "blobs/sha256/" + manifest["config"]["digest"][7:],
        "RepoTags": [tag],
        "Layers": ["blobs/sha256/" + layer["digest"][7:] for layer in manifest["layers"]],
    }]).encode()
    with tarfile.open(out, "w") as dst:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))


def extract_rootfs(oci_tar: str, into: str) -> None:
    """The image's /etc from its single layer: the rootfs whose /etc/passwd
    and /etc/group the spec's user comes from."""
    with tarfile.open(oci_tar) as src:
        index = json.load(src.extractfile("index.json"))
        manifest = json.load(src.extractfile("blobs/sha256/" + index["manifests"][0]["digest"][7:]))
        layer = src.extractfile("blobs/sha256/" + manifest["layers"][0]["digest"][7:]).read()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer))) as tf:
        tf.extractall(into, members=[m for m in tf.getmembers() if m.name.startswith("etc/")])


class Dockerd:
    def __init__(self, workdir: str, netns: str):
        self.workdir, self.netns = workdir, netns
        self.socket = f"{workdir}/docker.sock"
        self.dump_dir = f"{workdir}/dump"
        self.rootfs = f"{workdir}/rootfs"
        self.log_path = f"{workdir}/dockerd.log"
        self.cgroup_parent = f"/{os.path.basename(workdir)}"  # where the containers it runs (runc) go
        self.proc = None
        self._log = None

    def start(self, *extra: str):
        os.makedirs(self.dump_dir)
        runtime = f"{self.workdir}/dump-runtime"
        with open(runtime, "w") as f:
            f.write(DUMP_RUNTIME.format(dump=self.dump_dir))
        os.chmod(runtime, 0o755)
        argv = ["nsenter", f"--net=/run/netns/{self.netns}", "dockerd",
                "--data-root", f"{self.workdir}/data", "--exec-root", f"{self.workdir}/exec",
                "--pidfile", f"{self.workdir}/dockerd.pid", "-H", f"unix://{self.socket}",
                "--add-runtime", f"dump={runtime}", "--add-runtime", f"runpy={RUNPY_OCI}",
                "--init-path", "/usr/bin/docker-init", "--cgroup-parent", self.cgroup_parent, *extra]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_answering(self, "dockerd")

    def log(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def docker(self, *args, check=True, input: str | None = None):
        r = subprocess.run([DOCKER_CLI, "-H", f"unix://{self.socket}", *args], capture_output=True, text=True,
                           input=input, stdin=None if input is not None else subprocess.DEVNULL, timeout=120)
        if check and r.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed: {r.stderr}")
        return r

    def inspect(self, ref: str) -> dict:
        return json.loads(self.docker("inspect", ref).stdout)[0]

    def start_error(self, flags, image="busybox") -> str:
        """What `docker start` prints when dockerd refuses to start a
        container created with FLAGS (removed after)."""
        cid = self.docker("create", "--runtime", "dump", *flags, image).stdout.strip()
        try:
            started = self.docker("start", cid, check=False)
            assert started.returncode != 0 and not os.path.exists(f"{self.dump_dir}/{cid}.json"), started.stderr
            return started.stderr
        finally:
            self.docker("rm", "-f", cid, check=False)

    def dumped_spec(self, flags, image="busybox", cmd=()) -> tuple[dict, dict]:
        """`docker create --runtime dump FLAGS` then `docker start`: the spec
        dockerd generated and the container's inspect (its stored Config and
        HostConfig). The container is removed."""
        cid = self.docker("create", "--runtime", "dump", *flags, image, *cmd).stdout.strip()
        try:
            started = self.docker("start", cid, check=False)
            dumped = f"{self.dump_dir}/{cid}.json"
            assert os.path.exists(dumped), f"dockerd did not reach the runtime: {started.stderr}"
            with open(dumped) as f:
                spec = json.load(f)
            return spec, self.inspect(cid)
        finally:
            self.docker("rm", "-f", cid, check=False)

    def stop(self) -> list[str]:
        """Removes all containers, stops dockerd and its containerd; what had to be forced."""
        return stop_docker_daemon(self, "dockerd")


@contextlib.contextmanager
def running_dockerd(*extra: str):
    """A private dockerd 20.10 with busybox loaded and the dump runtime; `extra` flags for it."""
    if shutil.which("dockerd") is None:
        pytest.fail("dockerd is not installed: scripts/setup.sh installs Debian's docker.io")
    workdir = tempfile.mkdtemp(prefix="engine-dockerd-", dir="/var/tmp")
    netns = f"engine-test-{os.path.basename(workdir)}"
    daemon = Dockerd(workdir, netns)
    forced, leaked = [], []
    try:
        subprocess.run(["ip", "netns", "add", netns], check=True)  # inside: a failure still removes workdir
        subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
        daemon.start(*extra)
        oci_tar = f"{workdir}/busybox-oci.tar"
        subprocess.run(["python3", str(REPO / "bundles/make-busybox-image.py"), oci_tar], check=True,
                       capture_output=True)
        docker_archive(oci_tar, f"{workdir}/busybox.tar", "busybox:latest")
        daemon.docker("load", "-i", f"{workdir}/busybox.tar")
        extract_rootfs(oci_tar, daemon.rootfs)
        yield daemon
    finally:
        forced = daemon.stop()
        leaked = mounts_under(workdir)
        for point in reversed(leaked):
            subprocess.run(["umount", "-l", point], check=False)
        forced += cgroup_trees.remove_in_every_hierarchy(daemon.cgroup_parent)
        subprocess.run(["ip", "netns", "del", netns], check=False)
        shutil.rmtree(workdir, ignore_errors=True)
    # dockerd leaves its data-root bind mount and netns/default file mounted
    # at exit; only other mounts are leaks of ours.
    unexpected = [p for p in leaked if p not in (f"{workdir}/data", f"{workdir}/exec/netns/default")]
    assert not forced and not unexpected, f"forced: {forced}; mounts left: {unexpected}"
