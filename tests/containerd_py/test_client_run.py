"""containerd-py-ctl's container verbs as a person uses them: run (--rm, -d, -t,
-e, --mount, --runtime), exec, ps, kill, rm, events — with the exit statuses and
the cleanup a user expects."""
import signal
import subprocess
import sys
import threading
import time

import pytest

from test_tasks_ctr import IMAGE, RUNTIMES

pytestmark = pytest.mark.root


class Ctl:
    def __init__(self, address: str, ns: str):
        self.argv = [sys.executable, "-m", "containerd_py.client", "-a", address, "-n", ns]

    def __call__(self, *args, input=None):
        return subprocess.run([*self.argv, *args], capture_output=True, text=True, timeout=120, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL)


@pytest.fixture
def ctl(daemon, ns, busybox_tar):
    c = Ctl(daemon.address, ns)
    assert c("import", str(busybox_tar)).returncode == 0
    yield c
    for cid in c("containers", "ls", "-q").stdout.split():
        c("rm", "-f", cid)


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
def test_run_rm_output_status_and_cleanup(ctl, client, ns, runtime):
    r = ctl("run", "--rm", "--runtime", RUNTIMES[runtime], IMAGE, "r1", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")
    assert ctl("containers", "ls", "-q").stdout == ""
    assert "r1" not in ctl("snapshots", "ls").stdout


def test_run_reads_stdin_and_takes_env_and_mounts(ctl, tmp_path):
    (tmp_path / "f").write_text("from the host\n")
    r = ctl("run", "--rm", "-e", "GREETING=hi", "--mount", f"type=bind,src={tmp_path},dst=/data,options=rbind:ro",
            IMAGE, "r2", "sh", "-c", "cat; echo $GREETING; cat /data/f; touch /data/x", input="piped\n")
    assert r.stdout.splitlines() == ["piped", "hi", "from the host"]
    assert r.returncode != 0 and "Read-only file system" in r.stderr  # the mount is read-only


def test_detached_container_ps_exec_kill_rm(ctl):
    r = ctl("run", "-d", IMAGE, "d1", "sleep", "1000")
    assert (r.returncode, r.stdout) == (0, "d1\n"), r.stderr
    ps = ctl("ps").stdout.splitlines()
    assert ps[0].split()[:2] == ["CONTAINER", "ID"] and ps[1].split()[0] == "d1" and ps[1].endswith("Running")
    e = ctl("exec", "d1", "sh", "-c", "echo $$; exit 5")
    assert e.returncode == 5 and int(e.stdout) > 1
    running = ctl("rm", "d1")
    assert running.returncode == 1 and "is running" in running.stderr
    assert ctl("kill", "-s", "KILL", "d1").returncode == 0
    deadline = time.monotonic() + 20
    while "Exited (137)" not in ctl("ps", "-a").stdout:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert ctl("rm", "d1").stdout == "d1\n"
    assert ctl("ps", "-a").stdout.splitlines()[1:] == []


def test_run_with_a_terminal(ctl):
    command = " ".join([*ctl.argv, "run", "--rm", "-t", IMAGE, "t1", "sh", "-c", "'tty; exit 4'"])
    r = subprocess.run(["script", "-qec", command, "/dev/null"], capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 4 and "/dev/pts/0" in r.stdout, r.stdout + r.stderr


def test_errors_name_what_is_wrong(ctl):
    missing = ctl("run", "--rm", IMAGE, "e1", "no-such-program")
    assert missing.returncode == 1 and "no-such-program" in missing.stderr
    assert ctl("containers", "ls", "-q").stdout == ""  # nothing half-made
    unknown = ctl("exec", "nope", "true")
    assert unknown.returncode == 1 and "not found" in unknown.stderr
    bad_mount = ctl("run", "--rm", "--mount", "type=bind,src=/tmp", IMAGE, "e2", "true")
    assert bad_mount.returncode != 0 and "dst" in bad_mount.stderr


def test_events_show_the_lifecycle(ctl):
    lines = []
    events = subprocess.Popen([*ctl.argv, "events"], stdout=subprocess.PIPE, text=True)
    threading.Thread(target=lambda: lines.extend(events.stdout), daemon=True).start()
    try:
        time.sleep(1)  # subscribed (the client's interpreter has started)
        assert ctl("run", "--rm", IMAGE, "v1", "true").returncode == 0
        deadline = time.monotonic() + 10
        while not any("/containers/delete" in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        events.terminate()
        events.wait()
    topics = [line.split()[3] for line in lines]
    assert [t for t in topics if t.startswith("/tasks/")] == ["/tasks/create", "/tasks/start", "/tasks/exit",
                                                              "/tasks/delete"]


def test_run_pulls_an_image_it_does_not_have(daemon, ns, registry, busybox_tar):
    from registries import skopeo_copy

    repo = f"run{ns[-8:]}"
    skopeo_copy(str(busybox_tar), registry, f"{repo}:v1")
    c = Ctl(daemon.address, ns)
    ref = f"{registry.host}/{repo}:v1"
    r = c("run", "--rm", "--plain-http", ref, "p1", "sh", "-c", "echo pulled-and-ran")
    assert (r.returncode, r.stdout) == (0, "pulled-and-ran\n"), r.stderr
    assert f"Unable to find image '{ref}' locally" in r.stderr
    assert ref in c("images", "ls").stdout


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
@pytest.mark.parametrize("sig", ["TERM", "INT"])
def test_a_foreground_run_forwards_signals_to_the_container(ctl, sig, runtime):
    """As ctr run does: the container's handler runs, and the run exits with its status."""
    script = f'trap "echo got; exit 3" {sig}; echo ready; while :; do sleep 0.1; done'
    run = subprocess.Popen([*ctl.argv, "run", "--rm", "--runtime", RUNTIMES[runtime], IMAGE, f"sig{sig.lower()}",
                            "sh", "-c", script],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert run.stdout.readline() == "ready\n"  # the trap is set
        run.send_signal(getattr(signal, f"SIG{sig}"))
        out, err = run.communicate(timeout=60)
    finally:
        run.kill()
        run.wait()
    assert (run.returncode, out) == (3, "got\n"), err
