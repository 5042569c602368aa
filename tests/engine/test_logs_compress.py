"""`compress`: engine-py-logger gzips each rotated file as dockerd's
loggerutils does (LOG.i.gz, the last entry's time in the gzip header's
Extra), and jsonfile reads them: in order, tail, since, follow."""
import gzip
import json
import os
import threading
import zlib

from engine.logs import jsonfile
from engine.logs.jsonfile import ReadConfig, format_time, parse_time
from logs_fixtures import Logger, entries_of, write_entries
from test_logs_jsonfile import T0, follow_in_thread, logged, texts, wait_for


def numbered_lines(first: int, last: int) -> bytes:
    return b"".join(f"line {i:04d}\n".encode() for i in range(first, last))


def gz_header_extra(path) -> dict:
    with open(path, "rb") as f:
        head = f.read(12)
        assert head[:4] == b"\x1f\x8b\x08\x04" and head[8:10] == b"\x00\xff"  # FEXTRA; XFL 0, OS unknown, as Go's
        return json.loads(f.read(int.from_bytes(head[10:12], "little")))


def test_rotated_files_are_gzipped_with_their_last_time(tmp_path):
    path = tmp_path / "c-json.log"
    logger = Logger("path", str(path), "max-size", "2000", "max-file", "3", "compress", "1")
    logger.write(numbered_lines(0, 500))
    assert logger.close() == 0
    assert sorted(os.listdir(tmp_path)) == ["c-json.log", "c-json.log.1.gz", "c-json.log.2.gz"]
    newest_first = [f"{path}.1.gz", f"{path}.2.gz"]
    numbers = []
    for name in reversed(newest_first):
        lines = gzip.decompress(open(name, "rb").read()).splitlines()
        assert sum(len(raw) + 1 for raw in lines) >= 2000
        last = json.loads(lines[-1])
        assert gz_header_extra(name) == {"lastTime": last["time"]}
        numbers += [int(json.loads(raw)["log"].split()[1]) for raw in lines]
    numbers += [int(e["log"].split()[1]) for e in entries_of(path)]
    assert numbers == list(range(numbers[0], 500))


def test_reads_across_compressed_files_with_tail_and_since(tmp_path):
    path = str(tmp_path / "c-json.log")
    logger = Logger("path", path, "max-size", "2000", "max-file", "4", "compress", "1")
    logger.write(numbered_lines(0, 500))
    assert logger.close() == 0
    everything = list(jsonfile.read(path))
    first = int(everything[0].line.split()[1])
    assert texts(everything) == [f"line {i:04d}\n" for i in range(first, 500)]
    assert texts(jsonfile.read(path, ReadConfig(tail=50))) == [f"line {i:04d}\n" for i in range(450, 500)]

    opened = []
    real_open = gzip.open
    jsonfile.gzip.open = lambda name, *a: opened.append(os.path.basename(name)) or real_open(name, *a)
    try:
        newest_gz_start = parse_time(json.loads(gzip.decompress(open(f"{path}.1.gz", "rb").read())
                                                .splitlines()[0])["time"])
        since = list(jsonfile.read(path, ReadConfig(since=newest_gz_start)))
    finally:
        jsonfile.gzip.open = real_open
    assert since == [e for e in everything if e.time >= newest_gz_start]
    assert opened == ["c-json.log.1.gz"]  # the older ones' headers say they end before since


def test_a_file_being_compressed_is_read_from_either_name(tmp_path):
    path = str(tmp_path / "c-json.log")
    write_entries(f"{path}.2.gz.part", [])  # a compression cut short: not a log file
    with gzip.open(f"{path}.2.gz", "wt") as f:
        f.write('{"log":"a\\n","stream":"stdout","time":"2026-01-01T00:00:00Z"}\n')
    write_entries(f"{path}.1", [("stdout", "b\n", 1)])
    write_entries(path, [("stdout", "c\n", 2)])
    assert [os.path.basename(f) for f in jsonfile.rotated_files(path)] == ["c-json.log.2.gz", "c-json.log.1",
                                                                            "c-json.log"]
    assert texts(jsonfile.read(path)) == ["a\n", "b\n", "c\n"]


def test_follow_from_a_tail_with_compressed_rotations_skips_and_repeats_nothing(tmp_path):
    """The file a follow reads is compressed (a new inode) while it reads: the
    files after it are found by the time of its last entry."""
    log = str(tmp_path / "c-json.log")
    logger = Logger("path", log, "max-size", "2000", "max-file", "50", "compress", "1")
    logger.write(numbered_lines(0, 100))
    logged(log, "line 0099\n")
    stopped, got, reader = follow_in_thread(log, ReadConfig(tail=1))
    try:
        wait_for(got, 1)
        logger.write(numbered_lines(100, 400))
        wait_for(got, 301)
    finally:
        logger.close()
        stopped.set()
        reader.join()
    assert texts(got) == [f"line {i:04d}\n" for i in range(99, 400)]


def gzip_with_last_time(data: bytes, last: int) -> bytes:
    """A gzip member as the logger writes one: lastTime in the header's Extra."""
    extra = json.dumps({"lastTime": format_time(last)}).encode()
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = deflate.compress(data) + deflate.flush()
    return (b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff" + len(extra).to_bytes(2, "little") + extra + body
            + zlib.crc32(data).to_bytes(4, "little") + len(data).to_bytes(4, "little"))


def test_a_follow_whose_file_is_compressed_before_it_read_from_it_goes_on_after_it(tmp_path):
    """A tail taken at the end of a full log: the next entry rotates it, and its
    file is compressed before the follow read anything from it."""
    log = str(tmp_path / "c-json.log")
    write_entries(log, [("stdout", f"{i}\n", T0 + i) for i in range(3)])
    stopped, got, reader = follow_in_thread(log, ReadConfig(tail=1))
    try:
        wait_for(got, 1)
        with open(log, "rb") as f, open(f"{log}.1.gz", "wb") as compressed:
            compressed.write(gzip_with_last_time(f.read(), T0 + 2))
        os.unlink(log)
        write_entries(log, [("stdout", "3\n", T0 + 3)])
        wait_for(got, 2)
    finally:
        stopped.set()
        reader.join()
    assert texts(got) == ["2\n", "3\n"]


def test_a_rotated_file_left_uncompressed_is_compressed_at_the_next_start(tmp_path):
    """A logger killed between a rotation and its compression leaves LOG.1:
    the next one compresses it, lest the next rotation overwrite it."""
    path = str(tmp_path / "c-json.log")
    write_entries(f"{path}.1", [("stdout", "old\n", 1)])
    logger = Logger("path", path, "max-size", "2000", "max-file", "3", "compress", "1")
    assert logger.close() == 0
    assert sorted(os.listdir(tmp_path)) == ["c-json.log", "c-json.log.1.gz"]
    assert texts(jsonfile.read(path)) == ["old\n"]
    assert parse_time(gz_header_extra(f"{path}.1.gz")["lastTime"]) >= 1  # its mtime: never before its last entry


def test_output_keeps_flowing_while_a_file_is_compressed(tmp_path):
    """The compression runs in a child: a burst far larger than a pipe holds
    goes through while files rotate and compress."""
    path = str(tmp_path / "c-json.log")
    logger = Logger("path", path, "max-size", "200000", "max-file", "3", "compress", "1")
    done = threading.Event()
    writer = threading.Thread(target=lambda: (logger.write(numbered_lines(0, 9999) * 3), done.set()))
    writer.start()
    writer.join(60)
    assert done.is_set()
    assert logger.close() == 0
    assert sorted(os.listdir(tmp_path)) == ["c-json.log", "c-json.log.1.gz", "c-json.log.2.gz"]
