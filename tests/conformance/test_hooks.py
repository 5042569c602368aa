"""Hooks at the moments the runtime-spec names, in the namespaces it names, with
the state it names on stdin; and what a failing hook does to the lifecycle."""
import json
import os
import stat

import pytest

from .harness import base_config, bind_mount, wait_for

pytestmark = pytest.mark.root

KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")


def _recorder(log_dir: str, kind: str, extra: str = "") -> str:
    """A shell command that records the hook's stdin, mount namespace and turn, then runs `extra`."""
    return (f"cat > {log_dir}/{kind}.json; readlink /proc/self/ns/mnt > {log_dir}/{kind}.mnt; "
            f"echo {kind} >> {log_dir}/order; {extra}")


def _hooks_config(tmp_path, args=("sleep", "600"), fail=()):
    """Every kind of hook recording itself; the kinds in `fail` exit 1 after recording."""
    logs = tmp_path / "hooklog"
    logs.mkdir()
    os.chmod(logs, 0o777)
    cfg = base_config(list(args))
    bind_mount(cfg, logs, "/hooklog")
    cfg["hooks"] = {}
    for kind in KINDS:
        # startContainer's path and files resolve in the container (after the pivot); the rest on the host.
        where = "/hooklog" if kind == "startContainer" else str(logs)
        extra = "echo failing >&2; exit 1" if kind in fail else ""
        cfg["hooks"][kind] = [{"path": "/bin/sh", "args": ["sh", "-c", _recorder(where, kind, extra)]}]
    return cfg, logs


def _order(logs):
    path = logs / "order"
    return path.read_text().split() if path.exists() else []


def _state(logs, kind):
    return json.loads((logs / f"{kind}.json").read_text())


@pytest.mark.deviation("runc", "runc 1.1 passes startContainer the in-namespace pid and poststart "
                               "status 'created'")
@pytest.mark.deviation("crun", "crun 1.8 passes the create hooks status 'created'")
def test_each_hook_at_its_moment_with_its_state(runtime, make_bundle, tmp_path):
    cfg, logs = _hooks_config(tmp_path)
    b = make_bundle(cfg)
    cid = runtime.new_id("hk")
    runtime.check(runtime.create(cid, b.path), "create")
    assert _order(logs) == ["prestart", "createRuntime", "createContainer"]
    pid = runtime.state_json(cid)["pid"]
    for kind in ("prestart", "createRuntime", "createContainer"):
        state = _state(logs, kind)
        assert (state["id"], state["status"], state["pid"]) == (cid, "creating", pid), kind
        assert state["bundle"] == str(b.path)
    # createRuntime runs in the runtime's mount namespace, createContainer in the container's
    assert (logs / "createRuntime.mnt").read_text() == os.readlink("/proc/self/ns/mnt") + "\n"
    assert (logs / "createContainer.mnt").read_text() == os.readlink(f"/proc/{pid}/ns/mnt") + "\n"

    runtime.check(runtime.start(cid), "start")
    assert _order(logs)[3:] == ["startContainer", "poststart"]
    assert (_state(logs, "startContainer")["status"], _state(logs, "startContainer")["pid"]) == ("created", pid)
    assert (logs / "startContainer.mnt").read_text() == os.readlink(f"/proc/{pid}/ns/mnt") + "\n"
    assert (_state(logs, "poststart")["status"], _state(logs, "poststart")["pid"]) == ("running", pid)

    runtime.check(runtime.kill(cid, "KILL"), "kill")
    runtime.wait_status(cid, "stopped")
    runtime.check(runtime.delete(cid), "delete")
    assert _order(logs)[5:] == ["poststop"]
    assert _state(logs, "poststop")["status"] == "stopped"


def test_a_failing_create_runtime_hook_fails_create_and_leaves_nothing(runtime, make_bundle, tmp_path):
    cfg, logs = _hooks_config(tmp_path, fail=("createRuntime",))
    b = make_bundle(cfg)
    cid = runtime.new_id("hf")
    r = runtime.create(cid, b.path)
    assert r.returncode != 0
    assert cid not in runtime.list_ids()
    assert "createContainer" not in _order(logs)


@pytest.mark.deviation("crun", "crun 1.8 does not run poststop hooks when a create hook fails")
def test_a_failing_create_hook_still_runs_poststop(runtime, make_bundle, tmp_path):
    cfg, logs = _hooks_config(tmp_path, fail=("createContainer",))
    b = make_bundle(cfg)
    cid = runtime.new_id("hp")
    assert runtime.create(cid, b.path).returncode != 0
    assert _order(logs)[-1] == "poststop"


@pytest.mark.deviation("runc", "runc 1.1 runs poststart hooks during create, and a failure fails create")
def test_a_failing_poststart_hook_is_only_a_warning(runtime, make_bundle, tmp_path):
    cfg, logs = _hooks_config(tmp_path, fail=("poststart",))
    b = make_bundle(cfg)
    cid = runtime.new_id("hw")
    runtime.check(runtime.create(cid, b.path), "create")
    started = runtime.start(cid)
    assert started.returncode == 0, started.stderr
    assert runtime.status(cid) == "running"


@pytest.mark.deviation("runc", "runc 1.1 start exits 0 when a startContainer hook fails")
@pytest.mark.deviation("crun", "crun 1.8 start exits 0 when a startContainer hook fails")
def test_a_failing_start_container_hook_fails_start_and_stops_the_container(runtime, make_bundle, tmp_path):
    cfg, logs = _hooks_config(tmp_path, fail=("startContainer",))
    b = make_bundle(cfg)
    cid = runtime.new_id("hs")
    runtime.check(runtime.create(cid, b.path), "create")
    assert runtime.start(cid).returncode != 0
    wait_for(lambda: runtime.status(cid) == "stopped", what="stopped")
    assert "poststart" not in _order(logs)


def test_hook_gets_its_args_env_and_is_killed_at_its_timeout(runtime, make_bundle, tmp_path):
    out = tmp_path / "out"
    script = tmp_path / "hook.sh"
    script.write_text(f"#!/bin/sh\necho \"$1 $GREETING\" > {out}\n")  # args[0] is argv[0], lost to the shebang
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    cfg = base_config(["true"])
    cfg["hooks"] = {"createRuntime": [{"path": str(script), "args": ["first", "second"], "env": ["GREETING=hi"]}],
                    "prestart": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]}
    b = make_bundle(cfg)
    cid = runtime.new_id("ht")
    r = runtime.create(cid, b.path)
    assert r.returncode != 0  # the prestart hook was killed at its timeout
    assert cid not in runtime.list_ids()
    cfg["hooks"].pop("prestart")
    b = make_bundle(cfg)
    runtime.check(runtime.create(cid, b.path), "create")
    assert out.read_text() == "second hi\n"
