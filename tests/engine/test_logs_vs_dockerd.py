"""engine-py-logger against dockerd 20.10's json-file driver: the same bytes
printed by a container under dockerd and fed to the logger give the same
entries (log text, stream, which parts share a time), and our reader reads
dockerd's file as it reads ours."""
import glob
import json
import os
import re

import pytest

import cgroup_trees
from engine.logs import jsonfile
from logs_fixtures import Logger

pytestmark = pytest.mark.root

PAYLOADS = {
    "stdout": (b"plain\n<html> & \"quotes\" \\ \t\x01\x1b[31m\x7f\r\n"
               b"\xe2\x80\xa8\xe2\x80\xa9 \xc3\xa9 \xf0\x9f\x90\xb3 \xff \xe2\x82 \xc0\xaf \xed\xa0\x80\n"
               + b"L" * 40000 + b"\n" + b"M" * 16384 + b"\n\n" + b"last without newline"),
    "stderr": b"err one\n" + b"E" * 20000 + b"\nerr end",
}
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z$")


def shape(lines: list[bytes]) -> dict[str, list]:
    """Per stream: (log, index of the first entry with the same time) for each entry."""
    out: dict[str, list] = {"stdout": [], "stderr": []}
    times: dict[str, list] = {"stdout": [], "stderr": []}
    for raw in lines:
        e = json.loads(raw)
        assert TIME.match(e["time"]), e["time"]
        seen = times[e["stream"]]
        out[e["stream"]].append((e["log"], seen.index(e["time"]) if e["time"] in seen else len(seen)))
        seen.append(e["time"])
    return out


def test_same_entries_as_dockerds_json_file(dockerd, tmp_path):  # noqa: F811
    for stream, data in PAYLOADS.items():
        (tmp_path / stream).write_bytes(data)
    os.chmod(tmp_path, 0o755)
    parent = f"logs-test-{os.getpid()}"  # a cgroup parent of this test's, removed after
    cid = dockerd.docker("run", "-d", "--network", "none", "--cgroup-parent", parent, "-v", f"{tmp_path}:/p:ro",
                         "busybox", "sh", "-c", "cat /p/stdout; cat /p/stderr >&2").stdout.strip()
    try:
        dockerd.docker("wait", cid)
        theirs_path = dockerd.inspect(cid)["LogPath"]
        with open(theirs_path, "rb") as f:
            theirs = f.read().splitlines()
        their_entries = list(jsonfile.read(theirs_path))
    finally:
        dockerd.docker("rm", "-f", cid, check=False)
        left = [why for path in glob.glob(f"/sys/fs/cgroup/*/{parent}") + glob.glob(f"/sys/fs/cgroup/{parent}")
                for why in cgroup_trees.remove(path)]
        assert not left, f"cgroups left in use: {left}"

    ours_path = tmp_path / "ours-json.log"
    logger = Logger("path", str(ours_path))
    for stream, data in PAYLOADS.items():
        logger.write(data, stream)
    assert logger.close() == 0
    ours = ours_path.read_bytes().splitlines()

    assert len(theirs) == 14 and shape(ours) == shape(theirs)
    # byte for byte but for the times
    strip = re.compile(rb',"time":"[^"]*"\}$')
    assert sorted(strip.sub(b"", line) for line in ours) == sorted(strip.sub(b"", line) for line in theirs)
    assert [(e.stream, e.line) for e in their_entries] == [(json.loads(r)["stream"], json.loads(r)["log"].encode())
                                                          for r in theirs]


def test_rotation_as_dockerds(dockerd, tmp_path):  # noqa: F811
    """--log-opt max-size=2k --log-opt max-file=3: the same files, each rotated
    one past max-size by less than an entry, the newest lines kept whole.
    (Where exactly a file ends differs by a few entries: times vary in length.)"""
    printer = 'i=0; while [ $i -lt 500 ]; do i=$((i+1)); echo "line $i"; done'
    parent = f"logs-test-{os.getpid()}"
    cid = dockerd.docker("run", "-d", "--network", "none", "--cgroup-parent", parent, "--log-opt", "max-size=2k",
                         "--log-opt", "max-file=3", "busybox", "sh", "-c", printer).stdout.strip()
    try:
        dockerd.docker("wait", cid)
        theirs = dockerd.inspect(cid)["LogPath"]
        their_files = [os.path.basename(f) for f in jsonfile.rotated_files(theirs)]
        their_lines = [e.line for e in jsonfile.read(theirs)]
        their_sizes = [os.path.getsize(f) for f in jsonfile.rotated_files(theirs)]
    finally:
        dockerd.docker("rm", "-f", cid, check=False)
        left = [why for path in glob.glob(f"/sys/fs/cgroup/*/{parent}") + glob.glob(f"/sys/fs/cgroup/{parent}")
                for why in cgroup_trees.remove(path)]
        assert not left, f"cgroups left in use: {left}"

    ours = str(tmp_path / f"{cid}-json.log")
    logger = Logger("path", ours, "max-size", "2000", "max-file", "3")
    logger.write(b"".join(f"line {i}\n".encode() for i in range(1, 501)))
    assert logger.close() == 0
    our_lines = [e.line for e in jsonfile.read(ours)]
    assert [os.path.basename(f) for f in jsonfile.rotated_files(ours)] == their_files == \
        [f"{cid}-json.log.2", f"{cid}-json.log.1", f"{cid}-json.log"]
    for lines in (their_lines, our_lines):
        numbers = [int(line.split()[1]) for line in lines]
        assert numbers == list(range(numbers[0], 501))
    assert abs(len(our_lines) - len(their_lines)) < 5
    for size in their_sizes[:-1] + [os.path.getsize(f) for f in jsonfile.rotated_files(ours)][:-1]:
        assert 2000 <= size < 2000 + 80
