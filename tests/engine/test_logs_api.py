"""`docker logs` and `docker run` in the foreground through the real docker
CLI (28 and 20.10) at engine-py, compared with real dockerd where a user
sees the same: output, streams apart, exit codes, refusals."""
import json
import time

import pytest

from logs_fixtures import names  # noqa: F401 (a fixture)

CLIS = ("28", "20.10")
pytestmark = pytest.mark.root

LINES = "echo one; echo two >&2; echo three; echo four >&2"
COUNTED = "i=0; while [ $i -lt 5 ]; do echo line $i; i=$((i+1)); done"


def _exited(daemon, name, cmd, *options):
    daemon.docker("run", "--name", name, *options, "busybox", "sh", "-c", cmd)
    return name


@pytest.mark.parametrize("cli", CLIS)
def test_run_in_the_foreground_prints_stdout_and_stderr_apart_and_exits_with_the_code(engine_py, dockerd, cli):
    for daemon, docker in ((engine_py, engine_py.cli(cli).docker), (dockerd, dockerd.docker)):
        r = docker("run", "--rm", "busybox", "sh", "-c", "echo hi; echo oops >&2; exit 3", check=False)
        assert (r.returncode, r.stdout, r.stderr) == (3, "hi\n", "oops\n"), daemon


@pytest.mark.parametrize("cli", CLIS)
def test_logs_as_dockerd_shows_them(engine_py, dockerd, names, cli):
    name, counted = names(), names()
    docker = engine_py.cli(cli).docker
    for daemon, run in ((engine_py, docker), (dockerd, dockerd.docker)):
        _exited(daemon, name, LINES)
        shown = run("logs", name)  # two pipes: the order between the streams is not kept
        assert (shown.stdout, shown.stderr) == ("one\nthree\n", "two\nfour\n"), daemon
        _exited(daemon, counted, COUNTED)
    for args in ([], ["--tail", "2"], ["--tail", "0"], ["--tail", "all"], ["-n", "1"], ["--tail", "-1"],
                 ["--details"], ["--details", "--tail", "1"]):
        mine, real = docker("logs", *args, counted, check=False), dockerd.docker("logs", *args, counted, check=False)
        assert (mine.returncode, mine.stdout, mine.stderr) == (real.returncode, real.stdout, real.stderr), args


def test_logs_timestamps_since_until(engine_py, names):
    docker = engine_py.docker
    name = names()
    docker("run", "--name", name, "busybox", "sh", "-c", "echo early; sleep 1.2; echo late")
    stamped = docker("logs", "-t", name).stdout.splitlines()
    assert [line.split(" ", 1)[1] for line in stamped] == ["early", "late"]
    first, second = (line.split(" ", 1)[0] for line in stamped)
    assert len(first) == len("2006-01-02T15:04:05.000000000Z") and first < second
    assert docker("logs", "--since", second, name).stdout == "late\n"
    assert docker("logs", "--until", first, name).stdout == "early\n"
    assert docker("logs", "--since", "1h", name).stdout == "early\nlate\n"


def test_logs_follow_ends_when_the_container_exits(engine_py, names):
    docker = engine_py.docker
    name = names()
    docker("run", "-d", "--name", name, "busybox", "sh", "-c", "echo a; sleep 1; echo b")
    assert docker("logs", "-f", name).stdout == "a\nb\n"
    assert docker("logs", "-f", "--tail", "1", name).stdout == "b\n"


def test_a_tty_container_s_output_is_all_stdout_raw(engine_py, dockerd, names):
    name = names()
    for daemon in (engine_py, dockerd):  # the runtime clears ONLCR, as runc does
        r = daemon.docker("run", "-t", "--name", name, "busybox", "sh", "-c", "echo out; echo err >&2")
        assert (r.stdout, r.stderr) == ("out\nerr\n", ""), daemon
        r = daemon.docker("logs", name)
        assert (r.stdout, r.stderr) == ("out\nerr\n", ""), daemon


def test_logs_refused_as_dockerd_refuses_them(engine_py, dockerd, names):
    name = names()
    for daemon in (engine_py, dockerd):
        daemon.docker("create", "--name", name, "--log-driver", "none", "busybox")
        r = daemon.docker("logs", name, check=False)
        assert (r.returncode, r.stderr.strip()) == (
            1, "Error response from daemon: configured logging driver does not support reading"), daemon
        r = daemon.docker("run", "--log-opt", "max-sise=1k", "busybox", check=False)
        assert r.returncode == 125 and \
            "Error response from daemon: unknown log opt 'max-sise' for json-file log driver" in r.stderr, daemon
    missing = engine_py.docker("logs", "nosuchcontainer", check=False)
    assert (missing.returncode, missing.stderr.strip()) == (1, "Error response from daemon: No such container: "
                                                               "nosuchcontainer")


def test_log_opts_rotate_and_show_in_inspect(engine_py, names):
    docker = engine_py.docker
    name = names()
    docker("run", "--name", name, "--log-opt", "max-size=1k", "--log-opt", "max-file=2", "busybox", "sh", "-c",
           "i=0; while [ $i -lt 100 ]; do echo line $i; i=$((i+1)); done")
    shown = json.loads(docker("inspect", name).stdout)[0]
    assert shown["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": {"max-file": "2", "max-size": "1k"}}
    assert shown["LogPath"].endswith(f"{shown['Id']}-json.log")
    assert docker("logs", "--tail", "1", name).stdout == "line 99\n"


def test_run_with_log_driver_none_still_prints(engine_py, dockerd):
    for daemon in (engine_py, dockerd):
        r = daemon.docker("run", "--rm", "--log-driver", "none", "busybox", "sh", "-c", "echo seen; echo err >&2")
        assert (r.stdout, r.stderr) == ("seen\n", "err\n"), daemon


def test_logs_follow_sees_lines_as_they_come(engine_py, names):
    docker = engine_py.docker
    name = names()
    docker("run", "-d", "--name", name, "-i", "busybox", "sh", "-c", "echo first; read x; echo second")
    deadline = time.monotonic() + 60
    while docker("logs", name).stdout != "first\n":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    docker("kill", name)
    assert docker("logs", "-f", name).stdout == "first\n"
