"""The log service's and routes' pieces without containers: dockerd's
parameters (detach keys, since/until, tail), LogConfig's completion, the
batching of output, the follow's cue to send."""
import threading

import pytest

from engine.api.routes.logs import _CAUGHT_UP, batches
from engine.api.streams import frame
from engine.errors import InvalidParameter
from engine.logs import jsonfile
from engine.logs.jsonfile import Entry, ReadConfig
from engine.logs.sink import LoggerSink
from engine.services.logs import parse_detach_keys, parse_tail, parse_timestamp
from logs_fixtures import write_entries


@pytest.mark.parametrize("text, keys", [("ctrl-p,ctrl-q", b"\x10\x11"), ("a,ctrl-@", b"a\x00"),
                                        ("ctrl-[,ctrl-_", b"\x1b\x1f"), ("x", b"x")])
def test_detach_keys_as_moby_reads_them(text, keys):
    assert parse_detach_keys(text) == keys


@pytest.mark.parametrize("text", ["ctrl-1", "ab", "ctrl-p,,"])
def test_bad_detach_keys_are_refused_with_dockerds_words(text):
    with pytest.raises(InvalidParameter, match=rf"^Invalid detach keys \({text}\) provided$"):
        parse_detach_keys(text)


def test_timestamps_and_tail():
    assert parse_timestamp("1700000000.5", "since") == 1_700_000_000_500_000_000
    assert parse_timestamp("1700000000", "since") == 1_700_000_000 * 10**9
    assert parse_timestamp("", "since") == 0
    with pytest.raises(InvalidParameter, match='invalid value for "until"'):
        parse_timestamp("yesterday", "until")
    assert (parse_tail(None), parse_tail("all"), parse_tail("3")) == (-1, -1, 3)
    with pytest.raises(InvalidParameter, match='invalid value for "tail"'):
        parse_tail("x")


def test_log_config_completed_as_dockerd_completes_it(tmp_path):
    sink = LoggerSink(str(tmp_path), str(tmp_path), "json-file", {"max-size": "1m"})
    assert sink.configure({})["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m"}}
    assert sink.configure({"LogConfig": {"Type": "json-file", "Config": {"max-size": "2m"}}})["LogConfig"] == \
        {"Type": "json-file", "Config": {"max-size": "2m"}}
    assert sink.configure({"LogConfig": {"Type": "none"}})["LogConfig"] == {"Type": "none", "Config": {}}
    assert sink.configure({"LogConfig": {"Config": {"mode": "non-blocking"}}})["LogConfig"]["Config"] == \
        {"max-size": "1m", "mode": "non-blocking"}
    assert sink.configure({"LogConfig": {"Config": {"max-size": "0"}}})["LogConfig"]["Config"] == \
        {"max-size": "0"}  # a value is read at the start, as dockerd reads it
    with pytest.raises(InvalidParameter, match="^unknown log opt 'tag' for log driver local$"):
        sink.configure({"LogConfig": {"Type": "local", "Config": {"tag": "x"}}})


def _entry(text: bytes, stream: str = "stdout") -> Entry:
    return Entry(stream, text, 1_700_000_000_123_456_789)


def test_batches_frame_without_a_tty_and_send_at_each_catch_up():
    entries = [_entry(b"a\n"), _entry(b"b\n", "stderr"), _CAUGHT_UP, _CAUGHT_UP, _entry(b"c\n")]
    assert list(batches(entries, tty=False)) == [frame(1, b"a\n") + frame(2, b"b\n"), frame(1, b"c\n")]
    assert list(batches(entries, tty=True)) == [b"a\nb\n", b"c\n"]
    assert list(batches([_entry(b"x\n")], tty=True, timestamps=True)) == [b"2023-11-14T22:13:20.123456789Z x\n"]


def test_batches_are_bounded_in_size():
    line = b"x" * 1000 + b"\n"
    sent = list(batches([_entry(line)] * 1000, tty=True))
    assert b"".join(sent) == line * 1000 and len(sent) > 1


def test_a_follow_says_when_it_has_caught_up(tmp_path):
    path = tmp_path / "c-json.log"
    write_entries(path, [("stdout", "one\n", 1)])
    stopped = threading.Event()
    reader = jsonfile.read(str(path), ReadConfig(), stopped, idle=_CAUGHT_UP)
    assert next(reader).line == b"one\n"
    assert next(reader) is _CAUGHT_UP
    write_entries(path, [("stdout", "two\n", 2)])
    assert next(reader).line == b"two\n"
    assert next(reader) is _CAUGHT_UP
    stopped.set()
    assert list(reader) == []


def test_a_tail_is_taken_when_the_read_is_asked_for(tmp_path):
    """Attach follows from its own time: what is written before its first read is seen."""
    path = tmp_path / "c-json.log"
    write_entries(path, [("stdout", "old\n", 1)])
    stopped = threading.Event()
    reader = jsonfile.read(str(path), ReadConfig(tail=0), stopped)
    write_entries(path, [("stdout", "new\n", 2)])
    stopped.set()
    assert [e.line for e in reader] == [b"new\n"]
