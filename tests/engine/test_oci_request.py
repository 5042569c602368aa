"""engine.oci's parse of Config and HostConfig: typed values, dockerd's
create-time defaults, and a 400 in dockerd's words for each bad field."""
import pytest

from engine.errors import InvalidParameter, http_status
from engine.oci import merge_image_config, parse_config, parse_host_config
from engine.oci.mounts import parse_tmpfs
from engine.oci.request import check_against_host
from engine_fakes import FakeHost


def refused(parse, data):
    with pytest.raises(InvalidParameter) as info:
        parse(data)
    assert http_status(info.value) == 400
    return str(info.value)


# --- types ------------------------------------------------------------------

@pytest.mark.parametrize("data, message", [
    ({"Memory": "x"}, "json: cannot unmarshal string into Go struct field HostConfig.Memory of type int64"),
    ({"Privileged": 1}, "json: cannot unmarshal number into Go struct field HostConfig.Privileged of type bool"),
    ({"CpuShares": 1.5}, "json: cannot unmarshal number 1.5 into Go struct field HostConfig.CpuShares of type int64"),
    ({"Binds": "/a:/b"}, "json: cannot unmarshal string into Go struct field HostConfig.Binds of type []string"),
    ({"Sysctls": {"a": 1}}, "json: cannot unmarshal number into Go struct field HostConfig.Sysctls of type string"),
    ({"BlkioWeight": 70000}, "json: cannot unmarshal number 70000 into Go struct field HostConfig.BlkioWeight "
                             "of type uint16"),
    ([], "json: cannot unmarshal array into Go value of type HostConfig"),
])
def test_a_wrong_type_names_the_field(data, message):
    assert refused(parse_host_config, data) == message


def test_null_and_absent_fields_are_zero_values():
    hc = parse_host_config({"Memory": None, "Binds": None, "Privileged": None})
    assert (hc.resources.memory, hc.mounts, hc.privileged) == (0, (), False)
    assert parse_host_config(None) == parse_host_config({})


# --- Config -----------------------------------------------------------------

def test_cmd_and_entrypoint_take_a_string_or_an_array():
    config = parse_config({"Cmd": "echo hi", "Entrypoint": ["/bin/sh", "-c"]})
    assert (config.cmd, config.entrypoint) == (("echo hi",), ("/bin/sh", "-c"))
    assert parse_config({}).cmd is None and parse_config({"Entrypoint": []}).entrypoint == ()


def test_env_without_a_name_is_refused():
    assert refused(parse_config, {"Env": ["A=1", "=x"]}) == "invalid environment variable: =x"


def test_relative_working_dir_is_refused():
    assert refused(parse_config, {"WorkingDir": "rel"}) == \
        "the working directory 'rel' is invalid, it needs to be an absolute path"


def test_image_config_fills_what_the_request_left_out():
    image = {"Env": ["PATH=/img", "LANG=C"], "Cmd": ["sh"], "Entrypoint": ["/init"], "User": "user",
             "WorkingDir": "/srv"}
    merged = merge_image_config(parse_config({"Env": ["PATH=/mine", "A=1"]}), image)
    assert merged.env == ("PATH=/mine", "A=1", "LANG=C")
    assert (merged.cmd, merged.entrypoint, merged.user, merged.working_dir) == (("sh",), ("/init",), "user", "/srv")
    assert merge_image_config(parse_config({}), image).env == ("PATH=/img", "LANG=C")


def test_the_images_own_values_are_taken_as_they_are():
    merged = merge_image_config(parse_config({}), {"WorkingDir": "app", "Env": ["=odd"], "Cmd": "sh"})
    assert (merged.working_dir, merged.env, merged.cmd) == ("app", ("=odd",), ("sh",))


def test_a_given_cmd_or_entrypoint_replaces_the_images():
    image = {"Cmd": ["sh"], "Entrypoint": ["/init"]}
    assert merge_image_config(parse_config({"Cmd": ["ls"]}), image).cmd == ("ls",)
    assert merge_image_config(parse_config({"Cmd": ["ls"]}), image).entrypoint == ("/init",)
    with_entrypoint = merge_image_config(parse_config({"Entrypoint": ["/bin/echo"]}), image)
    assert (with_entrypoint.entrypoint, with_entrypoint.cmd) == (("/bin/echo",), None)
    # --entrypoint "": the image's entrypoint is dropped, its Cmd kept
    emptied = merge_image_config(parse_config({"Entrypoint": []}), image)
    assert (emptied.entrypoint, emptied.cmd) == ((), ("sh",))


# --- mounts -----------------------------------------------------------------

def test_binds_parse_mode_and_propagation():
    (ro, rw) = parse_host_config({"Binds": ["/etc:/data:ro", "/usr//share/:/x/y/:rw,rslave"]}).mounts
    assert (ro.source, ro.destination, ro.writable, ro.propagation) == ("/etc", "/data", False, "rprivate")
    assert (rw.source, rw.destination, rw.writable, rw.propagation) == ("/usr/share", "/x/y", True, "rslave")


@pytest.mark.parametrize("bind, message", [
    ("/a:/b:/c:d", "invalid volume specification: '/a:/b:/c:d'"),
    ("/a:rw", "invalid volume specification: '/a:rw'"),
    ("/a:/b:xx", "invalid mode: xx"),
    ("/a:/b:ro,rw", "invalid mode: ro,rw"),
    ("/a:b", "invalid volume specification: '/a:b': invalid mount config for type \"bind\": "
             "invalid mount path: 'b' mount path must be absolute"),
    ("/a:/", "invalid volume specification: '/a:/': invalid mount config for type \"bind\": "
             "invalid specification: destination can't be '/'"),
])
def test_bad_binds_are_refused(bind, message):
    assert refused(parse_host_config, {"Binds": [bind]}) == message


def test_volumes_in_binds_and_mounts():
    """A source that is not a path names a volume, a lone path is an anonymous one."""
    hc = parse_host_config({"Binds": ["data:/d:ro,nocopy", "/anon"], "Mounts": [
        {"Type": "volume", "Source": "other", "Target": "/o", "VolumeOptions": {"NoCopy": True}},
        {"Type": "volume", "Target": "/m", "ReadOnly": True}]})
    assert [(m.volume, m.destination, m.writable, m.copy_data, m.mode) for m in hc.mounts] == [
        ("data", "/d", False, False, "ro,nocopy"), ("", "/anon", True, True, ""), ("other", "/o", True, False, ""),
        ("", "/m", False, True, "")]


@pytest.mark.parametrize("mount, message", [
    ({"Type": "foo", "Source": "/etc", "Target": "/x"}, 'invalid mount config for type "foo": mount type unknown'),
    ({"Type": "bind", "Source": "etc", "Target": "/x"},
     "invalid mount config for type \"bind\": invalid mount path: 'etc' mount path must be absolute"),
    ({"Type": "bind", "Source": "/etc"}, 'invalid mount config for type "bind": field Target must not be empty'),
    ({"Type": "bind", "Target": "/x"}, 'invalid mount config for type "bind": field Source must not be empty'),
    ({"Type": "bind", "Source": "/etc", "Target": "/x", "BindOptions": {"Propagation": "up"}},
     'invalid mount config for type "bind": invalid propagation mode: up'),
    ({"Type": "tmpfs", "Source": "/etc", "Target": "/x"},
     'invalid mount config for type "tmpfs": field Source must not be specified'),
])
def test_bad_mounts_are_refused(mount, message):
    assert refused(parse_host_config, {"Mounts": [mount]}) == message


def test_a_destination_given_twice_is_refused():
    data = {"Binds": ["/etc:/x"], "Mounts": [{"Type": "bind", "Source": "/usr", "Target": "/x"}]}
    assert refused(parse_host_config, data) == "Duplicate mount point: /x"


def test_mounts_bind_options_and_tmpfs_options():
    hc = parse_host_config({"Mounts": [
        {"Type": "bind", "Source": "/usr/lib", "Target": "/q", "ReadOnly": True,
         "BindOptions": {"NonRecursive": True}},
        {"Type": "tmpfs", "Target": "/scratch", "TmpfsOptions": {"SizeBytes": 1 << 20, "Mode": 0o700}}]})
    bind, tmpfs = hc.mounts
    assert (bind.writable, bind.non_recursive, bind.propagation, bind.source_must_exist) == (False, True,
                                                                                             "rprivate", True)
    assert tmpfs.tmpfs_data == "mode=700,size=1m"


def test_tmpfs_paths_are_checked_at_create_and_options_at_start():
    assert refused(parse_host_config, {"Tmpfs": {"run": ""}}) == \
        "invalid mount path: 'run' mount path must be absolute"
    assert refused(parse_tmpfs, {"/run": "foo=bar"}) == 'invalid tmpfs option ["foo" "bar"]'
    assert refused(parse_tmpfs, {"/run": "exec,nope"}) == 'invalid tmpfs option ["nope"]'
    # dockerd makes the container and refuses its start: the create leaves that mount out
    parsed = parse_host_config({"Tmpfs": {"/run": "exec,nope", "/ok": "size=1m"}})
    assert [m.destination for m in parsed.mounts] == ["/ok"]


# --- capabilities and security options --------------------------------------

def test_capabilities_are_normalized():
    hc = parse_host_config({"CapAdd": ["net_admin", "CAP_SYS_TIME", "all"], "CapDrop": ["Chown"]})
    assert (hc.cap_add, hc.cap_drop) == (("CAP_NET_ADMIN", "CAP_SYS_TIME", "ALL"), ("CAP_CHOWN",))
    assert refused(parse_host_config, {"CapAdd": ["FOO"]}) == 'invalid CapAdd: unknown capability: "CAP_FOO"'
    assert refused(parse_host_config, {"CapDrop": ["cap_bpf"]}) == 'invalid CapDrop: unknown capability: "CAP_BPF"'


def test_security_opt():
    hc = parse_host_config({"SecurityOpt": ["no-new-privileges", "seccomp=unconfined", "label=disable"]})
    assert (hc.security.no_new_privileges, hc.security.seccomp, hc.security.labels) == (True, "unconfined",
                                                                                         ("disable",))
    assert parse_host_config({"SecurityOpt": ["no-new-privileges:false"]}).security.no_new_privileges is False
    assert refused(parse_host_config, {"SecurityOpt": ["foo"]}) == 'invalid --security-opt 1: "foo"'
    assert refused(parse_host_config, {"SecurityOpt": ["foo=bar"]}) == 'invalid --security-opt 2: "foo=bar"'
    assert refused(parse_host_config, {"SecurityOpt": ["seccomp={bad"]}).startswith(
        "Decoding seccomp profile failed: ")


# --- devices, ulimits, sysctls ----------------------------------------------

def test_devices_default_and_check_their_fields():
    (device,) = parse_host_config({"Devices": [{"PathOnHost": "/dev/zero"}]}).devices
    assert (device.path_in_container, device.permissions) == ("/dev/zero", "rwm")
    bad = [({"PathOnHost": "/dev/null", "CgroupPermissions": "rwx"}, "invalid device mode: rwx"),
           ({"PathOnHost": "/dev/null", "PathInContainer": "dev/x"}, "bad format for path: dev/x"),
           ({"PathInContainer": "/dev/x"}, "invalid device specification: PathOnHost must not be empty")]
    for mapping, message in bad:
        assert refused(parse_host_config, {"Devices": [mapping]}) == message
    assert refused(parse_host_config, {"DeviceCgroupRules": ["c 1 rwm"]}) == \
        "invalid device cgroup rule format: 'c 1 rwm'"


def test_ulimits():
    (nofile, core) = parse_host_config({"Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 20},
                                                    {"Name": "core", "Soft": -1, "Hard": -1}]}).ulimits
    assert (nofile.soft, nofile.hard, core.soft) == (10, 20, -1)
    assert refused(parse_host_config, {"Ulimits": [{"Name": "foo", "Soft": 1, "Hard": 2}]}) == \
        "invalid ulimit type: foo"
    assert refused(parse_host_config, {"Ulimits": [{"Name": "nofile", "Soft": 3, "Hard": 2}]}) == \
        "ulimit soft limit must be less than or equal to hard limit: 3 > 2"


@pytest.mark.parametrize("data, message", [
    ({"Sysctls": {"vm.swappiness": "1"}}, 'sysctl "vm.swappiness" is not in a separate kernel namespace'),
    ({"Sysctls": {"net.ipv4.ip_forward": "1"}, "NetworkMode": "host"},
     'sysctl "net.ipv4.ip_forward" not allowed in host network namespace'),
    ({"Sysctls": {"kernel.shmmax": "1"}, "IpcMode": "host"},
     'sysctl "kernel.shmmax" is not allowed in the hosts ipc namespace'),
    ({"Sysctls": {"kernel.hostname": "x"}},
     'sysctl "kernel.hostname" is not allowed as it conflicts with the OCI "hostname" field'),
    ({"Sysctls": {"kernel.domainname": "x"}, "UTSMode": "host"},
     'sysctl "kernel.domainname" is not in a separate kernel namespace'),
])
def test_sysctls_of_namespaces_the_container_shares_are_refused(data, message):
    assert refused(parse_host_config, data) == message


def test_namespaced_sysctls_are_kept():
    sysctls = {"net.ipv4.ip_forward": "1", "kernel.msgmax": "65536", "fs.mqueue.msg_max": "20",
               "kernel.domainname": "example.com"}
    assert parse_host_config({"Sysctls": sysctls}).sysctls == sysctls


# --- resources --------------------------------------------------------------

@pytest.mark.parametrize("data, message", [
    ({"Memory": 1000}, "Minimum memory limit allowed is 6MB"),
    ({"Memory": 10 << 20, "MemorySwap": 1000}, "Minimum memoryswap limit should be larger than memory limit, "
                                               "see usage"),
    ({"MemorySwap": 100 << 20}, "You should always set the Memory limit when using Memoryswap limit, see usage"),
    ({"MemoryReservation": 1000}, "Minimum memory reservation allowed is 6MB"),
    ({"Memory": 10 << 20, "MemoryReservation": 20 << 20},
     "Minimum memory limit can not be less than memory reservation limit, see usage"),
    ({"MemorySwappiness": 101}, "Invalid value: 101, valid memory swappiness range is 0-100"),
    ({"NanoCpus": 10 ** 9, "CpuQuota": 5000}, "Conflicting options: Nano CPUs and CPU Quota cannot both be set"),
    ({"NanoCpus": 10 ** 9, "CpuPeriod": 5000}, "Conflicting options: Nano CPUs and CPU Period cannot both be set"),
    ({"CpuPeriod": 100}, "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"),
    ({"CpuQuota": 100}, "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
    ({"CpusetCpus": "abc"}, "Invalid value abc for cpuset cpus: invalid format: abc"),
    ({"BlkioWeight": 5}, "Range of blkio weight is from 10 to 1000"),
    ({"ShmSize": -1}, "SHM size can not be less than 0"),
    ({"OomScoreAdj": 1001}, "Invalid value 1001, range for oom score adj is [-1000, 1000]"),
    ({"IpcMode": "foo"}, "Invalid IPC mode: foo"),
    ({"PidMode": "container:"}, "Invalid PID mode: container:"),
    ({"CgroupnsMode": "foo"}, "invalid cgroup namespace mode: foo"),
])
def test_bad_resources_and_modes_are_refused(data, message):
    assert refused(parse_host_config, data) == message


def test_create_time_defaults():
    hc = parse_host_config({"Memory": 64 << 20, "PidsLimit": -1})
    assert (hc.resources.memory_swap, hc.resources.pids_limit) == (128 << 20, None)
    assert (hc.shm_size, hc.ipc_mode, hc.network_mode) == (64 << 20, "private", "default")
    assert parse_host_config({"Memory": 64 << 20, "MemorySwap": -1}).resources.memory_swap == -1
    assert parse_host_config({"PidsLimit": 100}).resources.pids_limit == 100


def test_checks_against_the_host():
    host = FakeHost(existing={"/etc"})
    check_against_host(parse_host_config({"NanoCpus": 2 * 10 ** 9, "CpusetCpus": "0-1"}), host)
    with pytest.raises(InvalidParameter, match=r"^Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs"):
        check_against_host(parse_host_config({"NanoCpus": 3 * 10 ** 9}), host)
    with pytest.raises(InvalidParameter, match=r"^Requested CPUs are not available - requested 0,7, available: 0-1$"):
        check_against_host(parse_host_config({"CpusetCpus": "0,7"}), host)
    missing = {"Mounts": [{"Type": "bind", "Source": "/nonexist", "Target": "/x"}], "Binds": ["/gone:/y"]}
    with pytest.raises(InvalidParameter) as info:
        check_against_host(parse_host_config(missing), host)
    assert str(info.value) == 'invalid mount config for type "bind": bind source path does not exist: /nonexist'
    check_against_host(parse_host_config({"Binds": ["/gone:/y"]}), host)  # made at start, as dockerd does
