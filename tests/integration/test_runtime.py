"""runpy-oci behaviour beyond the shared conformance cases: cleanup after a
failure half-way through create, descriptors, logs, pid files."""
import json
import os
import subprocess
import time

import pytest

from runpy_oci import lsm

pytestmark = pytest.mark.root


def mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if str(path) in line]


def no_trace_of(runtime, cid, bundle_path):
    assert runtime("list", "-q").stdout.split() == []
    assert not os.path.exists(os.path.join(runtime.root, cid))
    assert mounts_under(bundle_path) == []
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(bundle_path) not in out


def test_failure_in_the_init_leaves_nothing(runtime, bundle, tmp_path):
    cid = runtime.new_id()
    path = bundle(change=lambda c: c["mounts"].append(
        {"destination": "/data", "type": "bind", "source": str(tmp_path / "missing"), "options": ["bind"]}))
    r = runtime("create", "--bundle", path, cid)
    assert r.returncode == 1
    assert f"cannot mount {tmp_path / 'missing'} on /data" in r.stderr
    no_trace_of(runtime, cid, bundle.path)


def test_missing_program_is_reported_at_create(runtime, bundle):
    cid = runtime.new_id()
    r = runtime("create", "--bundle", bundle(args=["no-such-program"]), cid)
    assert r.returncode == 1
    # logrus quotes the message, so its inner quotes come escaped, as runc's do
    assert r'exec: \"no-such-program\": executable file not found in $PATH' in r.stderr
    no_trace_of(runtime, cid, bundle.path)


def test_a_rootfs_that_is_a_symlink_to_the_host_root_is_refused(runtime, bundle):
    # runc refuses it; crun 1.8 follows the link, so this is no conformance case
    cid = runtime.new_id()
    path = bundle(change=lambda c: c["root"].update(path="hostroot"))
    os.symlink("/", os.path.join(path, "hostroot"))
    r = runtime("create", "--bundle", path, cid)
    assert r.returncode == 1
    assert "invalid rootfs: not an absolute path, or a symlink: hostroot resolves to /" in r.stderr
    assert r.stderr.count("\n") == 1, r.stderr
    no_trace_of(runtime, cid, bundle.path)


def test_no_runtime_descriptor_reaches_the_container(runtime, bundle):
    cid = runtime.new_id()
    r = runtime("run", "--bundle", bundle(args=["sh", "-c", "ls /proc/self/fd"]), cid, input="")
    assert r.returncode == 0, r.stderr
    # 0-2 are stdio, 3 is the directory ls itself reads.
    assert sorted(int(fd) for fd in r.stdout.split()) == [0, 1, 2, 3]


def test_cwd_is_created_and_entered(runtime, bundle):
    cid = runtime.new_id()
    path = bundle(args=["pwd"], change=lambda c: c["process"].update(cwd="/work/deep"))
    r = runtime("run", "--bundle", path, cid)
    assert (r.returncode, r.stdout.strip()) == (0, "/work/deep"), r.stderr


def test_log_file_gets_json_lines_and_stderr_the_message(runtime, tmp_path):
    log = tmp_path / "log.json"
    r = subprocess.run([runtime.binary, "--root", runtime.root, "--log", str(log), "--log-format", "json", "state", "nope"],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.strip() == "container does not exist"
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["level"] == "error" and entry["msg"] == "container does not exist"


def test_pid_file_names_the_init(runtime, bundle, tmp_path):
    cid = runtime.new_id()
    pid_file = tmp_path / "pid"
    r = runtime("create", "--bundle", bundle(args=["sleep", "30"]), "--pid-file", str(pid_file), cid)
    assert r.returncode == 0, r.stderr
    pid = int(pid_file.read_text())
    assert json.loads(runtime("state", cid).stdout)["pid"] == pid
    assert runtime("start", cid).returncode == 0

    with open(f"/proc/{pid}/cmdline", "rb") as f:  # start returns once the program runs
        assert f.read().split(b"\0")[:2] == [b"sleep", b"30"]


def test_state_of_a_stopped_container_keeps_its_bundle(runtime, bundle):
    cid = runtime.new_id()
    assert runtime("run", "-d", "--bundle", bundle(args=["true"]), cid).returncode == 0
    import time

    deadline = time.monotonic() + 10
    while json.loads(runtime("state", cid).stdout)["status"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    st = json.loads(runtime("state", cid).stdout)
    assert st["bundle"] == str(bundle.path) and st["pid"] == 0
    assert runtime("delete", cid).returncode == 0
    assert runtime("state", cid).returncode == 1


def test_kill_all_reaches_every_process(runtime, bundle):
    cid = runtime.new_id()
    r = runtime("run", "-d", "--bundle", bundle(args=["sh", "-c", "sleep 100 & sleep 100 & wait"]), cid)
    assert r.returncode == 0, r.stderr
    import time

    time.sleep(0.2)
    assert runtime("kill", "--all", cid, "KILL").returncode == 0
    deadline = time.monotonic() + 10
    while json.loads(runtime("state", cid).stdout)["status"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_spec_rootless_makes_a_config_that_runs(runtime, bundle):
    """`spec --rootless`: a user namespace mapping the caller to root, no
    cgroup limits, mounts a user namespace may make; the container runs."""
    path = bundle()
    os.unlink(os.path.join(path, "config.json"))
    r = runtime("spec", "--rootless", "--bundle", path)
    assert r.returncode == 0, r.stderr
    with open(os.path.join(path, "config.json")) as f:
        cfg = json.load(f)
    assert any(ns["type"] == "user" for ns in cfg["linux"]["namespaces"]) and cfg["linux"]["uidMappings"]
    cfg["process"].update(terminal=False, args=["sh", "-c", "cat /proc/self/uid_map; id -u"])
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg, f)
    cid = runtime.new_id()
    r = runtime("run", "--bundle", path, cid)
    assert r.returncode == 0, r.stderr
    mapping, uid = r.stdout.split("\n", 1)
    assert mapping.split()[:2] == ["0", str(os.getuid())] and uid.strip() == "0"


@pytest.mark.skipif(lsm.apparmor_enabled() or lsm.selinux_enabled(),
                    reason="the host has AppArmor or SELinux: these fields are refused there (tests/unit/test_lsm.py)")
def test_lsm_fields_run_where_the_host_has_no_such_lsm(runtime, bundle, tmp_path):
    """The issue's choice, not the runtime-spec's: runc refuses all three here,
    crun the two process labels."""
    def labels(c):
        c["process"].update(apparmorProfile="runpy-test", selinuxLabel="system_u:system_r:container_t:s0:c1,c2")
        c["linux"]["mountLabel"] = "system_u:object_r:container_file_t:s0:c1,c2"

    log = tmp_path / "log"
    cid = runtime.new_id()
    path = bundle(args=["sh", "-c", "echo ok; grep -c ' /dev/shm ' /proc/self/mounts"], change=labels)
    r = runtime("--debug", "--log", str(log), "run", "--bundle", path, cid)
    assert (r.returncode, r.stdout.split()) == (0, ["ok", "1"]), r.stderr
    assert log.read_text().count("ignored: the host has no") == 3


@pytest.mark.skipif(lsm.apparmor_enabled() or lsm.selinux_enabled(),
                    reason="the host has AppArmor or SELinux: these flags are refused there (tests/unit/test_lsm.py)")
def test_exec_lsm_flags_where_the_host_has_no_such_lsm(runtime, bundle, tmp_path):
    cid = runtime.new_id()
    r = runtime("run", "-d", "--bundle", bundle(args=["sleep", "100"]), cid)
    assert r.returncode == 0, r.stderr
    log = tmp_path / "log"
    r = runtime("--debug", "--log", str(log), "exec", "--apparmor", "runpy-test", "--process-label",
                "system_u:system_r:container_t:s0", cid, "echo", "ok")
    assert (r.returncode, r.stdout.strip()) == (0, "ok"), r.stderr
    assert log.read_text().count("ignored: the host has no") == 2


def _blocked_on_a_lock(pid):
    """True while ``pid`` waits for a flock (a "->" line of /proc/locks)."""
    with open("/proc/locks") as f:
        return any(line.split()[1] == "->" and line.split()[5] == str(pid) for line in f)


def test_delete_force_during_create_makes_the_create_fail(runtime, bundle, tmp_path):
    go = tmp_path / "go"
    hook = {"path": "/bin/sh", "args": ["sh", "-c", f"while [ ! -e {go} ]; do sleep 0.01; done"]}
    path = bundle(args=["sleep", "600"], change=lambda c: c.update(hooks={"createRuntime": [hook]}))
    cid = runtime.new_id()
    argv = [runtime.binary, "--root", runtime.root]
    with open(tmp_path / "create.err", "w+") as err:
        create = subprocess.Popen([*argv, "create", "--bundle", path, cid], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=err)
        try:
            while runtime("state", cid).returncode != 0:  # until create is at work (in its hook)
                assert create.poll() is None, err.read()
                time.sleep(0.01)
            delete = subprocess.Popen([*argv, "delete", "--force", cid], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while not _blocked_on_a_lock(delete.pid):
                assert delete.poll() is None
                time.sleep(0.01)
        finally:
            go.touch()
            create.wait(30)
        assert delete.wait(30) == 0
        err.seek(0)
        assert (create.returncode, err.read().count("was deleted (delete --force) while it was being created")) == (1, 1)
    no_trace_of(runtime, cid, bundle.path)


def test_containers_with_one_seccomp_profile_share_one_kept_filter(runtime, bundle):
    """A create generates the filter once per profile, under --root; the
    next container (and every exec) with that profile loads it as it is."""
    from runpy_oci import seccomp_bpf

    deny = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
    path = bundle(args=["sleep", "30"], change=lambda c: c["linux"].update(seccomp=deny))
    ids = [runtime.new_id(), runtime.new_id()]
    for cid in ids:
        r = runtime("run", "-d", "--bundle", path, cid)
        assert r.returncode == 0, r.stderr
    cache = os.path.join(runtime.root, seccomp_bpf.CACHE_DIR)
    assert len(os.listdir(cache)) == 1
    assert sorted(runtime("list", "-q").stdout.split()) == sorted(ids)
    for cid in ids:
        r = runtime("exec", cid, "sh", "-c", "mkdir /tmp/d 2>&1; echo rc=$?")
        assert "Operation not permitted" in r.stdout and "rc=1" in r.stdout, r.stdout + r.stderr
