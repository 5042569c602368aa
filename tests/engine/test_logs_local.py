"""The `local` log driver: engine-py-logger's `format local` writes moby's
size-framed LogEntry protobufs, engine.logs.local reads them (split, tail by
the trailing sizes, partial lines), and an engine whose containers use the
driver (by --log-driver or as the daemon's default) shows what dockerd 20.10
shows: its files, an empty LogPath, `docker logs`."""
import glob
import os

import pytest

from containers_helpers import busybox, containerd_py, engine_on  # noqa: F401 (fixtures)
from engine.logs import jsonfile, local_log_path
from engine.logs.jsonfile import ReadConfig
from engine.logs.local import LOCAL_FRAMES, _fields
from engine.logs.sink import LoggerSink
from logs_fixtures import Logger

PAYLOAD = b"first\n\n" + b"x" * 20000 + b"\nlast without newline"


def records(path) -> list[bytes]:
    with open(path, "rb") as f:
        found, rest = LOCAL_FRAMES.split(f.read())
    assert rest == b""
    return found


def fields(record: bytes) -> dict:
    """A LogEntry's fields by number, its partial metadata's as a dict too."""
    got = dict(_fields(record))
    if 5 in got:
        got[5] = dict(_fields(got[5]))
    return got


def write_local(path, data: bytes = PAYLOAD, stderr: bytes = b"oops\n", *options: str) -> None:
    logger = Logger("path", str(path), "format", "local", *options)
    logger.write(data)
    logger.write(stderr, "stderr")
    assert logger.close() == 0


def test_entries_are_moby_local_log_entries(tmp_path):
    path = tmp_path / "container.log"
    write_local(path)
    raw = path.read_bytes()
    size = int.from_bytes(raw[:4], "big")
    assert raw[4 + size:8 + size] == raw[:4]  # the size before and after
    got = [fields(r) for r in records(path)]
    by_stream = [g for g in got if g[1] == b"stdout"], [g for g in got if g[1] == b"stderr"]
    assert [g.get(3, b"") for g in by_stream[0]] == [b"first", b"", b"x" * 16384, b"x" * (20000 - 16384),
                                                     b"last without newline"]
    assert [g.get(3) for g in by_stream[1]] == [b"oops"]
    plain, empty, part1, part2, rest = by_stream[0]
    assert 4 not in plain and 5 not in plain and set(empty) == {1, 2}  # proto3: zero values left out
    assert part1[4] == part2[4] == 1 and part1[2] == part2[2]  # one time for the parts of a line
    id1 = part1[5][2]
    assert len(id1) == 64 and part1[5] == {2: id1, 3: 1} and part2[5] == {1: 1, 2: id1, 3: 2}
    assert rest[4] == 1 and rest[5][3] == 1 and rest[5][2] != id1 and 1 not in rest[5]


def test_read_back_as_docker_logs_shows_them(tmp_path):
    path = tmp_path / "container.log"
    write_local(path)
    got = list(jsonfile.read(str(path), fmt=LOCAL_FRAMES))
    assert b"".join(e.line for e in got if e.stream == "stdout") == PAYLOAD
    assert [e.line for e in got if e.stream == "stderr"] == [b"oops\n"]
    assert [e.line for e in jsonfile.read(str(path), ReadConfig(tail=2), fmt=LOCAL_FRAMES)] == \
        [e.line for e in got[-2:]]


def test_tail_walks_back_by_the_sizes_and_copes_with_a_torn_end(tmp_path):
    path = tmp_path / "container.log"
    write_local(path, b"".join(f"{i}\n".encode() for i in range(5000)), b"")
    tail = [e.line for e in jsonfile.read(str(path), ReadConfig(tail=3), fmt=LOCAL_FRAMES)]
    assert tail == [b"4997\n", b"4998\n", b"4999\n"]
    with open(path, "ab") as f:
        f.write(records(path)[0][:7])  # a frame being written
    assert [e.line for e in jsonfile.read(str(path), ReadConfig(tail=3), fmt=LOCAL_FRAMES)] == tail
    with open(path, "ab") as f:
        f.write(b"\x00\x00\x00\x05abc")  # garbage: what is whole before it is still read
    assert [e.line for e in jsonfile.read(str(path), ReadConfig(tail=1), fmt=LOCAL_FRAMES)] == [b"4999\n"]


def test_rotates_and_compresses_like_json_file(tmp_path):
    path = tmp_path / "container.log"
    write_local(path, b"".join(f"line {i}\n".encode() for i in range(500)), b"", "max-size", "2000", "max-file", "3",
                "compress", "1")
    assert sorted(os.listdir(tmp_path)) == ["container.log", "container.log.1.gz", "container.log.2.gz"]
    numbers = [int(e.line.split()[1]) for e in jsonfile.read(str(path), fmt=LOCAL_FRAMES)]
    assert numbers == list(range(numbers[0], 500))


@pytest.mark.root
def test_the_daemon_default_local_driver_logs_without_a_log_path(containerd_py, busybox, tmp_path):  # noqa: F811
    containers = tmp_path / "data" / "containers"
    sink = LoggerSink(str(containers), str(tmp_path / "exec"), "local", {"max-size": "1k"})
    with engine_on(containerd_py.address, tmp_path / "data", busybox, log_sink=sink) as engine:
        record = engine.service.create({"Image": "busybox", "Cmd": ["sh", "-c", "seq 1 200; echo done >&2"]}, {})
        assert record.host_config["LogConfig"] == {"Type": "local", "Config": {"max-size": "1k"}}
        engine.service.start(record.id)
        engine.service.wait(record.id)
        assert record.log_path == ""
        path, fmt = sink.readable_log(record)
        assert path == local_log_path(str(containers), record.id) and fmt is LOCAL_FRAMES
        assert sorted(os.path.basename(f) for f in glob.glob(f"{path}*")) == \
            ["container.log", "container.log.1.gz", "container.log.2.gz", "container.log.3.gz", "container.log.4.gz"]
        lines = [e.line for e in jsonfile.read(path, ReadConfig(tail=3), fmt=fmt)]
        assert lines == [b"199\n", b"200\n", b"done\n"]
        engine.service.remove(record.id)
        assert not os.path.exists(os.path.dirname(path))

        # With a stdin and no TTY the engine starts the logger itself (engine.logs.detached): the same format.
        interactive = engine.service.create({"Image": "busybox", "Cmd": ["echo", "typed"], "OpenStdin": True}, {})
        engine.service.start(interactive.id)
        engine.service.wait(interactive.id)
        path, fmt = sink.readable_log(interactive)
        assert [e.line for e in jsonfile.read(path, fmt=fmt)] == [b"typed\n"]
        engine.service.remove(interactive.id)
