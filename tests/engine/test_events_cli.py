"""`docker events` (CLI 28 and 20.10) at engine-py: the kept events between
--since and --until, --filter, a stream that follows, and the messages'
fields compared with real dockerd's for the same verbs."""
import json
import subprocess
import time

import pytest

from engine_daemon import DOCKER_CLIS
from test_containers_api import CLIS, name, unique  # noqa: F401 (a fixture)


def events(daemon, since: float, *args, cli=None) -> list[dict]:
    """The kept events from `since` until now, as `{{json .}}` lines."""
    extra = {"cli": cli} if cli else {}
    out = daemon.docker("events", "--since", f"{since:.9f}", "--until", f"{time.time():.9f}", "--format",
                        "{{json .}}", *args, **extra).stdout
    return [json.loads(line) for line in out.splitlines()]


def shape(event: dict) -> dict:
    """An event's keys and value types, its attributes by name."""
    return {k: (sorted(v["Attributes"]) if k == "Actor" else type(v).__name__) for k, v in event.items()}


@pytest.mark.parametrize("cli", CLIS)
def test_since_until_lists_a_containers_lifecycle_in_order(engine_py, name, cli):
    docker = engine_py.docker
    since = time.time()
    cid = docker("run", "-d", "--name", name, "--label", "team=a", "busybox", "sleep", "1000").stdout.strip()
    docker("pause", name)
    docker("unpause", name)
    docker("stop", "-t", "0", name)
    docker("rm", name)
    seen = events(engine_py, since, "--filter", f"container={name}", cli=cli)
    assert [(e["Action"], e["Actor"]["Attributes"].get("signal") or e["Actor"]["Attributes"].get("exitCode"))
            for e in seen] == [("create", None), ("start", None), ("pause", None), ("unpause", None),
                               ("kill", "15"), ("kill", "9"), ("die", "137"), ("stop", None), ("destroy", None)]
    assert {e["id"] for e in seen} == {cid} and {e["from"] for e in seen} == {"busybox"}
    assert all(e["Actor"]["Attributes"]["team"] == "a" and e["Actor"]["Attributes"]["name"] == name for e in seen)


@pytest.mark.parametrize("cli", CLIS)
def test_filters_by_event_type_label_and_image(engine_py, name, cli):
    docker = engine_py.docker
    other = unique()
    since = time.time()
    docker("create", "--name", name, "--label", "pick=me", "busybox", "true")
    docker("create", "--name", other, "busybox", "true")
    docker("rm", name, other)
    destroyed = events(engine_py, since, "--filter", "event=destroy", cli=cli)  # `rm` removes both at once
    assert sorted(e["Actor"]["Attributes"]["name"] for e in destroyed) == sorted([name, other])
    assert [e["Action"] for e in events(engine_py, since, "--filter", "label=pick=me", cli=cli)] == \
        ["create", "destroy"]
    of_busybox = events(engine_py, since, "--filter", "image=busybox", "--filter", "type=container", cli=cli)
    assert sorted(e["Action"] for e in of_busybox if e["Actor"]["Attributes"]["name"] in (name, other)) == \
        ["create", "create", "destroy", "destroy"]
    assert events(engine_py, since, "--filter", "type=image", cli=cli) == []


@pytest.mark.parametrize("cli", CLIS)
def test_an_attached_run_logs_attach_before_start(engine_py, name, cli):
    since = time.time()
    engine_py.docker("run", "--name", name, "busybox", "sh", "-c", "exit 4", check=False, cli=cli)
    assert [(e["Action"], e["Actor"]["Attributes"].get("exitCode"))
            for e in events(engine_py, since, "--filter", f"container={name}", cli=cli)] == [
        ("create", None), ("attach", None), ("start", None), ("die", "4")]


def test_an_exec_logs_create_start_and_die(engine_py, name):
    docker = engine_py.docker
    docker("run", "-d", "--name", name, "busybox", "sleep", "1000")
    since = time.time()
    docker("exec", name, "sh", "-c", "exit 3", check=False)
    docker("exec", name, "true")
    seen = events(engine_py, since, "--filter", f"container={name}")
    assert [e["Action"] for e in seen] == ["exec_create: sh -c exit 3", "exec_start: sh -c exit 3", "exec_die",
                                           "exec_create: true ", "exec_start: true ", "exec_die"]
    assert [e["Actor"]["Attributes"].get("exitCode") for e in seen if e["Action"] == "exec_die"] == ["3", "0"]
    assert len({e["Actor"]["Attributes"]["execID"] for e in seen}) == 2
    started = events(engine_py, since, "--filter", f"container={name}", "--filter", "event=exec_start")
    assert [e["Action"] for e in started] == ["exec_start: sh -c exit 3", "exec_start: true "]  # by prefix


def test_update_logs_its_event(engine_py, name):
    docker = engine_py.docker
    docker("run", "-d", "--name", name, "busybox", "sleep", "1000")
    since = time.time()
    docker("update", "--memory", "64m", name)
    assert [e["Action"] for e in events(engine_py, since, "--filter", f"container={name}")] == ["update"]


def listeners(engine_py) -> int:
    return int(engine_py.docker("info", "--format", "{{.NEventsListener}}").stdout)


def test_a_stream_follows_new_events(engine_py, name):
    env = {"DOCKER_HOST": engine_py.host, "DOCKER_CONFIG": f"{engine_py.workdir}/docker-config"}
    before = listeners(engine_py)
    follower = subprocess.Popen([DOCKER_CLIS["28"], "events", "--filter", f"container={name}", "--format",
                                 "{{.Action}}"], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env)
    try:
        while listeners(engine_py) == before:  # subscribed: nothing after this can be missed
            time.sleep(0.05)
        engine_py.docker("run", "-d", "--name", name, "busybox", "true")
        seen = []
        while "die" not in seen:
            seen.append(follower.stdout.readline().strip())
        assert seen == ["create", "start", "die"]
    finally:
        follower.kill()
        follower.wait()
    while listeners(engine_py) != before:  # the client gone, its subscription ends
        time.sleep(0.05)


def test_fields_as_dockerds_for_the_same_verbs(engine_py, dockerd):
    """create, rename and rm of a container (dockerd's cannot start: its fixture's runtime runs nothing)."""
    def scenario(daemon):
        first, second = unique(), unique()
        since = time.time()
        daemon.docker("create", "--name", first, "--label", "a=b", "busybox", "true")
        daemon.docker("rename", first, second)
        daemon.docker("rm", second)
        return [(e["Action"], shape(e)) for e in events(daemon, since) if e["Type"] == "container"
                and e["Actor"]["Attributes"]["name"] in (first, second)]

    ours, theirs = scenario(engine_py.cli("20.10")), scenario(dockerd)
    assert ours == theirs
    assert [action for action, _ in ours] == ["create", "rename", "destroy"]


def test_image_events_as_dockerds(engine_py, dockerd, tmp_path):
    """`docker tag` then `docker rmi` of the new name (busybox keeps its own), `docker save`."""
    def scenario(daemon):
        tag = unique("tagged")
        saved = tmp_path / f"{tag}.tar"
        since = time.time()
        daemon.docker("tag", "busybox", f"{tag}:1")
        daemon.docker("rmi", f"{tag}:1")
        daemon.docker("save", "-o", str(saved), "busybox")
        image_id = daemon.docker("image", "inspect", "-f", "{{.Id}}", "busybox").stdout.strip()
        seen = [e for e in events(daemon, since, "--filter", "type=image") if e["id"] == image_id]
        return [(e["Action"], e["Actor"]["Attributes"]["name"].replace(tag, "<tag>").replace(image_id, "<id>"),
                 shape(e)) for e in seen]

    ours, theirs = scenario(engine_py.cli("20.10")), scenario(dockerd)
    assert ours == theirs
    assert [(action, name) for action, name, _ in ours] == [("tag", "<tag>:1"), ("untag", "<id>"), ("save", "<id>")]
