"""`docker events` of one scenario touching every kind of object, at
engine-py and at real dockerd 20.10 (the same CLI, 20.10, at both): the
same messages in the same order — Type, Action, every Actor attribute
(names and IDs masked), the legacy status/id/from, scope and times — and
the same selections by --filter. The scenario runs once per daemon for the
module (dockerd keeps its last 256 events: it stays well below that)."""
import json
import re
import time
import uuid
from dataclasses import dataclass

import docker
import pytest

from engine.filters import Filters
from engine.services.events import EventsService
from test_images_push import reachable  # noqa: F401 (a fixture)
from test_images_service import registry  # noqa: F401 (a fixture)


_ID = re.compile(r"(?:sha256:)?[0-9a-f]{64}")


@dataclass
class Recorded:
    daemon: object  # what `.docker(...)` runs the CLI at
    prefix: str  # every name the scenario made starts with it
    since: float
    until: float

    def events(self, *filters: str) -> list[dict]:
        flags = [arg for value in filters for arg in ("--filter", value.replace("<P>", self.prefix))]
        out = self.daemon.docker("events", "--since", f"{self.since:.9f}", "--until", f"{self.until:.9f}",
                                 "--format", "{{json .}}", *flags).stdout
        return [json.loads(line) for line in out.splitlines()]

    def masked(self, events: list[dict]) -> list[str]:
        """The messages without their times, the scenario's names as <P>..., IDs numbered by first sight."""
        ids: dict[str, str] = {}
        text = json.dumps([{k: v for k, v in e.items() if k not in ("time", "timeNano")} for e in events])
        text = _ID.sub(lambda m: ids.setdefault(m.group(0).removeprefix("sha256:"), f"<id{len(ids)}>"), text)
        return [json.dumps(e, sort_keys=True) for e in json.loads(text.replace(self.prefix, "<P>"))]


def scenario(daemon, socket: str, tmp_path) -> Recorded:
    """Volumes, networks, a container's whole life (exec, top, cp, export,
    commit, resize, kill with a signal, restart, an OOM), images tagged,
    saved, loaded, imported and removed, and the four prunes of what is
    labelled with this run's prefix."""
    prefix = f"ev{uuid.uuid4().hex[:8]}"
    c, v, n, label = f"{prefix}c", f"{prefix}v", f"{prefix}n", f"ops={prefix}"
    d = daemon.docker
    (tmp_path / "file").write_text("data\n")
    since = time.time()
    d("volume", "create", "--label", "k=1", v)
    d("network", "create", "--label", "k=1", n)
    d("run", "-d", "--name", c, "-v", f"{v}:/data", "--network", n, "--label", "k=1", "busybox", "sleep", "1000")
    d("network", "connect", "bridge", c)
    d("network", "disconnect", "bridge", c)
    d("exec", c, "sh", "-c", "exit 3", check=False)
    d("top", c)
    d("pause", c)
    d("unpause", c)
    d("rename", c, f"{c}2")
    d("update", "--cpu-shares", "512", f"{c}2")
    d("cp", f"{c}2:/etc/hostname", str(tmp_path / "hostname"))
    d("cp", str(tmp_path / "file"), f"{c}2:/data/")
    d("export", "-o", str(tmp_path / "exported.tar"), f"{c}2")
    d("commit", f"{c}2", f"{prefix}committed:1")
    d("kill", "-s", "HUP", f"{c}2")
    d("restart", "-t", "0", f"{c}2")
    d("stop", "-t", "0", f"{c}2")
    d("rm", f"{c}2")
    d("rmi", f"{prefix}committed:1")
    d("tag", "busybox", f"{prefix}tagged:1")
    d("save", "-o", str(tmp_path / "saved.tar"), f"{prefix}tagged:1")
    d("rmi", f"{prefix}tagged:1")
    d("load", "-i", str(tmp_path / "saved.tar"))
    d("rmi", f"{prefix}tagged:1")
    d("import", str(tmp_path / "exported.tar"), f"{prefix}imported:1")
    d("rmi", f"{prefix}imported:1")
    d("run", "--rm", "--name", f"{c}oom", "--memory", "16m", "--memory-swap", "16m", "busybox", "tail", "/dev/zero",
      check=False)
    stopped = f"{c}s"  # a stopped container's network changes and copies, then its terminal resized
    d("create", "--name", stopped, "--label", label, "-t", "-v", f"{v}:/data", "busybox", "sleep", "1000")
    d("network", "connect", n, stopped)
    d("network", "disconnect", n, stopped)
    d("cp", str(tmp_path / "file"), f"{stopped}:/data/")
    d("start", stopped)
    with docker.APIClient(base_url=f"unix://{socket}") as api:
        api.resize(stopped, 30, 100)
    d("stop", "-t", "0", stopped)
    d("commit", "-c", f"LABEL {label}", stopped, f"{prefix}labelled:1")
    d("run", "-a", "stdout", "--name", f"{c}attached", "--label", label, "busybox", "true")
    d("volume", "create", "--label", label, f"{v}pruned")
    d("network", "create", "--label", label, f"{n}pruned")
    for kind in ("container", "image", "volume", "network"):
        d(kind, "prune", "-f", *(["-a"] if kind == "image" else []), "--filter", f"label={label}")
    d("volume", "rm", v)
    d("network", "rm", n)
    return Recorded(daemon, prefix, since, time.time())


@pytest.fixture(scope="module")
def recorded(engine_py, dockerd, tmp_path_factory) -> dict[str, Recorded]:
    return {"dockerd": scenario(dockerd, dockerd.socket, tmp_path_factory.mktemp("dockerd")),
            "ours": scenario(engine_py.cli("20.10"), engine_py.socket, tmp_path_factory.mktemp("ours"))}


@pytest.mark.root
def test_every_message_as_dockerds(recorded):
    theirs, ours = (side.events() for side in recorded.values())
    assert recorded["ours"].masked(ours) == recorded["dockerd"].masked(theirs)
    assert all(e["time"] == e["timeNano"] // 10 ** 9 and e["scope"] == "local" for e in ours)
    seen = {(e["Type"], e["Action"].partition(":")[0]) for e in ours}
    assert {("container", action) for action in (
        "create", "start", "die", "kill", "stop", "destroy", "oom", "exec_create", "exec_start", "exec_die",
        "attach", "rename", "update", "pause", "unpause", "restart", "resize", "commit", "archive-path",
        "extract-to-dir", "export", "top", "prune")} <= seen
    assert {("image", action) for action in ("tag", "untag", "delete", "import", "load", "save", "prune")} <= seen
    assert {("volume", action) for action in ("create", "mount", "unmount", "destroy", "prune")} <= seen
    assert {("network", action) for action in ("create", "connect", "disconnect", "destroy", "prune")} <= seen


@pytest.mark.root
@pytest.mark.parametrize("filters", [
    ("type=volume",), ("type=network", "type=volume"), ("event=destroy",), ("event=mount", "event=unmount"),
    ("event=prune",), ("event=exec_start",), ("container=<P>c2",), ("image=busybox", "type=container"),
    ("image=<P>tagged",), ("label=ops=<P>",), ("label=k=1", "event=start"), ("volume=<P>v",), ("network=<P>n",),
    ("type=image", "event=untag"), ("daemon=nothing",), ("scope=local", "type=network", "event=connect"),
], ids=lambda filters: ",".join(filters))
def test_filters_select_as_dockerds(recorded, filters):
    ours, theirs = recorded["ours"], recorded["dockerd"]
    assert ours.masked(ours.events(*filters)) == theirs.masked(theirs.events(*filters))


@pytest.mark.root
def test_push_and_pull_events_as_dockerds(engine_py, dockerd, reachable):
    """A push and a pull through a loopback registry both daemons reach under one name."""
    def pushed_and_pulled(daemon):
        repository = f"{reachable.host}/ev{uuid.uuid4().hex[:8]}"
        since = time.time()
        daemon.docker("tag", "busybox", f"{repository}:1")
        daemon.docker("push", f"{repository}:1")
        daemon.docker("rmi", f"{repository}:1")
        daemon.docker("pull", f"{repository}:1")
        daemon.docker("rmi", f"{repository}:1")
        side = Recorded(daemon, repository, since, time.time())
        return side.masked(side.events("type=image"))

    ours = pushed_and_pulled(engine_py.cli("20.10"))
    assert ours == pushed_and_pulled(dockerd)
    assert [json.loads(e)["Action"] for e in ours] == ["tag", "push", "untag", "pull", "untag"]


def test_a_prunes_event_has_no_id_and_what_it_reclaimed():
    """The shape dockerd 20.10 gave a `container prune` (recorded)."""
    bus = EventsService(clock_ns=lambda: 1_796_563_071_495_734_391)
    bus.pruned("container", 5000)
    bus.pruned("volume", 0)
    past, subscription = bus.subscribe(0, None, Filters())
    subscription.close()
    assert past == [
        {"status": "prune", "Type": "container", "Action": "prune", "Actor": {"ID": "", "Attributes": {
            "reclaimed": "5000"}}, "scope": "local", "time": 1796563071, "timeNano": 1796563071495734391},
        {"Type": "volume", "Action": "prune", "Actor": {"ID": "", "Attributes": {"reclaimed": "0"}},
         "scope": "local", "time": 1796563071, "timeNano": 1796563071495734391}]


@pytest.mark.root
def test_an_attach_left_with_the_detach_keys_logs_detach_as_dockerd(engine_py, dockerd):
    def detached(daemon, socket):
        name = f"ev{uuid.uuid4().hex[:8]}"
        daemon.docker("run", "-dit", "--name", name, "busybox", "sh")
        since = time.time()
        with docker.APIClient(base_url=f"unix://{socket}") as api:
            attached = api.attach_socket(name, params={"stdin": 1, "stdout": 1, "stream": 1})
            attached._sock.sendall(b"\x10\x11")  # ctrl-p ctrl-q
            while attached._sock.recv(4096):
                pass
            attached.close()
        daemon.docker("rm", "-f", name)
        side = Recorded(daemon, name, since, time.time())
        return side.masked(side.events("event=attach", "event=detach"))

    ours = detached(engine_py.cli("20.10"), engine_py.socket)
    assert ours == detached(dockerd, dockerd.socket)
    assert [json.loads(e)["Action"] for e in ours] == ["attach", "detach"]


@pytest.mark.root
def test_a_copy_into_a_stopped_containers_volume_lands_in_it_as_dockerd(engine_py, dockerd, tmp_path):
    (tmp_path / "file").write_text("copied\n")

    def copied(daemon):
        name = f"ev{uuid.uuid4().hex[:8]}"
        daemon.docker("create", "--name", name, "-v", f"{name}v:/data", "busybox", "true")
        since = time.time()
        daemon.docker("cp", str(tmp_path / "file"), f"{name}:/data/")
        side = Recorded(daemon, name, since, time.time())
        seen = side.masked(side.events())
        found = daemon.docker("run", "--rm", "-v", f"{name}v:/data", "busybox", "cat", "/data/file").stdout
        daemon.docker("rm", "-v", name)
        daemon.docker("volume", "rm", f"{name}v")
        return seen, found

    ours = copied(engine_py.cli("20.10"))
    assert ours == copied(dockerd)
    assert [json.loads(e)["Action"] for e in ours[0]] == ["mount", "unmount", "mount", "extract-to-dir", "unmount"]
    assert ours[1] == "copied\n"
