"""The runtime's side of the channel to a process it starts: stage 1 and the
process share it, so the init's "ready" may arrive before stage 1's "pid"."""
import pytest

from runpy_oci.errors import HookFailure, RuntimeFailure
from runpy_oci.launch import Replies


class FakeChannel:
    def __init__(self, messages):
        self.messages, self.sent = list(messages), []

    def recv(self):
        return self.messages.pop(0) if self.messages else None

    def send(self, kind, **fields):
        self.sent.append(kind)


def replies(*messages):
    return Replies(FakeChannel(messages), "container init exited before it was set up")


def test_pid_then_ready_is_left_for_later():
    r = replies({"type": "pid", "pid": 42}, {"type": "ready"})
    assert r.until("pid") == {"type": "pid", "pid": 42}
    assert r.channel.messages == [{"type": "ready"}]


def test_the_process_messages_before_pid_wait_in_order_for_their_turn():
    called = []
    r = replies({"type": "hooks"}, {"type": "ready"}, {"type": "pid", "pid": 42})
    assert r.until("pid", {"userns": lambda: called.append("userns")})["pid"] == 42
    r.until("ready", {"hooks": lambda: called.append("hooks")})
    assert called == ["hooks"]


def test_until_ready_serves_the_init_in_the_order_it_asks():
    called = []
    r = replies({"type": "hooks"}, {"type": "seccomp"}, {"type": "ready"})
    r.until("ready", {"hooks": lambda: called.append("hooks"), "seccomp": lambda: called.append("seccomp")})
    assert called == ["hooks", "seccomp"]


def test_until_eof_serves_requests_until_the_program_runs():
    called = []
    assert replies({"type": "seccomp"}).until(None, {"seccomp": lambda: called.append("seccomp")}) is None
    assert called == ["seccomp"]


def test_a_hook_failure_in_the_init_is_a_hook_failure():
    r = replies({"type": "error", "message": "hooks.createContainer[0]: /x exited with status 1", "hook": True})
    with pytest.raises(HookFailure, match="createContainer"):
        r.until("ready")


@pytest.mark.parametrize("messages, message", [
    ([{"type": "error", "message": "linux.namespaces: nope"}], "linux.namespaces: nope"),
    ([], "exited before it was set up"),
])
def test_failures_are_reported(messages, message):
    with pytest.raises(RuntimeFailure, match=message):
        replies(*messages).until("pid")
