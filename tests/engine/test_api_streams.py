"""engine.api.streams: docker's stdcopy framing, both ways, and JSON stream lines."""
import io

import pytest

from engine.api.streams import MAX_FRAME, STDERR, STDOUT, StreamWriter, frame, json_message, read_frames


def test_a_frame_is_the_8_byte_header_then_the_payload():
    assert frame(STDOUT, b"hi\n") == b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n"
    assert frame(STDERR, b"") == b"\x02\x00\x00\x00\x00\x00\x00\x00"


def test_writers_and_the_reader_round_trip_both_streams():
    out = io.BytesIO()
    stdout, stderr = StreamWriter(out.write, STDOUT), StreamWriter(out.write, STDERR)
    stdout.write(b"one\n")
    stderr.write(b"oops\n")
    stdout.write(b"")  # nothing: an empty frame would read as the end to some clients
    stdout.write(b"x" * (MAX_FRAME * 2 + 5))
    frames = list(read_frames(io.BytesIO(out.getvalue()).read))
    assert frames[:2] == [(STDOUT, b"one\n"), (STDERR, b"oops\n")]
    assert [len(p) for _, p in frames[2:]] == [MAX_FRAME, MAX_FRAME, 5]


def test_the_reader_takes_frames_split_across_reads():
    data = frame(STDOUT, b"hello") + frame(STDERR, b"world")
    pieces = io.BytesIO(data)
    assert list(read_frames(lambda n: pieces.read(min(n, 3)))) == [(STDOUT, b"hello"), (STDERR, b"world")]


@pytest.mark.parametrize("cut", [3, 8 + 2])
def test_a_stream_cut_inside_a_frame_is_an_error(cut):
    data = frame(STDOUT, b"hello")[:cut]
    with pytest.raises(ValueError):
        list(read_frames(io.BytesIO(data).read))


def test_an_unknown_stream_number_is_an_error():
    with pytest.raises(ValueError, match="unrecognized input header: 7"):
        list(read_frames(io.BytesIO(b"\x07\x00\x00\x00\x00\x00\x00\x00").read))


def test_json_stream_lines_are_compact_as_gos_encoder_writes_them():
    assert json_message({"status": "Pulling fs layer", "id": "abc"}) == \
        b'{"status":"Pulling fs layer","id":"abc"}\n'
    assert json_message({"s": "é"}) == '{"s":"é"}\n'.encode()
