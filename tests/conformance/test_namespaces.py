"""linux.namespaces: each type isolates; a path joins an existing one."""
from __future__ import annotations

import os
import socket
import subprocess

import pytest

from .harness import add_namespace, kv, remove_namespace, sh

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


def uts_owner(runtime, make_bundle):
    """The host pid of a created container whose uts namespace has the hostname "shared-uts"."""
    first = make_bundle()
    first.config["hostname"] = "shared-uts"
    first.set_args("sleep", "3600")
    cid = runtime.new_id("utsowner")
    runtime.check(runtime.create(cid, first.path), "create")
    return runtime.state_json(cid)["pid"]


def test_join_existing_uts_namespace_by_path(runtime, make_bundle):
    # one container's uts namespace joined by a second (via /proc/PID/ns/uts)
    pid = uts_owner(runtime, make_bundle)
    second = make_bundle()
    second.config.pop("hostname", None)
    add_namespace(second.config, "uts", f"/proc/{pid}/ns/uts")
    out = runtime.probe(second, "hostname; readlink /proc/self/ns/uts").split()
    assert out[0] == "shared-uts"
    assert out[1] == os.readlink(f"/proc/{pid}/ns/uts")


def test_hostname_in_a_uts_namespace_joined_by_path_is_set_there(runtime, make_bundle):
    # config.md allows it ("the container UTS namespace"); runc sets it in the joined one
    pid = uts_owner(runtime, make_bundle)
    second = make_bundle()
    second.config["hostname"] = "renamed-uts"
    add_namespace(second.config, "uts", f"/proc/{pid}/ns/uts")
    assert runtime.probe(second, "hostname").strip() == "renamed-uts"
    owner_sees = subprocess.run(["nsenter", "-t", str(pid), "-u", "hostname"], check=True,
                                capture_output=True, text=True).stdout.strip()
    assert owner_sees == "renamed-uts"


# ---- no mount namespace: config-linux.md, a type not listed is the runtime's.
# The runtime mounts the rootfs in its caller's namespace; each case runs the
# runtime in a private one of its own, so nothing reaches the host.

LEFT_MOUNTS = "leaves the container's mounts (rootfs, /proc, /dev...) in its caller's mount namespace"


def without_mount_namespace(bundle, script):
    remove_namespace(bundle.config, "mount")
    # runc refuses these without a mount namespace of the container's own
    bundle.config["linux"].pop("maskedPaths", None)
    bundle.config["linux"].pop("readonlyPaths", None)
    bundle.config["process"]["args"] = sh(script)
    (bundle.rootfs / "in-the-rootfs").write_text("yes\n")
    bundle.write()


def test_without_a_mount_namespace_the_container_runs_in_its_rootfs(runtime, bundle):
    without_mount_namespace(bundle, 'echo "mnt=$(readlink /proc/self/ns/mnt)"; '
                                    'echo "marker=$(cat /in-the-rootfs)"; echo "pid=$$"')
    cid = runtime.new_id("nomntns")
    cp = runtime.in_own_mount_namespace(
        f'echo "caller=$(readlink /proc/self/ns/mnt)"; $RT run --bundle {bundle.path} {cid}')
    assert cp.returncode == 0, cp.stderr
    out = kv(cp.stdout)
    assert out["mnt"] == out["caller"] != host_ns("mnt")
    assert out["marker"] == "yes"
    assert out["pid"] == "1"


@pytest.mark.deviation("runc", "exec runs the process at the runtime's root, outside the rootfs")
@pytest.mark.deviation("crun", "exec runs the process at the runtime's root, outside the rootfs")
def test_without_a_mount_namespace_exec_runs_in_the_rootfs(runtime, bundle):
    without_mount_namespace(bundle, "sleep 600")
    cid = runtime.new_id("nomntexec")
    cp = runtime.in_own_mount_namespace(
        f'$RT run --detach --bundle {bundle.path} {cid} || exit 1; '
        f'$RT exec {cid} sh -c \'echo "marker=$(cat /in-the-rootfs)"\'; $RT delete --force {cid}')
    assert cp.returncode == 0, cp.stderr
    assert kv(cp.stdout).get("marker") == "yes", cp.stdout


@pytest.mark.deviation("runc", "ignores root.readonly without a mount namespace")
@pytest.mark.deviation("crun", "ignores root.readonly without a mount namespace")
def test_without_a_mount_namespace_a_readonly_root_is_readonly(runtime, bundle):
    without_mount_namespace(bundle, 'touch /probe 2>/dev/null && echo "writable=yes" || echo "writable=no"')
    assert bundle.config["root"]["readonly"] is True
    cid = runtime.new_id("nomntro")
    cp = runtime.in_own_mount_namespace(f"$RT run --bundle {bundle.path} {cid}")
    assert cp.returncode == 0, cp.stderr
    assert kv(cp.stdout)["writable"] == "no"


@pytest.mark.deviation("runc", LEFT_MOUNTS)
@pytest.mark.deviation("crun", LEFT_MOUNTS)
def test_delete_takes_the_mounts_of_a_container_without_a_mount_namespace(runtime, bundle):
    # runtime.md: delete MUST delete the resources made during create
    without_mount_namespace(bundle, "sleep 600")
    cid = runtime.new_id("nomntdel")
    count = f"grep -c {bundle.rootfs} /proc/self/mountinfo"
    cp = runtime.in_own_mount_namespace(
        f'$RT create --bundle {bundle.path} {cid} || exit 1; echo "created=$({count})"; '
        f'$RT delete --force {cid}; echo "deleted=$({count})"')
    assert cp.returncode == 0, cp.stderr
    out = kv(cp.stdout)
    assert int(out["created"]) > 0
    assert out["deleted"] == "0"


@pytest.mark.deviation("runc", LEFT_MOUNTS + " when create fails")
@pytest.mark.deviation("crun", LEFT_MOUNTS + " when create fails")
def test_a_failed_create_leaves_no_mounts_without_a_mount_namespace(runtime, bundle, tmp_path):
    without_mount_namespace(bundle, "true")
    bundle.config["mounts"].append({"destination": "/data", "type": "bind",
                                    "source": str(tmp_path / "missing"), "options": ["bind"]})
    bundle.write()
    cid = runtime.new_id("nomntfail")
    cp = runtime.in_own_mount_namespace(
        f'$RT create --bundle {bundle.path} {cid} && exit 1; '
        f'echo "left=$(grep -c {bundle.rootfs} /proc/self/mountinfo)"')
    assert cp.returncode == 0, cp.stderr
    assert kv(cp.stdout)["left"] == "0"
