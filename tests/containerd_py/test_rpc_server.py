"""The daemon's gRPC server (containerd_py.rpc) against grpcio's client: unary
and streaming calls, statuses, metadata, deadlines, cancellation, flow
control, size limits, bad clients and a graceful stop. No root needed: test
servicers on the real service descriptors, a unix socket in tmp_path."""
import logging
import socket
import threading
import time

import grpc
import h2.connection
import h2.events
import pytest
from google.protobuf import empty_pb2

from containerd_py import rpc
from containerd_py.api.containerd.services import (content_pb2 as content_pb, content_pb2_grpc, events_pb2 as events_pb,
                                                   events_pb2_grpc, images_pb2 as images_pb, images_pb2_grpc,
                                                   version_pb2 as version_pb, version_pb2_grpc)
from containerd_py.rpc import call as rpc_call, connection as rpc_connection

MiB = 1 << 20


class VersionEcho:
    """Version answers with the call's `containerd-namespace` metadata."""
    SERVICE = version_pb.DESCRIPTOR.services_by_name["Version"]

    def __init__(self):
        self.release = threading.Event()
        self.started = threading.Event()

    def Version(self, request, context):
        ns = dict(context.invocation_metadata()).get("containerd-namespace", "")
        if ns == "slow":
            self.started.set()
            self.release.wait(10)
        if ns == "fail":
            context.abort(rpc.StatusCode.NOT_FOUND, "no such thing: \u00fc at 100%\nsecond line")
        if ns == "bug":
            raise ZeroDivisionError("a bug")
        return version_pb.VersionResponse(version=ns, revision="r")


class Content:
    """Write counts what it gets (slowly, if asked); Read streams until cancelled."""
    SERVICE = content_pb.DESCRIPTOR.services_by_name["Content"]

    def __init__(self):
        self.read_closed = threading.Event()
        self.deadline_seen = threading.Event()
        self.consume_delay = 0.0

    def Write(self, requests, context):
        total = 0
        for req in requests:
            time.sleep(self.consume_delay)
            total += len(req.data)
            yield content_pb.WriteContentResponse(action=req.action, offset=total)

    def Read(self, request, context):
        try:
            while True:
                if not context.is_active():
                    self.deadline_seen.set()
                    return
                yield content_pb.ReadContentResponse(offset=request.offset, data=b"x" * request.size)
                time.sleep(0.01)
        finally:
            self.read_closed.set()


class Events:
    SERVICE = events_pb.DESCRIPTOR.services_by_name["Events"]

    def Subscribe(self, request, context):
        while context.is_active():
            time.sleep(0.01)
        return
        yield  # a generator that yields nothing


@pytest.fixture
def served(tmp_path):
    """(servicers, channel, server, socket path) of a started server."""
    def make(max_receive=16 * MiB):
        servicers = {"version": VersionEcho(), "content": Content(), "events": Events()}
        server = rpc.Server(max_workers=16, max_receive_message_length=max_receive)
        for s in servicers.values():
            server.add_service(s.SERVICE, s)
        path = str(tmp_path / "rpc.sock")
        server.listen_unix(path)
        server.start()
        channel = grpc.insecure_channel(f"unix:{path}")
        made.append((server, channel))
        return servicers, channel, server, path

    made = []
    yield make
    for server, channel in made:
        channel.close()
        assert server.stop(0).wait(10)


def version(channel, ns, timeout=10):
    return version_pb2_grpc.VersionStub(channel).Version(empty_pb2.Empty(), metadata=[("containerd-namespace", ns)],
                                                         timeout=timeout)


def test_unary_call_sees_its_metadata(served):
    _, channel, _, _ = served()
    assert version(channel, "ns-one").version == "ns-one"
    assert version(channel, "ns-two").version == "ns-two"


def test_abort_gives_the_code_and_the_message_intact(served):
    _, channel, _, _ = served()
    with pytest.raises(grpc.RpcError) as e:
        version(channel, "fail")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert e.value.details() == "no such thing: \u00fc at 100%\nsecond line"


def test_a_handler_bug_is_unknown_and_the_server_goes_on(served):
    _, channel, _, _ = served()
    with pytest.raises(grpc.RpcError) as e:
        version(channel, "bug")
    assert e.value.code() == grpc.StatusCode.UNKNOWN
    assert "ZeroDivisionError: a bug" in e.value.details()
    assert version(channel, "after").version == "after"


def test_a_request_that_does_not_parse_is_internal(served):
    _, channel, _, _ = served()
    raw = channel.unary_unary("/containerd.services.version.v1.Version/Version",
                              request_serializer=lambda b: b, response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError) as e:
        raw(b"\xff\xff\xff", timeout=10)
    assert e.value.code() == grpc.StatusCode.INTERNAL
    assert "cannot parse the request" in e.value.details()
    assert version(channel, "after").version == "after"


def test_unregistered_service_and_unimplemented_method(served):
    _, channel, _, _ = served()
    with pytest.raises(grpc.RpcError) as e:
        images_pb2_grpc.ImagesStub(channel).Get(images_pb.GetImageRequest(name="x"), timeout=10)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "/containerd.services.images.v1.Images/Get" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:  # Content has no Info here
        content_pb2_grpc.ContentStub(channel).Info(content_pb.InfoRequest(digest="sha256:00"), timeout=10)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_bidi_stream_of_big_messages_with_a_slow_handler(served):
    """40 MiB in 1 MiB messages to a handler slower than the client: nothing
    is lost or reordered, and flow control holds the client back, so what
    waits for the handler stays within the request buffer and one window."""
    servicers, channel, server, _ = served()
    servicers["content"].consume_delay = 0.02
    held, done = [0], threading.Event()

    def watch():
        while not done.is_set():
            for conn in list(server._connections):
                for call in list(conn.calls.values()):
                    held[0] = max(held[0], call._held + call._messages.partial)
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        requests = (content_pb.WriteContentRequest(action=content_pb.WRITE, data=bytes([i]) * MiB) for i in range(40))
        offsets = [r.offset for r in content_pb2_grpc.ContentStub(channel).Write(requests, timeout=60)]
    finally:
        done.set()
        watcher.join()
    assert offsets == [MiB * (i + 1) for i in range(40)]
    assert 0 < held[0] <= rpc_call.REQUEST_BUFFER + rpc_connection.STREAM_WINDOW + MiB


def test_client_cancelling_a_server_stream_closes_the_handler(served):
    servicers, channel, _, _ = served()
    responses = content_pb2_grpc.ContentStub(channel).Read(content_pb.ReadContentRequest(offset=7, size=1000))
    first = next(responses)
    assert (first.offset, len(first.data)) == (7, 1000)
    responses.cancel()
    assert servicers["content"].read_closed.wait(10)


def test_deadline_ends_the_call_on_both_sides(served):
    servicers, channel, _, _ = served()
    stream = events_pb2_grpc.EventsStub(channel).Subscribe(events_pb.SubscribeRequest(), timeout=0.3)
    with pytest.raises(grpc.RpcError) as e:
        list(stream)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    responses = content_pb2_grpc.ContentStub(channel).Read(content_pb.ReadContentRequest(size=10), timeout=0.3)
    with pytest.raises(grpc.RpcError):
        list(responses)
    assert servicers["content"].deadline_seen.wait(10)


def test_message_over_the_receive_limit_is_resource_exhausted(served):
    _, channel, _, _ = served(max_receive=MiB)
    requests = iter([content_pb.WriteContentRequest(action=content_pb.WRITE, data=b"y" * (2 * MiB))])
    with pytest.raises(grpc.RpcError) as e:
        list(content_pb2_grpc.ContentStub(channel).Write(requests, timeout=10))
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert version(channel, "still").version == "still"


def test_a_big_frame_in_the_same_write_as_the_settings_ack_is_taken(served):
    """The server advertises large frames; a client may send one right after
    its ACK of that, in one write (grpcio does): h2 alone would check it
    against HTTP/2's default of 16 KiB and end the connection."""
    _, _, _, path = served()
    client = h2.connection.H2Connection()
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(path)
        client.initiate_connection()
        s.sendall(client.data_to_send())
        while not any(isinstance(e, h2.events.RemoteSettingsChanged) for e in client.receive_data(s.recv(65536))):
            pass
        client.send_headers(1, [(":method", "POST"), (":scheme", "http"), (":path", "/containerd.services.content.v1"
                                ".Content/Write"), (":authority", "x"), ("content-type", "application/grpc")])
        message = content_pb.WriteContentRequest(action=content_pb.WRITE, data=b"z" * (64 << 10)).SerializeToString()
        client.send_data(1, len(message).to_bytes(5, "big") + message, end_stream=True)
        s.sendall(client.data_to_send())  # the ACK, the HEADERS and one 64 KiB DATA frame
        trailers = []
        while not trailers:
            for event in client.receive_data(s.recv(65536)):
                assert not isinstance(event, h2.events.ConnectionTerminated), event
                if isinstance(event, h2.events.TrailersReceived):
                    trailers = event.headers
            s.sendall(client.data_to_send())
    assert (b"grpc-status", b"0") in trailers


@pytest.mark.parametrize("garbage", [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff" * 3,
                                     b"\x00" * 100])
def test_a_client_speaking_nonsense_is_dropped_and_others_are_served(served, garbage):
    _, channel, _, path = served()
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(garbage)
        s.shutdown(socket.SHUT_WR)  # an incomplete frame is waited for until the client is done
        while s.recv(65536):  # the server answers (GOAWAY) and closes
            pass
    assert version(channel, "fine").version == "fine"


def test_stop_lets_calls_in_flight_finish_and_takes_no_new_connections(served):
    servicers, channel, server, path = served()
    result = {}

    def slow_call():
        result["version"] = version(channel, "slow").version

    t = threading.Thread(target=slow_call)
    t.start()
    assert servicers["version"].started.wait(10)
    stopped = server.stop(grace=10)
    time.sleep(0.1)
    with socket.socket(socket.AF_UNIX) as s, pytest.raises(OSError):
        s.connect(path)
    servicers["version"].release.set()
    t.join(10)
    assert result == {"version": "slow"}
    assert stopped.wait(10)


def test_a_call_waits_for_a_worker_that_cannot_start_yet(served, monkeypatch, caplog):
    """A thread limit: the pool's thread start fails three times; the call is
    served once a worker starts, and the episode is logged once, not per retry."""
    caplog.set_level(logging.INFO)
    failures = [3]
    start = threading.Thread.start

    def limited_start(thread):
        if thread.name.startswith("grpc_") and failures[0]:
            failures[0] -= 1
            raise RuntimeError("can't start new thread")
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", limited_start)
    _, channel, _, _ = served()
    assert version(channel, "patient").version == "patient"
    assert failures == [0]
    assert [r.getMessage() for r in caplog.records if "worker" in r.getMessage()] == [
        "grpc: cannot start a worker thread: can't start new thread; the call waits, retrying",
        "grpc: worker threads start again, after 3 failures"]
