"""engine.oci.generate, field by field, against a fake host: what dockerd
20.10 puts into config.json for each Config/HostConfig field."""
import pytest

from engine.errors import InvalidParameter, System, http_status
from engine.oci import MountPaths, SpecInputs, generate, parse_config, parse_host_config
from engine.oci.security import ALL_CAPABILITIES, DEFAULT_CAPABILITIES
from engine.oci.spec import DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS
from engine_fakes import NULL, ZERO, FakeHost

CID = "0123456789ab" + "c" * 52
PATHS = MountPaths("/data/c/resolv.conf", "/data/c/hostname", "/data/c/hosts", "", "/usr/bin/docker-init")


def spec(config=None, host_config=None, host=None, paths=PATHS, namespace_paths=None):
    config = parse_config({"Cmd": ["true"], **(config or {})})
    inputs = SpecInputs(CID, "/rootfs", paths, namespace_paths or {})
    return generate(config, parse_host_config(host_config or {}), inputs, host or FakeHost())


def mount(s, destination):
    return next((m for m in s["mounts"] if m["destination"] == destination), None)


def names_allowed(s):
    return {name for rule in s["linux"]["seccomp"]["syscalls"] for name in rule["names"]
            if rule["action"] == "SCMP_ACT_ALLOW"}


def test_defaults():
    s = spec()
    p = s["process"]
    assert s["ociVersion"] == "1.0.2-dev"
    assert p["args"] == ["true"] and p["cwd"] == "/" and p["oomScoreAdj"] == 0 and "terminal" not in p
    assert p["env"] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=0123456789ab"]
    assert p["user"] == {"uid": 0, "gid": 0, "additionalGids": [0, 29]}  # root is listed in group audio
    assert p["capabilities"] == {k: list(DEFAULT_CAPABILITIES) for k in ("bounding", "effective", "permitted")}
    assert s["root"] == {"path": "/rootfs"} and s["hostname"] == "0123456789ab"
    assert [m["destination"] for m in s["mounts"]] == ["/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup",
                                                       "/dev/mqueue", "/dev/shm", "/etc/resolv.conf",
                                                       "/etc/hostname", "/etc/hosts"]
    assert mount(s, "/dev/shm")["options"] == ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]
    assert mount(s, "/etc/hosts") == {"destination": "/etc/hosts", "type": "bind", "source": "/data/c/hosts",
                                      "options": ["rbind", "rprivate"]}
    linux = s["linux"]
    assert linux["sysctl"] == {"net.ipv4.ping_group_range": "0 2147483647", "net.ipv4.ip_unprivileged_port_start": "0"}
    assert linux["cgroupsPath"] == f"/docker/{CID}"
    assert linux["namespaces"] == [{"type": t} for t in ("mount", "network", "uts", "pid", "ipc")]
    assert linux["resources"]["devices"][0] == {"allow": False, "access": "rwm"}
    assert {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"} in linux["resources"]["devices"]
    assert linux["resources"]["memory"] == {"disableOOMKiller": False}
    assert linux["resources"]["cpu"] == {"shares": 0} and linux["resources"]["blockIO"] == {"weight": 0}
    assert linux["maskedPaths"] == list(DEFAULT_MASKED_PATHS)
    assert linux["readonlyPaths"] == list(DEFAULT_READONLY_PATHS)
    assert "devices" not in linux and "rootfsPropagation" not in linux and "hooks" not in s


def test_default_seccomp_profile_follows_capabilities():
    seccomp = spec()["linux"]["seccomp"]
    assert seccomp["defaultAction"] == "SCMP_ACT_ERRNO"
    assert seccomp["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38} in seccomp["syscalls"]
    allowed = names_allowed(spec())
    assert {"read", "arch_prctl", "chroot", "ptrace"} <= allowed and not {"mount", "reboot", "bpf"} & allowed
    admin = spec(host_config={"CapAdd": ["SYS_ADMIN"], "CapDrop": ["SYS_CHROOT"]})
    assert "mount" in names_allowed(admin) and "chroot" not in names_allowed(admin)
    assert not any(r["names"] == ["clone3"] for r in admin["linux"]["seccomp"]["syscalls"])


def test_ptrace_needs_kernel_4_8_and_arch_rules_their_arch():
    old = FakeHost()
    old.kernel = (4, 4)
    assert "ptrace" not in names_allowed(spec(host=old))
    arm = FakeHost()
    arm.arch = "arm64"
    s = spec(host=arm)
    assert s["linux"]["seccomp"]["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert "set_tls" in names_allowed(s) and "arch_prctl" not in names_allowed(s)


def test_unconfined_privileged_and_custom_seccomp():
    assert "seccomp" not in spec(host_config={"SecurityOpt": ["seccomp=unconfined"]})["linux"]
    assert "seccomp" not in spec(host_config={"Privileged": True})["linux"]
    profile = ('{"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1, "architectures": ["SCMP_ARCH_X86_64"],'
               ' "syscalls": [{"name": "mount", "action": "SCMP_ACT_ERRNO", "comment": "x",'
               ' "args": [{"index": 1, "value": 2, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]}]}')
    seccomp = spec(host_config={"SecurityOpt": [f"seccomp={profile}"]})["linux"]["seccomp"]
    assert seccomp == {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                       "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO",
                                     "args": [{"index": 1, "value": 2, "op": "SCMP_CMP_EQ"}]}]}


def test_no_new_privileges():
    assert spec(host_config={"SecurityOpt": ["no-new-privileges"]})["process"]["noNewPrivileges"] is True
    assert "noNewPrivileges" not in spec()["process"]


@pytest.mark.parametrize("host_config, bounding", [
    ({"CapAdd": ["ALL"], "CapDrop": ["NET_RAW"]}, [c for c in ALL_CAPABILITIES if c != "CAP_NET_RAW"]),
    ({"CapDrop": ["ALL"], "CapAdd": ["chown", "CAP_KILL"]}, ["CAP_CHOWN", "CAP_KILL"]),
    ({"CapAdd": ["NET_ADMIN"], "CapDrop": ["MKNOD"]},
     [c for c in DEFAULT_CAPABILITIES if c != "CAP_MKNOD"] + ["CAP_NET_ADMIN"]),
])
def test_cap_add_and_drop(host_config, bounding):
    assert spec(host_config=host_config)["process"]["capabilities"]["bounding"] == bounding


def test_privileged():
    s = spec(host_config={"Privileged": True, "Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/n"}]})
    assert s["process"]["capabilities"]["bounding"] == list(ALL_CAPABILITIES)
    assert s["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert [d["path"] for d in s["linux"]["devices"]] == ["/dev/null", "/dev/zero", "/dev/fuse", "/dev/n"]
    assert "ro" not in mount(s, "/sys")["options"] and "ro" not in mount(s, "/sys/fs/cgroup")["options"]
    assert "maskedPaths" not in s["linux"] and "readonlyPaths" not in s["linux"]


def test_entrypoint_cmd_and_no_command():
    assert spec({"Entrypoint": ["/bin/echo"], "Cmd": ["a", "b"]})["process"]["args"] == ["/bin/echo", "a", "b"]
    with pytest.raises(InvalidParameter, match="^No command specified$"):
        spec({"Cmd": None})


def test_env_overrides_and_unsets_defaults():
    s = spec({"Env": ["FOO=bar", "PATH=/bin", "HOSTNAME"], "Tty": True})
    assert s["process"]["env"] == ["PATH=/bin", "TERM=xterm", "FOO=bar"] and s["process"]["terminal"] is True


def test_working_dir_is_cleaned():
    assert spec({"WorkingDir": "/tmp/../srv/"})["process"]["cwd"] == "/srv"


@pytest.mark.parametrize("user, group_add, want", [
    ("1000", [], {"uid": 1000, "gid": 1000, "additionalGids": [1000, 5, 29]}),  # user is in tty and audio
    ("user", ["root", "42"], {"uid": 1000, "gid": 1000, "additionalGids": [1000, 5, 29, 0, 42]}),
    ("1234", [], {"uid": 1234, "gid": 0, "additionalGids": [0]}),
    ("1234:555", [], {"uid": 1234, "gid": 555, "additionalGids": [555]}),
    ("root:tty", [], {"uid": 0, "gid": 5, "additionalGids": [5]}),
    ("nobody:audio", ["audio", "29"], {"uid": 65534, "gid": 29, "additionalGids": [29, 29]}),
])
def test_user_and_group_add(user, group_add, want):
    s = spec({"User": user}, {"GroupAdd": group_add})
    assert s["process"]["user"] == want
    assert ("effective" in s["process"]["capabilities"]) == (want["uid"] == 0)


def test_user_files_are_read_from_the_rootfs_through_the_host():
    host = FakeHost()
    spec({"User": "user"}, host=host)
    assert host.reads == [("/rootfs", "/etc/passwd"), ("/rootfs", "/etc/group")]


@pytest.mark.parametrize("user, group_add, message", [
    ("foo", [], "unable to find user foo: no matching entries in passwd file"),
    ("root:staff", [], "unable to find group staff: no matching entries in group file"),
    ("root", ["audio", "staff"], "Unable to find group staff: no matching entries in group file"),
    ("2147483648", [], "uids and gids must be in range 0-2147483647"),
])
def test_unknown_users_fail_at_start_as_in_dockerd(user, group_add, message):
    with pytest.raises(System) as info:
        spec({"User": user}, {"GroupAdd": group_add})
    assert str(info.value) == message and http_status(info.value) == 500


def test_numeric_user_without_passwd_file():
    s = spec({"User": "7:8"}, host=FakeHost(files={}))
    assert s["process"]["user"] == {"uid": 7, "gid": 8, "additionalGids": [8]}


def test_hostname_domainname_and_uts_host():
    s = spec({"Hostname": "h1", "Domainname": "example.com"})
    assert s["hostname"] == "h1" and "HOSTNAME=h1" in s["process"]["env"]
    assert s["linux"]["sysctl"]["kernel.domainname"] == "example.com" and "domainname" not in s
    shared = spec({"Hostname": "h1"}, {"UTSMode": "host"})
    assert "hostname" not in shared and {"type": "uts"} not in shared["linux"]["namespaces"]


def test_init():
    s = spec({"Cmd": ["sh"]}, {"Init": True})
    assert s["process"]["args"] == ["/sbin/docker-init", "--", "sh"]
    assert mount(s, "/sbin/docker-init") == {"destination": "/sbin/docker-init", "type": "bind",
                                             "source": "/usr/bin/docker-init", "options": ["bind", "ro"]}
    assert spec({"Cmd": ["sh"]}, {"Init": True, "PidMode": "host"})["process"]["args"] == ["sh"]
    with pytest.raises(System, match="--init needs an init binary"):
        spec(host_config={"Init": True}, paths=MountPaths())


def test_readonly_rootfs_and_tmpfs():
    s = spec(host_config={"ReadonlyRootfs": True, "Tmpfs": {"/run": "", "/var/cache": "size=10m,exec"}})
    assert s["root"]["readonly"] is True
    assert mount(s, "/run") == {"destination": "/run", "type": "tmpfs", "source": "tmpfs",
                                "options": ["noexec", "nosuid", "nodev", "rprivate"]}
    assert mount(s, "/var/cache")["options"] == ["nosuid", "nodev", "rprivate", "size=10m", "exec"]
    assert mount(s, "/etc/hosts")["options"] == ["rbind", "ro", "rprivate"]
    assert mount(s, "/sys/fs/cgroup")["options"] == ["ro", "nosuid", "noexec", "nodev"]
    assert "ro" not in mount(s, "/dev/shm")["options"] and "ro" not in mount(s, "/proc")["options"]


def test_binds_shallow_first_with_propagation():
    s = spec(host_config={"Binds": ["/a:/x/y/z:ro,rslave", "/b:/data"],
                          "Mounts": [{"Type": "bind", "Source": "/c", "Target": "/q/r",
                                      "BindOptions": {"NonRecursive": True}}]})
    destinations = [m["destination"] for m in s["mounts"]][7:]
    assert destinations == ["/data", "/q/r", "/etc/resolv.conf", "/etc/hostname", "/etc/hosts", "/x/y/z"]
    assert mount(s, "/x/y/z")["options"] == ["rbind", "ro", "rslave"]
    assert mount(s, "/q/r")["options"] == ["bind", "rprivate"]
    assert s["linux"]["rootfsPropagation"] == "rslave"
    assert spec(host_config={"Binds": ["/a:/x:shared", "/b:/y:slave"]})["linux"]["rootfsPropagation"] == "shared"


def test_user_mounts_cover_default_and_network_mounts():
    s = spec(host_config={"Binds": ["/etc/hosts:/etc/resolv.conf:ro", "/host/dev:/dev"]})
    assert mount(s, "/etc/resolv.conf") == {"destination": "/etc/resolv.conf", "type": "bind",
                                            "source": "/etc/hosts", "options": ["rbind", "ro", "rprivate"]}
    assert [m["destination"] for m in s["mounts"] if m["destination"].startswith("/dev")] == ["/dev"]


def test_shm_size_and_ipc_modes():
    assert mount(spec(host_config={"ShmSize": 1 << 27}), "/dev/shm")["options"][-1] == "size=134217728"
    assert mount(spec(host_config={"IpcMode": "none"}), "/dev/shm") is None
    host_ipc = spec(host_config={"IpcMode": "host"})
    assert mount(host_ipc, "/dev/shm") == {"destination": "/dev/shm", "type": "bind", "source": "/dev/shm",
                                           "options": ["rbind", "rprivate"]}
    assert "ipc" not in [n["type"] for n in host_ipc["linux"]["namespaces"]]
    shareable = spec(host_config={"IpcMode": "shareable"},
                     paths=MountPaths("/r", "/h", "/hs", shm="/data/c/mounts/shm"))
    assert mount(shareable, "/dev/shm")["source"] == "/data/c/mounts/shm"


def test_network_modes():
    none = spec(host_config={"NetworkMode": "none"})
    assert {"type": "network"} in none["linux"]["namespaces"] and "net.ipv4.ping_group_range" in none["linux"]["sysctl"]
    host = spec(host_config={"NetworkMode": "host"}, namespace_paths={"network": "/run/netns/default"})
    assert {"type": "network", "path": "/run/netns/default"} in host["linux"]["namespaces"]
    assert "sysctl" not in host["linux"]
    assert "network" not in [n["type"] for n in spec(host_config={"NetworkMode": "host"})["linux"]["namespaces"]]
    no_sysctls = spec(host=FakeHost(sysctls=False))
    assert "sysctl" not in no_sysctls["linux"]


def test_container_modes_join_the_paths_given():
    joined = {"network": "/proc/42/ns/net", "ipc": "/proc/42/ns/ipc", "pid": "/proc/42/ns/pid"}
    s = spec(host_config={"NetworkMode": "container:web", "IpcMode": "container:web", "PidMode": "container:web"},
             paths=MountPaths("/r", "/h", "/hs", shm="/data/web/mounts/shm"), namespace_paths=joined)
    assert s["linux"]["namespaces"] == [{"type": "mount"}, {"type": "network", "path": "/proc/42/ns/net"},
                                        {"type": "uts"}, {"type": "pid", "path": "/proc/42/ns/pid"},
                                        {"type": "ipc", "path": "/proc/42/ns/ipc"}]
    assert mount(s, "/dev/shm")["source"] == "/data/web/mounts/shm" and "sysctl" not in s["linux"]
    with pytest.raises(System, match="no pid namespace given to join"):
        spec(host_config={"PidMode": "container:web"})


def test_cgroup_namespace_is_private_by_default_on_cgroup_v2():
    v2 = FakeHost()
    v2.cgroup_version = 2
    assert {"type": "cgroup"} in spec(host=v2)["linux"]["namespaces"]
    assert {"type": "cgroup"} not in spec(host=v2, host_config={"CgroupnsMode": "host"})["linux"]["namespaces"]
    assert {"type": "cgroup"} in spec(host_config={"CgroupnsMode": "private"})["linux"]["namespaces"]


def test_devices_and_cgroup_rules():
    s = spec(host_config={"Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull",
                                       "CgroupPermissions": "r"}, {"PathOnHost": "/dev/zero"}],
                          "DeviceCgroupRules": ["c 42:* rmw", "b *:* m"]})
    assert s["linux"]["devices"] == [
        {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666, "uid": 0, "gid": 0},
        {"path": "/dev/zero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o666, "uid": 0, "gid": 0}]
    assert s["linux"]["resources"]["devices"][-4:] == [
        {"allow": True, "type": "c", "major": NULL.major, "minor": NULL.minor, "access": "r"},
        {"allow": True, "type": "c", "major": ZERO.major, "minor": ZERO.minor, "access": "rwm"},
        {"allow": True, "type": "c", "major": 42, "minor": -1, "access": "rmw"},
        {"allow": True, "type": "b", "major": -1, "minor": -1, "access": "m"}]
    with pytest.raises(System, match='adding custom device "/dev/nope"'):
        spec(host_config={"Devices": [{"PathOnHost": "/dev/nope"}]})


def test_ulimits_become_rlimits():
    s = spec(host_config={"Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048},
                                      {"Name": "core", "Soft": -1, "Hard": -1}]})
    assert s["process"]["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 2048, "soft": 1024},
                                       {"type": "RLIMIT_CORE", "hard": 2**64 - 1, "soft": 2**64 - 1}]


def test_resources():
    r = spec(host_config={"Memory": 64 << 20, "MemoryReservation": 32 << 20, "MemorySwappiness": 10,
                          "OomKillDisable": True, "NanoCpus": 1_500_000_000, "CpuShares": 512,
                          "CpusetCpus": "0", "PidsLimit": 100, "BlkioWeight": 300})["linux"]["resources"]
    assert r["memory"] == {"limit": 64 << 20, "reservation": 32 << 20, "swap": 128 << 20, "swappiness": 10,
                           "disableOOMKiller": True}
    assert r["cpu"] == {"shares": 512, "period": 100000, "quota": 150000, "cpus": "0"}
    assert r["pids"] == {"limit": 100} and r["blockIO"] == {"weight": 300}
    quota = spec(host_config={"CpuQuota": 50000, "CpuPeriod": 200000})["linux"]["resources"]["cpu"]
    assert quota == {"shares": 0, "period": 200000, "quota": 50000}


def test_sysctls_override_defaults():
    s = spec(host_config={"Sysctls": {"net.ipv4.ping_group_range": "0 0", "kernel.msgmax": "1"}})
    assert s["linux"]["sysctl"] == {"net.ipv4.ping_group_range": "0 0", "net.ipv4.ip_unprivileged_port_start": "0",
                                    "kernel.msgmax": "1"}


def test_cgroup_parent_oom_score_and_paths():
    s = spec(host_config={"CgroupParent": "/mygroup/", "OomScoreAdj": -500, "MaskedPaths": ["/proc/x"],
                          "ReadonlyPaths": []})
    assert s["linux"]["cgroupsPath"] == f"/mygroup/{CID}" and s["process"]["oomScoreAdj"] == -500
    assert s["linux"]["maskedPaths"] == ["/proc/x"] and "readonlyPaths" not in s["linux"]


@pytest.mark.parametrize("propagation, fields, refused", [
    ("rshared", "shared:2", None), ("shared", "master:3", "not a shared mount"),
    ("rslave", "master:3", None), ("slave", "shared:2", None), ("rslave", "", "not a shared or slave mount"),
    ("rprivate", "", None),
])
def test_bind_propagation_needs_a_source_mount_that_gives_it(propagation, fields, refused):
    host = FakeHost(mounts={"/": "", "/srv": fields})
    host_config = {"Binds": [f"/srv/data:/data:{propagation}"]}
    if refused is None:
        spec(host_config=host_config, host=host)
        return
    with pytest.raises(System) as info:
        spec(host_config=host_config, host=host)
    assert str(info.value) == f"path /srv/data is mounted on /srv but it is {refused}"
