"""The log promise at the engine's level (issue 10, "Survival"): a container
run by `docker run -d` that prints continuously keeps printing while
engine-py is killed with -9, and while its containerd-py is; no line is
lost, and `docker logs -f` and `docker attach` work after the restart.

An engine of the test's own (the session's shared one is not to be killed)."""
import os
import signal
import subprocess
import time

import pytest

from engine.logs import jsonfile
from engine_daemon import running_engine
from logs_fixtures import DEADLINE, GROWTH_WHILE_DOWN, PIPE_CAPACITY, PRINTER, wait_growth

pytestmark = pytest.mark.root

@pytest.fixture(scope="module")
def own_engine():
    with running_engine() as engine:
        yield engine


def containerd_pid(engine) -> int:
    with open(f"{engine.exec_root}/containerd/containerd.pid") as f:
        return int(f.read())


def _wait_answering(engine) -> None:
    deadline = time.monotonic() + DEADLINE
    while engine.docker("ps", check=False).returncode != 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def _kill_containerd(engine) -> None:
    """kill -9 of the engine's containerd-py; its supervisor starts another."""
    old = containerd_pid(engine)
    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + DEADLINE
    while not os.path.exists(f"{engine.exec_root}/containerd/containerd.pid") or containerd_pid(engine) == old:
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.parametrize("killed, options", [("engine-py", ()), ("containerd-py", ()),
                                             ("engine-py", ("-i",)),  # -i: the engine's own logger (FIFOs)
                                             ("engine-py", ("--log-opt", "compress=true"))],  # the logger's gzip
                         ids=["engine-py", "containerd-py", "engine-py-interactive", "engine-py-compressed"])
def test_a_printing_container_neither_stalls_nor_loses_a_line(own_engine, killed, options, request):
    docker = own_engine.docker
    name = f"printer-{request.node.callspec.id}"
    docker("run", "-d", "--name", name, *options, "--log-opt", "max-size=256k", "--log-opt", "max-file=1000",
           "busybox", "sh", "-c", PRINTER)
    log = docker("inspect", "-f", "{{.LogPath}}", name).stdout.strip()
    wait_growth(log, PIPE_CAPACITY)

    if killed == "engine-py":
        own_engine.kill()
        wait_growth(log, GROWTH_WHILE_DOWN)  # nothing but the logger reads the container's pipes now
        own_engine.start()
    else:
        _kill_containerd(own_engine)
        wait_growth(log, GROWTH_WHILE_DOWN)
        _wait_answering(own_engine)
    wait_growth(log, PIPE_CAPACITY)

    with open(f"{own_engine.workdir}/followed", "w+b") as followed, \
            open(f"{own_engine.workdir}/attached", "w+b") as attached:
        clients = [subprocess.Popen(["docker", "-H", own_engine.host, *args, name], stdout=out,
                                    stderr=subprocess.DEVNULL)
                   for args, out in ((("logs", "-f", "--tail", "0"), followed), (("attach", "--no-stdin"), attached))]
        try:
            wait_growth(log, PIPE_CAPACITY)
            docker("kill", name)
            assert [client.wait(timeout=DEADLINE) for client in clients] == [0, 137]
        finally:
            for client in clients:
                client.kill()
                client.wait()
        followed, seen = (f.seek(0) or f.read() for f in (followed, attached))
    assert followed and seen

    shown = docker("logs", name)
    numbers = sorted(int(line.split()[0]) for line in (shown.stdout + shown.stderr).splitlines())
    assert numbers == list(range(1, len(numbers) + 1)), "a line is missing"
    assert len(jsonfile.rotated_files(log)) > 1  # rotated on the way
    # The follow and the attach ran to the log's end: the last line is in what they showed.
    followed_numbers = {int(line.split()[0]) for line in followed.splitlines()}
    assert numbers[-1] in followed_numbers or numbers[-1] % 10 == 0  # (a stderr line shows on the CLI's stderr)
    assert seen.splitlines()[-1] == followed.splitlines()[-1]
    docker("rm", "-f", name)
