"""Log rotation through the docker CLI at engine-py and at dockerd 20.10, in
one test each: the files json-file's max-size/max-file/compress and the local
driver leave, `docker logs` (--tail, --since, -f) across them, and the
options' refusals in dockerd's words at the moment dockerd refuses them."""
import gzip
import json
import os
import re
import subprocess

import pytest

from dockerd_oracle import running_dockerd
from engine.logs import jsonfile
from engine.logs.local import LOCAL_FRAMES, _fields
from engine_daemon import running_engine
from logs_fixtures import names  # noqa: F401 (a fixture)

pytestmark = pytest.mark.root

PRINTER = 'i=0; while [ $i -lt 500 ]; do i=$((i+1)); echo "line $i"; done'


def container_dir(daemon, cid: str) -> str:
    data_root = getattr(daemon, "data_root", None) or f"{daemon.workdir}/data"
    return f"{data_root}/containers/{cid}"


def run_exited(daemon, name: str, *options: str, cmd: str = PRINTER) -> str:
    cid = daemon.docker("run", "-d", "--name", name, "--network", "none", *options, "busybox", "sh", "-c",
                        cmd).stdout.strip()
    daemon.docker("wait", cid)
    return cid


def log_files(daemon, cid: str, under: str = "") -> list[str]:
    """The log files in the container's directory, its ID written as ID."""
    where = os.path.join(container_dir(daemon, cid), under)
    return sorted(f.replace(cid, "ID") for f in os.listdir(where) if re.search(r"(json|container)\.log", f))


def numbers(text: str) -> list[int]:
    return [int(line.split()[1]) for line in text.splitlines()]


def since(daemon, cid: str, stamped: list[str], index: int) -> tuple[bool, bool]:
    """`docker logs --since` the time of entry `index`: (whether it shows
    every entry from there, whether what it shows is a suffix of those)."""
    at = jsonfile.parse_time(stamped[index].split()[0])
    shown = daemon.docker("logs", "--since", f"{at // 10**9}.{at % 10**9:09d}", cid).stdout
    wanted = "".join(line.split(" ", 1)[1] + "\n" for line in stamped[index:])
    return shown == wanted, wanted.endswith(shown)


def test_compressed_rotation_and_logs_across_it_as_dockerd(engine_py, dockerd, names):  # noqa: F811
    """As dockerd's: the files, their gzip headers, --tail, --since within the
    current file. dockerd 20.10's --since stops at the oldest compressed file
    that ends before it, so it skips the newer rotated files too (it shows
    only the current file's entries); ours shows them all."""
    shown = {}
    for daemon in (engine_py, dockerd):
        cid = run_exited(daemon, names(), "--log-opt", "max-size=2k", "--log-opt", "max-file=3",
                         "--log-opt", "compress=true")
        inspect = json.loads(daemon.docker("inspect", cid).stdout)[0]
        log = inspect["LogPath"]
        headers = []
        for name in (f"{log}.1.gz", f"{log}.2.gz"):
            with open(name, "rb") as f:
                raw = f.read()
            head_len = 12 + int.from_bytes(raw[10:12], "little")
            last_entry = json.loads(gzip.decompress(raw).splitlines()[-1])
            headers.append((raw[:10], json.loads(raw[12:head_len]) == {"lastTime": last_entry["time"]}))
        everything = daemon.docker("logs", cid).stdout
        stamped = daemon.docker("logs", "--timestamps", cid).stdout.splitlines()
        shown[daemon] = {
            "files": log_files(daemon, cid), "LogConfig": inspect["HostConfig"]["LogConfig"], "headers": headers,
            "contiguous to the end": numbers(everything) == list(range(numbers(everything)[0], 501)),
            "tail": daemon.docker("logs", "--tail", "3", cid).stdout,
            "since in the current file": since(daemon, cid, stamped, len(stamped) - 5),
            "since in a rotated file": since(daemon, cid, stamped, len(stamped) // 2),
        }
    assert shown[engine_py].pop("since in a rotated file") == (True, True)
    assert shown[dockerd].pop("since in a rotated file")[1]
    assert shown[engine_py] == shown[dockerd]
    assert shown[dockerd]["files"] == ["ID-json.log", "ID-json.log.1.gz", "ID-json.log.2.gz"]
    assert shown[dockerd]["tail"] == "line 498\nline 499\nline 500\n"
    assert shown[dockerd]["contiguous to the end"] and shown[dockerd]["since in the current file"] == (True, True)


def test_follow_across_compressed_rotations_loses_nothing(engine_py, dockerd, names):  # noqa: F811
    """dockerd 20.10's follow reopens the log at each rotation: it drops what
    it had not read yet, shows some lines twice, may miss the last ones; ours
    reads each file to its end, compressed or not, then the newer ones."""
    printer = 'i=0; while [ $i -lt 40 ]; do i=$((i+1)); echo "line $i"; sleep 0.02; done'
    for daemon in (engine_py, dockerd):
        cid = daemon.docker("run", "-d", "--name", names(), "--network", "none", "--log-opt", "max-size=300",
                            "--log-opt", "max-file=20", "--log-opt", "compress=true", "busybox", "sh", "-c",
                            printer).stdout.strip()
        followed = numbers(daemon.docker("logs", "-f", cid).stdout)
        assert set(followed) <= set(range(1, 41)), daemon
        if daemon is engine_py:
            assert followed == list(range(1, 41))
            assert len(log_files(daemon, cid)) > 5


def test_bad_log_opts_are_refused_where_and_as_dockerd_refuses_them(engine_py, dockerd, names):  # noqa: F811
    cases = [(["--log-opt", "compress=true"], "compress cannot be true when max-file is less than 2 or max-size is "
                                               "not set"),
             (["--log-opt", "max-size=abc"], "invalid size: 'abc'"),
             (["--log-opt", "compress=maybe", "--log-opt", "max-file=2"], 'strconv.ParseBool: parsing "maybe": '
                                                                           'invalid syntax'),
             (["--log-driver", "local", "--log-opt", "max-file=1"], "compression cannot be enabled when max file "
                                                                     "count is 1")]
    for daemon in (engine_py, dockerd):
        for options, message in cases:
            created = daemon.docker("create", "--name", names(), *options, "busybox", check=False)
            assert created.returncode == 0, (daemon, created.stderr)  # values are read at the start
            started = daemon.docker("start", created.stdout.strip(), check=False)
            assert started.returncode == 1 and started.stderr.startswith(
                f"Error response from daemon: failed to initialize logging driver: {message}\n"), (daemon, started)
        refused = daemon.docker("create", "--log-driver", "local", "--log-opt", "tag=x", "busybox", check=False)
        assert refused.returncode != 0 and "unknown log opt 'tag' for log driver local" in refused.stderr, daemon


def local_shape(path: str) -> list[tuple]:
    """Each entry's fields but its time and its partial ID."""
    with open(path, "rb") as f:
        records, rest = LOCAL_FRAMES.split(f.read())
    assert rest == b""
    shapes = []
    for record in records:
        fields = [(n, v) for n, v in _fields(record) if n != 2]
        shapes.append(tuple((n, tuple((m, w) for m, w in _fields(v) if m != 2) if n == 5 else v) for n, v in fields))
    return shapes


def test_local_driver_as_dockerds(engine_py, dockerd, names, tmp_path):  # noqa: F811
    """The same entries in the same files, no LogPath. dockerd 20.10's reader
    leaves out the newline of a line longer than 16 KiB (its last part is
    partial; later moby adds it back, as ours does)."""
    long_line = b"x" * 20000 + b"\n"
    payload = tmp_path / "payload"
    payload.write_bytes(b"plain\n\n" + long_line + b"\xff\xfe bytes as they are\n" + b"end")
    os.chmod(tmp_path, 0o755)
    shown = {}
    for daemon in (engine_py, dockerd):
        cid = run_exited(daemon, names(), "--log-driver", "local", "-v", f"{tmp_path}:/p:ro",
                         cmd="cat /p/payload; echo oops >&2")
        inspect = json.loads(daemon.docker("inspect", cid).stdout)[0]
        logs = subprocess.run([*daemon_cli(daemon), "logs", cid], capture_output=True)
        shown[daemon] = {
            "LogPath": inspect["LogPath"], "LogConfig": inspect["HostConfig"]["LogConfig"],
            "files": log_files(daemon, cid, "local-logs"),
            "entries": sorted(local_shape(f"{container_dir(daemon, cid)}/local-logs/container.log")),
            "logs": (logs.stdout, logs.stderr),
        }
    assert shown[engine_py]["logs"] == (payload.read_bytes(), b"oops\n")
    assert shown[dockerd]["logs"] == (payload.read_bytes().replace(long_line, long_line[:-1]), b"oops\n")
    del shown[engine_py]["logs"], shown[dockerd]["logs"]
    assert shown[engine_py] == shown[dockerd]
    assert shown[dockerd]["LogPath"] == "" and shown[dockerd]["files"] == ["container.log"]


def daemon_cli(daemon) -> list[str]:
    """The docker CLI at the daemon, for output as bytes."""
    host = getattr(daemon, "host", None) or f"unix://{daemon.socket}"
    return ["/usr/bin/docker", "-H", host]


def test_daemon_json_log_opts_apply_to_new_containers_of_its_driver(tmp_path):
    """daemon.json's log-driver and log-opts at engine-py and at a dockerd of
    this test's: under a container's own options, for its driver only."""
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"log-driver": "json-file",
                                  "log-opts": {"max-size": "1k", "max-file": "3", "compress": "true"}}))
    shown = {}
    for kind, running in (("engine-py", running_engine), ("dockerd", running_dockerd)):
        extra = ("--config-file", str(config))
        with (running(extra=extra) if kind == "engine-py" else running(*extra)) as daemon:
            seen = {"driver": json.loads(daemon.docker("info", "--format", "{{json .LoggingDriver}}").stdout)}
            for case, options in (("plain", ()), ("own max-file", ("--log-opt", "max-file=2")),
                                  ("local", ("--log-driver", "local"))):
                cid = run_exited(daemon, f"defaults-{len(seen)}", *options)
                inspect = json.loads(daemon.docker("inspect", cid).stdout)[0]
                seen[case] = (inspect["HostConfig"]["LogConfig"], log_files(daemon, cid),
                              daemon.docker("logs", "--tail", "1", cid).stdout)
            shown[kind] = seen
    assert shown["engine-py"] == shown["dockerd"]
    assert shown["dockerd"]["own max-file"][0]["Config"] == {"max-size": "1k", "max-file": "2", "compress": "true"}
    assert shown["dockerd"]["own max-file"][1] == ["ID-json.log", "ID-json.log.1.gz"]
