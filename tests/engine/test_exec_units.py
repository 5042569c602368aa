"""The exec service's pure parts: detach keys as dockerd reads and watches
them, the reconcile of exits missed while containerd was away, and the
container specs kept for the next exec."""
import json
from types import SimpleNamespace

import pytest

from containerd_py.types import ProcessState
from engine.containerd.exec import SPECS_KEPT, ContainerdExecs
from engine.containerd.tasks import ExecExit
from engine.errors import InvalidParameter
from engine.services.exec import UNKNOWN_EXIT, ExecInstance, ExecService
from engine.services.exec_io import DEFAULT_DETACH_KEYS, EscapeFilter, detach_key_bytes


@pytest.mark.parametrize("keys,expected", [
    ("ctrl-p,ctrl-q", DEFAULT_DETACH_KEYS), ("ctrl-@", b"\x00"), ("ctrl-_", b"\x1f"), ("a,b", b"ab"),
    ("DEL,ctrl-\\", b"\x7f\x1c"),
])
def test_detach_keys_as_moby_term_reads_them(keys, expected):
    assert detach_key_bytes(keys) == expected


@pytest.mark.parametrize("keys", ["ctrl-", "ctrl-1", "ab", "Ctrl-P", ""])
def test_bad_detach_keys_are_refused(keys):
    with pytest.raises(InvalidParameter, match=rf"^Invalid escape keys \({keys}\) provided$"):
        detach_key_bytes(keys)


def test_the_escape_filter_holds_a_beginning_and_lets_a_broken_one_go():
    escape = EscapeFilter(b"\x10\x11")
    assert escape.feed(b"ab\x10") == (b"ab", False)
    assert escape.feed(b"c") == (b"\x10c", False)  # not the sequence after all
    assert escape.feed(b"x\x10") == (b"x", False)
    assert escape.feed(b"\x11rest") == (b"", True)


class _Containers:
    """The container service as the exec service's exits see it: a store, published events."""

    def __init__(self):
        self.published = []
        self.store = self

    def find_exact(self, container_id):
        return f"record of {container_id}"

    def publish(self, record, action, attributes=None):
        self.published.append((record, action, attributes))

    def watch_execs(self, listener):
        self.listener = listener


class _Execs:
    def __init__(self, states):
        self.states, self.deleted = states, []

    def state(self, container_id, exec_id):
        return self.states.get(exec_id)

    def delete(self, container_id, exec_id):
        self.deleted.append(exec_id)


def _running_instance(service, exec_id):
    instance = ExecInstance(exec_id, "c1", "sleep", ["9"], [], "", "", False, False, False, True, True, b"", None,
                            running=True)
    instance.started.set()
    service._instances[exec_id] = instance
    return instance


def test_reconcile_records_exits_missed_while_containerd_was_away(tmp_path):
    execs = _Execs({"gone-meanwhile": ProcessState("c1", "gone-meanwhile", 0, "stopped", exit_status=4),
                    "still-running": ProcessState("c1", "still-running", 0, "running")})
    containers = _Containers()
    service = ExecService(containers, execs, str(tmp_path))
    assert containers.listener is service
    exited, running, lost = (_running_instance(service, i) for i in ("gone-meanwhile", "still-running", "lost"))
    service.reconcile()
    assert (exited.running, exited.exit_code) == (False, 4)
    assert (running.running, running.exit_code) == (True, None)
    assert (lost.running, lost.exit_code) == (False, UNKNOWN_EXIT)
    assert execs.deleted == ["gone-meanwhile", "lost"]
    assert containers.published == [
        ("record of c1", "exec_die", {"execID": "gone-meanwhile", "exitCode": "4"}),
        ("record of c1", "exec_die", {"execID": "lost", "exitCode": str(UNKNOWN_EXIT)})]
    service.exited(ExecExit("c1", "gone-meanwhile", 9, 0))  # a late event changes nothing
    assert exited.exit_code == 4


class _ContainersOfClient:
    """client.containers as ContainerdExecs reads it: specs by container ID, and the fetches counted."""

    def __init__(self):
        self.specs, self.fetched = {}, []

    def get(self, container_id):
        self.fetched.append(container_id)
        return SimpleNamespace(spec=SimpleNamespace(value=self.specs[container_id]))


def test_an_exec_fetches_the_container_spec_once_per_run():
    client = SimpleNamespace(containers=_ContainersOfClient())
    client.containers.specs["c1"] = json.dumps({"process": {"args": ["sh"], "cwd": "/"}}).encode()
    execs = ContainerdExecs(client)
    first = execs.container_process("c1", 100)
    first["args"] = ["changed by the caller"]
    assert execs.container_process("c1", 100) == {"args": ["sh"], "cwd": "/"}
    assert client.containers.fetched == ["c1"]
    client.containers.specs["c1"] = json.dumps({"process": {"args": ["sh"], "cwd": "/w"}}).encode()
    assert execs.container_process("c1", 200)["cwd"] == "/w"  # a new run of it: fetched again
    assert client.containers.fetched == ["c1", "c1"]


def test_the_specs_kept_are_bounded():
    client = SimpleNamespace(containers=_ContainersOfClient())
    execs = ContainerdExecs(client)
    for n in range(SPECS_KEPT + 1):
        client.containers.specs[f"c{n}"] = b'{"process": {}}'
        execs.container_process(f"c{n}", 1)
    execs.container_process("c0", 1)  # the oldest was dropped
    assert client.containers.fetched[-1] == "c0" and len(client.containers.fetched) == SPECS_KEPT + 2
