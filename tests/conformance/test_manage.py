"""pause/resume, ps, update, events --stats and features against a live
container, compared across runtimes through the command line only."""
import json
import os
import time

import pytest

from .harness import base_config

pytestmark = pytest.mark.root

V1 = os.path.isdir("/sys/fs/cgroup/pids") and not os.path.exists("/sys/fs/cgroup/cgroup.controllers")


@pytest.fixture
def running(runtime, make_bundle):
    """A detached container running `sleep 600`; returns (id, init pid)."""
    cfg = base_config(["sleep", "600"])
    cfg["linux"]["resources"]["memory"] = {"limit": 96 << 20}
    cfg["linux"]["resources"]["pids"] = {"limit": 64}
    b = make_bundle(cfg)
    cid = runtime.new_id("live")
    runtime.check(runtime.run(cid, b.path, detach=True), "run -d")
    return cid, runtime.state_json(cid)["pid"]


def host_cgroup_file(pid, controller, name):
    """The file of ``pid``'s v1 cgroup in ``controller``'s hierarchy, as the host sees it."""
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if controller in ctrls.split(","):
                with open(f"/sys/fs/cgroup/{controller}{path}/{name}") as g:
                    return g.read().strip()
    raise AssertionError(f"pid {pid} has no {controller} cgroup")


def test_pause_and_resume(runtime, running):
    cid, pid = running
    runtime.check(runtime.cmd("pause", cid), "pause")
    assert runtime.status(cid) == "paused"
    with open(f"/proc/{pid}/stat") as f:
        assert f.read().rsplit(")", 1)[1].split()[0] in ("S", "D")  # frozen tasks sleep
    runtime.check(runtime.cmd("resume", cid), "resume")
    assert runtime.status(cid) == "running"


@pytest.mark.deviation("crun", "resume of a running container exits 0")
def test_resume_of_a_running_container_fails(runtime, running):
    cid, _ = running
    cp = runtime.cmd("resume", cid)
    assert cp.returncode == 1
    assert "not paused" in cp.stderr


@pytest.mark.deviation("crun", "pause of a paused container exits 0")
def test_pause_of_a_paused_container_fails(runtime, running):
    cid, _ = running
    runtime.check(runtime.cmd("pause", cid), "pause")
    try:
        assert runtime.cmd("pause", cid).returncode == 1
    finally:
        runtime.check(runtime.cmd("resume", cid), "resume")


def test_ps_json_lists_the_init(runtime, running):
    cid, pid = running
    cp = runtime.check(runtime.cmd("ps", "--format", "json", cid), "ps")
    assert json.loads(cp.stdout) == [pid]


@pytest.mark.deviation("crun", "ps prints a PID column only, not runc's filtered `ps -ef`")
def test_ps_table_is_ps_filtered(runtime, running):
    cid, pid = running
    cp = runtime.check(runtime.cmd("ps", cid), "ps")
    lines = cp.stdout.splitlines()
    assert lines[0].split()[:2] == ["UID", "PID"]
    assert [line.split()[1] for line in lines[1:]] == [str(pid)]
    assert lines[1].endswith("sleep 600")


@pytest.mark.skipif(not V1, reason="reads cgroup v1 files")
@pytest.mark.deviation("crun", "update with flags fails: \"cannot parse the data\" in the JSON it builds itself")
def test_update_flags(runtime, running):
    cid, pid = running
    runtime.check(runtime.cmd("update", "--memory", "48m", "--pids-limit", "21", "--cpu-share", "300", cid), "update")
    assert host_cgroup_file(pid, "memory", "memory.limit_in_bytes") == str(48 << 20)
    assert host_cgroup_file(pid, "pids", "pids.max") == "21"
    assert host_cgroup_file(pid, "cpu", "cpu.shares") == "300"


@pytest.mark.skipif(not V1, reason="reads cgroup v1 files")
def test_update_from_a_resources_file(runtime, running, workdir):
    cid, pid = running
    doc = workdir.path / "resources.json"
    doc.write_text(json.dumps({"pids": {"limit": 17}, "cpu": {"quota": 30000, "period": 100000}}))
    runtime.check(runtime.cmd("update", "-r", doc, cid), "update -r")
    assert host_cgroup_file(pid, "pids", "pids.max") == "17"
    assert host_cgroup_file(pid, "cpu", "cpu.cfs_quota_us") == "30000"


@pytest.mark.deviation("crun", "error wording differs from runc's (\"error opening file .../status\")")
def test_update_of_an_unknown_container_fails(runtime):
    cp = runtime.cmd("update", "--pids-limit", "5", "oci-conf-nosuch")
    assert cp.returncode == 1
    assert "container does not exist" in cp.stderr


@pytest.mark.deviation("crun", "has no events verb")
def test_events_stats(runtime, running):
    cid, _ = running
    cp = runtime.check(runtime.cmd("events", "--stats", cid), "events --stats")
    event = json.loads(cp.stdout)
    assert event["type"] == "stats" and event["id"] == cid
    data = event["data"]
    assert data["memory"]["usage"]["limit"] == 96 << 20
    assert data["memory"]["usage"]["usage"] > 0
    assert data["pids"] == {"current": 1, "limit": 64}
    assert data["cpu"]["usage"]["total"] > 0


@pytest.mark.deviation("crun", "has no features verb (crun 1.8.1)")
def test_features(runtime):
    cp = runtime.check(runtime.cmd("features"), "features")
    doc = json.loads(cp.stdout)
    assert doc["ociVersionMin"].startswith("1.")
    assert {"prestart", "poststart", "poststop"} <= set(doc["hooks"])
    assert {"bind", "rbind", "ro", "nosuid", "rprivate"} <= set(doc["mountOptions"])
    assert {"pid", "mount", "network", "ipc", "uts", "user", "cgroup"} <= set(doc["linux"]["namespaces"])
    assert "CAP_SYS_ADMIN" in doc["linux"]["capabilities"]
    assert doc["linux"]["cgroup"]["v1"] is True


@pytest.mark.deviation("crun", "no events verb")
def test_events_reports_an_oom_kill(runtime, make_bundle):
    """`events` streams stats every interval and an "oom" event when the kernel OOM-kills in the container."""
    cfg = base_config(["sh", "-c", "sleep 1; a=$(head -c 100000000 /dev/zero | tr '\\0' x); sleep 600"])
    cfg["linux"]["resources"]["memory"] = {"limit": 16 << 20, "swap": 16 << 20}
    cid = runtime.new_id("oom")
    runtime.check(runtime.run(cid, make_bundle(cfg).path, detach=True), "run -d")
    events, out, err = runtime.popen("events", "--interval", "1s", cid)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and '"oom"' not in out.read_text() and events.poll() is None:
            time.sleep(0.1)
    finally:
        events.kill()
        events.wait()
    kinds = [json.loads(line)["type"] for line in out.read_text().splitlines()]
    assert "stats" in kinds and "oom" in kinds, (kinds, err.read_text())
