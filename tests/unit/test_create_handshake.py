"""The runtime's side of create's handshake: stage 1 and the init share one
channel, so the init's "ready" may arrive before stage 1's "pid"."""
import pytest

from runpy_oci.create import _expect_ready, _handshake
from runpy_oci.errors import HookFailure, RuntimeFailure


class FakeChannel:
    def __init__(self, messages):
        self.messages, self.sent = list(messages), []

    def recv(self):
        return self.messages.pop(0) if self.messages else None

    def send(self, kind, **fields):
        self.sent.append(kind)


def test_pid_then_ready_is_left_for_later():
    channel = FakeChannel([{"type": "pid", "pid": 42}, {"type": "ready"}])
    assert _handshake(channel, 7, spec=None) == (42, [])
    assert channel.messages == [{"type": "ready"}]


def test_the_init_messages_before_pid_are_kept_in_order():
    channel = FakeChannel([{"type": "hooks"}, {"type": "ready"}, {"type": "pid", "pid": 42}])
    assert _handshake(channel, 7, spec=None) == (42, [{"type": "hooks"}, {"type": "ready"}])


def test_expect_ready_serves_the_init_in_the_order_it_asks():
    called = []
    channel = FakeChannel([{"type": "seccomp"}, {"type": "ready"}])
    _expect_ready(channel, [{"type": "hooks"}], {"hooks": lambda: called.append("hooks"),
                                                 "seccomp": lambda: called.append("seccomp")})
    assert called == ["hooks", "seccomp"]


def test_a_hook_failure_in_the_init_is_a_hook_failure():
    channel = FakeChannel([{"type": "error", "message": "hooks.createContainer[0]: /x exited with status 1",
                            "hook": True}])
    with pytest.raises(HookFailure, match="createContainer"):
        _expect_ready(channel, [], {})


@pytest.mark.parametrize("messages, message", [
    ([{"type": "error", "message": "linux.namespaces: nope"}], "linux.namespaces: nope"),
    ([], "exited before it was set up"),
])
def test_failures_are_reported(messages, message):
    with pytest.raises(RuntimeFailure, match=message):
        _handshake(FakeChannel(messages), 7, spec=None)
