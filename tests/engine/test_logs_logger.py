"""engine-py-logger run directly, its pipes on fds 3-5 as a containerd shim
gives them: the json-file it writes must be what dockerd's json-file driver
writes for the same output (moby's jsonlog encoding, copier splitting,
logfile rotation)."""
import json
import os
import re
import shutil
import subprocess
import time

import pytest

from engine.logs import BINARY
from engine.logs.jsonfile import parse_time
from logs_fixtures import Logger, entries_of

TIME = re.compile(rb'"time":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d*[1-9])?Z)"\}$')


def run(path, chunks, *args) -> list[dict]:
    logger = Logger("path", str(path), *args)
    for stream, data in chunks:
        logger.write(data, stream)
    assert logger.close() == 0
    return entries_of(path)


def test_lines_of_both_streams_in_dockers_shape(tmp_path):
    path = tmp_path / "c-json.log"
    before = time.time_ns()
    got = run(path, [("stdout", b"one\ntwo\n"), ("stderr", b"oops\n")])
    after = time.time_ns()
    assert [(e["stream"], e["log"]) for e in got] == [("stdout", "one\n"), ("stdout", "two\n"), ("stderr", "oops\n")]
    raw = path.read_bytes().splitlines()
    assert raw[0].startswith(b'{"log":"one\\n","stream":"stdout","time":"')
    for line in raw:
        m = TIME.search(line)
        assert m, line  # RFC3339Nano: UTC, the fraction without trailing zeros
        assert before <= parse_time(m.group(1).decode()) <= after
    assert oct(path.stat().st_mode & 0o777) == "0o640"


def test_escaping_is_go_encoding_json(tmp_path):
    path = tmp_path / "c-json.log"
    data = b'<a href="x">&amp;</a> \\ \t\x01\x1f\x7f \r \xe2\x80\xa8\xe2\x80\xa9 \xc3\xa9 \xf0\x9f\x90\xb3\n'
    run(path, [("stdout", data)])
    expected = (r'"<a href=\"x\">&amp;</a> \\ \u0009\u0001\u001f' '\x7f' r' \r \u2028\u2029 é 🐳\n"'
                .replace("<", r"\u003c").replace(">", r"\u003e").replace("&", r"\u0026"))
    line = path.read_text()
    assert line.startswith('{"log":' + expected + ',"stream":"stdout"'), line


@pytest.mark.parametrize("bad, shown", [
    (b"\xff", "\\ufffd"),                   # never a UTF-8 byte
    (b"\xe2\x82", "\\ufffd\\ufffd"),        # a cut sequence: one per byte, as Go's DecodeRune
    (b"\xc0\xaf", "\\ufffd\\ufffd"),        # overlong
    (b"\xed\xa0\x80", "\\ufffd" * 3),       # a surrogate
    (b"\xf4\x90\x80\x80", "\\ufffd" * 4),   # past U+10FFFF
    (b"\xef\xbf\xbd", "\ufffd"),            # U+FFFD itself is valid: kept as is
])
def test_invalid_utf8_becomes_replacement_characters(tmp_path, bad, shown):
    path = tmp_path / "c-json.log"
    run(path, [("stdout", b"a" + bad + b"b\n")])
    assert path.read_text(encoding="utf-8").startswith('{"log":"a' + shown + 'b\\n"')


def test_long_lines_split_at_16k_with_the_time_of_their_first_part(tmp_path):
    path = tmp_path / "c-json.log"
    got = run(path, [("stdout", b"x" * 40000 + b"\n" + b"y" * 16384 + b"\nend")])
    assert [len(e["log"]) for e in got] == [16384, 16384, 40000 - 32768 + 1, 16384, 1, 3]
    assert not got[0]["log"].endswith("\n") and got[2]["log"].endswith("\n")
    assert got[0]["time"] == got[1]["time"] == got[2]["time"]
    assert got[4]["log"] == "\n"  # the newline after a full 16 KiB buffer, as dockerd's copier logs it
    assert got[5]["log"] == "end"  # the rest at the end of the stream, without a newline


def test_streams_are_split_apart(tmp_path):
    """A line begun on stdout is not ended by stderr's output."""
    path = tmp_path / "c-json.log"
    logger = Logger("path", str(path))
    logger.write(b"par", "stdout")
    logger.write(b"err\n", "stderr")
    logger.write(b"tial\n", "stdout")
    logger.close()
    got = [(e["stream"], e["log"]) for e in entries_of(path)]
    assert ("stdout", "partial\n") in got and ("stderr", "err\n") in got


def test_flush_partial_writes_an_unfinished_line_at_once(tmp_path):
    """An interactive container's prompt reaches the log (and attach) before its line ends."""
    path = tmp_path / "c-json.log"
    logger = Logger("path", str(path), "flush-partial", "1")
    logger.write(b"/ # ", "stdout")
    deadline = time.monotonic() + 60
    while not path.read_bytes():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    logger.write(b"echo\n", "stdout")
    logger.close()
    got = entries_of(path)
    assert [e["log"] for e in got] == ["/ # ", "echo\n"] and got[0]["time"] == got[1]["time"]


def test_rotation_keeps_max_file_files_of_about_max_size(tmp_path):
    path = tmp_path / "c-json.log"
    lines = [f"line {i:04d}\n".encode() for i in range(2000)]
    run(path, [("stdout", b"".join(lines))], "max-size", "10000", "max-file", "3")
    files = sorted(os.listdir(tmp_path))
    assert files == ["c-json.log", "c-json.log.1", "c-json.log.2"]
    kept = entries_of(f"{path}.2", f"{path}.1", path)
    numbers = [int(e["log"].split()[1]) for e in kept]
    assert numbers == list(range(numbers[0], 2000))  # the newest, in order, none lost between files
    one_entry = len(path.read_bytes().splitlines()[0]) + 1
    for name in files[1:]:
        assert 10000 <= (tmp_path / name).stat().st_size < 10000 + one_entry


def test_max_file_1_starts_the_one_file_over(tmp_path):
    path = tmp_path / "c-json.log"
    run(path, [("stdout", b"".join(f"{i}\n".encode() for i in range(1000)))], "max-file", "1", "max-size", "500")
    assert os.listdir(tmp_path) == ["c-json.log"]
    assert entries_of(path)[-1]["log"] == "999\n"


def test_appends_to_an_existing_log(tmp_path):
    path = tmp_path / "c-json.log"
    run(path, [("stdout", b"first\n")])
    run(path, [("stdout", b"second\n")])
    assert [e["log"] for e in entries_of(path)] == ["first\n", "second\n"]


def test_ready_once_the_log_is_open(tmp_path):
    path = tmp_path / "c-json.log"
    logger = Logger("max-file", "2", "path", str(path))  # pairs in any order: containerd passes a Go map
    assert logger.ready and path.exists()
    assert logger.close() == 0


def test_sigterm_writes_what_the_pipes_hold_then_exits(tmp_path):
    """containerd's shim SIGTERMs its logging binary on delete; a writer may
    still hold the pipes (a daemon the container left), so EOF never comes."""
    path = tmp_path / "c-json.log"
    logger = Logger("path", str(path))
    logger.write(b"kept\n" * 1000 + b"unfinished")
    assert logger.terminate() == 0
    got = entries_of(path)
    assert len(got) == 1001 and got[-1]["log"] == "unfinished"


@pytest.mark.parametrize("args, message", [
    (["path", "/x", "color", "red"], "unknown option color"),
    (["max-size", "10"], "usage"),
    (["path"], "usage"),
])
def test_bad_arguments_are_refused(args, message):
    result = subprocess.run([BINARY, *args], capture_output=True, text=True)
    assert result.returncode == 2 and message in result.stderr


def test_an_unwritable_log_fails_before_ready(tmp_path):
    logger = Logger("path", str(tmp_path / "missing-dir" / "c-json.log"))
    assert logger.close() == 1


def test_output_is_drained_even_when_the_disk_refuses(tmp_path):
    """/dev/full: every write fails; the container must still never block."""
    logger = Logger("path", "/dev/full")
    logger.write(b"x" * 4096 + b"\n" * 100 + b"y\n" * 100000)  # far more than a pipe holds
    assert logger.close() == 0


def test_entries_decode_as_json(tmp_path):
    path = tmp_path / "c-json.log"
    run(path, [("stdout", bytes(b for b in range(256) if b != 10) + b"\n")])
    (entry,) = entries_of(path)
    assert entry["log"].endswith("\n") and json.loads(json.dumps(entry)) == entry


def test_a_log_directory_removed_under_it_drops_lines_but_never_blocks(tmp_path):
    """`docker rm -f` racing the last output: the rotation finds no directory."""
    where = tmp_path / "container"
    where.mkdir()
    logger = Logger("path", str(where / "c-json.log"), "max-size", "1000", "max-file", "2")
    logger.write(b"before\n")
    shutil.rmtree(where)
    logger.write(b"x" * 100 + b"\n" * 10000)  # rotations into nothing; far more than a pipe holds
    where.mkdir()
    logger.write(b"y\n" * 2000)
    assert logger.close() == 0
    assert entries_of(where / "c-json.log")[-1]["log"] == "y\n"  # back once the directory is
