"""engine.api.server over a temporary unix socket, its routes made here: the
HTTP/1.1 behaviour clients rely on (routing, /v1.NN, errors, keep-alive,
pipelining, streamed replies, hijack, bad requests) without a daemon."""
import json
import socket
import threading

import h11
import pytest

from engine.api.http import Hijack, Reply, Streamed, http_date, json_reply
from engine.api.server import Router, Server
from engine.errors import Conflict, NotFound, NotModified

MIB = 1 << 20
WORKERS = 8


class Routes:
    """Test routes; what they saw is kept for the assertions."""

    def __init__(self):
        self.stream_go_on = threading.Event()
        self.stream_closed = threading.Event()
        self.hijack_done = threading.Event()
        self.seen = []

    def add_to(self, router: Router) -> None:
        router.add("GET", "/_ping", lambda r: Reply(200, b"OK", "text/plain; charset=utf-8"))
        router.add("GET", "/containers/{name}/json", lambda r: json_reply({"name": r.params["name"],
                                                                           "version": r.api_version}))
        router.add("GET", "/images/{name:.*}/json", lambda r: json_reply({"name": r.params["name"]}))
        router.add("GET", "/query", lambda r: json_reply({"all": r.bool_arg("all"), "filters": r.arg("filters")}))
        router.add("POST", "/echo", lambda r: json_reply(r.json()))
        router.add("POST", "/length", lambda r: json_reply(len(r.body.read())))
        router.add("POST", "/ignore-body", lambda r: Reply(204))
        router.add("GET", "/missing", self._raise(NotFound("No such container: x")))
        router.add("POST", "/conflict", self._raise(Conflict('Conflict. The container name "/x" is already in use')))
        router.add("POST", "/started", self._raise(NotModified("container already started")))
        router.add("GET", "/bug", self._raise(RuntimeError("a bug")))
        router.add("GET", "/stream", self._stream)
        router.add("GET", "/forever", self._forever)
        router.add("POST", "/attach", lambda r: Hijack(self._echo))

    @staticmethod
    def _raise(error):
        def route(request):
            raise error
        return route

    def _stream(self, request):
        def chunks():
            yield b'{"status":"first"}\n'
            self.stream_go_on.wait()
            yield b'{"status":"second"}\n'
        return Streamed(chunks())

    def _forever(self, request):
        def chunks():
            try:
                yield b"{}\n"
                request.disconnected.wait()
                yield b"{}\n"
            finally:
                self.stream_closed.set()
        return Streamed(chunks())

    def _echo(self, stream):
        """Sends back what comes, upper-cased, until the client closes its side."""
        try:
            while True:
                data = stream.read(65536)
                if not data:
                    break
                stream.write(data.upper())
            stream.write(b"BYE")
        finally:
            self.hijack_done.set()


@pytest.fixture
def api(tmp_path):
    routes = Routes()
    router = Router()
    routes.add_to(router)
    server = Server(router, max_workers=WORKERS)
    path = str(tmp_path / "api.sock")
    server.listen_unix(path)
    server.start()
    yield path, routes, server
    routes.stream_go_on.set()
    server.stop()


class Client:
    """A client connection that parses replies with h11 (no hand parsing here either)."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.h11 = h11.Connection(h11.CLIENT)

    def send(self, method, target, body=b"", headers=()):
        hdrs = [("Host", "engine"), *headers]
        if method in ("POST", "PUT"):
            hdrs.append(("Content-Length", str(len(body))))
        data = self.h11.send(h11.Request(method=method, target=target, headers=hdrs))
        if method in ("POST", "PUT"):
            data += self.h11.send(h11.Data(data=body)) if body else b""
            data += self.h11.send(h11.EndOfMessage())
        else:
            data += self.h11.send(h11.EndOfMessage())
        self.sock.sendall(data)

    def next_event(self):
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                self.h11.receive_data(self.sock.recv(65536))
                continue
            return event

    def reply(self):
        """(status, headers, body) of the next reply."""
        response = self.next_event()
        assert isinstance(response, h11.Response), response
        body = b""
        while True:
            event = self.next_event()
            if isinstance(event, h11.EndOfMessage):
                break
            body += event.data
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
        headers = {k.decode().lower(): v.decode() for k, v in response.headers}
        return response.status_code, headers, body

    def get(self, target, method="GET", body=b"", headers=()):
        self.send(method, target, body, headers)
        return self.reply()

    def close(self):
        self.sock.close()


@pytest.fixture
def client(api):
    c = Client(api[0])
    yield c
    c.close()


def test_a_route_answers_with_and_without_the_version_prefix(client):
    assert client.get("/_ping")[::2] == (200, b"OK")
    status, headers, body = client.get("/v1.41/_ping")
    assert (status, body) == (200, b"OK")
    assert headers["api-version"] == "1.41" and headers["ostype"] == "linux" and "date" in headers
    assert json.loads(client.get("/v1.24/containers/abc/json")[2]) == {"name": "abc", "version": "1.24"}
    assert json.loads(client.get("/containers/abc/json")[2]) == {"name": "abc", "version": "1.41"}


def test_a_name_with_slashes_matches_a_rest_of_path_parameter(client):
    assert json.loads(client.get("/v1.41/images/docker.io/library/busybox:latest/json")[2]) == \
        {"name": "docker.io/library/busybox:latest"}


def test_the_path_is_decoded_before_routing(client):
    assert json.loads(client.get("/v1.41/containers/a%20b/json")[2])["name"] == "a b"


def test_query_parameters_reach_the_route(client):
    body = client.get("/query?all=1&filters=%7B%22label%22%3A%5B%22a%22%5D%7D")[2]
    assert json.loads(body) == {"all": True, "filters": '{"label":["a"]}'}
    assert json.loads(client.get("/query?all=false")[2])["all"] is False


def test_a_version_outside_the_supported_range_is_refused_in_dockerds_words(client):
    status, headers, body = client.get("/v1.99/_ping")
    assert status == 400 and headers["content-type"] == "application/json"
    assert json.loads(body) == {"message": "client version 1.99 is too new. Maximum supported API version is 1.41"}
    status, _, body = client.get("/v1.23/_ping")
    assert status == 400
    assert json.loads(body)["message"] == ("client version 1.23 is too old. Minimum supported API version is 1.24, "
                                           "please upgrade your client to a newer version")


def test_an_unknown_path_or_method_is_dockerds_404(client):
    for method, target in (("GET", "/nope"), ("GET", "/v1.41/nope"), ("POST", "/_ping"), ("GET", "/v1.41x/_ping"),
                           ("DELETE", "/containers/abc/json")):
        status, headers, body = client.get(target, method=method)
        assert (status, json.loads(body)) == (404, {"message": "page not found"}), target
        assert "api-version" not in headers  # dockerd's 404 does not pass its version middleware


def test_errors_are_json_messages_with_dockerds_status(client):
    assert client.get("/missing")[::2] == (404, b'{"message":"No such container: x"}\n')
    status, _, body = client.get("/conflict", "POST")
    assert status == 409 and json.loads(body)["message"].startswith("Conflict.")
    assert client.get("/started", "POST")[::2] == (304, b"")
    assert client.get("/bug")[::2] == (500, b'{"message":"a bug"}\n')
    assert client.get("/_ping")[0] == 200  # the connection goes on after each


def test_head_of_a_get_route_has_its_length_and_no_body(client):
    status, headers, body = client.get("/containers/abc/json", method="HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0
    assert client.get("/_ping")[2] == b"OK"


def test_request_bodies_json_and_bad_json(client):
    assert json.loads(client.get("/echo", "POST", b'{"Image": "busybox"}')[2]) == {"Image": "busybox"}
    status, _, body = client.get("/echo", "POST", b'{"Image": ')
    assert status == 400 and json.loads(body)["message"].startswith("invalid JSON: ")
    status, _, body = client.get("/echo", "POST", b"{}", headers=[("Content-Type", "text/plain")])
    assert status == 400 and "unsupported Content-Type header (text/plain)" in json.loads(body)["message"]


def test_a_large_body_is_streamed_to_the_route_and_an_unread_one_skipped(client):
    big = b"x" * (5 * MIB)
    assert json.loads(client.get("/length", "POST", big)[2]) == len(big)
    assert client.get("/ignore-body", "POST", big)[0] == 204
    assert client.get("/_ping")[2] == b"OK"  # the same connection, past the skipped body


def test_a_client_expecting_100_continue_is_told_to_send_its_body(client):
    client.sock.sendall(client.h11.send(h11.Request(method="POST", target="/length", headers=[
        ("Host", "x"), ("Content-Length", "3"), ("Expect", "100-continue")])))
    assert client.next_event().status_code == 100
    client.sock.sendall(client.h11.send(h11.Data(data=b"abc")) + client.h11.send(h11.EndOfMessage()))
    assert client.reply()[::2] == (200, b"3\n")


def test_keep_alive_serves_requests_on_one_connection(api, client):
    server = api[2]
    for _ in range(5):
        assert client.get("/_ping")[2] == b"OK"
    assert len(server.listener.connections) == 1


def test_pipelined_requests_are_answered_in_order(client):
    raw = b"".join(f"GET /containers/c{i}/json HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in range(4))
    client.sock.sendall(raw)
    client.h11 = h11.Connection(h11.CLIENT)
    names = []
    for i in range(4):
        client.h11.send(h11.Request(method="GET", target=f"/containers/c{i}/json", headers=[("Host", "x")]))
        client.h11.send(h11.EndOfMessage())
        names.append(json.loads(client.reply()[2])["name"])
    assert names == ["c0", "c1", "c2", "c3"]


def test_a_streamed_reply_sends_headers_and_each_chunk_at_once(api, client):
    routes = api[1]
    client.send("GET", "/stream")
    response = client.next_event()
    assert isinstance(response, h11.Response) and response.status_code == 200
    assert (b"transfer-encoding", b"chunked") in [(k.lower(), v) for k, v in response.headers]
    first = client.next_event()
    assert first.data == b'{"status":"first"}\n'  # before the route goes on: it was flushed
    routes.stream_go_on.set()
    assert client.next_event().data == b'{"status":"second"}\n'
    assert isinstance(client.next_event(), h11.EndOfMessage)


def test_a_stream_ends_when_its_client_goes(api, client):
    routes = api[1]
    client.send("GET", "/forever")
    assert client.next_event().status_code == 200
    assert client.next_event().data == b"{}\n"
    client.close()
    assert routes.stream_closed.wait(60)


def test_hijack_upgrades_and_hands_over_the_raw_connection(api, client):
    routes = api[1]
    request = client.h11.send(h11.Request(method="POST", target="/v1.41/attach", headers=[
        ("Host", "x"), ("Connection", "Upgrade"), ("Upgrade", "tcp"), ("Content-Length", "0")]))
    client.sock.sendall(request + client.h11.send(h11.EndOfMessage()) + b"early bytes ")  # in one write
    response = client.next_event()
    assert isinstance(response, h11.InformationalResponse) and response.status_code == 101
    assert response.reason == b"UPGRADED"
    assert dict(response.headers)[b"upgrade"] == b"tcp"
    client.sock.sendall(b"and late")
    received = bytes(client.h11.trailing_data[0])
    while len(received) < len(b"EARLY BYTES AND LATE"):
        received += client.sock.recv(65536)
    assert received == b"EARLY BYTES AND LATE"
    client.sock.shutdown(socket.SHUT_WR)
    rest = b""
    while chunk := client.sock.recv(65536):
        rest += chunk
    assert rest == b"BYE"  # and then the server closed the connection
    assert routes.hijack_done.is_set()


def test_hijack_without_upgrade_is_dockerds_bare_200(client):
    client.sock.sendall(b"POST /attach HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    client.sock.shutdown(socket.SHUT_WR)
    received = b""
    while chunk := client.sock.recv(65536):
        received += chunk
    assert received == b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\nBYE"


def test_a_bad_request_gets_400_and_the_server_keeps_serving(api):
    bad = Client(api[0])
    bad.sock.sendall(b"GARBAGE\r\n\r\n")
    status, headers, body = bad.reply()
    assert (status, body) == (400, b"400 Bad Request") and headers["connection"] == "close"
    assert bad.sock.recv(10) == b""
    bad.close()
    good = Client(api[0])
    assert good.get("/_ping")[2] == b"OK"
    good.close()


def test_idle_connections_cost_no_thread(api):
    path, _, server = api
    warm = Client(path)
    assert warm.get("/_ping")[0] == 200  # the first worker exists
    before = threading.active_count()
    idle = [Client(path) for _ in range(200)]
    try:
        for c in idle:  # one request each, one after the other: every connection is in, then idle
            assert c.get("/_ping")[0] == 200
        assert len(server.listener.connections) == 201
        assert threading.active_count() - before < WORKERS  # at most the pool's workers, not a thread a connection
    finally:
        for c in idle:
            c.close()
        warm.close()


@pytest.mark.parametrize("seconds", [0, 951782400, 1735689599, 4102444800.75])
def test_the_date_header_is_email_utils_formatdate(seconds):
    import email.utils

    assert http_date(seconds) == email.utils.formatdate(seconds, usegmt=True)
