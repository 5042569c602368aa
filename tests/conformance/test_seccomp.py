"""linux.seccomp: a profile is in force when the program runs."""
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
