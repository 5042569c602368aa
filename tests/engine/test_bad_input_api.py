"""Bad requests over the API at engine-py and at dockerd: the same status and
message where clients read it, nothing half-made, and the engine keeps serving."""
import json
import socket

import pytest

from test_vs_dockerd import BAD_CREATES, DOCKERD_ANSWERS_500, UnixConnection


def call(socket_path: str, method: str, path: str, body: bytes | None = None,
         content_type: str = "application/json") -> tuple[int, str]:
    """Status and message ({"message"}'s value, or the raw body) of one request."""
    conn = UnixConnection(socket_path)
    try:
        conn.request(method, f"/v1.41{path}", body, {"Content-Type": content_type} if body is not None else {})
        response = conn.getresponse()
        raw = response.read().decode(errors="replace")
    finally:
        conn.close()
    try:
        return response.status, json.loads(raw)["message"]
    except (ValueError, KeyError, TypeError):
        return response.status, raw


def both(engine_py, dockerd, method, path, body=None, **kwargs):
    return (call(engine_py.socket, method, path, body, **kwargs), call(dockerd.socket, method, path, body, **kwargs))


def created_ids(daemon) -> set[str]:
    return set(daemon.docker("ps", "-aq", "--no-trunc").stdout.split())


# Bodies Go's decoder refuses (dockerd 20.10: 500). Type errors are worded
# as Go words them; for a syntax error only the status is compared (the
# text is Go's scanner's), and ours must be one line.
SYNTAX_ERRORS = {"not-json": b"{not json", "a-bare-word": b"busybox"}
TYPE_ERRORS = {
    "truncated": b'{"Image": "busybox"',
    "cmd-a-number": b'{"Image": "busybox", "Cmd": 5}',
    "cmd-numbers": b'{"Image": "busybox", "Cmd": [1]}',
    "env-a-string": b'{"Image": "busybox", "Env": "A=1"}',
    "hostconfig-a-string": b'{"Image": "busybox", "HostConfig": "x"}',
    "memory-a-string": b'{"Image": "busybox", "HostConfig": {"Memory": "1g"}}',
    "memory-a-fraction": b'{"Image": "busybox", "HostConfig": {"Memory": 1.5}}',
    "labels-a-list": b'{"Image": "busybox", "Labels": ["a"]}',
    "label-a-number": b'{"Image": "busybox", "Labels": {"a": 1}}',
    "tty-a-string": b'{"Image": "busybox", "Tty": "yes"}',
    "ports-a-list": b'{"Image": "busybox", "ExposedPorts": [1]}',
    "image-a-number": b'{"Image": 5}',
    "an-array": b"[1]",
    "cap-add-a-number": b'{"Image": "busybox", "HostConfig": {"CapAdd": 5}}',
    "restart-name-a-number": b'{"Image": "busybox", "HostConfig": {"RestartPolicy": {"Name": 5}}}',
    "ulimit-hard-a-string": b'{"Image": "busybox", "HostConfig": {"Ulimits": [{"Name": "nofile", "Hard": "x"}]}}',
}


@pytest.mark.parametrize("case", sorted(SYNTAX_ERRORS) + sorted(TYPE_ERRORS))
def test_malformed_bodies_are_refused_as_dockerd_refuses_them(engine_py, dockerd, case):
    before = created_ids(engine_py)
    ours, theirs = both(engine_py, dockerd, "POST", "/containers/create",
                        SYNTAX_ERRORS.get(case) or TYPE_ERRORS[case])
    if case in SYNTAX_ERRORS:
        assert ours[0] == theirs[0] and ours[1] and "\n" not in ours[1].strip()
    else:
        assert ours == theirs
    assert created_ids(engine_py) == before


@pytest.mark.parametrize("case", sorted(BAD_CREATES))
def test_bad_creates_over_the_api_match_dockerd(engine_py, dockerd, case):
    before = created_ids(engine_py)
    body = json.dumps({"Image": "busybox", **BAD_CREATES[case]}).encode()
    ours, theirs = both(engine_py, dockerd, "POST", "/containers/create", body)
    assert theirs[0] == (500 if case in DOCKERD_ANSWERS_500 else 400)
    assert ours[1] == theirs[1]
    assert created_ids(engine_py) == before


@pytest.mark.parametrize("case, path, body", [
    ("unknown-image", "/containers/create", {"Image": "nosuchimage:1"}),
    ("unknown-runtime", "/containers/create", {"Image": "busybox", "HostConfig": {"Runtime": "nosuch"}}),
    ("invalid-name", "/containers/create?name=a%2Fb", {"Image": "busybox"}),
    ("empty-body", "/containers/create", None),
    ("bad-wait-condition", "/containers/nosuch/wait?condition=never", None),
    ("unknown-path", "/containers/x/frobnicate", None),
])
def test_refusals_over_the_api_match_dockerd(engine_py, dockerd, case, path, body):
    before = created_ids(engine_py)
    method = "GET" if path.startswith("/containers/json") else "POST"
    raw = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
    ours, theirs = both(engine_py, dockerd, method, path, raw)
    assert ours == theirs
    assert created_ids(engine_py) == before


def test_garbage_on_the_socket_leaves_the_engine_serving(engine_py):
    for junk in (b"\x00\xff" * 1000, b"GET / HTTP/1.1\r\n" + b"X: " + b"y" * (2 << 20) + b"\r\n\r\n",
                 b"POST /containers/create HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n{"):
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(engine_py.socket)
            try:
                s.sendall(junk)
                s.shutdown(socket.SHUT_WR)
                s.recv(4096)
            except OSError:
                pass
    assert call(engine_py.socket, "GET", "/_ping") == (200, "OK")
    assert engine_py.docker("ps").returncode == 0
