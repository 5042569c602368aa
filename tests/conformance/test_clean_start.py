"""A container process starts clean, whoever started the runtime: default
signal dispositions, an empty signal mask, and only the descriptors the
command line names (stdio, --preserve-fds, systemd's LISTEN_FDS) — though
the runtime itself was started by a shim that ignores or blocks signals and
leaks descriptors."""
import json
import signal
import subprocess
import sys

import pytest

from .harness import base_config, kv, sh, wait_for

pytestmark = pytest.mark.root

# Runs the runtime (argv[2:]) with the caller's state argv[1] describes (JSON):
# signals ignored and blocked, descriptors open at given numbers, and systemd's
# socket-activation variables naming this very process (the pid exec keeps).
LAUNCHER = """
import json, os, signal, sys
want = json.loads(sys.argv[1])
for sig in want["ignore"]:
    signal.signal(sig, signal.SIG_IGN)
signal.pthread_sigmask(signal.SIG_BLOCK, want["block"])
for fd, path in want["fds"].items():
    opened = os.open(path, os.O_RDONLY)
    if opened == int(fd):
        os.set_inheritable(opened, True)
    else:
        os.dup2(opened, int(fd))
env = dict(os.environ)
if want["listen"]:
    env.update(LISTEN_FDS=str(want["listen"]), LISTEN_PID=str(want["listen_pid"] or os.getpid()))
os.execvpe(sys.argv[2], sys.argv[2:], env)
"""

STANDARD = [sig for sig in range(1, 32) if sig not in (signal.SIGKILL, signal.SIGSTOP)]
CATCHABLE = sorted(set(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP} - set(range(32, 34)))
GO_RUNTIME = "the caller's {} signals that Go's runtime does not handle (real-time ones, SIGWINCH, ...) stay {}"
CALLERS = [
    # containerd-py's shim and many supervisors: terminal signals ignored, SIGCHLD through a signalfd
    pytest.param({"ignore": [signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGPIPE],
                  "block": [signal.SIGCHLD]}, id="shim"),
    pytest.param({"ignore": STANDARD, "block": []}, id="standard-ignored"),
    pytest.param({"ignore": CATCHABLE, "block": []}, id="all-ignored",
                 marks=pytest.mark.deviation("runc", GO_RUNTIME.format("ignored", "ignored"))),
    pytest.param({"ignore": [], "block": CATCHABLE}, id="all-blocked",
                 marks=pytest.mark.deviation("runc", GO_RUNTIME.format("blocked", "blocked"))),
]

# What the process reports: its signal state, and the descriptors of the shell
# itself ($$: not ls's, and while ls runs the shell holds no pipe of its own).
PROBE = ("grep -E '^Sig(Ign|Blk):' /proc/self/status | tr -d '\\t' | tr : =; "
         "echo fds-begin; ls /proc/$$/fd; echo fds-end")


def launched(runtime, tmp_path, caller, *args, fds=None, listen=0, listen_pid=None):
    """The runtime verb ``args``, started by a process in the ``caller`` state
    holding ``fds`` ({number: path}) and, with ``listen``, systemd's LISTEN_FDS
    naming that process (or ``listen_pid``)."""
    state = {"ignore": [int(s) for s in caller.get("ignore", [])], "block": [int(s) for s in caller.get("block", [])],
             "fds": fds or {}, "listen": listen, "listen_pid": listen_pid}
    out, err = tmp_path / "launched.out", tmp_path / "launched.err"
    with open(out, "wb") as fo, open(err, "wb") as fe:
        p = subprocess.Popen([sys.executable, "-c", LAUNCHER, json.dumps(state), *runtime.argv(*args)],
                             stdin=subprocess.DEVNULL, stdout=fo, stderr=fe)
    return runtime.finish(p, out, err)


def fds_of(output):
    """The descriptor numbers the probe listed."""
    lines = output.splitlines()
    return sorted(int(fd) for fd in lines[lines.index("fds-begin") + 1:lines.index("fds-end")])


def assert_clean(output):
    got = kv(output)
    assert (int(got["SigIgn"], 16), int(got["SigBlk"], 16)) == (0, 0), output
    assert fds_of(output) == [0, 1, 2], output


@pytest.mark.parametrize("caller", CALLERS)
def test_the_init_starts_clean(runtime, bundle, caller, tmp_path):
    bundle.config["process"]["args"] = sh(PROBE)
    bundle.write()
    cp = launched(runtime, tmp_path, caller, "run", "--bundle", bundle.path, runtime.new_id("clean"),
                  fds={3: str(bundle.config_path), 9: str(bundle.config_path)})
    runtime.check(cp, "run")
    assert_clean(cp.stdout)


@pytest.mark.parametrize("caller", CALLERS)
def test_an_exec_starts_clean(runtime, make_bundle, caller, tmp_path):
    cid = runtime.new_id("cleanexec")
    runtime.check(runtime.run(cid, make_bundle(base_config(["sleep", "600"])).path, detach=True), "run -d")
    cp = launched(runtime, tmp_path, caller, "exec", cid, "sh", "-c", PROBE, fds={3: "/dev/null", 9: "/dev/null"})
    runtime.check(cp, "exec")
    assert_clean(cp.stdout)


@pytest.mark.deviation("crun", "sets LISTEN_PID=1 but not LISTEN_FDS in the init's environment")
def test_preserved_and_socket_activation_fds_reach_the_init(runtime, bundle, tmp_path):
    """runc: LISTEN_FDS (with LISTEN_PID naming the runtime) passes fds 3.. on,
    as LISTEN_FDS=N and LISTEN_PID=1 in the init's environment; --preserve-fds
    passes the next ones; anything above is closed."""
    for name in ("listened", "preserved", "leaked"):
        (tmp_path / name).write_text(name)
    bundle.config["process"]["args"] = sh(PROBE + "; echo listen_fds=$LISTEN_FDS listen_pid=$LISTEN_PID;"
                                                  " echo read=$(cat <&3)+$(cat <&4)")
    bundle.write()
    cp = launched(runtime, tmp_path, {}, "run", "--preserve-fds", "1", "--bundle", bundle.path, runtime.new_id("listen"),
                  fds={3: str(tmp_path / "listened"), 4: str(tmp_path / "preserved"), 5: str(tmp_path / "leaked")},
                  listen=1)
    runtime.check(cp, "run")
    out = kv(cp.stdout)
    assert fds_of(cp.stdout) == [0, 1, 2, 3, 4], cp.stdout
    assert out["read"] == "listened+preserved"
    assert out["listen_fds"] == "1 listen_pid=1"


@pytest.mark.deviation("crun", "passes LISTEN_FDS's descriptors on whatever LISTEN_PID says")
def test_socket_activation_for_another_process_is_ignored(runtime, bundle, tmp_path):
    """LISTEN_PID naming some other process: the fds were not meant for the runtime."""
    bundle.config["process"]["args"] = sh(PROBE + "; echo listen_fds=$LISTEN_FDS")
    bundle.write()
    cp = launched(runtime, tmp_path, {}, "run", "--bundle", bundle.path, runtime.new_id("notours"),
                  fds={3: str(bundle.config_path)}, listen=1, listen_pid=1)
    runtime.check(cp, "run")
    assert fds_of(cp.stdout) == [0, 1, 2], cp.stdout
    assert kv(cp.stdout)["listen_fds"] == "", cp.stdout


def test_a_foreground_run_started_with_signals_blocked_still_forwards_them(runtime, bundle, tmp_path):
    """runc forwards the signals it gets to the container in the foreground,
    though its caller had them ignored and blocked."""
    bundle.config["process"]["args"] = sh('trap "echo got TERM; exit 7" TERM; echo ready; '
                                          'while :; do sleep 0.01; done')
    bundle.write()
    state = {"ignore": [int(signal.SIGTERM)], "block": [int(signal.SIGTERM)], "fds": {}, "listen": 0,
             "listen_pid": None}
    out, err = tmp_path / "fg.out", tmp_path / "fg.err"
    with open(out, "wb") as fo, open(err, "wb") as fe:
        p = subprocess.Popen([sys.executable, "-c", LAUNCHER, json.dumps(state),
                              *runtime.argv("run", "--bundle", bundle.path, runtime.new_id("fg"))],
                             stdin=subprocess.DEVNULL, stdout=fo, stderr=fe)
    try:
        wait_for(lambda: out.read_text() == "ready\n", what="the container to trap TERM")
        p.send_signal(signal.SIGTERM)  # the runtime: the launcher exec'd it
    finally:
        cp = runtime.finish(p, out, err)
    assert (cp.returncode, cp.stdout) == (7, "ready\ngot TERM\n"), cp.stderr
