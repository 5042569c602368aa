"""Registries for tests, all on 127.0.0.1: Debian's docker-registry (distribution
2.8) with a generated config and a temporary store, optionally with htpasswd
basic auth or TLS; and a proxy in front of one that demands bearer tokens or
injects faults (corrupt or truncated bodies, error statuses)."""
import http.client
import http.server
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from conftest import START_DEADLINE

REGISTRY = "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed")
    return path


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT
    workdir: str
    ca: str = ""  # the CA file to trust, when serving TLS
    user: tuple[str, str] | None = None

    def log(self) -> str:
        with open(os.path.join(self.workdir, "registry.log"), errors="replace") as f:
            return f.read()


def make_cert(workdir: str) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (it is its own CA), alone in a
    directory, as skopeo's --dest-cert-dir wants it."""
    os.mkdir(os.path.join(workdir, "certs"))
    cert, key = os.path.join(workdir, "certs", "ca.crt"), os.path.join(workdir, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL)
    return cert, key


@contextmanager
def docker_registry(htpasswd_user: tuple[str, str] | None = None, tls: bool = False):
    """A docker-registry process on a free port; removed with its storage afterwards."""
    if not os.path.exists(REGISTRY):
        pytest.skip("docker-registry (Debian package docker-registry) is not installed")
    workdir = tempfile.mkdtemp(prefix="cpy-registry-")
    proc = None
    try:
        port = free_port()
        config = [
            "version: 0.1", "log:", "  level: warn", "storage:", "  filesystem:",
            f"    rootdirectory: {workdir}/data", "  delete:", "    enabled: true",
            "http:", f"  addr: 127.0.0.1:{port}", f"  secret: {secrets.token_hex(16)}"]
        registry = Registry(f"127.0.0.1:{port}", workdir)
        if tls:
            cert, key = make_cert(workdir)
            config += ["  tls:", f"    certificate: {cert}", f"    key: {key}"]
            registry.ca = cert
        if htpasswd_user:
            user, password = htpasswd_user
            subprocess.run([require("htpasswd"), "-Bbc", f"{workdir}/htpasswd", user, password], check=True,
                           capture_output=True, stdin=subprocess.DEVNULL)
            config += ["auth:", "  htpasswd:", "    realm: test-realm", f"    path: {workdir}/htpasswd"]
            registry.user = htpasswd_user
        with open(f"{workdir}/config.yml", "w") as f:
            f.write("\n".join(config) + "\n")
        log = open(f"{workdir}/registry.log", "wb")
        proc = subprocess.Popen([REGISTRY, "serve", f"{workdir}/config.yml"], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        _wait_ready(registry, proc)
        yield registry
    finally:
        if proc:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_ready(registry: Registry, proc: subprocess.Popen) -> None:
    context = ssl.create_default_context(cafile=registry.ca) if registry.ca else None
    url = f"{'https' if registry.ca else 'http'}://{registry.host}/v2/"
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"docker-registry exited with {proc.returncode}:\n{registry.log()}")
        try:
            urllib.request.urlopen(url, timeout=5, context=context).close()
            return
        except urllib.error.HTTPError:
            return  # 401: up, and asking for credentials
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"docker-registry did not answer on {url}:\n{registry.log()}")


def skopeo_copy(archive: str, registry: Registry, repo_tag: str, transport: str = "oci-archive",
                *extra: str) -> None:
    """Puts an image archive into the registry with skopeo, the independent client."""
    args = [require("skopeo"), "copy", "--quiet", f"--dest-tls-verify={'true' if registry.ca else 'false'}"]
    if registry.ca:
        args.append(f"--dest-cert-dir={os.path.dirname(registry.ca)}")
    if registry.user:
        args.append(f"--dest-creds={registry.user[0]}:{registry.user[1]}")
    result = subprocess.run(args + list(extra) + [f"{transport}:{archive}", f"docker://{registry.host}/{repo_tag}"],
                            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr


def skopeo_inspect_raw(registry: Registry, repo_tag: str) -> bytes:
    args = [require("skopeo"), "inspect", "--raw", "--tls-verify=false"]
    result = subprocess.run(args + [f"docker://{registry.host}/{repo_tag}"], capture_output=True, timeout=120,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    return result.stdout


# -- the proxy -----------------------------------------------------------------

@dataclass
class Fault:
    """What to do to requests whose path contains `path` (the first `times` of them; -1: all)."""

    path: str
    action: str  # "corrupt", "truncate", or an HTTP status code as text
    times: int = -1
    method: str = "GET"


@dataclass
class ProxyLog:
    requests: list[tuple[str, str, dict]] = field(default_factory=list)  # method, path, headers
    token_scopes: list[list[str]] = field(default_factory=list)


class Proxy:
    """Forwards to an upstream registry; demands bearer tokens when `bearer`, applies faults."""

    def __init__(self, upstream: Registry, bearer: bool = False):
        self.upstream, self.bearer = upstream, bearer
        self.faults: list[Fault] = []
        self.log = ProxyLog()
        self.tokens: set[str] = set()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _any(self):
                proxy._handle(self)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="registry-proxy", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.method == method and fault.path in path and fault.times != 0:
                fault.times -= 1 if fault.times > 0 else 0
                return fault
        return None

    def _handle(self, h: http.server.BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        self.log.requests.append((h.command, h.path, dict(h.headers)))
        fault = self._fault(h.command, h.path)
        if fault and fault.action.isdigit():
            return self._reply(h, int(fault.action), {"Content-Type": "application/json"},
                               b'{"errors":[{"code":"INJECTED","message":"injected by the test"}]}')
        if h.path.startswith("/token"):
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(h.path).query)
            self.log.token_scopes.append(query.get("scope", []))
            token = secrets.token_hex(8)
            self.tokens.add(token)
            return self._reply(h, 200, {"Content-Type": "application/json"}, json.dumps({"token": token}).encode())
        if self.bearer and h.headers.get("Authorization", "").removeprefix("Bearer ") not in self.tokens:
            repo = h.path.split("/")[2] if h.path.count("/") > 2 else ""
            challenge = f'Bearer realm="http://{self.host}/token",service="proxy",scope="repository:{repo}:pull"'
            return self._reply(h, 401, {"WWW-Authenticate": challenge, "Content-Type": "application/json"},
                               b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')
        headers = {k: v for k, v in h.headers.items() if k.lower() not in ("host", "authorization", "connection")}
        conn = http.client.HTTPConnection(self.upstream.host, timeout=60)
        try:
            conn.request(h.command, h.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            dropped = ("transfer-encoding", "connection") + (("content-length",) if h.command != "HEAD" else ())
            out = {k: v for k, v in resp.getheaders() if k.lower() not in dropped}
        finally:
            conn.close()
        if "Location" in out and out["Location"].startswith(f"http://{self.upstream.host}"):
            out["Location"] = out["Location"].replace(self.upstream.host, self.host, 1)
        if fault and fault.action == "corrupt" and data:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        if fault and fault.action == "truncate" and h.command == "GET":
            h.send_response(resp.status)
            for k, v in out.items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data[:len(data) // 2])
            h.wfile.flush()
            h.close_connection = True
            return
        self._reply(h, resp.status, out, data)

    @staticmethod
    def _reply(h, status: int, headers: dict, body: bytes) -> None:
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        if h.command != "HEAD" or "Content-Length" not in headers:
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)


@contextmanager
def proxy(upstream: Registry, bearer: bool = False):
    p = Proxy(upstream, bearer)
    try:
        yield p
    finally:
        p.close()
