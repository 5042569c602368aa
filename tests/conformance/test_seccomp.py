"""linux.seccomp: a profile is in force when the program runs."""
import os

import pytest

from .harness import base_config, kv

pytestmark = pytest.mark.root

MKDIR = ["mkdir", "mkdirat"]
PROBE = "mkdir /tmp/d 2>&1; echo rc=$?"


def _run(runtime, make_bundle, seccomp, script=PROBE, no_new_privs=True):
    cfg = base_config()
    cfg["root"]["readonly"] = False
    cfg["process"]["noNewPrivileges"] = no_new_privs
    cfg["linux"]["seccomp"] = seccomp
    b = make_bundle(cfg)
    return runtime.probe(b, script, hint="seccomp")


def _deny(names, **rule):
    return {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [{"names": names, "action": "SCMP_ACT_ERRNO", **rule}]}


@pytest.mark.parametrize("no_new_privs", [True, False], ids=["nnp", "no-nnp"])
def test_denied_syscall_fails_with_eperm(runtime, make_bundle, no_new_privs):
    out = _run(runtime, make_bundle, _deny(MKDIR), no_new_privs=no_new_privs)
    assert "Operation not permitted" in out
    assert kv(out)["rc"] == "1"


def test_errno_ret(runtime, make_bundle):
    out = _run(runtime, make_bundle, _deny(MKDIR, errnoRet=13))  # EACCES
    assert "Permission denied" in out


def test_other_syscalls_stay_allowed(runtime, make_bundle):
    out = _run(runtime, make_bundle, _deny(["chmod", "fchmodat"]), script="mkdir /tmp/d && echo made=yes")
    assert kv(out)["made"] == "yes"


def test_argument_condition(runtime, make_bundle):
    """Only chmod to 0700 is allowed (the mode is argument 1 of chmod, 2 of fchmodat)."""
    seccomp = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 0o700, "op": "SCMP_CMP_NE"}]},
        {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 2, "value": 0o700, "op": "SCMP_CMP_NE"}]},
    ]}
    out = _run(runtime, make_bundle, seccomp, script="touch /tmp/f && chmod 700 /tmp/f && echo a=ok; "
                                                    "chmod 755 /tmp/f 2>/dev/null && echo b=ok || echo b=denied")
    assert kv(out) == {"a": "ok", "b": "denied"}


def test_unknown_syscall_names_are_skipped(runtime, make_bundle):
    """Profiles list syscalls newer than the host's libseccomp (runc skips them)."""
    out = _run(runtime, make_bundle, _deny(["mkdir", "mkdirat", "no_such_syscall_at_all"]))
    assert "Operation not permitted" in out


@pytest.mark.deviation("runc", "refuses any seccomp flags: \"seccomp flags are not yet supported by runc\" (1.1.5)")
def test_log_flag(runtime, make_bundle):
    seccomp = _deny(MKDIR)
    seccomp["flags"] = ["SECCOMP_FILTER_FLAG_LOG"]
    assert "Operation not permitted" in _run(runtime, make_bundle, seccomp)


@pytest.mark.parametrize("seccomp", [
    {"defaultAction": "SCMP_ACT_NOPE"},
    {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_BOGUS"}]},
    {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_PDP11"]},
    {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]},
], ids=["default-action", "rule-action", "architecture", "operator"])
def test_bad_profile_fails_create(runtime, make_bundle, seccomp):
    cfg = base_config()
    cfg["linux"]["seccomp"] = seccomp
    b = make_bundle(cfg)
    cid = runtime.new_id("badsec")
    assert runtime.create(cid, b.path).returncode != 0
    assert cid not in runtime.list_ids()


class SeccompAgent:
    """A seccomp agent on a unix socket, as the runtime-spec describes one: for
    each connection it takes a container process state and a listener fd, then
    answers every notified syscall with EACCES."""

    RECV, SEND = 0xC0502100, 0xC0182101  # SECCOMP_IOCTL_NOTIF_RECV / _SEND
    NOTIF, RESP = "<QII iIQ6Q", "<QqiI"  # struct seccomp_notif, struct seccomp_notif_resp

    def __init__(self, path):
        import socket
        import threading

        self.path, self.states, self.syscalls = str(path), [], []
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.path)
        self._server.listen(4)
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self):
        import json
        import socket
        import threading

        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return  # closed
            with conn:
                msg, fds, _, _ = socket.recv_fds(conn, 1 << 16, 1)
            self.states.append(json.loads(msg))
            t = threading.Thread(target=self._answer, args=(fds[0],), daemon=True)
            t.start()
            self._threads.append(t)

    def _answer(self, fd):
        import fcntl
        import select
        import struct

        try:
            while select.select([fd], [], [], 20)[0]:
                buf = bytearray(struct.calcsize(self.NOTIF))
                try:
                    fcntl.ioctl(fd, self.RECV, buf)
                except OSError:
                    return  # every process of the filter is gone
                notif_id, _, _, nr, *_ = struct.unpack(self.NOTIF, buf)
                self.syscalls.append(nr)
                try:
                    fcntl.ioctl(fd, self.SEND, bytearray(struct.pack(self.RESP, notif_id, 0, -13, 0)))
                except OSError:
                    pass  # the caller died meanwhile
        finally:
            os.close(fd)

    def close(self):
        import socket

        self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        self._threads[0].join(5)  # (answering threads end with their filters' processes)


def _notify(agent):
    return {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": agent.path, "listenerMetadata": "m1",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [{"names": MKDIR, "action": "SCMP_ACT_NOTIFY"}]}


@pytest.mark.parametrize("no_new_privs", [True, False], ids=["nnp", "no-nnp"])
def test_notify_hands_the_syscall_to_the_seccomp_agent(runtime, make_bundle, tmp_path, no_new_privs):
    agent = SeccompAgent(tmp_path / "agent.sock")
    try:
        out = _run(runtime, make_bundle, _notify(agent), no_new_privs=no_new_privs)
    finally:
        agent.close()
    assert "Permission denied" in out and kv(out)["rc"] == "1"  # the agent's answer
    assert agent.syscalls  # it saw the mkdir
    (state,) = agent.states
    assert (state["fds"], state["metadata"]) == (["seccompFd"], "m1")
    assert state["pid"] > 0 and state["state"]["pid"] == state["pid"] and state["state"]["id"]


@pytest.mark.deviation("crun", "accepts SCMP_ACT_NOTIFY without a listenerPath")
def test_notify_without_a_listener_path_is_refused(runtime, make_bundle):
    cfg = base_config()
    cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                               "syscalls": [{"names": MKDIR, "action": "SCMP_ACT_NOTIFY"}]}
    b = make_bundle(cfg)
    r = runtime.create(runtime.new_id("nl"), b.path)
    assert r.returncode != 0 and "listenerPath" in r.stderr


def test_an_exec_d_process_gets_its_own_listener(runtime, make_bundle, tmp_path):
    agent = SeccompAgent(tmp_path / "agent.sock")
    try:
        cfg = base_config(["sleep", "600"])
        cfg["root"]["readonly"] = False
        cfg["linux"]["seccomp"] = _notify(agent)
        cid = runtime.new_id("nx")
        runtime.check(runtime.run(cid, make_bundle(cfg).path, detach=True), "run -d")
        r = runtime.cmd("exec", cid, "sh", "-c", PROBE)
    finally:
        agent.close()
    assert "Permission denied" in r.stdout and kv(r.stdout)["rc"] == "1"
    assert len(agent.states) == 2 and agent.states[1]["pid"] != agent.states[0]["pid"]


@pytest.mark.parametrize("no_new_privs", [True, False], ids=["nnp", "no-nnp"])
def test_every_exec_d_process_gets_the_profile(runtime, make_bundle, no_new_privs):
    """The later execs too (runpy-oci loads the BPF it generated for the first then)."""
    cfg = base_config(["sleep", "600"])
    cfg["root"]["readonly"] = False
    cfg["process"]["noNewPrivileges"] = no_new_privs
    cfg["linux"]["seccomp"] = _deny(MKDIR)
    cid = runtime.new_id("sx")
    runtime.check(runtime.run(cid, make_bundle(cfg).path, detach=True), "run -d")
    outs = [runtime.cmd("exec", cid, "sh", "-c", PROBE).stdout for _ in range(3)]
    assert all("Operation not permitted" in out and kv(out)["rc"] == "1" for out in outs), outs
