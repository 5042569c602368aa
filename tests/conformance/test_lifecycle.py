"""Lifecycle and state: create -> created -> start -> running -> stopped -> delete,
as the OCI runtime-spec (runtime.md) and runc's CLI define them."""
from __future__ import annotations

import json
import os
import threading

import pytest

from .harness import bind_mount, pid_alive, remove_namespace, wait_for

pytestmark = pytest.mark.root

# A program that records the signals it receives in /out/sig and otherwise
# waits; pid 1 in a pid namespace ignores signals it has no handler for, so it
# traps the catchable ones.
SIGNAL_RECORDER = (
    'for s in TERM HUP USR1 INT; do trap "echo $s >> /out/sig" $s; done; '
    'echo ready > /out/ready; '
    'while :; do sleep 0.05; done'
)


def wait_file(path, what=None):
    wait_for(lambda: path.exists() and path.read_text(), timeout=20,
             what=what or f"{path} to be written")
    return path.read_text()


def test_create_does_not_run_program_until_start(runtime, bundle, host_dir):
    out = host_dir("out")
    bind_mount(bundle.config, out, "/out")
    bundle.set_script("echo ran > /out/ran")
    cid = runtime.new_id("create")

    runtime.check(runtime.create(cid, bundle.path), "create")
    st = runtime.state_json(cid)
    assert st["status"] == "created"
    assert isinstance(st["pid"], int) and st["pid"] > 0
    assert pid_alive(st["pid"]), "the container's init process must exist after create"
    assert not (out / "ran").exists(), "the user program ran before start"

    runtime.check(runtime.start(cid), "start")
    assert wait_file(out / "ran") == "ran\n"
    runtime.wait_status(cid, "stopped")

    runtime.check(runtime.delete(cid), "delete")
    cp = runtime.state(cid)
    assert cp.returncode == 1
    assert cid not in runtime.list_ids()


def test_running_then_stopped_when_program_exits(runtime, bundle, host_dir):
    out = host_dir("out")
    bind_mount(bundle.config, out, "/out")
    bundle.set_script("echo up > /out/up; while [ ! -e /out/go ]; do sleep 0.05; done; echo bye > /out/bye")
    cid = runtime.new_id("states")
    runtime.check(runtime.create(cid, bundle.path), "create")
    pid = runtime.state_json(cid)["pid"]
    runtime.check(runtime.start(cid), "start")
    wait_file(out / "up")
    st = runtime.state_json(cid)
    assert st["status"] == "running"
    assert st["pid"] == pid, "the init pid must not change on start"
    assert pid_alive(pid)

    (out / "go").write_text("go")
    wait_file(out / "bye")
    runtime.wait_status(cid, "stopped")
    wait_for(lambda: not pid_alive(pid), what="the init process to be gone")
    runtime.check(runtime.delete(cid), "delete")
    assert runtime.state(cid).returncode == 1


def test_list_formats(runtime, bundle):
    bundle.set_args("sleep", "3600")
    cid = runtime.new_id("list")
    runtime.check(runtime.create(cid, bundle.path), "create")
    pid = runtime.state_json(cid)["pid"]

    cp = runtime.check(runtime.list(), "list")
    lines = cp.stdout.splitlines()
    assert lines[0].split()[:3] in (["ID", "PID", "STATUS"], ["NAME", "PID", "STATUS"])
    rows = [line.split() for line in lines[1:]]
    assert [cid, str(pid), "created"] in [r[:3] for r in rows]

    cp = runtime.check(runtime.list(quiet=True), "list -q")
    assert cp.stdout.split() == [cid]

    cp = runtime.check(runtime.list(fmt="json"), "list -f json")
    entries = json.loads(cp.stdout)
    assert [e["id"] for e in entries] == [cid]
    assert entries[0]["pid"] == pid
    assert entries[0]["status"] == "created"
    assert os.path.realpath(entries[0]["bundle"]) == os.path.realpath(bundle.path)

    runtime.check(runtime.start(cid), "start")
    entries = json.loads(runtime.check(runtime.list(fmt="json"), "list").stdout)
    assert entries[0]["status"] == "running"


def test_list_empty(runtime):
    assert runtime.list_ids() == []
    cp = runtime.check(runtime.list(fmt="json"), "list -f json")
    assert json.loads(cp.stdout or "null") in (None, [])


def test_state_json_fields(runtime, bundle):
    bundle.config["annotations"] = {"org.example.key": "value", "com.example.other": "x y"}
    bundle.set_args("sleep", "3600")
    cid = runtime.new_id("state")
    runtime.check(runtime.create(cid, bundle.path), "create")
    st = runtime.state_json(cid)
    assert isinstance(st["ociVersion"], str) and st["ociVersion"].startswith("1.")
    assert st["id"] == cid
    assert st["status"] == "created"
    assert isinstance(st["pid"], int) and pid_alive(st["pid"])
    assert os.path.isabs(st["bundle"])
    assert os.path.realpath(st["bundle"]) == os.path.realpath(bundle.path)
    assert st.get("annotations") == bundle.config["annotations"]


def test_state_bundle_absolute_when_given_relative(runtime, bundle):
    bundle.set_args("sleep", "3600")
    cid = runtime.new_id("relbundle")
    # --bundle given relative to the runtime's cwd
    p, out, err = runtime.popen("create", "--bundle", bundle.path.name, cid, cwd=bundle.path.parent)
    runtime.check(runtime.finish(p, out, err), "create with a relative bundle")
    st = runtime.state_json(cid)
    assert os.path.isabs(st["bundle"])
    assert os.path.realpath(st["bundle"]) == os.path.realpath(bundle.path)


@pytest.mark.parametrize("code", [0, 3, 42])
def test_run_returns_exit_status(runtime, bundle, code):
    bundle.set_script(f"exit {code}")
    cid = runtime.new_id(f"exit{code}")
    cp = runtime.run(cid, bundle.path)
    assert cp.returncode == code, cp.stderr
    # a foreground run deletes its container
    assert cid not in runtime.list_ids()


@pytest.mark.parametrize("sig,code", [("KILL", 128 + 9), ("TERM", 128 + 15)])
def test_run_program_killed_by_signal(runtime, bundle, sig, code):
    # pid 1 of a pid namespace cannot be signalled from inside it, so the
    # program runs in the host's pid namespace and kills itself.
    remove_namespace(bundle.config, "pid")
    bundle.set_script(f"kill -{sig} $$; echo survived")
    cp = runtime.run(runtime.new_id(f"sig{sig}"), bundle.path)
    assert "survived" not in cp.stdout
    assert cp.returncode == code, cp.stderr


def test_run_init_killed_from_outside(runtime, bundle, host_dir):
    out = host_dir("out")
    bind_mount(bundle.config, out, "/out")
    bundle.set_script("echo up > /out/up; exec sleep 3600")
    cid = runtime.new_id("runkill")
    p, o, e = runtime.popen("run", "--bundle", bundle.path, cid)
    try:
        wait_file(out / "up")
        runtime.wait_status(cid, "running")
        runtime.check(runtime.kill(cid, "KILL"), "kill KILL")
    finally:
        cp = runtime.finish(p, o, e)
    assert cp.returncode == 137, cp.stderr


def test_run_detached_returns_while_running(runtime, bundle, host_dir):
    out = host_dir("out")
    bind_mount(bundle.config, out, "/out")
    bundle.set_script("echo up > /out/up; exec sleep 3600")
    cid = runtime.new_id("detach")
    pidfile = out.parent / "run.pid"
    cp = runtime.run(cid, bundle.path, detach=True, pid_file=pidfile, timeout=20)
    runtime.check(cp, "run -d")
    st = runtime.state_json(cid)
    assert st["status"] == "running"
    wait_file(out / "up")
    assert int(pidfile.read_text().strip()) == st["pid"]
    runtime.check(runtime.kill(cid, "KILL"), "kill")
    runtime.wait_status(cid, "stopped")
    runtime.check(runtime.delete(cid), "delete")


def test_pid_file_is_host_pid_of_init(runtime, bundle, workdir):
    bundle.set_args("sleep", "3600")
    cid = runtime.new_id("pidfile")
    pidfile = workdir.path / "ct.pid"
    runtime.check(runtime.create(cid, bundle.path, pid_file=pidfile), "create --pid-file")
    pid = int(pidfile.read_text().strip())
    assert pid == runtime.state_json(cid)["pid"]
    assert pid_alive(pid)
    runtime.check(runtime.start(cid), "start")
    wait_for(lambda: open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[0].endswith(b"sleep"),
             what="the pid-file pid to exec the user program")


def test_start_twice_fails(runtime, bundle):
    bundle.set_args("sleep", "3600")
    cid = runtime.new_id("start2")
    runtime.check(runtime.create(cid, bundle.path), "create")
    runtime.check(runtime.start(cid), "start")
    cp = runtime.start(cid)
    assert cp.returncode == 1
    assert cp.stderr.strip()
    assert runtime.status(cid) == "running"


def test_start_stopped_container_fails(runtime, bundle):
    cid = runtime.new_id("startstopped")
    runtime.check(runtime.create(cid, bundle.path), "create")
    runtime.check(runtime.start(cid), "start")
    runtime.wait_status(cid, "stopped")
    cp = runtime.start(cid)
    assert cp.returncode == 1
    assert cp.stderr.strip()
    assert runtime.status(cid) == "stopped"


@pytest.mark.deviation("crun", "wording: 'cannot open `ROOT/ID/exec.fifo`: No such file or directory' "
                       "instead of runc's 'cannot start an already running container'")
def test_start_twice_message(runtime, bundle):
    bundle.set_args("sleep", "3600")
    cid = runtime.new_id("start2msg")
    runtime.check(runtime.create(cid, bundle.path), "create")
    runtime.check(runtime.start(cid), "start")
    assert "cannot start an already running container" in runtime.start(cid).stderr


@pytest.mark.deviation("crun", "wording: 'container `ID` is not running' instead of runc's "
                       "'cannot start a container that has stopped'")
def test_start_stopped_message(runtime, bundle):
    cid = runtime.new_id("startstoppedmsg")
    runtime.check(runtime.create(cid, bundle.path), "create")
    runtime.check(runtime.start(cid), "start")
    runtime.wait_status(cid, "stopped")
    assert "cannot start a container that has stopped" in runtime.start(cid).stderr


def test_delete_running_without_force_fails(runtime, bundle):
    bundle.set_args("sleep", "3600")
    cid = runtime.new_id("delrun")
    runtime.check(runtime.create(cid, bundle.path), "create")
    runtime.check(runtime.start(cid), "start")
    pid = runtime.state_json(cid)["pid"]
    cp = runtime.delete(cid)
    assert cp.returncode == 1
    assert cp.stderr.strip()
    assert runtime.status(cid) == "running"
    assert pid_alive(pid)

    runtime.check(runtime.delete(cid, force=True), "delete --force")
    assert runtime.state(cid).returncode == 1
    wait_for(lambda: not pid_alive(pid), what="delete --force to kill the init")


def test_delete_created_container_without_force(runtime, bundle, host_dir):
    # runtime-spec: delete of a created container (never started) is allowed;
    # runc/crun kill the waiting init.  The program must never run.
    out = host_dir("out")
    bind_mount(bundle.config, out, "/out")
    bundle.set_script("echo ran > /out/ran")
    cid = runtime.new_id("delcreated")
    runtime.check(runtime.create(cid, bundle.path), "create")
    pid = runtime.state_json(cid)["pid"]
    runtime.check(runtime.delete(cid, force=True), "delete --force of a created container")
    wait_for(lambda: not pid_alive(pid), what="the init to be gone")
    assert runtime.state(cid).returncode == 1
    assert not (out / "ran").exists()


def test_delete_force_of_unknown_id_succeeds(runtime):
    # runc: `delete --force` of a missing container is not an error
    cp = runtime.delete(runtime.new_id("nonexistent"), force=True)
    assert cp.returncode == 0, cp.stderr


@pytest.mark.deviation("crun", "wording: 'the container `ID` is not in `created` or `stopped` state' "
                       "vs runc's 'cannot delete container ID that is not stopped: running'")
def test_delete_running_message(runtime, bundle):
    bundle.set_args("sleep", "3600")
    cid = runtime.new_id("delrunmsg")
    runtime.check(runtime.create(cid, bundle.path), "create")
    runtime.check(runtime.start(cid), "start")
    cp = runtime.delete(cid)
    assert f"cannot delete container {cid} that is not stopped: running" in cp.stderr


def test_duplicate_id_fails_and_first_unharmed(runtime, make_bundle):
    b1, b2 = make_bundle(), make_bundle()
    b1.set_args("sleep", "3600")
    b2.set_args("sleep", "3600")
    cid = runtime.new_id("dup")
    runtime.check(runtime.create(cid, b1.path), "create")
    st1 = runtime.state_json(cid)

    cp = runtime.create(cid, b2.path)
    assert cp.returncode == 1
    assert cp.stderr.strip()

    st2 = runtime.state_json(cid)
    assert st2["status"] == "created"
    assert st2["pid"] == st1["pid"] and pid_alive(st1["pid"])
    assert os.path.realpath(st2["bundle"]) == os.path.realpath(b1.path)
    assert runtime.list_ids() == [cid]
    runtime.check(runtime.start(cid), "start of the first container")
    assert runtime.status(cid) == "running"


@pytest.mark.deviation("crun", "wording: 'container `ID` already exists' vs runc's "
                       "'container with given ID already exists'")
def test_duplicate_id_message(runtime, make_bundle):
    b1, b2 = make_bundle(), make_bundle()
    cid = runtime.new_id("dupmsg")
    runtime.check(runtime.create(cid, b1.path), "create")
    assert "container with given ID already exists" in runtime.create(cid, b2.path).stderr


@pytest.mark.parametrize("verb", ["state", "start", "kill", "delete"])
def test_unknown_id_fails(runtime, verb):
    cid = runtime.new_id("unknown")
    cp = runtime.cmd(verb, cid)
    assert cp.returncode == 1
    assert cp.stderr.strip()


@pytest.mark.deviation("crun", "wording: 'error opening file `ROOT/ID/status`' (delete: "
                       "\"cannot open directory\") instead of runc's 'container does not exist'")
@pytest.mark.parametrize("verb", ["state", "start", "kill", "delete"])
def test_unknown_id_message(runtime, verb):
    cp = runtime.cmd(verb, runtime.new_id("unknown"))
    assert "container does not exist" in cp.stderr


# ---- kill

@pytest.mark.parametrize("sig,expect", [
    (None, "TERM"), ("TERM", "TERM"), ("SIGTERM", "TERM"), ("15", "TERM"),
    ("HUP", "HUP"), ("SIGUSR1", "USR1"), ("10", "USR1"), ("INT", "INT"),
])
def test_kill_delivers_signal(runtime, bundle, host_dir, sig, expect):
    out = host_dir("out")
    bind_mount(bundle.config, out, "/out")
    bundle.set_script(SIGNAL_RECORDER)
    cid = runtime.new_id("kill")
    runtime.check(runtime.create(cid, bundle.path), "create")
    runtime.check(runtime.start(cid), "start")
    wait_file(out / "ready")
    runtime.check(runtime.kill(cid, sig), f"kill {sig}")
    assert wait_file(out / "sig").split() == [expect]
    assert runtime.status(cid) == "running", "a trapped signal must not stop the container"


@pytest.mark.parametrize("sig", ["KILL", "SIGKILL", "9"])
def test_kill_sigkill_forms(runtime, bundle, host_dir, sig):
    out = host_dir("out")
    bind_mount(bundle.config, out, "/out")
    bundle.set_script(SIGNAL_RECORDER)
    cid = runtime.new_id("killkill")
    runtime.check(runtime.create(cid, bundle.path), "create")
    runtime.check(runtime.start(cid), "start")
    wait_file(out / "ready")
    pid = runtime.state_json(cid)["pid"]
    runtime.check(runtime.kill(cid, sig), f"kill {sig}")
    runtime.wait_status(cid, "stopped")
    assert not pid_alive(pid)
    assert not (out / "sig").exists(), "SIGKILL must not be delivered as a catchable signal"


@pytest.mark.deviation("crun", "`kill ID NOSUCHSIG` exits 0 and sends nothing; runc rejects an unknown signal")
def test_kill_unknown_signal_fails(runtime, bundle):
    bundle.set_args("sleep", "3600")
    cid = runtime.new_id("killbad")
    runtime.check(runtime.create(cid, bundle.path), "create")
    runtime.check(runtime.start(cid), "start")
    cp = runtime.kill(cid, "NOSUCHSIG")
    assert cp.returncode != 0
    assert cp.stderr.strip()
    assert runtime.status(cid) == "running"


def test_kill_created_container(runtime, bundle, host_dir):
    out = host_dir("out")
    bind_mount(bundle.config, out, "/out")
    bundle.set_script("echo ran > /out/ran")
    cid = runtime.new_id("killcreated")
    runtime.check(runtime.create(cid, bundle.path), "create")
    pid = runtime.state_json(cid)["pid"]
    runtime.check(runtime.kill(cid, "KILL"), "kill of a created container")
    runtime.wait_status(cid, "stopped")
    assert not pid_alive(pid)
    assert not (out / "ran").exists()
    runtime.check(runtime.delete(cid), "delete")


def test_kill_stopped_container_fails(runtime, bundle):
    cid = runtime.new_id("killstopped")
    runtime.check(runtime.create(cid, bundle.path), "create")
    runtime.check(runtime.start(cid), "start")
    runtime.wait_status(cid, "stopped")
    cp = runtime.kill(cid, "KILL")
    assert cp.returncode == 1
    assert cp.stderr.strip()
    assert runtime.status(cid) == "stopped"


@pytest.mark.deviation("crun", "wording: 'kill container: No such process' instead of runc's "
                       "'container not running'")
def test_kill_stopped_message(runtime, bundle):
    cid = runtime.new_id("killstoppedmsg")
    runtime.check(runtime.create(cid, bundle.path), "create")
    runtime.check(runtime.start(cid), "start")
    runtime.wait_status(cid, "stopped")
    assert "container not running" in runtime.kill(cid, "KILL").stderr


def test_concurrent_state_during_start(runtime, bundle, host_dir):
    out = host_dir("out")
    bind_mount(bundle.config, out, "/out")
    bundle.set_script("echo up > /out/up; sleep 0.3")
    cid = runtime.new_id("concurrent")
    runtime.check(runtime.create(cid, bundle.path), "create")
    results = []
    stop = threading.Event()

    def poll():
        while not stop.is_set() or len(results) < 10:
            results.append(runtime.state(cid))

    threads = [threading.Thread(target=poll) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        start = runtime.start(cid)
    finally:
        wait_file(out / "up")
        stop.set()
        for t in threads:
            t.join(60)
    runtime.check(start, "start")
    bad = [cp for cp in results if cp.returncode != 0]
    assert not bad, f"state failed during start: {bad[0].stderr}"
    statuses = {json.loads(cp.stdout)["status"] for cp in results}
    assert statuses <= {"created", "running", "stopped"}
    runtime.wait_status(cid, "stopped")
