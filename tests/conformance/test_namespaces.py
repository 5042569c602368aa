"""linux.namespaces: each type isolates; a path joins an existing one."""
from __future__ import annotations

import os
import socket
import subprocess

import pytest

from .harness import add_namespace, kv, remove_namespace

pytestmark = pytest.mark.root

# config type -> /proc/self/ns name
NS = {"pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts", "mount": "mnt",
      "cgroup": "cgroup"}


def host_ns(name: str) -> str:
    return os.readlink(f"/proc/self/ns/{name}")


def test_pid_namespace_program_is_pid_1(runtime, bundle):
    out = kv(runtime.probe(bundle, 'read comm < /proc/1/comm; set -- /proc/[0-9]*; '
                           'echo "pid=$$"; echo "comm=$comm"; echo "procs=$#"'))
    assert out["pid"] == "1"
    assert out["comm"] == "sh"
    # only the shell itself is visible (the glob is expanded without a fork)
    assert out["procs"] == "1"


@pytest.mark.parametrize("ns_type", list(NS))
def test_namespace_isolated(runtime, bundle, ns_type):
    add_namespace(bundle.config, ns_type)
    name = NS[ns_type]
    inside = runtime.probe(bundle, f"readlink /proc/self/ns/{name}").strip()
    assert inside.startswith(f"{name}:[")
    assert inside != host_ns(name)


@pytest.mark.parametrize("ns_type", ["pid", "network", "ipc", "uts", "cgroup"])
def test_namespace_shared_when_not_requested(runtime, bundle, ns_type):
    remove_namespace(bundle.config, ns_type)
    if ns_type == "uts":
        bundle.config.pop("hostname", None)  # a hostname needs a private uts ns
    name = NS[ns_type]
    inside = runtime.probe(bundle, f"readlink /proc/self/ns/{name}").strip()
    assert inside == host_ns(name)


def test_uts_hostname(runtime, bundle):
    host_before = socket.gethostname()
    bundle.config["hostname"] = "conf-host"
    out = kv(runtime.probe(bundle, 'echo "hostname=$(hostname)"; echo "uname=$(uname -n)"'))
    assert out["hostname"] == "conf-host"
    assert out["uname"] == "conf-host"
    assert socket.gethostname() == host_before


def test_uts_hostname_error_without_uts_namespace(runtime, bundle):
    # runtime-spec config.md: hostname with no private uts ns -> generate an error
    remove_namespace(bundle.config, "uts")
    bundle.config["hostname"] = "conf-host"
    host_before = socket.gethostname()
    bundle.write()
    cp = runtime.run(runtime.new_id("utsnons"), bundle.path)
    assert cp.returncode != 0
    assert cp.stderr.strip()
    assert socket.gethostname() == host_before


@pytest.mark.deviation("runc", "ignores `domainname` (a runtime-spec 1.1 field; runc 1.1.5 "
                       "implements spec 1.0.2)")
def test_uts_domainname(runtime, bundle):
    host_dom_before = open("/proc/sys/kernel/domainname").read()
    bundle.config["domainname"] = "conf.example"
    out = kv(runtime.probe(bundle, 'echo "domainname=$(cat /proc/sys/kernel/domainname)"'))
    assert out["domainname"] == "conf.example"
    assert open("/proc/sys/kernel/domainname").read() == host_dom_before


def test_ipc_namespace_isolates_sysv_ipc(runtime, bundle):
    # a SysV shared memory segment made on the host is not visible inside
    made = subprocess.run(["ipcmk", "-M", "4096"], check=True, capture_output=True, text=True)
    shmid = made.stdout.split()[-1]
    try:
        out = runtime.probe(bundle, "cat /proc/sysvipc/shm")
    finally:
        subprocess.run(["ipcrm", "-m", shmid], capture_output=True)
    rows = [line.split() for line in out.splitlines()[1:] if line.strip()]
    assert shmid not in [r[1] for r in rows]
    assert rows == []


def test_ipc_namespace_absent_sees_host_sysv_ipc(runtime, bundle):
    remove_namespace(bundle.config, "ipc")
    made = subprocess.run(["ipcmk", "-M", "4096"], check=True, capture_output=True, text=True)
    shmid = made.stdout.split()[-1]
    try:
        out = runtime.probe(bundle, "cat /proc/sysvipc/shm")
    finally:
        subprocess.run(["ipcrm", "-m", shmid], capture_output=True)
    rows = [line.split() for line in out.splitlines()[1:] if line.strip()]
    assert shmid in [r[1] for r in rows]


def test_network_namespace_only_loopback(runtime, bundle):
    out = runtime.probe(bundle, "cat /proc/net/dev")
    ifaces = sorted(line.split(":")[0].strip() for line in out.splitlines()[2:] if ":" in line)
    assert ifaces == ["lo"]


def host_ifaces() -> set[str]:
    return {line.split(":")[0].strip()
            for line in open("/proc/net/dev").read().splitlines()[2:] if ":" in line}


def test_network_namespace_absent_sees_host_interfaces(runtime, bundle):
    remove_namespace(bundle.config, "network")
    before = host_ifaces()
    out = runtime.probe(bundle, "cat /proc/net/dev")
    stable = before & host_ifaces()  # others may add/remove links meanwhile
    ifaces = {line.split(":")[0].strip() for line in out.splitlines()[2:] if ":" in line}
    assert stable - {"lo"}, "the host has no interface but lo: the test cannot tell"
    assert stable <= ifaces


def test_cgroup_namespace_root(runtime, bundle):
    add_namespace(bundle.config, "cgroup")
    out = runtime.probe(bundle, "cat /proc/self/cgroup")
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines
    assert any(line.startswith("0::") for line in lines)
    for line in lines:
        assert line.split(":", 2)[2] == "/", f"not the cgroup namespace root: {line}"


@pytest.mark.deviation("crun", "crun 1.8.1 fails any config with a `time` namespace "
                       "('write to sync socket: Connection reset by peer')")
@pytest.mark.deviation("runc", "runc 1.1.5 has no time namespaces (its `features` does not list them)")
def test_time_namespace_offsets(runtime, bundle):
    if not os.path.exists("/proc/self/ns/time"):
        pytest.skip("kernel without time namespaces")
    year = 365 * 24 * 3600
    add_namespace(bundle.config, "time")
    bundle.config["linux"]["timeOffsets"] = {
        "boottime": {"secs": year, "nanosecs": 0},
        "monotonic": {"secs": 2 * year, "nanosecs": 0},
    }
    out = kv(runtime.probe(bundle, 'echo "ns=$(readlink /proc/self/ns/time)"; '
                           'echo "uptime=$(cut -d. -f1 /proc/uptime)"'))
    assert out["ns"] != host_ns("time")
    host_uptime = float(open("/proc/uptime").read().split()[0])
    assert host_uptime < year, "host up for more than a year: the test cannot tell"
    assert int(out["uptime"]) >= year


def test_join_existing_network_namespace(runtime, bundle, netns):
    name = netns()
    path = f"/var/run/netns/{name}"
    add_namespace(bundle.config, "network", path)
    # give the namespace something to recognise it by: lo up
    subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
    out = kv(runtime.probe(bundle, 'echo "ns=$(readlink /proc/self/ns/net)"; '
                           'echo "lo_flags=$(cat /sys/class/net/lo/flags)"'))
    inode = subprocess.run(["stat", "-L", "-c", "%i", path], check=True,
                           capture_output=True, text=True).stdout.strip()
    assert out["ns"] == f"net:[{inode}]"
    assert out["ns"] != host_ns("net")
    assert int(out["lo_flags"], 16) & 1, "lo is not up: not the namespace we prepared"


def test_join_existing_uts_namespace_by_path(runtime, make_bundle):
    # one container's uts namespace joined by a second (via /proc/PID/ns/uts)
    first = make_bundle()
    first.config["hostname"] = "shared-uts"
    first.set_args("sleep", "3600")
    cid = runtime.new_id("utsowner")
    runtime.check(runtime.create(cid, first.path), "create")
    pid = runtime.state_json(cid)["pid"]

    second = make_bundle()
    second.config.pop("hostname", None)
    add_namespace(second.config, "uts", f"/proc/{pid}/ns/uts")
    out = runtime.probe(second, "hostname; readlink /proc/self/ns/uts").split()
    assert out[0] == "shared-uts"
    assert out[1] == os.readlink(f"/proc/{pid}/ns/uts")


def test_hostname_in_a_uts_namespace_joined_by_path_is_set_there(runtime, make_bundle):
    # config.md allows it ("the container UTS namespace"); runc sets it in the joined one
    first = make_bundle()
    first.config["hostname"] = "shared-uts"
    first.set_args("sleep", "3600")
    cid = runtime.new_id("utsowner")
    runtime.check(runtime.create(cid, first.path), "create")
    pid = runtime.state_json(cid)["pid"]

    second = make_bundle()
    second.config["hostname"] = "renamed-uts"
    add_namespace(second.config, "uts", f"/proc/{pid}/ns/uts")
    assert runtime.probe(second, "hostname").strip() == "renamed-uts"
    owner_sees = subprocess.run(["nsenter", "-t", str(pid), "-u", "hostname"], check=True,
                                capture_output=True, text=True).stdout.strip()
    assert owner_sees == "renamed-uts"
