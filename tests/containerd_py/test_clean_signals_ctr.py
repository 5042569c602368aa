"""A task's processes start with clean signal state under either daemon and
either runtime, as `ctr` users rely on: a shell waits for its background
jobs (SIGCHLD not blocked), and `ctr tasks kill` stops a shell that traps
SIGTERM (a non-interactive shell cannot trap what it was started ignoring)."""
import shutil
import subprocess

import pytest

from test_tasks_ctr import IMAGE, RUNTIMES, Runner

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(shutil.which("ctr") is None, reason="ctr (Debian package containerd) not installed")]


@pytest.fixture(params=sorted(RUNTIMES))
def runner(request, ctr, busybox_tar):
    """ctr (either daemon) running containers with one runtime binary; the image imported."""
    r = Runner(ctr.address, ctr.ns, RUNTIMES[request.param])
    r("images", "import", str(busybox_tar))
    yield r
    r.remove_everything()


def test_no_signal_ignored_or_blocked(runner):
    r = runner.run("--rm", IMAGE, "sig", "grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status")
    assert r.stdout.split() == ["SigBlk:", "0000000000000000", "SigIgn:", "0000000000000000"]


def test_a_shell_waits_for_its_background_job(runner):
    r = runner.run("--rm", IMAGE, "wait", "sh", "-c", "sleep 1 & wait; echo waited")
    assert r.stdout == "waited\n"


def test_ctr_tasks_kill_reaches_a_shell_that_traps_sigterm(runner):
    argv = ["ctr", "--address", runner.address, "-n", runner.ns, "run", "--rm", "--runc-binary", runner.runtime,
            IMAGE, "term", "sh", "-c", 'trap "echo got TERM; exit 7" TERM; echo ready; while :; do sleep 0.1; done']
    with subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as fg:
        try:
            assert fg.stdout.readline() == "ready\n", fg.stderr.read()
            runner("tasks", "kill", "term")  # SIGTERM, ctr's default
            out, err = fg.communicate(timeout=60)
        finally:
            if fg.poll() is None:
                runner("tasks", "kill", "-s", "SIGKILL", "term", check=False)
                fg.communicate(timeout=60)
    assert (fg.returncode, out) == (7, "got TERM\n"), err
