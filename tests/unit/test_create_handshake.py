"""The runtime's side of create's handshake: stage 1 and the init share one
channel, so the init's "ready" may arrive before stage 1's "pid"."""
import pytest

from runpy_oci.create import _handshake
from runpy_oci.errors import RuntimeFailure


class FakeChannel:
    def __init__(self, messages):
        self.messages, self.sent = list(messages), []

    def recv(self):
        return self.messages.pop(0) if self.messages else None

    def send(self, kind, **fields):
        self.sent.append(kind)


def test_pid_then_ready_is_left_for_later():
    channel = FakeChannel([{"type": "pid", "pid": 42}, {"type": "ready"}])
    assert _handshake(channel, 7, spec=None) == (42, False)
    assert channel.messages == [{"type": "ready"}]


def test_ready_before_pid_is_remembered():
    channel = FakeChannel([{"type": "ready"}, {"type": "pid", "pid": 42}])
    assert _handshake(channel, 7, spec=None) == (42, True)


@pytest.mark.parametrize("messages, message", [
    ([{"type": "error", "message": "linux.namespaces: nope"}], "linux.namespaces: nope"),
    ([], "exited before it was set up"),
])
def test_failures_are_reported(messages, message):
    with pytest.raises(RuntimeFailure, match=message):
        _handshake(FakeChannel(messages), 7, spec=None)
