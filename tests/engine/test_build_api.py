"""POST /build and /build/prune over the real API server, with a fake
builds service that records what it was given: the docker CLI 28 (legacy
builder) and 20.10 and docker-py sending real contexts, the stream and quiet
mode they read, a client that goes away mid-build, and the refusals of a
bad request in real dockerd's words."""
import bz2
import gzip
import io
import json
import lzma
import os
import socket
import subprocess
import threading
import time
from urllib.parse import quote, urlencode

import h11
import pytest

from engine.api.http import Reply
from engine.api.routes import build as build_routes
from engine.api.server import Router, Server
from engine.errors import InvalidParameter
from engine_daemon import DOCKER_CLIS
from test_build_context import tar
from test_vs_dockerd import UnixConnection

IMAGE_ID = "sha256:" + "ab12" * 16
STEPS = [{"stream": "Step 1/2 : FROM busybox"}, {"stream": "\n"}, {"stream": " ---> e4da63c0f680\n"},
         {"stream": "Step 2/2 : RUN exit 7"}, {"stream": "\n"}, {"stream": " ---> Running in 0123456789ab\n"}]
SUCCESS = STEPS + [{"stream": " ---> ab12ab12ab12\n"}, {"aux": {"ID": IMAGE_ID}},
                   {"stream": "Successfully built ab12ab12ab12\n"}, {"stream": "Successfully tagged app:latest\n"}]
FAILED = "The command '/bin/sh -c exit 7' returned a non-zero code: 7"
FAILURE = STEPS + [{"errorDetail": {"code": 7, "message": FAILED}, "error": FAILED}]
WAIT = object()  # in a script: the build waits for `release`


def context_files(root: str) -> dict[str, str]:
    found = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            found[os.path.relpath(path, root)] = open(path, encoding="utf-8", errors="replace").read()
    return found


class FakeBuilds:
    """What BuildService offers the route; each build is recorded with its
    context's files as they were when the build began, then plays `script`."""

    def __init__(self, tmp_dir: str):
        self.tmp_dir = tmp_dir
        self.script = SUCCESS
        self.builds = []
        self.pruned = []
        self.release = threading.Event()
        self.ended = threading.Event()

    def build(self, options, context, disconnected=None):
        self.builds.append((options, context.dockerfile_name, context.dockerfile_text, context_files(context.root)))
        return self._play(list(self.script))

    def _play(self, script):
        try:
            for step in script:
                if step is WAIT:
                    self.release.wait(60)
                elif isinstance(step, Exception):
                    raise step
                else:
                    yield step
        finally:
            self.ended.set()

    def prune(self, filters, all):
        self.pruned.append((filters.fields, all))
        return {"CachesDeleted": None, "SpaceReclaimed": 0}


@pytest.fixture
def served(tmp_path):
    """(socket path, fake builds) of an API server with the build routes."""
    (tmp_path / "contexts").mkdir()
    builds = FakeBuilds(str(tmp_path / "contexts"))
    router = Router()
    router.add("GET", "/_ping", lambda request: Reply(200, b"OK", "text/plain; charset=utf-8"))
    build_routes.add_routes(router, lambda: builds)
    server = Server(router, max_workers=8)
    path = str(tmp_path / "api.sock")
    server.listen_unix(path)
    server.start()
    yield path, builds
    builds.release.set()
    assert contexts_removed(builds.tmp_dir)  # also when the client read the whole reply before the worker ended
    server.stop()


def contexts_removed(tmp_dir: str) -> bool:
    """Whether tmp_dir empties (a worker removes a context after the reply's last byte)."""
    deadline = time.monotonic() + 30  # guards a hang only
    while os.listdir(tmp_dir) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not os.listdir(tmp_dir)


def docker(path: str, *args, cli: str = "28") -> subprocess.CompletedProcess:
    env = {**os.environ, "DOCKER_HOST": f"unix://{path}", "DOCKER_BUILDKIT": "0",
           "DOCKER_CONFIG": os.path.join(os.path.dirname(path), "docker-config")}
    return subprocess.run([DOCKER_CLIS[cli], *args], capture_output=True, text=True, env=env, timeout=120,
                          stdin=subprocess.DEVNULL)


def post(path: str, query: str = "", body: bytes = b"", version: str = "1.41") -> tuple[int, list | dict]:
    """(status, the reply: its JSON lines for a stream, else its object)."""
    conn = UnixConnection(path)
    try:
        conn.request("POST", f"/v{version}/build{query}", body, {"Content-Type": "application/x-tar"})
        reply = conn.getresponse()
        data = reply.read().decode()
    finally:
        conn.close()
    if reply.getheader("Transfer-Encoding") == "chunked":
        return reply.status, [json.loads(line) for line in data.splitlines()]
    return reply.status, json.loads(data)


def tar_of(files: dict[str, bytes]) -> bytes:
    return tar(*files.items())


@pytest.fixture
def context_dir(tmp_path):
    root = tmp_path / "ctx"
    (root / "sub").mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM busybox\nRUN exit 7\n")
    (root / "a.txt").write_text("a")
    (root / "sub" / "b").write_text("b")
    (root / "notes.md").write_text("left out")
    (root / ".dockerignore").write_text("*.md\n")
    return root


@pytest.mark.parametrize("cli", DOCKER_CLIS)
def test_the_cli_sends_the_context_and_every_option(served, context_dir, cli):
    path, builds = served
    built = docker(path, "build", "-t", "app", "-t", "app:v2", "--build-arg", "A=1", "--label", "l=v",
                   "--target", "t", "--network", "host", "--add-host", "h:1.2.3.4", "--shm-size", "64m",
                   "-m", "64m", "--cpu-shares", "512", "--ulimit", "nofile=10:20", "--no-cache", "--pull",
                   "--force-rm", str(context_dir), cli=cli)
    assert built.returncode == 0, built.stderr
    assert built.stdout.endswith("Successfully built ab12ab12ab12\nSuccessfully tagged app:latest\n")
    assert "Step 2/2 : RUN exit 7\n ---> Running in 0123456789ab\n" in built.stdout
    (options, name, text, files), = builds.builds
    assert (name, text) == ("Dockerfile", "FROM busybox\nRUN exit 7\n")
    assert files == {"Dockerfile": text, "a.txt": "a", "sub/b": "b", ".dockerignore": "*.md\n"}
    assert options.tags == ("app:latest", "app:v2") and options.build_args == {"A": "1"}
    assert options.labels == {"l": "v"} and (options.target, options.network_mode) == ("t", "host")
    assert options.extra_hosts == ("h:1.2.3.4",) and options.shm_size == 64 << 20
    assert (options.no_cache, options.pull, options.remove, options.force_remove) == (True, True, True, True)
    assert options.resources["Memory"] == 64 << 20 and options.resources["CpuShares"] == 512
    assert options.resources["Ulimits"] == [{"Name": "nofile", "Hard": 20, "Soft": 10}]


@pytest.mark.parametrize("cli", DOCKER_CLIS)
def test_a_dockerfile_from_outside_the_context(served, context_dir, tmp_path, cli):
    path, builds = served
    outside = tmp_path / "elsewhere" / "Build.df"
    outside.parent.mkdir()
    outside.write_text("FROM busybox\nLABEL from=outside\n")
    built = docker(path, "build", "-f", str(outside), str(context_dir), cli=cli)
    assert built.returncode == 0, built.stderr
    (options, name, text, files), = builds.builds
    assert name.startswith(".dockerfile.") and options.dockerfile == name and text == outside.read_text()
    assert files == {"Dockerfile": "FROM busybox\nRUN exit 7\n", "a.txt": "a", "sub/b": "b",  # -f's file gone
                     ".dockerignore": f"*.md\n\n{name}\n"}  # as the CLI extended it


@pytest.mark.parametrize("cli", DOCKER_CLIS)
def test_a_failing_build_exits_with_its_code_and_dockerds_message(served, context_dir, cli):
    path, builds = served
    builds.script = FAILURE
    built = docker(path, "build", str(context_dir), cli=cli)
    assert built.returncode == 7 and FAILED in built.stderr  # the errorDetail's code, as with dockerd
    assert " ---> Running in 0123456789ab\n" in built.stdout


@pytest.mark.parametrize("cli", DOCKER_CLIS)
def test_quiet_prints_the_id_or_on_failure_what_was_kept(served, context_dir, cli):
    path, builds = served
    built = docker(path, "build", "-q", str(context_dir), cli=cli)
    assert (built.returncode, built.stdout) == (0, IMAGE_ID + "\n")
    builds.script = FAILURE
    built = docker(path, "build", "-q", str(context_dir), cli=cli)
    assert built.returncode == 7 and FAILED in built.stderr and "Step 2/2 : RUN exit 7" in built.stderr


def test_quiet_streams_as_dockerd(served):
    path, builds = served
    body = tar_of({"Dockerfile": b"FROM busybox\n"})
    assert post(path, "?q=1", body) == (200, [{"stream": IMAGE_ID + "\n"}])
    builds.script = FAILURE
    assert post(path, "?q=1", body) == (200, FAILURE)


def test_the_image_id_goes_as_aux_from_api_1_30(served):
    path, _ = served
    body = tar_of({"Dockerfile": b"FROM busybox\n"})
    assert post(path, "", body) == (200, SUCCESS)
    assert post(path, "", body, version="1.29") == (200, [m for m in SUCCESS if "aux" not in m])


@pytest.mark.parametrize("cli", DOCKER_CLIS)
def test_an_error_before_any_output_is_an_http_error(served, context_dir, cli):
    path, builds = served
    builds.script = [InvalidParameter("dockerfile parse error line 2: unknown instruction: RUNN")]
    built = docker(path, "build", str(context_dir), cli=cli)
    assert built.returncode == 1
    assert "Error response from daemon: dockerfile parse error line 2: unknown instruction: RUNN" in built.stderr
    builds.script = [{"errorDetail": {"message": "no such image"}, "error": "no such image"}]
    assert post(path, "", tar_of({"Dockerfile": b"FROM x\n"})) == (500, {"message": "no such image"})


def test_an_exception_mid_build_ends_the_stream_as_errordetail(served):
    path, builds = served
    builds.script = STEPS + [RuntimeError("a bug")]
    status, messages = post(path, "", tar_of({"Dockerfile": b"FROM busybox\n"}))
    assert (status, messages[-1]) == (200, {"errorDetail": {"message": "a bug"}, "error": "a bug"})


def test_docker_py_sends_a_gzip_context(served):
    import docker as dockerpy

    path, builds = served
    context = gzip.compress(tar_of({"Dockerfile": b"FROM busybox\n", "d/f": b"f"}))
    client = dockerpy.APIClient(base_url=f"unix://{path}", version="1.41")
    try:
        messages = list(client.build(fileobj=io.BytesIO(context), custom_context=True, encoding="gzip",
                                     tag="py:1", buildargs={"X": "y"}, decode=True))
    finally:
        client.close()
    assert messages == SUCCESS
    (options, _, text, files), = builds.builds
    assert files == {"Dockerfile": "FROM busybox\n", "d/f": "f"}
    assert options.tags == ("py:1",) and options.build_args == {"X": "y"}


class RawClient:
    """A client that sends a build and reads only the first chunk of its reply."""

    def __init__(self, path: str, query: str):
        body = tar_of({"Dockerfile": b"FROM busybox\n"})
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.h11 = h11.Connection(h11.CLIENT)
        self.sock.sendall(self.h11.send(h11.Request(method="POST", target=f"/build{query}", headers=[
            ("Host", "engine"), ("Content-Length", str(len(body)))])) + self.h11.send(h11.Data(data=body)) +
            self.h11.send(h11.EndOfMessage()))

    def response(self) -> h11.Response:
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                self.h11.receive_data(self.sock.recv(65536))
            elif isinstance(event, h11.Response):
                return event


@pytest.mark.parametrize("quiet", [False, True])
def test_a_client_gone_mid_build_ends_the_build_and_removes_the_context(served, quiet):
    path, builds = served
    builds.script = STEPS + [WAIT] + SUCCESS
    client = RawClient(path, "?q=1" if quiet else "")
    assert client.response().status_code == 200
    client.sock.close()
    builds.release.set()
    assert builds.ended.wait(30) and contexts_removed(builds.tmp_dir)


def test_build_prune(served):
    path, builds = served
    conn = UnixConnection(path)
    filters = quote(json.dumps({"until": {"24h": True}}))
    for query, expected in ((f"?all=1&filters={filters}", (200, {"CachesDeleted": None, "SpaceReclaimed": 0})),
                            ("?filters=bad", (400, {"message": "could not parse filters: invalid filter"})),
                            ("?keep-storage=x", (400, {"message": "keep-storage is in bytes and expects an integer, "
                                                       'got x: strconv.Atoi: parsing "x": invalid syntax'}))):
        conn.request("POST", f"/v1.41/build/prune{query}")
        reply = conn.getresponse()
        assert (reply.status, json.loads(reply.read())) == expected
    conn.close()
    assert builds.pruned == [({"until": {"24h"}}, True)]


BAD_REQUESTS = [
    ({"t": "UPPER"}, None), ({"t": "a@sha256:" + "0" * 64}, None), ({"t": ":a"}, None),
    ({"buildargs": "nope"}, None), ({"buildargs": '{"a":1}'}, None), ({"labels": "[]"}, None),
    ({"cachefrom": "[1]"}, None), ({"ulimits": '[{"Name":1}]'}, None), ({"shmsize": "x"}, None),
    ({"isolation": "bad"}, None), ({"securityopt": "x"}, None), ({"remote": "x"}, None), ({"outputs": "x"}, None),
    ({"ulimits": "{}"}, None), ({"buildargs": '{"a":"b"'}, None), ({"version": "3"}, None),
    ({"dockerfile": "nope"}, None), ({"dockerfile": "../x"}, None), ({"dockerfile": "/etc/passwd"}, None),
    ({}, b""), ({}, b"hello world this is not a tar" * 10), ({}, b"hello world this is not a tar" * 100),
    ({}, tar_of({"Dockerfile": b"FROM busybox\n", "big": b"x" * 100000})[:5000]),
    ({}, tar_of({"a": b"a"})), ({}, tar_of({"Dockerfile": b""})), ({}, gzip.compress(b"not a tar")),
]


@pytest.mark.root
def test_bad_requests_are_refused_in_dockerds_words(served, dockerd):
    path, builds = served
    good = tar_of({"Dockerfile": b"FROM busybox\n"})
    for query, body in BAD_REQUESTS:
        encoded = "?" + urlencode(query) if query else ""
        ours, theirs = post(path, encoded, good if body is None else body), post(dockerd.socket, encoded,
                                                                                 good if body is None else body)
        assert ours[1] == theirs[1], (query, body[:20] if body else body)
        assert ours[0] == theirs[0] or (ours[0], theirs[0]) == (400, 500), (query, ours, theirs)
    assert builds.builds == []


@pytest.mark.root
@pytest.mark.parametrize("cli", DOCKER_CLIS)
def test_the_engine_serves_builds(engine_py, tmp_path, monkeypatch, cli):
    """Through the assembled engine: a quiet build with -f from outside the context prints the ID of an
    image that has the Dockerfile's label; a failing RUN ends the stream with its code and dockerd's words
    (--force-rm: the session's engine keeps no container of it)."""
    monkeypatch.setenv("DOCKER_BUILDKIT", "0")
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "a.txt").write_text("a")
    dockerfile = tmp_path / "Other.df"
    dockerfile.write_text("FROM busybox\nCOPY a.txt /\nLABEL built=by-engine\n")
    tag = f"build-api-{cli}:v1"
    built = engine_py.docker("build", "-q", "-t", tag, "-f", str(dockerfile), str(context), cli=cli)
    image_id = built.stdout.strip()
    try:
        assert image_id.startswith("sha256:")
        assert engine_py.docker("inspect", "-f", "{{.Id}} {{.Config.Labels.built}}", tag,
                                cli=cli).stdout.split() == [image_id, "by-engine"]
    finally:
        engine_py.docker("rmi", tag, check=False)
    dockerfile.write_text("FROM busybox\nRUN exit 7\n")
    containers = engine_py.docker("ps", "-aq").stdout
    failed = engine_py.docker("build", "--force-rm", "-f", str(dockerfile), str(context), check=False, cli=cli)
    assert failed.returncode == 7 and FAILED in failed.stderr
    assert engine_py.docker("ps", "-aq").stdout == containers  # the failed step's container removed too


@pytest.mark.root
@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress], ids=["gzip", "bzip2", "xz"])
def test_docker_py_builds_a_compressed_context_at_the_engine(dockerpy, compress):
    context = compress(tar_of({"Dockerfile": b"FROM busybox\nCOPY d /d\nLABEL via=docker-py\n", "d/f": b"f"}))
    encoding = {"gzip": "gzip", "bz2": "bzip2", "lzma": "xz"}[compress.__module__]  # a header only: found by magic
    tag = f"build-api-py-{encoding}:v1"
    image, logs = dockerpy.images.build(fileobj=io.BytesIO(context), custom_context=True, encoding=encoding, tag=tag)
    try:
        assert image.labels["via"] == "docker-py" and tag in image.tags
        assert {"aux": {"ID": image.id}} in list(logs)
    finally:
        dockerpy.images.remove(tag)
