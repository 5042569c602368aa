"""engine/oci against dockerd 20.10 itself: for each set of `docker run`
flags, the config.json dockerd generates equals what engine.oci generates
from the Config and HostConfig dockerd stored (read back with `docker
inspect`), the host paths it chose passed in.

Left out of the comparison: hooks (dockerd's libnetwork hook), root.path (its
overlay mount), the host's network namespace path, and the order of
additional gids after the primary one (dockerd takes GroupAdd from a Go map,
so its order varies from run to run).

Bad create requests: engine.oci refuses what dockerd 20.10 refuses at
create, with the same message. dockerd answers some of them 500 (its volume
parser and security options are not classified); ours are all 400, as later
dockerd versions answer them.
"""
import copy
import http.client
import json
import os
import socket
import subprocess
from contextlib import contextmanager
from urllib.parse import quote

import pytest

import cgroup_trees
from engine import oci
from engine.errors import InvalidParameter, System, http_status
from engine.names import validate_name

pytestmark = pytest.mark.root

INIT = "/usr/bin/docker-init"

CASES = {
    "defaults": [],
    "tty": ["-t", "-i"],
    "network-none": ["--network", "none"],
    "network-host": ["--network", "host"],
    "privileged": ["--privileged"],
    "privileged-readonly-device": ["--privileged", "--read-only", "--device", "/dev/null:/dev/mynull"],
    "cap-add-all-drop-one": ["--cap-add", "ALL", "--cap-drop", "CAP_NET_RAW"],
    "cap-drop-all-add-two": ["--cap-drop", "ALL", "--cap-add", "chown", "--cap-add", "CAP_KILL"],
    "cap-add-sys-admin": ["--cap-add", "SYS_ADMIN", "--cap-add", "sys_ptrace", "--cap-drop", "net_raw"],
    "seccomp-unconfined-no-new-privileges": ["--security-opt", "seccomp=unconfined",
                                             "--security-opt", "no-new-privileges"],
    "user-uid": ["-u", "1000"],
    "user-name": ["-u", "nobody"],
    "user-name-group-add": ["-u", "user", "--group-add", "tty", "--group-add", "1000", "--group-add", "42"],
    "user-uid-gid-unknown": ["-u", "1234:555"],
    "user-root-group-name": ["-u", "root:tty"],
    "init": ["--init"],
    "readonly-tmpfs": ["--read-only", "--tmpfs", "/run", "--tmpfs", "/var/cache:rw,size=10m,mode=1700"],
    "binds": ["-v", "/etc:/data:ro", "-v", "/usr/share:/x/y",
              "--mount", "type=bind,src=/usr/lib,dst=/a/b/c,readonly,bind-propagation=private"],
    "bind-nonrecursive": ["--mount", "type=bind,src=/usr/lib,dst=/q,bind-nonrecursive"],
    "mount-tmpfs": ["--mount", "type=tmpfs,dst=/scratch,tmpfs-size=1048576,tmpfs-mode=0700"],
    "bind-over-resolv-conf": ["-v", "/etc/hosts:/etc/resolv.conf:ro"],
    "memory-cpus": ["-m", "64m", "--memory-swap", "128m", "--memory-reservation", "32m", "--cpus", "1.5",
                    "--cpu-shares", "512", "--cpuset-cpus", "0", "--pids-limit", "100", "--oom-kill-disable",
                    "--memory-swappiness", "10"],
    "memory-only": ["-m", "32m", "--cpu-quota", "50000", "--cpu-period", "100000", "--pids-limit", "-1"],
    "ulimits": ["--ulimit", "nofile=1024:2048", "--ulimit", "nproc=50", "--ulimit", "core=-1"],
    "sysctls": ["--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "kernel.msgmax=65536",
                "--sysctl", "net.ipv4.ping_group_range=0 0"],
    "devices": ["--device", "/dev/null:/dev/mynull:r", "--device", "/dev/zero",
                "--device-cgroup-rule", "c 42:* rmw"],
    "shm-hostname-env-workdir": ["--shm-size", "128m", "-h", "myhost", "--domainname", "example.com",
                                 "-w", "/tmp/../srv", "-e", "FOO=bar", "-e", "PATH=/bin"],
    "host-namespaces": ["--ipc", "host", "--pid", "host", "--uts", "host"],
    "ipc-none": ["--ipc", "none"],
    "ipc-shareable": ["--ipc", "shareable"],
    "cgroup-parent-oom-score": ["--cgroup-parent", "/mygroup", "--oom-score-adj", "100"],
    "unlimited-swap-pids-mems-blkio": ["-m", "32m", "--memory-swap", "-1", "--pids-limit", "0",
                                       "--cpuset-mems", "0", "--blkio-weight", "300", "--kernel-memory", "0"],
    "empty-entrypoint-env-unset": ["--entrypoint", "", "-e", "HOSTNAME", "-e", "A=1=2", "-u", "0:0"],
    "network-none-no-new-privileges-false": ["--network", "none", "--security-opt", "no-new-privileges=false",
                                             "--security-opt", "label=disable", "--ipc", "private"],
}
COMMANDS = {"defaults": ("echo", "hi"), "shm-hostname-env-workdir": ()}


def normalized(spec: dict) -> dict:
    spec = copy.deepcopy(spec)
    spec.pop("hooks", None)
    spec["root"].pop("path", None)
    gids = spec["process"]["user"].get("additionalGids", [])
    spec["process"]["user"]["additionalGids"] = gids[:1] + sorted(gids[1:])
    for ns in spec["linux"]["namespaces"]:
        if ns["type"] == "network" and ns.get("path", "").endswith("/netns/default"):
            ns["path"] = "<the host's>"
    return spec


def differences(ours_, theirs, path=""):
    """Where two JSON values differ, as `path: ours != dockerd's` lines."""
    if isinstance(ours_, dict) and isinstance(theirs, dict):
        return [d for key in sorted(set(ours_) | set(theirs), key=str)
                for d in differences(ours_.get(key), theirs.get(key), f"{path}.{key}")]
    if isinstance(ours_, list) and isinstance(theirs, list) and len(ours_) == len(theirs):
        return [d for i, (a, b) in enumerate(zip(ours_, theirs)) for d in differences(a, b, f"{path}[{i}]")]
    return [] if ours_ == theirs else [f"{path}: {json.dumps(ours_)} != dockerd's {json.dumps(theirs)}"]


def assert_same(ours_: dict, theirs: dict):
    assert differences(normalized(ours_), normalized(theirs)) == []


def ours(dockerd, info: dict, want: dict, shm: str = "", namespace_paths=None) -> dict:
    """engine.oci's spec from what dockerd stored for the container."""
    config = oci.parse_config(info["Config"])
    host_config = oci.parse_host_config(info["HostConfig"])
    if host_config.ipc_mode == "shareable":
        shm = os.path.join(os.path.dirname(info["HostnamePath"]), "mounts", "shm")
    paths = oci.MountPaths(info["ResolvConfPath"], info["HostnamePath"], info["HostsPath"], shm, INIT)
    namespace_paths = dict(namespace_paths or {})
    if host_config.network_mode == "host":
        namespace_paths["network"] = "<the host's>"
    inputs = oci.SpecInputs(info["Id"], dockerd.rootfs, paths, namespace_paths, dockerd.cgroup_parent)
    return oci.generate(config, host_config, inputs, oci.LocalHost())


@pytest.mark.parametrize("case", sorted(CASES))
def test_spec_matches_dockerd(dockerd, case):
    want, info = dockerd.dumped_spec(CASES[case], cmd=COMMANDS.get(case, ("true",)))
    assert_same(ours(dockerd, info, want), want)


def test_custom_seccomp_profile_matches_dockerd(dockerd, tmp_path):
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
               "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
               "syscalls": [{"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
                            {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                             "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]}]}
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile))
    want, info = dockerd.dumped_spec(["--security-opt", f"seccomp={path}"])
    assert_same(ours(dockerd, info, want), want)


@contextmanager
def tmpfs_mount(dockerd, name, propagation):
    """A tmpfs of the test's with the given propagation: dockerd checks a bind
    source's mount (shared for [r]shared, shared or slave for [r]slave)."""
    point = os.path.join(dockerd.workdir, name)
    os.makedirs(point, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", point], check=True)
    try:
        subprocess.run(["mount", f"--make-{propagation}", point], check=True)
        yield point
    finally:
        subprocess.run(["umount", "-l", point], check=False)


@pytest.fixture
def shared_mount(dockerd):
    with tmpfs_mount(dockerd, "shared", "shared") as point:
        yield point


@pytest.mark.parametrize("modes", [("rshared", "rslave"), ("rslave", "private"), ("shared", "slave")])
def test_bind_propagation_matches_dockerd(dockerd, shared_mount, modes):
    flags = ["-v", f"{shared_mount}:/one:{modes[0]}", "--mount",
             f"type=bind,src={shared_mount},dst=/two/deeper,bind-propagation={modes[1]}"]
    want, info = dockerd.dumped_spec(flags)
    assert_same(ours(dockerd, info, want), want)


@pytest.mark.parametrize("mode", ["rshared", "slave"])
def test_propagation_a_private_source_cannot_give_is_refused_as_dockerd_does(dockerd, mode):
    with tmpfs_mount(dockerd, "private", "private") as source:
        flags = ["-v", f"{source}:/one:{mode}"]
        error = dockerd.start_error(flags)
        with pytest.raises(System) as ours_:
            oci.generate(oci.parse_config({"Cmd": ["true"]}), oci.parse_host_config({"Binds": flags[1:]}),
                         oci.SpecInputs("c" * 64, dockerd.rootfs, default_cgroup_parent=dockerd.cgroup_parent),
                         oci.LocalHost())
    assert f"Error response from daemon: {ours_.value}\n" in error


@pytest.fixture
def donor(dockerd):
    """A running container (runc) whose namespaces another joins, in a cgroup
    parent of its own that the finalizer removes."""
    parent = f"/engine-test-donor-{os.getpid()}"
    cid = dockerd.docker("run", "-d", "--ipc", "shareable", "--cgroup-parent", parent, "busybox",
                         "sleep", "600").stdout.strip()
    try:
        yield dockerd.inspect(cid)
    finally:
        dockerd.docker("rm", "-f", cid, check=False)
        for hierarchy in os.listdir("/sys/fs/cgroup"):
            tree = f"/sys/fs/cgroup/{hierarchy}{parent}"
            if os.path.isdir(tree):
                cgroup_trees.remove(tree)


def test_joined_namespaces_match_dockerd(dockerd, donor):
    ref = f"container:{donor['Id']}"
    want, info = dockerd.dumped_spec(["--pid", ref, "--ipc", ref, "--network", ref])
    pid = donor["State"]["Pid"]
    joined = {kind: f"/proc/{pid}/ns/{name}" for kind, name in (("network", "net"), ("ipc", "ipc"), ("pid", "pid"))}
    shm = os.path.join(os.path.dirname(donor["HostnamePath"]), "mounts", "shm")
    assert_same(ours(dockerd, info, want, shm, joined), want)


# --- bad create requests ------------------------------------------------------

DOCKERD_ANSWERS_500 = {"binds-bad", "binds-relative-target", "binds-mode", "security-opt-1", "security-opt-2"}
BAD_CREATES = {
    "binds-bad": {"HostConfig": {"Binds": ["/a:/b:/c:d"]}},
    "binds-relative-target": {"HostConfig": {"Binds": ["/a:b"]}},
    "binds-mode": {"HostConfig": {"Binds": ["/a:/b:xx"]}},
    "mount-type": {"HostConfig": {"Mounts": [{"Type": "foo", "Source": "/etc", "Target": "/x"}]}},
    "mount-relative-source": {"HostConfig": {"Mounts": [{"Type": "bind", "Source": "etc", "Target": "/x"}]}},
    "mount-no-target": {"HostConfig": {"Mounts": [{"Type": "bind", "Source": "/etc"}]}},
    "mount-no-source": {"HostConfig": {"Mounts": [{"Type": "bind", "Source": "/no-such-engine-test-source",
                                                 "Target": "/x"}]}},
    "mount-duplicate": {"HostConfig": {"Binds": ["/etc:/x"],
                                       "Mounts": [{"Type": "bind", "Source": "/etc", "Target": "/x"}]}},
    "security-opt-1": {"HostConfig": {"SecurityOpt": ["foo"]}},
    "security-opt-2": {"HostConfig": {"SecurityOpt": ["foo=bar"]}},
    "cap-unknown": {"HostConfig": {"CapAdd": ["FOO"]}},
    "memory-low": {"HostConfig": {"Memory": 1000}},
    "swap-below-memory": {"HostConfig": {"Memory": 10000000, "MemorySwap": 1000}},
    "swap-without-memory": {"HostConfig": {"MemorySwap": 100000000}},
    "reservation-above-memory": {"HostConfig": {"Memory": 10000000, "MemoryReservation": 20000000}},
    "nano-cpus-and-quota": {"HostConfig": {"NanoCpus": 1000000000, "CpuQuota": 5000}},
    "nano-cpus-too-many": {"HostConfig": {"NanoCpus": 1000 * 1000000000}},
    "cpu-period": {"HostConfig": {"CpuPeriod": 100}},
    "cpu-quota": {"HostConfig": {"CpuQuota": 100}},
    "cpuset-format": {"HostConfig": {"CpusetCpus": "abc"}},
    "cpuset-unavailable": {"HostConfig": {"CpusetCpus": "1000"}},
    "tmpfs-relative": {"HostConfig": {"Tmpfs": {"run": ""}}},
    "shm-negative": {"HostConfig": {"ShmSize": -1}},
    "env": {"Env": ["=x"]},
    "working-dir": {"WorkingDir": "rel"},
}


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def dockerd_create(dockerd, body: dict, name: str = "") -> tuple[int, str]:
    conn = UnixConnection(dockerd.socket)
    try:
        query = f"?name={quote(name)}" if name else ""
        conn.request("POST", f"/v1.41/containers/create{query}", json.dumps({"Image": "busybox", **body}),
                     {"Content-Type": "application/json"})
        response = conn.getresponse()
        answer = json.loads(response.read())
    finally:
        conn.close()
    if response.status == 201:
        dockerd.docker("rm", "-f", answer["Id"], check=False)
    return response.status, answer.get("message", "")


def our_create(body: dict, name: str = "") -> str:
    with pytest.raises(InvalidParameter) as info:
        if name:
            validate_name(name)
        oci.parse_config(body)
        oci.check_against_host(oci.parse_host_config(body.get("HostConfig")), oci.LocalHost())
    assert http_status(info.value) == 400
    return str(info.value)


@pytest.mark.parametrize("case", sorted(BAD_CREATES))
def test_refused_with_dockerds_message(dockerd, case):
    status, message = dockerd_create(dockerd, BAD_CREATES[case])
    assert status == (500 if case in DOCKERD_ANSWERS_500 else 400), message
    assert our_create(BAD_CREATES[case]) == message


@pytest.mark.parametrize("name", ["a/b", "-x", "a"])
def test_invalid_name_with_dockerds_message(dockerd, name):
    assert dockerd_create(dockerd, {}, name) == (400, our_create({}, name))
