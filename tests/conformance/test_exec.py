"""exec: a new process inside a running container — its namespaces, cgroup,
user, environment, cwd, exit status, pid file, terminal — and runc's errors."""
import json
import os

import pytest

from .harness import ConsoleSocket, base_config, wait_for

pytestmark = pytest.mark.root


@pytest.fixture
def running(runtime, make_bundle):
    """A detached container running `sleep 600`; returns (id, init pid)."""
    cfg = base_config(["sleep", "600"])
    cfg["hostname"] = "exechost"
    cfg["process"]["env"].append("FROM_SPEC=1")
    b = make_bundle(cfg)
    cid = runtime.new_id("ex")
    runtime.check(runtime.run(cid, b.path, detach=True), "run -d")
    return cid, runtime.state_json(cid)["pid"]


def ns_links(pid):
    return {n: os.readlink(f"/proc/{pid}/ns/{n}") for n in ("pid", "mnt", "net", "ipc", "uts")}


def test_exec_status_output_and_namespaces(runtime, running):
    cid, init = running
    r = runtime.cmd("exec", cid, "sh", "-c", "hostname; echo $FROM_SPEC; readlink /proc/self/ns/mnt; exit 6")
    assert r.returncode == 6, r.stderr
    host, env, mnt = r.stdout.split()
    assert (host, env, mnt) == ("exechost", "1", ns_links(init)["mnt"])


def test_exec_joins_the_pid_namespace_and_cgroup(runtime, running, tmp_path):
    cid, init = running
    pid_file = tmp_path / "exec.pid"
    runtime.check(runtime.cmd("exec", "-d", "--pid-file", str(pid_file), cid, "sleep", "30"), "exec -d")
    pid = int(pid_file.read_text())
    assert ns_links(pid) == ns_links(init)
    with open(f"/proc/{pid}/cgroup") as a, open(f"/proc/{init}/cgroup") as b:
        assert a.read() == b.read()
    ps = runtime.cmd("ps", "--format", "json", cid)
    assert pid in json.loads(ps.stdout)


@pytest.mark.deviation("crun", "exec --env replaces the process's environment (PATH is lost) instead of adding to it")
def test_exec_flags_user_env_cwd(runtime, running):
    cid, _ = running
    r = runtime.cmd("exec", "-u", "1000:1000", "-e", "A=1", "-e", "B=2", "--cwd", "/tmp", cid,
                    "sh", "-c", "id -u; id -g; echo $A$B; pwd")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1000", "1000", "12", "/tmp"]


def test_exec_process_json(runtime, running, tmp_path):
    cid, _ = running
    process = {"args": ["sh", "-c", "echo $X; id -u; pwd"], "env": ["X=from-json", "PATH=/bin"], "cwd": "/home",
               "user": {"uid": 65534, "gid": 65534}}
    (tmp_path / "process.json").write_text(json.dumps(process))
    r = runtime.cmd("exec", "-p", str(tmp_path / "process.json"), cid)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["from-json", "65534", "/home"]


def test_exec_leaks_no_descriptor(runtime, running):
    cid, _ = running
    r = runtime.cmd("exec", cid, "ls", "/proc/self/fd")
    assert r.returncode == 0, r.stderr
    assert sorted(int(fd) for fd in r.stdout.split()) == [0, 1, 2, 3]  # 3: ls's own listing of the directory


def test_exec_with_a_terminal(runtime, running, tmp_path):
    cid, _ = running
    sock = ConsoleSocket(tmp_path / "console.sock")
    try:
        started = runtime.popen("exec", "-d", "-t", "--console-socket", str(sock.path), cid, "sh", "-c",
                                "tty; echo done; sleep 1")
        sock.receive()
        out = sock.read_until(b"done")
        assert b"/dev/pts/" in out
        r = runtime.finish(*started)
        assert r.returncode == 0, r.stderr
    finally:
        sock.close()


@pytest.mark.parametrize("args, message", [
    (["sh", "-c", "exit 0"], None),
    pytest.param(["nosuch-program"], "executable file not found",
                 marks=pytest.mark.deviation("crun", "error wording differs from runc's")),
])
def test_exec_errors_exit_255(runtime, running, args, message):
    cid, _ = running
    r = runtime.cmd("exec", cid, *args)
    if message is None:
        assert r.returncode == 0
    else:
        assert r.returncode == 255 and message in r.stderr and "exec failed" in r.stderr


@pytest.mark.deviation("crun", "exec in a stopped container exits 1 with its own wording")
def test_exec_in_a_stopped_container(runtime, running):
    cid, init = running
    runtime.check(runtime.kill(cid, "KILL"), "kill")
    runtime.wait_status(cid, "stopped")
    r = runtime.cmd("exec", cid, "true")
    assert r.returncode == 255 and "cannot exec in a stopped container" in r.stderr


@pytest.mark.deviation("crun", "exec in a paused container is allowed")
def test_exec_in_a_paused_container_needs_ignore_paused(runtime, running):
    cid, _ = running
    runtime.check(runtime.cmd("pause", cid), "pause")
    try:
        r = runtime.cmd("exec", cid, "true")
        assert r.returncode == 255 and "paused" in r.stderr
    finally:
        runtime.check(runtime.cmd("resume", cid), "resume")
    wait_for(lambda: runtime.status(cid) == "running", what="resumed")
