"""linux.resources: validation names the JSON path; each controller's v1 and
v2 writes are checked against a recording directory (no cgroups needed, so
v2 is covered on this hybrid host too)."""
import pytest

from runpy_oci.cgroups import Cgroup, Hierarchy
from runpy_oci.cgroups import resources as cg_resources
from runpy_oci.cgroups.controller import Dir
from runpy_oci.errors import ConfigError
from runpy_oci.spec.fields import Fields
from runpy_oci.spec.resources import Resources


class RecordingDir(Dir):
    """A cgroup dir whose writes are recorded; reads come from ``files``."""

    __slots__ = ("writes", "files")

    def __init__(self, version, files=None):
        super().__init__("/fake", version)
        self.writes = []
        self.files = dict(files or {})

    def write(self, name, value, field):
        self.writes.append((name, str(value), field))
        self.files[name] = str(value)

    def read(self, name):
        return self.files.get(name)

    def has(self, name):
        return name in self.files


def res(data):
    return Resources(Fields(data, "linux.resources"))


def apply_to(name, version, data, files=None):
    d = RecordingDir(version, files)
    ctrl = cg_resources.load(name)
    part = ctrl.requested(res(data))
    (ctrl.set_v1 if version == 1 else ctrl.set_v2)(d, part)
    return [(n, v) for n, v, _ in d.writes]


@pytest.mark.parametrize("data,message", [
    ({"memory": {"swappiness": 101}}, "linux.resources.memory.swappiness: 101 is above the maximum 100"),
    ({"memory": {"limit": "1G"}}, "linux.resources.memory.limit: expected integer, got string"),
    ({"memory": {"limit": 100, "swap": 50}}, "linux.resources.memory.swap: memory+swap limit 50 is below"),
    ({"cpu": {"cpus": "0-a"}}, "linux.resources.cpu.cpus: invalid cpu/memory-node list '0-a'"),
    ({"cpu": {"shares": 1}}, "linux.resources.cpu.shares: 1 is below the minimum 2"),
    ({"devices": [{"allow": True, "access": "rwx"}]}, "linux.resources.devices[0].access: expected letters"),
    ({"devices": [{"access": "r"}]}, "linux.resources.devices[0].allow: required field is missing"),
    ({"devices": [{"allow": True, "type": "p"}]}, "linux.resources.devices[0].type: unknown device type 'p'"),
    ({"hugepageLimits": [{"pageSize": "2M", "limit": 1}]}, "linux.resources.hugepageLimits[0].pageSize: expected"),
    ({"blockIO": {"throttleReadBpsDevice": [{"major": 8, "rate": 1}]}},
     "linux.resources.blockIO.throttleReadBpsDevice[0].minor: required field is missing"),
    ({"unified": {"../memory.max": "1"}}, "linux.resources.unified.../memory.max: not a cgroup file name"),
    ({"network": {"priorities": [{"name": "eth0"}]}}, "linux.resources.network.priorities[0].priority: required"),
])
def test_validation_names_the_field(data, message):
    with pytest.raises(ConfigError) as e:
        res(data)
    assert str(e.value).startswith(message)


def test_memory_v1_orders_swap_before_a_growing_limit():
    files = {"memory.memsw.limit_in_bytes": "1000"}
    assert apply_to("memory", 1, {"memory": {"limit": 2000, "swap": 4000}}, files) == [
        ("memory.memsw.limit_in_bytes", "4000"), ("memory.limit_in_bytes", "2000")]
    files = {"memory.memsw.limit_in_bytes": "9000"}
    assert apply_to("memory", 1, {"memory": {"limit": 2000, "swap": 4000}}, files) == [
        ("memory.limit_in_bytes", "2000"), ("memory.memsw.limit_in_bytes", "4000")]


def test_memory_v2():
    assert apply_to("memory", 2, {"memory": {"limit": 2000, "swap": 3000, "reservation": 1000}}) == [
        ("memory.max", "2000"), ("memory.swap.max", "1000"), ("memory.low", "1000")]
    assert apply_to("memory", 2, {"memory": {"limit": -1}}) == [("memory.max", "max")]


@pytest.mark.parametrize("data,field", [
    ({"memory": {"swappiness": 10}}, "linux.resources.memory.swappiness"),
    ({"memory": {"disableOOMKiller": True}}, "linux.resources.memory.disableOOMKiller"),
    ({"memory": {"swap": 100}}, "linux.resources.memory.swap"),
])
def test_memory_v2_refuses_what_it_cannot_express(data, field):
    with pytest.raises(ConfigError, match=f"^{field}: "):
        apply_to("memory", 2, data)


def test_cpu_v2():
    assert apply_to("cpu", 2, {"cpu": {"shares": 1024, "quota": 50000, "period": 100000}}) == [
        ("cpu.weight", "39"), ("cpu.max", "50000 100000")]
    # a lone period keeps the quota in force
    assert apply_to("cpu", 2, {"cpu": {"period": 200000}}, {"cpu.max": "30000 100000"}) == [
        ("cpu.max", "30000 200000")]
    with pytest.raises(ConfigError, match="^linux.resources.cpu.realtimeRuntime: "):
        apply_to("cpu", 2, {"cpu": {"realtimeRuntime": 100}})


def test_cpuset_pids_v2():
    assert apply_to("cpuset", 2, {"cpu": {"cpus": "0-1", "mems": "0"}}) == [
        ("cpuset.mems", "0"), ("cpuset.cpus", "0-1")]
    assert apply_to("pids", 2, {"pids": {"limit": 0}}) == [("pids.max", "max")]


def test_blkio_v1_and_v2():
    data = {"blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 100}],
                        "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 0}]}}
    assert apply_to("blkio", 1, data, {"blkio.weight": "100"}) == [
        ("blkio.weight", "500"), ("blkio.throttle.read_bps_device", "8:0 100"),
        ("blkio.throttle.write_iops_device", "8:0 0")]
    assert apply_to("blkio", 2, data) == [
        ("io.weight", "default 4950"), ("io.max", "8:0 rbps=100"), ("io.max", "8:0 wiops=max")]


def test_hugetlb_file_names():
    data = {"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}, {"pageSize": "1048576KB", "limit": 0}]}
    assert apply_to("hugetlb", 1, data) == [
        ("hugetlb.2MB.limit_in_bytes", "4194304"), ("hugetlb.1GB.limit_in_bytes", "0")]
    assert apply_to("hugetlb", 2, data)[0] == ("hugetlb.2MB.max", "4194304")


def test_devices_v1_rules_in_order_then_the_defaults():
    writes = apply_to("devices", 1, {"devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "rw"},
        {"allow": False, "type": "b", "major": 8, "access": "m"}]})
    assert writes[:3] == [("devices.deny", "a"), ("devices.allow", "c 1:11 rw"), ("devices.deny", "b 8:* m")]
    assert ("devices.allow", "c 1:3 rwm") in writes[3:]


def test_devices_v2_attach_a_device_program_to_the_cgroup(tmp_path):
    from runpy_oci import kernel
    from runpy_oci.cgroups.devicefilter import compile_rules
    from runpy_oci.cgroups.devices import _default_rules
    from fakes import RecordingSysCalls

    d = RecordingDir(2)
    d.path = str(tmp_path)
    fake = RecordingSysCalls()
    previous = kernel.use(fake)
    try:
        cg_resources.load("devices").set_v2(d, res({"devices": [{"allow": False, "access": "rwm"}]}))
    finally:
        kernel.use(previous)
    ((_, program, _),) = [c for c in fake.calls if c[0] == "attach_device_filter"]
    assert program == compile_rules([("a", None, None, "rwm", False)] + _default_rules())


def test_network_and_unified():
    assert apply_to("net_prio", 1, {"network": {"priorities": [{"name": "eth0", "priority": 5}]}}) == [
        ("net_prio.ifpriomap", "eth0 5")]
    assert apply_to("unified", 2, {"unified": {"memory.high": "1000"}}) == [("memory.high", "1000")]


def _pure_v2(tmp_path, controllers):
    (tmp_path / "c1").mkdir()
    (tmp_path / "c1" / "cgroup.controllers").write_text(controllers)
    return Cgroup({str(tmp_path): str(tmp_path / "c1")}, [Hierarchy(str(tmp_path), (), 2)])


def test_a_controller_the_host_lacks_is_an_error_naming_the_field(tmp_path):
    cg = _pure_v2(tmp_path, "memory pids\n")
    (tmp_path / "c1" / "pids.max").write_text("max\n")
    cg.apply(res({"pids": {"limit": 7}}))
    assert (tmp_path / "c1" / "pids.max").read_text() == "7"
    with pytest.raises(ConfigError, match="^linux.resources.hugepageLimits: the host has no hugetlb"):
        cg.apply(res({"hugepageLimits": [{"pageSize": "2MB", "limit": 0}]}))
    with pytest.raises(ConfigError, match="^linux.resources.pids.limit: the host's cgroup has no pids.max"):
        (tmp_path / "c1" / "pids.max").unlink()
        cg.apply(res({"pids": {"limit": 7}}))


def test_hybrid_uses_v1_and_never_v2_controllers(tmp_path):
    (tmp_path / "u" / "c1").mkdir(parents=True)
    (tmp_path / "u" / "c1" / "cgroup.controllers").write_text("hugetlb\n")
    cg = Cgroup({str(tmp_path / "m"): str(tmp_path / "m" / "c1"), str(tmp_path / "u"): str(tmp_path / "u" / "c1")},
                [Hierarchy(str(tmp_path / "m"), ("memory",), 1), Hierarchy(str(tmp_path / "u"), (), 2)])
    assert cg.dir_for(cg_resources.load("memory")).version == 1
    assert cg.dir_for(cg_resources.load("hugetlb")) is None
    assert cg.dir_for(cg_resources.load("unified")).version == 2


def test_pure_v2_enables_only_a_requested_controller_in_the_ancestors(tmp_path):
    cg = _pure_v2(tmp_path, "memory pids\n")
    (tmp_path / "cgroup.controllers").write_text("memory pids hugetlb\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    (tmp_path / "c1" / "pids.max").write_text("max\n")
    cg.apply(res({"pids": {"limit": 7}}))
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+pids"
