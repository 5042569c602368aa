"""process.*: user, umask, cwd, env, rlimits, oomScoreAdj, noNewPrivileges,
capabilities; linux.sysctl."""
from __future__ import annotations

import os
import threading

import pytest

from .harness import kv

pytestmark = pytest.mark.root

CAPS = {"CAP_KILL": 5, "CAP_NET_BIND_SERVICE": 10, "CAP_SYS_ADMIN": 21, "CAP_AUDIT_WRITE": 29}


def test_user_uid_gid(runtime, bundle):
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    out = kv(runtime.probe(bundle,
        'echo "uid=$(id -u)"; echo "gid=$(id -g)"; echo "name=$(id -un)"; '
        'if ls /root >/dev/null 2>&1; then echo "root=readable"; else echo "root=denied"; fi'))
    assert out == {"uid": "1000", "gid": "1000", "name": "user", "root": "denied"}


def test_user_root_default(runtime, bundle):
    out = kv(runtime.probe(bundle, 'echo "uid=$(id -u)"; echo "gid=$(id -g)"'))
    assert out == {"uid": "0", "gid": "0"}


def test_additional_gids(runtime, bundle):
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [10, 20]}
    out = kv(runtime.probe(bundle,
        'echo "gid=$(id -g)"; echo "groups=$(id -G)"; '
        'echo "status=$(grep ^Groups: /proc/self/status | cut -f2)"'))
    assert out["gid"] == "1000"
    assert {"10", "20"} <= set(out["groups"].split())
    assert {"10", "20"} <= set(out["status"].split())


def test_no_additional_gids_means_none(runtime, bundle):
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    out = runtime.probe(bundle, "grep ^Groups: /proc/self/status | cut -f2")
    assert set(out.split()) <= {"1000"}


def test_umask(runtime, bundle):
    bundle.config["root"]["readonly"] = False
    bundle.config["process"]["user"]["umask"] = 0o027
    out = kv(runtime.probe(bundle,
        'echo "umask=$(umask)"; touch /tmp/f; mkdir /tmp/d; '
        'echo "file=$(stat -c %a /tmp/f)"; echo "dir=$(stat -c %a /tmp/d)"'))
    assert out == {"umask": "0027", "file": "640", "dir": "750"}


def test_cwd(runtime, bundle):
    bundle.config["process"]["cwd"] = "/home/user"
    assert runtime.probe(bundle, "pwd").strip() == "/home/user"


def test_env(runtime, bundle):
    bundle.config["process"]["env"] = ["PATH=/bin:/usr/bin", "FOO=bar baz", "EMPTY="]
    out = runtime.probe(bundle, 'echo "PATH=$PATH"; echo "FOO=$FOO"; env')
    lines = out.splitlines()
    assert lines[0] == "PATH=/bin:/usr/bin"
    assert lines[1] == "FOO=bar baz"
    assert "FOO=bar baz" in lines[2:]
    assert "EMPTY=" in lines[2:]
    assert not [l for l in lines[2:] if l.startswith("TERM=")]


def test_rlimits(runtime, bundle):
    bundle.config["process"]["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 1000, "hard": 2000},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 4096},
    ]
    out = kv(runtime.probe(bundle,
        'echo "soft=$(ulimit -n)"; echo "hard=$(ulimit -Hn)"; '
        'echo "limits=$(grep "Max open files" /proc/self/limits)"; '
        'echo "core=$(grep "Max core file size" /proc/self/limits)"'))
    assert out["soft"] == "1000"
    assert out["hard"] == "2000"
    assert out["limits"].split()[3:5] == ["1000", "2000"]
    assert out["core"].split()[4:6] == ["0", "4096"]


def test_rlimit_unlimited(runtime, bundle):
    """2**64-1 is RLIM_INFINITY."""
    bundle.config["process"]["rlimits"] = [{"type": "RLIMIT_CORE", "soft": (1 << 64) - 1, "hard": (1 << 64) - 1}]
    out = runtime.probe(bundle, 'grep "Max core file size" /proc/self/limits')
    assert out.split()[4:6] == ["unlimited", "unlimited"]


def test_oom_score_adj(runtime, bundle):
    bundle.config["process"]["oomScoreAdj"] = 500
    assert runtime.probe(bundle, "cat /proc/self/oom_score_adj").strip() == "500"


@pytest.mark.parametrize("nnp,expect", [(True, "1"), (False, "0")])
def test_no_new_privileges(runtime, bundle, nnp, expect):
    bundle.config["process"]["noNewPrivileges"] = nnp
    out = runtime.probe(bundle, "grep ^NoNewPrivs: /proc/self/status | cut -f2")
    assert out.strip() == expect


@pytest.mark.parametrize("caps", [
    ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
    ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"],
])
def test_capabilities(runtime, bundle, caps):
    for kind in ("bounding", "effective", "permitted"):
        bundle.config["process"]["capabilities"][kind] = list(caps)
    bundle.config["process"]["capabilities"].pop("ambient", None)
    out = kv(runtime.probe(bundle, "grep ^Cap /proc/self/status | tr -d '\\t' | tr ':' '='"))
    want = sum(1 << CAPS[c] for c in caps)
    assert int(out["CapEff"], 16) == want
    assert int(out["CapPrm"], 16) == want
    assert int(out["CapBnd"], 16) == want


def test_sysctl_in_own_namespaces(runtime, bundle):
    host_fwd = open("/proc/sys/net/ipv4/ip_forward").read()
    host_shmmax = open("/proc/sys/kernel/shmmax").read()
    want_fwd = "0" if host_fwd.strip() == "1" else "1"
    bundle.config["linux"]["sysctl"] = {
        "net.ipv4.ip_forward": want_fwd,
        "kernel.shmmax": "123456789",
    }
    out = kv(runtime.probe(bundle,
        'echo "fwd=$(cat /proc/sys/net/ipv4/ip_forward)"; '
        'echo "shmmax=$(cat /proc/sys/kernel/shmmax)"'))
    assert out == {"fwd": want_fwd, "shmmax": "123456789"}
    assert open("/proc/sys/net/ipv4/ip_forward").read() == host_fwd
    assert open("/proc/sys/kernel/shmmax").read() == host_shmmax


@pytest.mark.deviation("crun", "leaves HOME unset for a uid without an /etc/passwd entry (runc: \"/\")")
def test_home_comes_from_etc_passwd_when_env_lacks_it(runtime, bundle):
    """Not in the runtime-spec, but runc sets it and images rely on it (docker's
    exec and run too): HOME of the user's /etc/passwd entry, "/" without one."""
    bundle.config["process"]["env"] = ["PATH=/bin:/usr/bin"]
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    assert runtime.probe(bundle, 'echo "$HOME"').strip() == "/home/user"
    bundle.config["process"]["user"] = {"uid": 4321, "gid": 4321}
    assert runtime.probe(bundle, 'echo "$HOME"').strip() == "/"
    bundle.config["process"]["env"] = ["PATH=/bin:/usr/bin", "HOME=/elsewhere"]
    assert runtime.probe(bundle, 'echo "$HOME"').strip() == "/elsewhere"


@pytest.mark.deviation("runc", "waits to open an /etc/passwd the rootfs made a FIFO")
@pytest.mark.deviation("crun", "waits to open an /etc/passwd the rootfs made a FIFO")
def test_a_fifo_for_etc_passwd_holds_nothing(runtime, bundle):
    """The rootfs is the container's and may be hostile: looking up HOME must
    not wait on a FIFO. A watcher releases any reader it finds waiting (so a
    runtime that waits is not left hanging) and says so."""
    passwd = bundle.rootfs / "etc" / "passwd"
    passwd.unlink()
    os.mkfifo(passwd)
    bundle.config["process"]["env"] = ["PATH=/bin:/usr/bin"]
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    done, waited = threading.Event(), []

    def release_waiting_readers():
        while not done.wait(0.1):
            try:
                os.close(os.open(passwd, os.O_WRONLY | os.O_NONBLOCK))  # succeeds only with a reader waiting
                waited.append(True)
            except OSError:
                pass

    watcher = threading.Thread(target=release_waiting_readers)
    watcher.start()
    try:
        home = runtime.probe(bundle, 'echo "$HOME"').strip()
    finally:
        done.set()
        watcher.join()
    assert waited == [] and home == "/"
