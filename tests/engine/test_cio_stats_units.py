"""Stats and top from cgroup files laid out as cgroup v1 and v2 show them,
and ps output as dockerd parses it: no root, no containers."""
import os

import pytest

from engine.errors import System
from engine.services.stats import CgroupReader, parse_ps

V1 = {
    "cpuacct/cpuacct.usage": "5000000\n", "cpuacct/cpuacct.usage_percpu": "3000000 2000000 \n",
    "cpuacct/cpuacct.stat": "user 3\nsystem 1\n",
    "cpu/cpu.stat": "nr_periods 4\nnr_throttled 1\nthrottled_time 900\n",
    "memory/memory.usage_in_bytes": "4096\n", "memory/memory.max_usage_in_bytes": "8192\n",
    "memory/memory.failcnt": "0\n", "memory/memory.limit_in_bytes": "9223372036854771712\n",
    "memory/memory.stat": "cache 100\nrss 200\ntotal_rss 200\nswap 0\n",
    "pids/pids.current": "2\n", "pids/pids.max": "max\n", "pids/cgroup.procs": "12\n10\n",
    "blkio/blkio.io_service_bytes_recursive": "",
    "blkio/blkio.throttle.io_service_bytes": "8:0 Read 512\n8:0 Write 1024\n8:0 Total 1536\nTotal 1536\n",
}
V2 = {
    "cpu.stat": "usage_usec 5000\nuser_usec 3000\nsystem_usec 2000\nnr_periods 4\nnr_throttled 1\n"
                "throttled_usec 7\n",
    "memory.current": "4096\n", "memory.max": "1048576\n", "memory.stat": "anon 300\nfile 100\nsock 0\n",
    "memory.events": "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n", "pids.current": "1\n", "pids.max": "50\n",
    "io.stat": "8:0 rbytes=512 wbytes=1024 rios=1 wios=2 dbytes=0 dios=0\n", "cgroup.procs": "7\n",
}


def _lay_out(root, files: dict, version: int, path="parent/ctr"):
    for name, text in files.items():
        controller, _, base = name.rpartition("/")
        directory = root / controller / path if version == 1 else root / path
        directory.mkdir(parents=True, exist_ok=True)
        (directory / base).write_text(text)
    return CgroupReader("/" + path, version, str(root))


def test_v1_as_dockerd_reports_it(tmp_path):
    reader = _lay_out(tmp_path, V1, 1)
    sample = reader.sample(machine_memory=2 << 30)
    ticks = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    assert sample["cpu_stats"]["cpu_usage"] == {"total_usage": 5000000, "percpu_usage": [3000000, 2000000],
                                                "usage_in_kernelmode": ticks, "usage_in_usermode": 3 * ticks}
    assert sample["cpu_stats"]["throttling_data"] == {"periods": 4, "throttled_periods": 1, "throttled_time": 900}
    memory = sample["memory_stats"]
    assert (memory["usage"], memory["max_usage"], memory["limit"]) == (4096, 8192, 2 << 30)  # unlimited: the machine's
    assert "failcnt" not in memory and memory["stats"]["rss"] == 200 and memory["stats"]["total_cache"] == 0
    assert sample["pids_stats"] == {"current": 2}
    assert sample["blkio_stats"]["io_service_bytes_recursive"] == [
        {"major": 8, "minor": 0, "op": "Read", "value": 512}, {"major": 8, "minor": 0, "op": "Write", "value": 1024},
        {"major": 8, "minor": 0, "op": "Total", "value": 1536}]
    assert sample["blkio_stats"]["io_queue_recursive"] == []
    assert reader.pids() == [10, 12]


def test_v2_as_dockerd_reports_it(tmp_path):
    reader = _lay_out(tmp_path, V2, 2)
    sample = reader.sample(machine_memory=2 << 30)
    assert sample["cpu_stats"]["cpu_usage"] == {"total_usage": 5_000_000, "usage_in_kernelmode": 2_000_000,
                                                "usage_in_usermode": 3_000_000}
    assert sample["cpu_stats"]["throttling_data"]["throttled_time"] == 7000
    memory = sample["memory_stats"]
    assert (memory["usage"], memory["limit"], memory["failcnt"]) == (4096, 1048576, 1)
    assert "max_usage" not in memory and memory["stats"]["anon"] == 300 and "cache" not in memory["stats"]
    assert sample["pids_stats"] == {"current": 1, "limit": 50}
    assert sample["blkio_stats"]["io_service_bytes_recursive"] == [
        {"major": 8, "minor": 0, "op": "read", "value": 512}, {"major": 8, "minor": 0, "op": "write", "value": 1024}]
    assert sample["blkio_stats"]["io_serviced_recursive"] is None
    assert reader.pids() == [7]


PS_EF = """UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 05:00 ?        00:00:01 /sbin/init
root         100       1  0 05:01 ?        00:00:00 sh -c while :; do sleep 1; done
root         101     100  0 05:01 ?        00:00:00 sleep 1
"""

PS_M = """  PID TTY      STAT   TIME COMMAND
  100 ?        -      0:00 sh
    - -        Ss     0:00 -
    1 ?        -      0:01 init
    - -        Ss     0:01 -
"""


def test_ps_output_kept_to_the_containers_pids_with_the_command_joined():
    top = parse_ps(PS_EF, {100, 101})
    assert top["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert top["Processes"] == [["root", "100", "1", "0", "05:01", "?", "00:00:00", "sh -c while :; do sleep 1; done"],
                                ["root", "101", "100", "0", "05:01", "?", "00:00:00", "sleep 1"]]


def test_thread_lines_follow_their_process():
    assert parse_ps(PS_M, {100})["Processes"] == [["100", "?", "-", "0:00", "sh"], ["-", "-", "Ss", "0:00", "-"]]


def test_ps_output_without_a_pid_column_is_refused():
    with pytest.raises(System, match="^Couldn't find PID field in ps output$"):
        parse_ps("USER COMMAND\nroot sh\n", {1})
