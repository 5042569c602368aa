"""engine-py-init, the init of `docker run --init`, run directly: exit codes
passed on, signals forwarded, orphans reaped when it is pid 1."""
import signal
import subprocess
import time

import pytest

from engine import init


def test_the_child_s_exit_code_is_passed_on():
    assert subprocess.run([init.BINARY, "--", "sh", "-c", "exit 3"]).returncode == 3
    assert subprocess.run([init.BINARY, "--", "sh", "-c", "kill -KILL $$"]).returncode == 137


def test_a_missing_command_is_127_and_no_command_is_a_usage_error():
    missing = subprocess.run([init.BINARY, "--", "/no/such/program"], capture_output=True, text=True)
    assert missing.returncode == 127 and "exec /no/such/program" in missing.stderr
    assert subprocess.run([init.BINARY, "--"], capture_output=True).returncode == 2


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGUSR1])
def test_signals_are_forwarded_to_the_child(sig):
    # a run started in the background by a shell inherits SIGINT ignored, and so would sleep: a container's
    # processes start with the default dispositions
    proc = subprocess.Popen([init.BINARY, "--", "sh", "-c", "echo ready; exec sleep 100"], stdout=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(sig, signal.SIG_DFL))
    assert proc.stdout.readline() == b"ready\n"
    child = int(open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()[0])
    deadline = time.monotonic() + 30  # guards a hang only
    while open(f"/proc/{child}/comm").read().strip() != "sleep" and time.monotonic() < deadline:
        time.sleep(0.01)  # the shell's exec of sleep: a signal before it would meet the shell
    proc.send_signal(sig)
    assert proc.wait(timeout=30) == 128 + sig


def test_as_pid_1_orphans_are_reaped():
    """In a pid namespace of its own the init inherits the orphan and reaps it: no zombie at the end."""
    out = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", init.BINARY, "--", "sh", "-c",
                          "sh -c 'sleep 0.2 &'; sleep 0.6; ps -o stat,comm | grep -c '^Z' || true"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.strip() == "0", out
