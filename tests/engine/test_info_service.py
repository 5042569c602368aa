"""`/info` and `/system/df` from the info service over fakes: dockerd 20.10's
fields and their types (its replies recorded from the real daemon), counts
from the records, the machine's facts from files, the engine's ID kept."""
import json
import os

import pytest

from engine.daemon import Config
from engine.services.info import InfoService, Machine
from engine.store import Container
from test_api_system import shape
# the machine trees have no /proc/sys: forwarding and bridge-nf read as off
NETWORK_OFF = ["WARNING: IPv4 forwarding is disabled", "WARNING: bridge-nf-call-iptables is disabled",
               "WARNING: bridge-nf-call-ip6tables is disabled"]

# dockerd 20.10.24's /info on this kind of machine (its own paths and names in it)
DOCKERD_INFO = json.loads("""{"ID":"VR46:TNM2:QYG5:N3GK:NGG5:M3YJ:RGG5:E5P5:OE6P:B5EO:ITQN:NJIZ","Containers":0,
"ContainersRunning":0,"ContainersPaused":0,"ContainersStopped":0,"Images":1,"Driver":"overlay2","DriverStatus":[[
"Backing Filesystem","extfs"],["Supports d_type","true"],["Native Overlay Diff","true"],["userxattr","false"]],
"Plugins":{"Volume":["local"],"Network":["bridge","host","ipvlan","macvlan","null","overlay"],"Authorization":null,
"Log":["awslogs","fluentd","gcplogs","gelf","journald","json-file","local","logentries","splunk","syslog"]},
"MemoryLimit":true,"SwapLimit":true,"KernelMemory":true,"KernelMemoryTCP":true,"CpuCfsPeriod":true,"CpuCfsQuota":true,
"CPUShares":true,"CPUSet":true,"PidsLimit":true,"IPv4Forwarding":true,"BridgeNfIptables":true,"BridgeNfIp6tables":true,
"Debug":false,"NFd":21,"OomKillDisable":true,"NGoroutines":40,"SystemTime":"2026-12-06T05:11:10.621464934Z",
"LoggingDriver":"json-file","CgroupDriver":"cgroupfs","CgroupVersion":"1","NEventsListener":0,
"KernelVersion":"6.18.44-fc-v1300","OperatingSystem":"Debian GNU/Linux 12 (bookworm)","OSVersion":"12",
"OSType":"linux","Architecture":"x86_64","IndexServerAddress":"https://index.docker.io/v1/","RegistryConfig":{
"AllowNondistributableArtifactsCIDRs":[],"AllowNondistributableArtifactsHostnames":[],"InsecureRegistryCIDRs":[
"127.0.0.0/8"],"IndexConfigs":{"docker.io":{"Name":"docker.io","Mirrors":[],"Secure":true,"Official":true}},
"Mirrors":[]},"NCPU":2,"MemTotal":25276182528,"GenericResources":null,"DockerRootDir":"/var/tmp/x/data","HttpProxy":"",
"HttpsProxy":"","NoProxy":"","Name":"vm","Labels":[],"ExperimentalBuild":false,"ServerVersion":"20.10.24+dfsg1",
"Runtimes":{"runc":{"path":"runc"}},"DefaultRuntime":"runc","Swarm":{"NodeID":"","NodeAddr":"",
"LocalNodeState":"inactive","ControlAvailable":false,"Error":"","RemoteManagers":null},"LiveRestoreEnabled":false,
"Isolation":"","InitBinary":"/usr/bin/docker-init","ContainerdCommit":{"ID":"1.6.20~ds1-1+deb12u3",
"Expected":"1.6.20~ds1-1+deb12u3"},"RuncCommit":{"ID":"1.1.5+ds1-1+deb12u1","Expected":"1.1.5+ds1-1+deb12u1"},
"InitCommit":{"ID":"","Expected":""},"SecurityOptions":["name=seccomp,profile=default"],"Warnings":null}""")
# dockerd 20.10.24's /system/df with busybox loaded and no container
DOCKERD_DF = json.loads("""{"LayersSize":1984319,"Images":[{"Containers":0,"Created":1600000000,"Id":
"sha256:e4da63c0f6805d2c60cde124673ecc4858a21256d2c519142ce2bee2f978bdfc","Labels":null,"ParentId":"","RepoDigests":
null,"RepoTags":["busybox:latest"],"SharedSize":0,"Size":1984319,"VirtualSize":1984319}],"Containers":[],
"Volumes":[],"BuildCache":null,"BuilderSize":0}""")
BUSYBOX, OTHER = "sha256:" + "b" * 64, "sha256:" + "c" * 64
V1_FILES = ["memory/memory.limit_in_bytes", "memory/memory.memsw.limit_in_bytes", "memory/memory.kmem.limit_in_bytes",
            "memory/memory.kmem.tcp.limit_in_bytes", "memory/memory.oom_control", "cpu/cpu.cfs_period_us",
            "cpu/cpu.cfs_quota_us", "cpu/cpu.shares", "cpuset/cpuset.cpus", "pids/cgroup.procs"]


class FakeSystem:
    def version(self):
        return {"Components": [{"Name": "Engine", "Details": {}},
                               {"Name": "containerd", "Details": {"GitCommit": "cd-rev"}},
                               {"Name": "runc", "Details": {"GitCommit": "runc-rev"}}]}


def machine_tree(root, cgroup_files=V1_FILES, v2_controllers=None):
    """A fake root with os-release, meminfo, sysctls and cgroup files."""
    files = {"etc/os-release": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_ID="12"\n',
             "proc/meminfo": "MemTotal:       24683772 kB\nMemFree: 1 kB\n", "proc/sys/net/ipv4/ip_forward": "0\n"}
    files.update({f"sys/fs/cgroup/{name}": "" for name in cgroup_files})
    if v2_controllers is not None:
        files["sys/fs/cgroup/cgroup.controllers"] = v2_controllers
    for name, text in files.items():
        os.makedirs(os.path.dirname(root / name), exist_ok=True)
        (root / name).write_text(text)
    return Machine(str(root))


def record(image, status):
    made = Container(f"{status[0]}{image[-1]}" * 32, f"/{status}", image, {"Image": "busybox"}, {})
    if status in ("running", "paused"):
        made.state.set_running(42, "2026-12-06T05:11:10Z")
        made.state.paused = status == "paused"
    elif status == "exited":
        made.state.set_stopped(0, "2026-12-06T05:11:10Z")
    return made


def image_summary(image_id, size):
    return {"Containers": -1, "Created": 1600000000, "Id": image_id, "Labels": None, "ParentId": "",
            "RepoDigests": None, "RepoTags": ["busybox:latest"], "SharedSize": -1, "Size": size, "VirtualSize": size}


@pytest.fixture
def make(tmp_path):
    def make(records=(), machine=None, **config):
        config = Config(data_root=str(tmp_path / "data"), runtimes={"runpy-oci": "/x/runpy-oci", "runc": "/y/runc"},
                        **config)
        os.makedirs(config.data_root, exist_ok=True)
        layers = {BUSYBOX: {"sha256:l1": 100, "sha256:l2": 20}, OTHER: {"sha256:l1": 100, "sha256:l3": 3}}
        return InfoService(config, FakeSystem(), "overlayfs", lambda: list(records),
                           lambda: [image_summary(BUSYBOX, 120), image_summary(OTHER, 103)], lambda: layers,
                           lambda: [{"Id": r.id, "ImageID": r.image, "SizeRw": 7, "SizeRootFs": 127} for r in records],
                           lambda: 3, machine or machine_tree(tmp_path / "root"))
    return make


def test_info_has_dockerds_fields_and_types(make):
    info = make().info()
    assert list(info) == list(DOCKERD_INFO)
    expected = shape(DOCKERD_INFO)
    for key in ("Warnings", "Runtimes", "Plugins", "DriverStatus"):  # lists and maps of other lengths
        del expected[key]
    assert {k: v for k, v in shape(info).items() if k in expected} == expected
    assert shape(info["DriverStatus"][0]) == shape(DOCKERD_INFO["DriverStatus"][0])
    assert shape(info["Runtimes"]["runc"]) == shape(DOCKERD_INFO["Runtimes"]["runc"])
    assert set(info["Plugins"]) == set(DOCKERD_INFO["Plugins"]) and isinstance(info["Warnings"], list)


def test_info_counts_states_and_reports_the_engines_own_values(make):
    records = [record(BUSYBOX, "running"), record(BUSYBOX, "paused"), record(OTHER, "exited"),
               record(OTHER, "created")]
    info = make(records, default_runtime="runpy-oci", live_restore=True, debug=True).info()
    assert (info["Containers"], info["ContainersRunning"], info["ContainersPaused"], info["ContainersStopped"]) == \
        (4, 1, 1, 2)
    assert (info["Images"], info["Driver"], info["DriverStatus"]) == \
        (2, "overlayfs", [["driver-type", "io.containerd.snapshotter.v1"]])
    assert info["Runtimes"] == {"runc": {"path": "/y/runc"}, "runpy-oci": {"path": "/x/runpy-oci"}}
    assert (info["DefaultRuntime"], info["LiveRestoreEnabled"], info["Debug"]) == ("runpy-oci", True, True)
    assert info["ContainerdCommit"] == {"ID": "cd-rev", "Expected": "cd-rev"}
    assert info["RuncCommit"] == {"ID": "runc-rev", "Expected": "runc-rev"}
    assert info["Swarm"]["LocalNodeState"] == "inactive" and info["NEventsListener"] == 3
    assert info["SecurityOptions"] == ["name=seccomp,profile=default"]
    assert info["Warnings"] == NETWORK_OFF
    assert info["DockerRootDir"].endswith("/data") and info["CgroupDriver"] == "cgroupfs"
    assert info["InitBinary"].endswith("/engine-py-init")
    assert make(init_path="/usr/bin/docker-init").info()["InitBinary"] == "/usr/bin/docker-init"


def test_machine_facts_come_from_its_files(make):
    info = make().info()
    assert (info["OperatingSystem"], info["OSVersion"]) == ("Debian GNU/Linux 12 (bookworm)", "12")
    assert info["MemTotal"] == 24683772 * 1024 and info["CgroupVersion"] == "1"
    assert info["IPv4Forwarding"] is False
    assert all(info[k] for k in ("MemoryLimit", "SwapLimit", "KernelMemory", "KernelMemoryTCP", "OomKillDisable",
                                 "CpuCfsPeriod", "CpuCfsQuota", "CPUShares", "CPUSet", "PidsLimit"))


def test_missing_cgroup_features_are_dockerds_warnings(make, tmp_path):
    machine = machine_tree(tmp_path / "bare", cgroup_files=["memory/memory.limit_in_bytes", "cpu/cpu.shares"])
    info = make(machine=machine).info()
    assert info["Warnings"] == ["WARNING: No swap limit support", "WARNING: No kernel memory limit support",
                                "WARNING: No kernel memory TCP limit support", "WARNING: No oom kill disable support",
                                "WARNING: No cpu cfs quota support", "WARNING: No cpu cfs period support",
                                "WARNING: No cpuset support", *NETWORK_OFF]


def test_a_tcp_socket_is_warned_of_as_dockerd_does(make):
    warnings = make(hosts=["unix:///run/x.sock", "tcp://127.0.0.1:2375"]).info()["Warnings"]
    assert warnings[:3] == NETWORK_OFF
    assert warnings[3].startswith("WARNING: API is accessible on http://127.0.0.1:2375 without encryption.\n")
    assert warnings[3].endswith("https://docs.docker.com/go/attack-surface/") and len(warnings) == 4


def test_cgroup_v2_is_read_from_its_controllers(make, tmp_path):
    machine = machine_tree(tmp_path / "v2", cgroup_files=["system.slice/memory.swap.max"],
                           v2_controllers="cpuset cpu io memory pids\n")
    info = make(machine=machine).info()
    assert info["CgroupVersion"] == "2" and info["SecurityOptions"][-1] == "name=cgroupns"
    assert (info["MemoryLimit"], info["SwapLimit"], info["CPUSet"], info["PidsLimit"]) == (True, True, True, True)
    assert info["KernelMemory"] is False and info["Warnings"] == NETWORK_OFF


def test_insecure_registries_and_mirrors_as_dockerds_registry_config(make):
    config = make(insecure_registries=["10.0.0.0/8", "reg.local:5000"],
                  registry_mirrors=["https://mirror.local"]).info()["RegistryConfig"]
    assert config["InsecureRegistryCIDRs"] == ["127.0.0.0/8", "10.0.0.0/8"]
    assert config["IndexConfigs"]["reg.local:5000"] == {"Name": "reg.local:5000", "Mirrors": [], "Secure": False,
                                                        "Official": False}
    assert config["IndexConfigs"]["docker.io"]["Mirrors"] == config["Mirrors"] == ["https://mirror.local"]


def test_the_engine_id_is_made_once_and_kept(make):
    first = make().info()["ID"]
    assert make().info()["ID"] == first and len(first) == 36


def test_disk_usage_in_dockerds_shape_with_counts_and_shared_sizes(make):
    records = [record(BUSYBOX, "running"), record(BUSYBOX, "exited")]
    df = make(records).disk_usage()
    assert shape({k: v for k, v in df.items() if k != "BuildCache"}) == \
        {**shape({k: v for k, v in DOCKERD_DF.items() if k != "BuildCache"}),
         "Images": [shape(DOCKERD_DF["Images"][0])] * 2, "Containers": [shape(c) for c in df["Containers"]]}
    assert df["LayersSize"] == 123 and df["Volumes"] == [] and df["BuildCache"] == []
    by_id = {image["Id"]: image for image in df["Images"]}
    assert (by_id[BUSYBOX]["Containers"], by_id[BUSYBOX]["SharedSize"]) == (2, 100)
    assert (by_id[OTHER]["Containers"], by_id[OTHER]["SharedSize"]) == (0, 100)
    assert [(c["Id"], c["SizeRw"], c["SizeRootFs"]) for c in df["Containers"]] == [(r.id, 7, 127) for r in records]
