"""docker-py 7 against engine-py and dockerd 20.10 in one test, for what the
other test_*_dockerpy files do not already compare with dockerd: the
low-level create with bodies as sparse as docker-py's (inspect's Config and
HostConfig, every field and default as dockerd stores them), an image's
LABEL, EXPOSE, VOLUME and STOPSIGNAL reaching its containers,
`containers.run/get/list` with filters, `exec_run` plain, streamed and
demultiplexed, `logs(stream=True, follow=True)`, `attach_socket`,
`put_archive/get_archive`, `images.get/list`, `events(decode=True)` with
filters and `df()`. Each section of what the client saw, with IDs, names,
times and sizes normalised, must be dockerd's. (Networks and volumes:
test_networks_dockerpy, test_volumes_dockerpy; builds: test_build_clients.)
And push/pull through docker-py at a loopback registry both daemons reach."""
import datetime
import io
import json
import re
import tarfile
import uuid

import docker
import pytest

from test_build_vs_dockerd import Ids, make_context
from test_containers_api import unique
from test_images_push import fresh_layer, reachable  # noqa: F401  (a fixture)
from test_images_service import busybox_tar, daemon, registry  # noqa: F401  (fixtures reachable needs)
from test_testcontainers import diff, shape

pytestmark = pytest.mark.root

SPARSE_BODIES = {
    "no HostConfig": {"Image": "busybox"},
    "privileged with memory": {"Image": "busybox", "HostConfig": {"Privileged": True, "Memory": 16 << 20}},
    "host ipc, config nulls": {"Image": "busybox", "Labels": None, "Volumes": {"/v": {}}, "NetworkDisabled": False,
                               "StopTimeout": 3, "HostConfig": {"IpcMode": "host", "RestartPolicy": {}}},
    "as the CLI sends": {"Image": "busybox", "HostConfig": {"OomKillDisable": False, "ConsoleSize": [10, 20],
                                                            "LogConfig": {}, "NetworkMode": "default",
                                                            "MemorySwappiness": -1, "PidsLimit": 0}},
}
DOCKERFILE = """FROM busybox
LABEL from=image overridden=image
EXPOSE 8080 9090/udp
VOLUME /data
STOPSIGNAL SIGUSR1
CMD ["sh", "-c", "trap 'echo got USR1; exit 0' USR1; echo ready; while :; do sleep 0.1; done"]
"""


class Scenario:
    """One daemon as docker-py meets it, and what it showed, section by section."""

    def __init__(self, daemon, tmp_path):
        self.client = docker.DockerClient(base_url=f"unix://{daemon.socket}", version="auto")
        self.api, self.tmp_path = self.client.api, tmp_path
        self.ids, self.view = Ids(), {}
        self.tag = f"dps-{uuid.uuid4().hex[:8]}"
        self.label = {"dps": self.tag}

    def sparse_creates(self):
        for key, body in SPARSE_BODIES.items():
            made = self.api._result(self.api._post_json(self.api._url("/containers/create"), data=body), True)
            info = self.api.inspect_container(made["Id"])
            self.api.remove_container(made["Id"], force=True)
            anonymous = [m["Name"] for m in info["Mounts"] if m["Type"] == "volume"]
            self.view[f"create: {key}: volumes kept by rm without v"] = [
                bool(self.client.volumes.list(filters={"name": name})) for name in anonymous]
            for name in anonymous:
                self.api.remove_volume(name)
            config, host_config = info["Config"], info["HostConfig"]
            config["Hostname"] = len(config["Hostname"])
            host_config["Runtime"] = "Runtime" in host_config  # runpy-oci / runc; absent without a HostConfig
            self.view[f"create: {key}"] = {"Config": config, "HostConfig": host_config}

    def image_config_in_containers(self):
        make_context(self.tmp_path / "ctx", {"Dockerfile": DOCKERFILE})
        image, _ = self.client.images.build(path=str(self.tmp_path / "ctx"), tag=self.tag, rm=True)
        container = self.client.containers.run(self.tag, detach=True, labels={**self.label, "overridden": "run"},
                                               publish_all_ports=True, ports={"7070/tcp": None})
        try:
            for _ in container.logs(stream=True, follow=True):
                break   # its first line: the trap is set
            container.reload()
            config = container.attrs["Config"]
            self.view["image config in the container"] = {
                key: config.get(key) for key in ("Labels", "ExposedPorts", "Volumes", "StopSignal")}
            config["Labels"]["dps"] = "T"
            self.view["ports published of the image's EXPOSE"] = sorted(container.ports)
            container.stop(timeout=30)
            container.reload()
            self.view["stop with the image's STOPSIGNAL"] = [container.attrs["State"]["ExitCode"],
                                                            container.logs().decode()]
        finally:
            container.remove(force=True, v=True)
        self.view["images.get attrs"] = image_shape(self.client.images.get(self.tag).attrs)
        listed = self.client.images.list(filters={"reference": self.tag})
        self.view["images.list"] = [[t.replace(self.tag, "T") for t in i.tags] for i in listed]
        self.view["images.list attrs"] = [image_shape(i.attrs) for i in listed]
        self.client.images.remove(self.tag)

    def run_get_list(self):
        running = self.client.containers.run("busybox", ["sleep", "60"], detach=True, labels=self.label,
                                             name=f"{self.tag}-run", environment={"E": "1"})
        done = self.client.containers.run("busybox", ["sh", "-c", "exit 3"], detach=True, labels=self.label)
        done.wait()
        try:
            got = self.client.containers.get(f"{self.tag}-run")
            self.view["containers.get"] = [got.id == running.id, got.name.replace(self.tag, "T"), got.status,
                                           got.image.tags, got.labels == self.label,
                                           "E=1" in got.attrs["Config"]["Env"]]

            def names(**filters):
                listed = self.client.containers.list(filters={"label": f"dps={self.tag}", **filters}, all=True)
                return sorted(self.ids(c.id) for c in listed)
            self.view["containers.list filters"] = {
                "label": names(), "running": names(status="running"), "exited": names(status="exited"),
                "exited=3": names(exited=3), "name": names(name=f"{self.tag}-run"),
                "ancestor": names(ancestor="busybox"), "ids": [self.ids(running.id), self.ids(done.id)]}
            self.view["containers.list sparse"] = [
                shape(c.attrs) for c in self.client.containers.list(sparse=True, filters={"label": f"dps={self.tag}"})]
            self.exec_runs(got)
            self.archives(got)
        finally:
            for container in (running, done):
                container.remove(force=True)

    def exec_runs(self, container):
        script = ["sh", "-c", "echo out; echo err >&2; echo $E $X; pwd; exit 2"]
        runs = {"plain": container.exec_run(script, environment={"X": "x"}, workdir="/tmp"),
                "demux": container.exec_run(script, demux=True),
                "tty": container.exec_run(script, tty=True),
                "user": container.exec_run(["id", "-u"], user="nobody")}
        shown = {key: [code, out.decode() if isinstance(out, bytes) else [o and o.decode() for o in out]]
                 for key, (code, out) in runs.items()}
        shown["plain"][1] = sorted(shown["plain"][1].splitlines())   # two pipes: their order is the reader's
        code, stream = container.exec_run(script, stream=True)
        shown["stream"] = [code, sorted(b"".join(stream).decode().splitlines())]
        code, stream = container.exec_run(script, stream=True, demux=True)
        chunks = list(stream)
        shown["stream demux"] = [code, b"".join(o for o, _ in chunks if o).decode(),
                                 b"".join(e for _, e in chunks if e).decode()]
        self.view["exec_run"] = shown

    def archives(self, container):
        data = io.BytesIO()
        with tarfile.open(fileobj=data, mode="w") as tar:
            for name, text, mode in (("dir/a.txt", b"alpha\n", 0o640), ("dir/b.txt", b"beta\n", 0o600)):
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(text), mode, 1_600_000_000
                tar.addfile(info, io.BytesIO(text))
        self.view["put_archive"] = container.put_archive("/tmp", data.getvalue())
        stream, stat = container.get_archive("/tmp/dir")
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            members = [[m.name, m.size, oct(m.mode), m.mtime == 1_600_000_000] for m in tar.getmembers()]
        self.view["get_archive"] = {"members": sorted(members), "stat": {**stat, "mtime": "<time>"}}
        with pytest.raises(docker.errors.NotFound) as missing:
            container.get_archive("/no/such")
        self.view["get_archive missing"] = self.ids(missing.value.explanation)

    def logs_attach(self):
        script = "echo one; sleep 0.3; echo two >&2; sleep 0.3; echo three"
        container = self.client.containers.run("busybox", ["sh", "-c", script], detach=True, labels=self.label)
        try:
            self.view["logs stream follow"] = b"".join(container.logs(stream=True, follow=True)).decode()
            self.view["logs stdout only"] = container.logs(stderr=False).decode()
        finally:
            container.remove(force=True)
        container = self.client.containers.create("busybox", ["sh", "-c", script], labels=self.label)
        try:
            sock = container.attach_socket(params={"stdout": 1, "stderr": 1, "stream": 1})
            container.start()
            raw = sock._sock
            frames = b""
            while chunk := raw.recv(4096):
                frames += chunk
            sock.close()
            self.view["attach_socket frames"] = demux_frames(frames)
        finally:
            container.remove(force=True)

    def low_level(self):
        """APIClient calls the high-level API does not make: wait, export (its
        modes), an exec driven by hand, a wait for the removal."""
        api = self.api
        made = api.create_container("busybox", ["true"], labels=self.label)
        api.start(made)
        self.view["APIClient.wait"] = api.wait(made)
        exported = tarfile.open(fileobj=io.BytesIO(b"".join(api.export(made))))
        modes = {m.name: oct(m.mode) for m in exported.getmembers()}
        self.view["APIClient.export modes"] = {name: modes.get(name) for name in ("bin", "bin/sh", "etc/passwd", "tmp")}
        api.remove_container(made)
        made = api.create_container("busybox", ["sleep", "60"], labels=self.label,
                                    host_config=api.create_host_config(auto_remove=True))
        api.start(made)
        exec_id = api.exec_create(made, ["sh", "-c", "echo $0; exit 5"], stdout=True, stderr=True)["Id"]
        self.view["APIClient.exec_start"] = api.exec_start(exec_id).decode()
        inspected = api.exec_inspect(exec_id)
        self.view["APIClient.exec_inspect"] = {k: inspected[k] for k in ("ExitCode", "Running", "ProcessConfig")}
        # the wait's headers come before the container ends (as the CLI's run --rm relies on)
        waiting = api._post(api._url("/containers/{0}/wait", made["Id"]), params={"condition": "removed"}, stream=True,
                            timeout=60)
        api.kill(made)
        self.view["APIClient.wait removed"] = [waiting.status_code, api._result(waiting, True)]

    def events_and_df(self, since):
        volume = self.client.volumes.create(labels=self.label)
        container = self.client.containers.create("busybox", labels=self.label,
                                                  volumes={volume.name: {"bind": "/v", "mode": "rw"}})
        df = self.client.df()
        container.remove()
        volume.remove()
        # BuildCache is [] here and null at dockerd (no BuildKit). The images other modules of the session left
        # differ between the daemons (a pulled one has RepoDigests): busybox's entry is the one compared
        df.pop("BuildCache")
        df["Images"] = [image for image in df["Images"] if "busybox:latest" in (image["RepoTags"] or [])]
        self.view["df shape"] = shape(df)
        until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1)
        events = self.client.events(decode=True, since=since, until=until,
                                    filters={"type": "container", "label": f"dps={self.tag}"})
        actions = [event["Action"].split(":")[0] for event in events]
        self.view["events(decode=True) actions"] = [a for a in actions if not a.startswith("exec_")][:12]

    def close(self):
        self.client.close()


def image_shape(attrs: dict) -> dict:
    """An image's attributes as their shape; the engine's layers are containerd snapshots
    (no overlay2 dirs in GraphDriver.Data, as dockerd with its containerd store)."""
    attrs["GraphDriver"].pop("Data")
    return shape(attrs)


def demux_frames(data: bytes) -> list:
    """The attach stream's frames as [stream, text], adjacent ones of a stream joined."""
    frames = []
    while len(data) >= 8:
        stream, size = data[0], int.from_bytes(data[4:8], "big")
        text = data[8:8 + size].decode()
        data = data[8 + size:]
        if frames and frames[-1][0] == stream:
            frames[-1][1] += text
        else:
            frames.append([stream, text])
    return frames


def observe(daemon, tmp_path) -> dict:
    scenario = Scenario(daemon, tmp_path)
    since = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)
    try:
        scenario.sparse_creates()
        scenario.image_config_in_containers()
        scenario.run_get_list()
        scenario.logs_attach()
        scenario.low_level()
        scenario.events_and_df(since)
    finally:
        scenario.close()
    return scenario.view


def test_dockerpy_sees_engine_py_as_dockerd(engine_py, dockerd, tmp_path):
    theirs = observe(dockerd, tmp_path / "dockerd")
    assert theirs["stop with the image's STOPSIGNAL"] == [0, "ready\ngot USR1\n"]
    assert theirs["exec_run"]["demux"] == [2, ["out\n1\n/\n", "err\n"]]
    assert theirs["APIClient.export modes"]["etc/passwd"] == "0o100644"
    assert theirs["containers.list filters"]["ancestor"]
    assert theirs["APIClient.wait removed"] == [200, {"Error": None, "StatusCode": 137}]
    ours = observe(engine_py, tmp_path / "engine-py")
    differing = sorted(k for k in {*theirs, *ours} if ours.get(k) != theirs.get(k))
    assert not differing, "\n".join(diff(k, theirs.get(k), ours.get(k)) for k in differing)


def push_and_pull(daemon, registry_host: str, rootfs: str) -> dict:
    """A fresh image pushed to the loopback registry (progress messages left
    out, the rest's IDs normalised), removed and pulled back."""
    client, ids = docker.DockerClient(base_url=f"unix://{daemon.socket}", version="auto"), Ids()
    repo = f"{registry_host}/{unique('dps')}"
    seen = {}
    try:
        with open(rootfs, "rb") as data:
            client.api.import_image_from_data(data.read(), repository=repo, tag="v1")
        pushed = client.images.push(repo, "v1", stream=True, decode=True)
        # the manifest's size masked as test_images_push masks it (dockerd indents the manifests it makes)
        seen["push"] = [re.sub(r'(size: |"Size": )\d+', r"\1N", ids(json.dumps(m, sort_keys=True).replace(repo, "R")))
                        for m in pushed if m.get("status") not in ("Pushing", "Preparing", "Waiting")]
        client.images.remove(f"{repo}:v1")
        pulled = client.images.pull(repo, "v1")
        seen["pull"] = [t.replace(repo, "R") for t in pulled.tags]
        seen["repo digests"] = [ids(d.replace(repo, "R")) for d in pulled.attrs["RepoDigests"]]
    finally:
        for image in client.images.list(name=repo):
            client.images.remove(image.id, force=True)
        client.close()
    return seen


def test_dockerpy_push_and_pull_as_dockerd(engine_py, dockerd, reachable, tmp_path):  # noqa: F811
    theirs = push_and_pull(dockerd, reachable.host, fresh_layer(tmp_path))
    assert theirs["pull"] == ["R:v1"] and any('"Pushed"' in m for m in theirs["push"])
    ours = push_and_pull(engine_py, reachable.host, fresh_layer(tmp_path))
    differing = sorted(k for k in {*theirs, *ours} if ours.get(k) != theirs.get(k))
    assert not differing, "\n".join(diff(k, theirs.get(k), ours.get(k)) for k in differing)
