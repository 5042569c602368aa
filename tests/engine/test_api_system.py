"""/_ping and /version through the server, against what dockerd 20.10 answers
(its replies recorded from the real daemon: the same headers, and /version
with the same fields, our own values in them)."""
import json
import os

import pytest

from engine.api.routes import system as system_routes
from engine.api.server import Router, Server
from engine.services.system import SystemService, go_arch, runtime_version
from test_api_server import Client

# dockerd 20.10.24's /version, its docker-init component left out (we have none).
DOCKERD_VERSION = json.loads("""{"Platform":{"Name":""},"Components":[{"Name":"Engine","Version":"20.10.24+dfsg1",
"Details":{"ApiVersion":"1.41","Arch":"amd64","BuildTime":"2026-05-07T21:09:36.000000000+00:00","Experimental":"false",
"GitCommit":"5d6db84","GoVersion":"go1.19.8","KernelVersion":"6.18.44-fc-v1300","MinAPIVersion":"1.12","Os":"linux"}},
{"Name":"containerd","Version":"1.6.20~ds1","Details":{"GitCommit":"1.6.20~ds1-1+deb12u3"}},{"Name":"runc",
"Version":"1.1.5+ds1","Details":{"GitCommit":"1.1.5+ds1-1+deb12u1"}}],"Version":"20.10.24+dfsg1","ApiVersion":"1.41",
"MinAPIVersion":"1.12","GitCommit":"5d6db84","GoVersion":"go1.19.8","Os":"linux","Arch":"amd64",
"KernelVersion":"6.18.44-fc-v1300","BuildTime":"2026-05-07T21:09:36.000000000+00:00"}""")
DOCKERD_PING_HEADERS = {"api-version", "cache-control", "docker-experimental", "ostype", "pragma", "server", "date",
                        "content-length", "content-type"}


def shape(value):
    """The keys of a JSON value, recursively (list items by position)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


@pytest.fixture
def client(tmp_path):
    runtime = tmp_path / "fake-runc"
    runtime.write_text("#!/bin/sh\necho 'runc version 1.1.5+ds1'\necho 'commit: abc123'\necho 'spec: 1.0.2'\n")
    runtime.chmod(0o755)
    router = Router()
    system_routes.add_routes(router, SystemService(str(runtime), lambda: ("1.6.0+containerd-py.0.1.0", "0.1.0")))
    server = Server(router, max_workers=2)
    server.listen_unix(str(tmp_path / "api.sock"))
    server.start()
    c = Client(str(tmp_path / "api.sock"))
    yield c
    c.close()
    server.stop()


def test_ping_get_and_head_as_dockerd(client):
    status, headers, body = client.get("/_ping")
    assert (status, body) == (200, b"OK")
    assert DOCKERD_PING_HEADERS <= set(headers)
    assert headers["api-version"] == "1.41" and headers["ostype"] == "linux"
    assert headers["docker-experimental"] == "false" and headers["builder-version"] == "1"
    assert headers["cache-control"] == "no-cache, no-store, must-revalidate" and headers["pragma"] == "no-cache"
    status, headers, body = client.get("/v1.41/_ping", method="HEAD")
    assert (status, body, headers["content-length"]) == (200, b"", "0")


def test_version_has_dockerds_shape_and_our_values(client):
    status, headers, body = client.get("/v1.41/version")
    assert status == 200 and headers["content-type"] == "application/json"
    version = json.loads(body)
    assert shape(version) == shape(DOCKERD_VERSION)
    assert [c["Name"] for c in version["Components"]] == ["Engine", "containerd", "runc"]
    engine, containerd, runc = version["Components"]
    assert engine["Details"]["MinAPIVersion"] == version["MinAPIVersion"] == "1.24"
    assert version["ApiVersion"] == "1.41" and version["Arch"] == go_arch() and version["Os"] == "linux"
    assert version["KernelVersion"] == os.uname().release and version["Platform"]["Name"] == "engine-py"
    assert containerd == {"Name": "containerd", "Version": "1.6.0+containerd-py.0.1.0", "Details": {"GitCommit": "0.1.0"}}
    assert runc == {"Name": "runc", "Version": "1.1.5+ds1", "Details": {"GitCommit": "abc123"}}


def test_a_runtime_that_cannot_run_has_no_version(tmp_path):
    assert runtime_version(str(tmp_path / "missing")) == ("", "")


def test_go_arch_names():
    assert (go_arch("x86_64"), go_arch("aarch64"), go_arch("mips")) == ("amd64", "arm64", "mips")
