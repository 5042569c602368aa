"""linux.resources: the limits are in the container's cgroup before its
program runs. The probe reads its own cgroup files (the cgroup mount of the
default config shows the container's own directories)."""
import os

import pytest

from .harness import base_config, cgroup_dirs_named, kv

pytestmark = pytest.mark.root

V1 = os.path.isdir("/sys/fs/cgroup/memory") and not os.path.exists("/sys/fs/cgroup/cgroup.controllers")
needs_v1 = pytest.mark.skipif(not V1, reason="the probes read cgroup v1 files; this host is not v1/hybrid")


def remove_cgroups_of(runtime):
    """Cgroup dirs still named after this test's containers, removed (a
    runtime that fails a create must not leave them; crun does)."""
    left = sorted(cgroup_dirs_named(set(runtime.ids)), key=len, reverse=True)
    for d in left:
        os.rmdir(d)
    return left


def probe_files(runtime, make_bundle, resources, files):
    """Run a container with ``resources``; {file: contents} of its cgroup files."""
    cfg = base_config()
    cfg["linux"]["resources"].update(resources)
    b = make_bundle(cfg)
    script = "; ".join(f'echo "{f}=$(cat /sys/fs/cgroup/{f})"' for f in files)
    try:
        return kv(runtime.probe(b, script, hint="res"))
    except AssertionError:
        remove_cgroups_of(runtime)
        raise


@needs_v1
def test_memory(runtime, make_bundle):
    got = probe_files(runtime, make_bundle, {"memory": {
        "limit": 64 << 20, "reservation": 32 << 20, "swap": 128 << 20, "swappiness": 10,
        "disableOOMKiller": True}}, [
        "memory/memory.limit_in_bytes", "memory/memory.soft_limit_in_bytes",
        "memory/memory.memsw.limit_in_bytes", "memory/memory.swappiness", "memory/memory.oom_control"])
    assert got["memory/memory.limit_in_bytes"] == str(64 << 20)
    assert got["memory/memory.soft_limit_in_bytes"] == str(32 << 20)
    assert got["memory/memory.memsw.limit_in_bytes"] == str(128 << 20)
    assert got["memory/memory.swappiness"] == "10"
    assert got["memory/memory.oom_control"].startswith("oom_kill_disable 1")


@needs_v1
def test_cpu(runtime, make_bundle):
    got = probe_files(runtime, make_bundle, {"cpu": {
        "shares": 512, "quota": 25000, "period": 50000, "cpus": "0", "mems": "0"}}, [
        "cpu/cpu.shares", "cpu/cpu.cfs_quota_us", "cpu/cpu.cfs_period_us",
        "cpuset/cpuset.cpus", "cpuset/cpuset.mems"])
    assert got == {"cpu/cpu.shares": "512", "cpu/cpu.cfs_quota_us": "25000", "cpu/cpu.cfs_period_us": "50000",
                   "cpuset/cpuset.cpus": "0", "cpuset/cpuset.mems": "0"}


@needs_v1
@pytest.mark.parametrize("limit,expected", [
    (42, "42"),
    pytest.param(-1, "max", marks=pytest.mark.deviation("crun", "writes -1 (docker's 'unlimited') to pids.max: EINVAL")),
])
def test_pids(runtime, make_bundle, limit, expected):
    got = probe_files(runtime, make_bundle, {"pids": {"limit": limit}}, ["pids/pids.max"])
    assert got["pids/pids.max"] == expected


def _root_block_device():
    st = os.stat("/")
    dev = st.st_dev
    # a partition's throttles belong to its disk; /sys/dev/block says which
    path = os.path.realpath(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}")
    if os.path.exists(os.path.join(path, "partition")):
        path = os.path.dirname(path)
    try:
        with open(os.path.join(path, "dev")) as f:
            major, minor = f.read().split(":")
    except FileNotFoundError:
        pytest.skip("/ is not on a block device")
    return int(major), int(minor)


@needs_v1
def test_blkio_throttle(runtime, make_bundle):
    major, minor = _root_block_device()
    got = probe_files(runtime, make_bundle, {"blockIO": {
        "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1048576}],
        "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 300}]}}, [
        "blkio/blkio.throttle.read_bps_device", "blkio/blkio.throttle.write_iops_device"])
    assert got["blkio/blkio.throttle.read_bps_device"] == f"{major}:{minor} 1048576"
    assert got["blkio/blkio.throttle.write_iops_device"] == f"{major}:{minor} 300"


# /dev/kmsg's numbers; opening it write-only needs no capability and writes nothing
KMSG = "c 1 11"
OPEN_KMSG = f"mknod /dev/k {KMSG} && (: > /dev/k) 2>/dev/null && echo open=ok || echo open=denied"


def _devices_bundle(make_bundle, rules=(), devices=()):
    cfg = base_config()
    caps = cfg["process"]["capabilities"]
    for kind in ("bounding", "effective", "permitted"):
        caps[kind] = sorted(set(caps.get(kind, [])) | {"CAP_MKNOD"})
    cfg["linux"]["resources"]["devices"] += list(rules)
    cfg["linux"]["devices"] = list(devices)
    return make_bundle(cfg)


@pytest.mark.parametrize("rules,expected", [
    ([], "denied"),  # runc's default: deny all, then the default devices only
    ([{"allow": True, "type": "c", "major": 1, "minor": 11, "access": "w"}], "ok"),
    ([{"allow": True, "type": "c", "major": 1, "minor": 11, "access": "rwm"},
      {"allow": False, "type": "c", "major": 1, "minor": 11, "access": "w"}], "denied"),  # in order
], ids=["default", "allowed", "allowed-then-denied"])
def test_device_rules(runtime, make_bundle, rules, expected):
    b = _devices_bundle(make_bundle, rules)
    assert kv(runtime.probe(b, OPEN_KMSG, hint="devrules"))["open"] == expected


def test_default_devices_stay_usable(runtime, make_bundle):
    b = _devices_bundle(make_bundle)
    out = runtime.probe(b, "echo x > /dev/null && head -c 1 /dev/zero | wc -c && head -c 1 /dev/urandom | wc -c",
                        hint="devdefault")
    assert out.split() == ["1", "1"]


@pytest.mark.parametrize("rules,expected", [
    ([], "denied"),
    ([{"allow": True, "type": "c", "major": 1, "minor": 11, "access": "rw"}], "ok"),
], ids=["no-rule", "allowed"])
def test_linux_devices_need_a_rule(runtime, make_bundle, rules, expected):
    """A node of linux.devices is made, but using it takes a device rule, as with runc."""
    b = _devices_bundle(make_bundle, rules, devices=[{"path": "/dev/kk", "type": "c", "major": 1, "minor": 11,
                                                      "fileMode": 0o600, "uid": 0, "gid": 0}])
    out = runtime.probe(b, "(: > /dev/kk) 2>/dev/null && echo open=ok || echo open=denied", hint="devlinux")
    assert kv(out)["open"] == expected


@pytest.mark.parametrize("resources", [
    pytest.param({"memory": {"swappiness": 101}}, id="swappiness",
                 marks=pytest.mark.deviation("crun", "accepts swappiness 101 (the range is 0-100)")),
    pytest.param({"memory": {"limit": 64 << 20, "swap": 32 << 20}}, id="swap-below-limit",
                 marks=pytest.mark.deviation("crun", "leaves the container's cgroups behind")),
    pytest.param({"cpu": {"cpus": "0-1000"}}, id="cpus-out-of-range",
                 marks=pytest.mark.deviation("crun", "leaves the container's cgroups behind")),
    pytest.param({"pids": {"limit": "many"}}, id="pids-not-a-number",
                 marks=pytest.mark.deviation("crun", "accepts a string as pids.limit")),
])
def test_bad_limits_fail_create_and_leave_nothing(runtime, make_bundle, resources):
    cfg = base_config()
    cfg["linux"]["resources"].update(resources)
    b = make_bundle(cfg)
    cid = runtime.new_id("badres")
    cp = runtime.create(cid, b.path)
    assert cp.returncode != 0
    assert cid not in runtime.list_ids()
    assert remove_cgroups_of(runtime) == []
