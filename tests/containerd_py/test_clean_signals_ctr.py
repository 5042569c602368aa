"""A task's processes start with clean signal state under either daemon and
either runtime, as `ctr` users rely on: a shell waits for its background
jobs (SIGCHLD not blocked), and `ctr tasks kill` stops a shell that traps
SIGTERM (a non-interactive shell cannot trap what it was started ignoring)."""
import shutil
import subprocess

import pytest

from test_tasks_ctr import IMAGE, RUNTIMES

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(shutil.which("ctr") is None, reason="ctr (Debian package containerd) not installed")]


@pytest.fixture(params=sorted(RUNTIMES))
def runtime(request, ctr, busybox_tar):
    """The runtime binary for `ctr run --runc-binary`; the image imported."""
    ctr("images", "import", str(busybox_tar))
    yield RUNTIMES[request.param]
    for cid in ctr("tasks", "ls", "-q", check=False).stdout.split():
        ctr("tasks", "kill", "-s", "SIGKILL", cid, check=False)
        ctr("tasks", "rm", "-f", cid, check=False)
    for cid in ctr("containers", "ls", "-q", check=False).stdout.split():
        ctr("containers", "rm", cid, check=False)


def test_no_signal_ignored_or_blocked(ctr, runtime):
    r = ctr("run", "--rm", "--runc-binary", runtime, IMAGE, "sig", "grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status")
    assert r.stdout.split() == ["SigBlk:", "0000000000000000", "SigIgn:", "0000000000000000"]


def test_a_shell_waits_for_its_background_job(ctr, runtime):
    r = ctr("run", "--rm", "--runc-binary", runtime, IMAGE, "wait", "sh", "-c", "sleep 1 & wait; echo waited")
    assert r.stdout == "waited\n"


def test_ctr_tasks_kill_reaches_a_shell_that_traps_sigterm(ctr, runtime):
    argv = ["ctr", "--address", ctr.address, "-n", ctr.ns, "run", "--rm", "--runc-binary", runtime, IMAGE, "term",
            "sh", "-c", 'trap "echo got TERM; exit 7" TERM; echo ready; while :; do sleep 0.1; done']
    with subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as fg:
        try:
            assert fg.stdout.readline() == "ready\n", fg.stderr.read()
            ctr("tasks", "kill", "term")  # SIGTERM, ctr's default
            out, err = fg.communicate(timeout=60)
        finally:
            if fg.poll() is None:
                ctr("tasks", "kill", "-s", "SIGKILL", "term", check=False)
                fg.communicate(timeout=60)
    assert (fg.returncode, out) == (7, "got TERM\n"), err
