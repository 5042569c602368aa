"""engine.logs.jsonfile: `docker logs` over a json-file log and its rotated
files: tail, since/until, streams, unfinished and torn lines, follow."""
import json
import os
import re
import threading
import time

import pytest

from engine.logs import FileConfig, file_config, jsonfile, log_uri, validate_opts
from engine.logs.jsonfile import Entry, ReadConfig, format_time, parse_time
from logs_fixtures import Logger, write_entries

T0 = 1_780_000_000 * 1_000_000_000  # a time in 2026, in ns


def numbered(first: int, count: int, stream: str = "stdout"):
    return [(stream, f"{i}\n", T0 + i * 1000) for i in range(first, first + count)]


def texts(entries) -> list[str]:
    return [e.line.decode() for e in entries]


@pytest.fixture
def log(tmp_path):
    return str(tmp_path / "c-json.log")


def test_reads_rotated_files_oldest_first(log):
    write_entries(f"{log}.2", numbered(0, 3))
    write_entries(f"{log}.1", numbered(3, 3))
    write_entries(log, numbered(6, 3))
    got = list(jsonfile.read(log))
    assert texts(got) == [f"{i}\n" for i in range(9)]
    assert got[0] == Entry("stdout", b"0\n", T0)


def test_streams_apart(log):
    write_entries(log, [("stdout", "o\n", T0), ("stderr", "e\n", T0 + 1)])
    assert texts(jsonfile.read(log, ReadConfig(stdout=False))) == ["e\n"]
    assert texts(jsonfile.read(log, ReadConfig(stderr=False))) == ["o\n"]


def test_tail_counts_entries_across_rotated_files(log):
    write_entries(f"{log}.1", numbered(0, 5))
    write_entries(log, numbered(5, 2))
    assert texts(jsonfile.read(log, ReadConfig(tail=4))) == ["3\n", "4\n", "5\n", "6\n"]
    assert texts(jsonfile.read(log, ReadConfig(tail=100))) == [f"{i}\n" for i in range(7)]
    assert list(jsonfile.read(log, ReadConfig(tail=0))) == []


def test_tail_of_100k_lines_reads_from_the_end(log, monkeypatch):
    write_entries(log, numbered(0, 100_000))
    size = os.path.getsize(log)
    read_bytes = []
    real_open = open

    class Counting:
        def __init__(self, f):
            self.f = f

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def read(self, n=-1):
            data = self.f.read(n)
            read_bytes.append(len(data))
            return data

    monkeypatch.setattr(jsonfile, "open", lambda *a, **k: Counting(real_open(*a, **k)), raising=False)
    assert texts(jsonfile.read(log, ReadConfig(tail=10))) == [f"{i}\n" for i in range(99_990, 100_000)]
    assert sum(read_bytes) < size / 16
    assert len(list(jsonfile.read(log, ReadConfig(tail=100_000)))) == 100_000


def test_since_and_until(log):
    write_entries(log, numbered(0, 10))
    got = jsonfile.read(log, ReadConfig(since=T0 + 3000, until=T0 + 6000))
    assert texts(got) == ["3\n", "4\n", "5\n", "6\n"]


def test_an_unfinished_last_line_waits_and_a_torn_line_is_skipped(log):
    write_entries(log, numbered(0, 2))
    with open(log, "a") as f:
        f.write('{"log":"torn by a cr\n')  # a logger killed mid-write, then restarted
    write_entries(log, numbered(2, 1))
    with open(log, "a") as f:
        f.write('{"log":"being writ')
    assert texts(jsonfile.read(log)) == ["0\n", "1\n", "2\n"]
    assert texts(jsonfile.read(log, ReadConfig(tail=1))) == ["2\n"]


def test_partial_entries_keep_their_bytes(log):
    write_entries(log, [("stdout", "x" * 16384, T0), ("stdout", "yz\n", T0)])
    assert b"".join(e.line for e in jsonfile.read(log)) == b"x" * 16384 + b"yz\n"


def test_times_round_trip():
    assert parse_time("2026-12-06T03:34:23.64311929Z") == parse_time("2026-12-06T03:34:23.643119290Z")
    assert parse_time("2026-12-06T03:34:23Z") % 1_000_000_000 == 0
    assert format_time(parse_time("2026-12-06T03:34:23.0643Z")) == "2026-12-06T03:34:23.064300000Z"
    assert parse_time("2026-12-06T04:34:23.5+01:00") == parse_time("2026-12-06T03:34:23.5Z")


def follow_in_thread(log, config=ReadConfig()):
    stopped, got = threading.Event(), []
    reader = threading.Thread(target=lambda: got.extend(jsonfile.read(log, config, stopped)))
    reader.start()
    return stopped, got, reader


def wait_for(got, count):
    deadline = threading.Event()
    for _ in range(600):
        if len(got) >= count:
            return
        deadline.wait(0.05)
    raise AssertionError(f"only {len(got)} of {count} entries followed")


def test_follow_reads_growth_and_rotation_until_stopped(log):
    write_entries(log, numbered(0, 2))
    stopped, got, reader = follow_in_thread(log)
    try:
        wait_for(got, 2)
        write_entries(log, numbered(2, 2))
        wait_for(got, 4)
        with open(log, "a") as f:
            f.write('{"log":"6\\n","stream":"stdout","ti')  # half written when the reader looks
        wait_for(got, 4)
        with open(log, "a") as f:
            f.write(f'me":"{format_time(T0)}"}}\n')
        os.rename(log, f"{log}.1")  # rotated as the logger does it
        write_entries(log, numbered(7, 2))
        wait_for(got, 7)
    finally:
        stopped.set()
        reader.join()
    assert texts(got) == ["0\n", "1\n", "2\n", "3\n", "6\n", "7\n", "8\n"]


def test_follow_after_stop_reads_what_is_left(log):
    stopped, got, reader = follow_in_thread(log)  # no file yet
    write_entries(log, numbered(0, 1))
    wait_for(got, 1)
    write_entries(log, numbered(1, 2))
    stopped.set()
    reader.join()
    assert texts(got) == ["0\n", "1\n", "2\n"]


def logged(log, text: str) -> None:
    """Waits until the logger has written `text` as the last entry of the log."""
    for _ in range(600):
        entries = list(jsonfile.read(log, ReadConfig(tail=1)))
        if entries and entries[-1].line == text.encode():
            return
        threading.Event().wait(0.05)
    raise AssertionError(f"the logger never wrote {text!r}")


def test_follow_from_a_tail_with_a_logger_rotating_fast(log):
    """Several rotations between two looks of the reader: no file is skipped."""
    logger = Logger("path", log, "max-size", "2000", "max-file", "50")
    logger.write(b"".join(f"{i}\n".encode() for i in range(100)))
    logged(log, "99\n")
    stopped, got, reader = follow_in_thread(log, ReadConfig(tail=1))
    try:
        wait_for(got, 1)
        logger.write(b"".join(f"{i}\n".encode() for i in range(100, 400)))
        wait_for(got, 301)
    finally:
        logger.close()
        stopped.set()
        reader.join()
    assert texts(got) == [f"{i}\n" for i in range(99, 400)]


def test_rotation_options_as_dockerd_reads_them():
    assert file_config("json-file", {}) == (0, 1, False)
    assert file_config("json-file", {"max-size": "10m", "max-file": "3"}) == (10_000_000, 3, False)
    assert file_config("json-file", {"max-size": "1.5k"}) == (1500, 1, False)
    assert file_config("json-file", {"max-size": "1k", "max-file": "2", "compress": "True"}) == (1000, 2, True)
    assert file_config("local", {}) == (20 << 20, 5, True)
    assert file_config("local", {"max-size": "0", "max-file": "0", "compress": "0"}) == (1, 1, False)
    assert file_config("local", {"max-size": "1m", "max-file": "2"}) == (1_000_000, 2, True)
    for driver, opts, message in [
            ("json-file", {"max-size": "ten"}, "invalid size: 'ten'"),
            ("json-file", {"max-size": "0"}, "max-size must be a positive number"),
            ("json-file", {"max-file": "0"}, "max-file cannot be less than 1"),
            ("json-file", {"max-file": "x"}, 'strconv.Atoi: parsing "x": invalid syntax'),
            ("json-file", {"compress": "yes"}, 'strconv.ParseBool: parsing "yes": invalid syntax'),
            ("json-file", {"compress": "true", "max-file": "2"},
             "compress cannot be true when max-file is less than 2 or max-size is not set"),
            ("json-file", {"compress": "true", "max-size": "1k"},
             "compress cannot be true when max-file is less than 2 or max-size is not set"),
            ("local", {"max-size": "abc"}, "invalid value for max-size: abc: invalid size: 'abc'"),
            ("local", {"max-file": "x"}, 'invalid value for max-file: x: strconv.Atoi: parsing "x": invalid syntax'),
            ("local", {"compress": "x"}, 'error reading compress log option: strconv.ParseBool: parsing "x": '
                                         'invalid syntax'),
            ("local", {"max-file": "1"}, "compression cannot be enabled when max file count is 1"),
            ("local", {"max-file": "-1", "compress": "false"}, "max file count cannot be less than 0")]:
        with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
            file_config(driver, opts)


def test_only_the_keys_are_checked_at_create():
    validate_opts("json-file", {"max-size": "ten", "tag": "x", "labels": "a"})
    validate_opts("local", {"max-size": "ten", "compress": "x"})
    for driver, key, message in [("json-file", "colour", "unknown log opt 'colour' for json-file log driver"),
                                 ("local", "tag", "unknown log opt 'tag' for log driver local")]:
        with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
            validate_opts(driver, {key: "x"})


def test_log_uri_passes_path_and_rotation_as_arguments():
    uri = log_uri("/var/lib/engine-py/containers/a b/a b-json.log", FileConfig(1000, 2))
    assert uri.startswith("binary:///") and "engine-py-logger?" in uri
    assert "path=%2Fvar%2Flib%2Fengine-py%2Fcontainers%2Fa+b%2Fa+b-json.log" in uri
    assert uri.endswith("&max-size=1000&max-file=2")
    assert log_uri("/l", FileConfig(1000, 2, True), "local").endswith("&max-size=1000&max-file=2&compress=1&format=local")


@pytest.mark.parametrize("text", ["plain\n", "no newline", 'quote " and \\ backslash\n', "ends in a backslash-n \\n",
                                  "\\\n", "<&> \u2028 \ufffd é \t\x01\n", ""])
def test_decoding_equals_a_json_decode(text):
    for raw in (json.dumps({"log": text, "stream": "stderr", "time": "2026-12-06T03:34:23.5Z"}, separators=(",", ":")),
                json.dumps({"log": text, "stream": "stderr", "attrs": {"a": "b"}, "time": "2026-12-06T03:34:23.5Z"}),
                json.dumps({"time": "2026-12-06T03:34:23.5Z", "stream": "stderr", "log": text})):
        assert jsonfile.decode(raw.encode()) == Entry("stderr", text.encode(), parse_time("2026-12-06T03:34:23.5Z"))


def test_follow_ends_at_until_without_being_stopped(log):
    write_entries(log, numbered(0, 5))
    got = jsonfile.read(log, ReadConfig(until=T0 + 2000), threading.Event())
    assert texts(got) == ["0\n", "1\n", "2\n"]


def test_follow_ends_once_until_has_passed(log):
    write_entries(log, numbered(0, 2))
    until = time.time_ns() + 300_000_000
    got = jsonfile.read(log, ReadConfig(until=until), threading.Event())
    assert texts(got) == ["0\n", "1\n"] and time.time_ns() > until


def test_follow_from_a_tail_picks_up_the_line_being_written(log):
    write_entries(log, numbered(0, 2))
    with open(log, "a") as f:
        f.write('{"log":"2\\n","stream":"stdout",')
    stopped, got, reader = follow_in_thread(log, ReadConfig(tail=1))
    try:
        wait_for(got, 1)
        with open(log, "a") as f:
            f.write(f'"time":"{format_time(T0)}"}}\n')
        wait_for(got, 2)
    finally:
        stopped.set()
        reader.join()
    assert texts(got) == ["1\n", "2\n"]
