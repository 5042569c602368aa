"""The exec service's pure parts: detach keys as dockerd reads and watches
them, and the reconcile of exits missed while containerd was away."""
from types import SimpleNamespace

import pytest

from containerd_py.types import ProcessState
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
    store = SimpleNamespace(find_exact=lambda ref: None)  # no record: the exec_die events go nowhere

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
    service.exited(ExecExit("c1", "gone-meanwhile", 9, 0))  # a late event changes nothing
    assert exited.exit_code == 4
