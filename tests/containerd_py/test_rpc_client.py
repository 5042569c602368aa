"""Our gRPC client channel (containerd_py.rpc.client_channel) against our
server: unary and streaming calls, statuses, metadata, deadlines,
cancellation, flow control, size limits, many threads, more calls than the
server takes on one connection, and a daemon that goes away and comes back.
No root needed: the test servicers of test_rpc_server.py on a unix socket in
tmp_path. (Against real containerd the client library's tests cover it.)"""
import os
import threading

import pytest
from google.protobuf import empty_pb2

from containerd_py import rpc
from containerd_py.api.containerd.services import (content_pb2 as content_pb, events_pb2 as events_pb,
                                                   version_pb2 as version_pb)
from containerd_py.rpc import client_channel
from containerd_py.rpc.client_channel import Channel, RpcError, Stub
from containerd_py.rpc.status import StatusCode
from test_rpc_server import Content, Events, VersionEcho

MiB = 1 << 20


@pytest.fixture
def served(tmp_path):
    """A started server: `serve()` gives (servicers, channel, socket path); again after `stop()`, on the same path."""
    path = str(tmp_path / "rpc.sock")
    state = {"servers": [], "channels": []}

    def serve(**channel_options):
        servicers = {"version": VersionEcho(), "content": Content(), "events": Events()}
        server = rpc.Server(max_workers=16)
        for s in servicers.values():
            server.add_service(s.SERVICE, s)
        if os.path.exists(path):
            os.unlink(path)
        server.listen_unix(path)
        server.start()
        state["servers"].append(server)
        channel = Channel(path, **channel_options)
        state["channels"].append(channel)
        return servicers, channel, path

    def stop():
        assert state["servers"].pop().stop(0).wait(10)

    serve.stop = stop
    yield serve
    for channel in state["channels"]:
        channel.close()
    for server in state["servers"]:
        assert server.stop(0).wait(10)


def version_stub(channel):
    return Stub(channel, version_pb.DESCRIPTOR.services_by_name["Version"])


def content_stub(channel):
    return Stub(channel, content_pb.DESCRIPTOR.services_by_name["Content"])


def version(channel, ns, timeout=10):
    return version_stub(channel).Version(empty_pb2.Empty(), metadata=[("containerd-namespace", ns)], timeout=timeout)


def test_unary_calls_carry_their_metadata_and_get_statuses_intact(served):
    _, channel, _ = served()
    assert version(channel, "ns-one").version == "ns-one"
    with pytest.raises(RpcError) as e:
        version(channel, "fail")
    assert (e.value.code, e.value.details) == (StatusCode.NOT_FOUND, "no such thing: \u00fc at 100%\nsecond line")
    with pytest.raises(RpcError) as e:
        version(channel, "bug")
    assert e.value.code == StatusCode.UNKNOWN and "ZeroDivisionError: a bug" in e.value.details
    assert version(channel, "after").version == "after"


def test_a_call_past_its_deadline_fails_and_the_channel_goes_on(served):
    servicers, channel, _ = served()
    try:
        with pytest.raises(RpcError) as e:
            version(channel, "slow", timeout=0.3)
        assert e.value.code == StatusCode.DEADLINE_EXCEEDED
    finally:
        servicers["version"].release.set()
    assert version(channel, "after").version == "after"


def test_many_threads_share_one_channel(served):
    _, channel, _ = served()
    answers, failures = {}, []

    def run(i):
        try:
            answers[i] = [version(channel, f"ns-{i}-{n}").version for n in range(30)]
        except Exception as e:  # noqa: BLE001 - reported below
            failures.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert answers == {i: [f"ns-{i}-{n}" for n in range(30)] for i in range(16)}


def test_more_calls_at_once_than_one_connection_takes(served):
    """Our server takes 100 streams per connection (h2's default): the 120 calls all run."""
    servicers, channel, _ = served()
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(version(channel, "slow", timeout=30).version))
               for _ in range(120)]
    for t in threads:
        t.start()
    assert servicers["version"].started.wait(10)
    servicers["version"].release.set()
    for t in threads:
        t.join()
    assert answers == ["slow"] * 120


def test_a_client_stream_of_big_messages_to_a_slow_handler(served):
    """40 MiB in 1 MiB messages, each answered: flow control holds the sender back, nothing is lost."""
    servicers, channel, _ = served()
    servicers["content"].consume_delay = 0.01
    call = content_stub(channel).Write(timeout=60)
    offsets = []
    for i in range(40):
        call.send(content_pb.WriteContentRequest(action=content_pb.WRITE, data=bytes([i]) * MiB))
        offsets.append(next(call).offset)
    call.done_sending()
    assert list(call) == []
    assert offsets == [MiB * (i + 1) for i in range(40)]


def test_a_server_stream_read_far_then_cancelled(served):
    servicers, channel, _ = served()
    responses = content_stub(channel).Read(content_pb.ReadContentRequest(size=MiB), timeout=60)
    assert sum(len(next(responses).data) for _ in range(60)) == 60 * MiB
    threading.Timer(0.1, responses.cancel).start()
    with pytest.raises(RpcError) as e:
        for _ in responses:
            pass
    assert e.value.code == StatusCode.CANCELLED
    assert servicers["content"].read_closed.wait(10)
    assert version(channel, "after").version == "after"


def test_messages_over_the_limits(served):
    _, channel, _ = served(max_receive=MiB // 2, max_send=MiB)
    responses = content_stub(channel).Read(content_pb.ReadContentRequest(size=MiB), timeout=10)
    with pytest.raises(RpcError) as e:
        next(responses)
    assert e.value.code == StatusCode.RESOURCE_EXHAUSTED
    assert e.value.details.startswith("grpc: received message larger than max (") and "vs. 524288)" in e.value.details
    call = content_stub(channel).Write(timeout=10)
    call.send(content_pb.WriteContentRequest(data=b"x" * (2 * MiB)))
    with pytest.raises(RpcError) as e:
        next(call)
    assert e.value.code == StatusCode.RESOURCE_EXHAUSTED and "trying to send message larger than max" in e.value.details
    assert version(channel, "after").version == "after"


def test_no_daemon_is_unavailable_and_a_lost_one_too_until_it_is_back(served):
    servicers, channel, path = served()
    subscription = Stub(channel, events_pb.DESCRIPTOR.services_by_name["Events"]).Subscribe(
        events_pb.SubscribeRequest())
    assert version(channel, "before").version == "before"
    threading.Timer(0.2, served.stop).start()
    with pytest.raises(RpcError) as e:
        next(subscription)
    assert e.value.code == StatusCode.UNAVAILABLE and path in e.value.details
    with pytest.raises(RpcError) as e:
        version(channel, "while-gone")
    assert (e.value.code, e.value.details) == (StatusCode.UNAVAILABLE,
                                               f"dial unix {path}: connect: connection refused")
    served()  # a new server on the same path
    assert version(channel, "back").version == "back"
    os.unlink(path)
    with pytest.raises(RpcError) as e:
        version(Channel(path), "no-daemon")
    assert e.value.details == f"dial unix {path}: connect: no such file or directory"


def test_a_closed_channel_ends_its_calls(served):
    _, channel, _ = served()
    subscription = Stub(channel, events_pb.DESCRIPTOR.services_by_name["Events"]).Subscribe(
        events_pb.SubscribeRequest())
    threading.Timer(0.2, channel.close).start()
    with pytest.raises(RpcError) as e:
        next(subscription)
    assert e.value.code == StatusCode.CANCELLED
    with pytest.raises(RpcError) as e:
        version(channel, "after")
    assert e.value.code == StatusCode.CANCELLED


def test_a_connection_out_of_stream_ids_drains_and_the_next_calls_go_on_another(served, monkeypatch):
    monkeypatch.setattr(client_channel, "LAST_STREAM_ID", 5)  # the third call on a connection is its last
    servicers, channel, _ = served()
    assert [version(channel, f"n{i}").version for i in range(2)] == ["n0", "n1"]
    first = channel._connections[0]
    slow = threading.Thread(target=lambda: version(channel, "slow"))
    slow.start()  # stream 5: the first connection's last call, still running
    assert servicers["version"].started.wait(10)
    assert version(channel, "on-another").version == "on-another"
    assert first.failure is None and len(channel._connections) == 2
    servicers["version"].release.set()
    slow.join()
    assert first.failure == "its stream ids are used up"
    assert channel._connections[-1].failure is None
