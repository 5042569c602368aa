"""A client of the OCI distribution API (`/v2/...`) of one registry host.

It moves bytes and descriptors only: what to fetch or push, and where the
bytes come from or go, is the caller's (containerd_py.transfer). Safe to
share between threads: each request opens its own connection.

Transient failures (connection errors, 429 and 5xx answers, a stream that
ends early) are retried a bounded number of times; a broken download
resumes where it stopped with a Range request. Errors read as containerd's
(`failed to resolve reference "h/r:t": failed to do request: Head "url":
dial tcp h: connect: connection refused`), naming the host and the step.

ssl, http.client and urllib.request are imported at the first request, not
with the module: together they are several MiB of a daemon's memory that
never pulls or pushes (the engine imports this module for its types).
"""
import json
import socket
import time
from collections.abc import Callable
from typing import BinaryIO
from urllib.parse import urljoin, urlsplit

from .. import digest as digests, errors
from ..mediatypes import DISTRIBUTABLE_MANIFESTS
from ..types import Descriptor
from .auth import Authorizer
from .hosts import HostConfig

_CHUNK = 1 << 20
_MANIFEST_LIMIT = 4 << 20  # distribution refuses bigger manifests too
_ACCEPT = ", ".join(DISTRIBUTABLE_MANIFESTS)


def _transient() -> tuple:
    import http.client

    return OSError, http.client.HTTPException, errors.Unavailable


def _opener(ssl_context):
    """urllib's opener following redirects (to blob storage), dropping our
    credentials when the host changes."""
    import urllib.request

    class RedirectHandler(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req, fp, code, msg, headers, newurl):
            new = super().redirect_request(req, fp, code, msg, headers, newurl)
            if new is not None and urlsplit(newurl).netloc != urlsplit(req.full_url).netloc:
                new.remove_header("Authorization")
            return new

    return urllib.request.build_opener(RedirectHandler(), urllib.request.HTTPSHandler(context=ssl_context))


class TransportError(OSError):
    """A request that got no answer: `failed to do request: Head "url": why`."""

    def __init__(self, method: str, url: str, cause: BaseException):
        super().__init__(f'failed to do request: {method.capitalize()} "{url}": {_why(url, cause)}')


def _why(url: str, cause: BaseException) -> str:
    """What failed, in Go's net/http words where there are such."""
    import ssl

    hostport = urlsplit(url).netloc
    if isinstance(cause, ssl.SSLError):
        return f"tls: {cause}"
    if isinstance(cause, socket.gaierror):
        return f"dial tcp: {_lookup_failure(urlsplit(url).hostname, cause)}"
    if isinstance(cause, TimeoutError):
        return f"dial tcp {hostport}: i/o timeout"
    if isinstance(cause, OSError) and cause.strerror:
        return f"dial tcp {hostport}: connect: {cause.strerror.lower()}"
    return str(cause)


def _lookup_failure(host: str, cause: socket.gaierror, resolv_conf: str = "/etc/resolv.conf") -> str:
    """Go's resolver's DNSError where it can be told: with no nameserver
    reachable (a network namespace with no route out) the last one's dial
    error, `lookup h on 10.0.0.1:53: dial udp 10.0.0.1:53: connect: network
    is unreachable`; otherwise getaddrinfo's reason."""
    unreachable = ""
    for server in _nameservers(resolv_conf):
        address = f"[{server}]:53" if ":" in server else f"{server}:53"
        with socket.socket(socket.AF_INET6 if ":" in server else socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.connect((server, 53))  # a UDP connect sends nothing: it only finds the route
            except OSError as err:
                unreachable = f"lookup {host} on {address}: dial udp {address}: connect: {err.strerror.lower()}"
                continue
        unreachable = ""
        break
    return unreachable or f"lookup {host}: {cause.strerror.lower()}"


def _nameservers(resolv_conf: str) -> list[str]:
    """The resolv.conf's nameservers; Go's defaults (127.0.0.1, ::1) when it names none."""
    try:
        with open(resolv_conf) as f:
            servers = [words[1] for words in map(str.split, f) if words[:1] == ["nameserver"] and len(words) > 1]
    except OSError:
        servers = []
    return servers or ["127.0.0.1", "::1"]


def _speaks_no_tls(cause: BaseException) -> bool:
    """An HTTPS attempt failed before any TLS answer: plain HTTP may work (a bad certificate is not that)."""
    import ssl

    return isinstance(cause, ConnectionRefusedError) or (
        isinstance(cause, ssl.SSLError) and not isinstance(cause, ssl.SSLCertVerificationError))


def _error_detail(body: bytes) -> str:
    """The registry's `{"errors": [{"code", "message"}]}` body as text."""
    try:
        items = json.loads(body)["errors"]
        return "; ".join(f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in items)
    except (ValueError, KeyError, TypeError, AttributeError):
        return body[:200].decode(errors="replace").strip()


_STATUS_ERRORS = {401: errors.Unauthenticated, 403: errors.PermissionDenied, 404: errors.NotFound,
                  429: errors.Unavailable}


class Registry:
    def __init__(self, config: HostConfig, credentials: tuple[str, str] | None = None, retries: int = 3,
                 backoff: float = 0.2, timeout: float = 60):
        self.config = config
        self.base_url = config.base_url
        self._opener = _opener(config.ssl_context())
        self._auth = Authorizer(credentials, self._fetch_token)
        self._retries, self._backoff, self._timeout = retries, backoff, timeout

    # -- plumbing ------------------------------------------------------------

    def _send(self, method: str, url: str, headers: dict[str, str], body=None):
        """One HTTP exchange; error statuses come back as responses, not exceptions,
        no answer as TransportError. A loopback host that does not speak TLS is
        from then on spoken to in plain HTTP."""
        import urllib.error
        import urllib.request

        request = urllib.request.Request(url, data=body, headers=headers, method=method)
        try:
            return self._opener.open(request, timeout=self._timeout)
        except urllib.error.HTTPError as e:
            return e
        except urllib.error.URLError as e:
            cause = e.reason if isinstance(e.reason, BaseException) else e
            if self.config.http_fallback and url.startswith(f"https://{self.config.host}/") and _speaks_no_tls(cause):
                self.base_url = f"http://{self.config.host}"
                return self._send(method, "http" + url[len("https"):], headers, body)
            raise TransportError(method, url, cause) from None

    def _fetch_token(self, url: str, authorization: str | None) -> dict:
        with self._send("GET", url, {"Authorization": authorization} if authorization else {}) as resp:
            body = resp.read()
            if resp.status != 200:
                raise errors.Unauthenticated(f"token server {url.split('?')[0]} answered {resp.status} {resp.reason}")
        try:
            return json.loads(body)
        except ValueError:
            raise errors.Unauthenticated(f"token server {url.split('?')[0]} answered no JSON") from None

    def _request(self, method: str, url: str, scope: str, headers: dict[str, str] | None = None,
                 body: Callable[[], object] | None = None, ok: tuple[int, ...] = (200,)):
        """A request with authorization: answers a first 401 challenge, then raises
        a domain error for any status not in ok. body makes the payload afresh for a retry."""
        url = urljoin(self.base_url + "/", url)
        for attempt in (0, 1):
            h = dict(headers or {})
            if authorization := self._auth.header(scope):
                h["Authorization"] = authorization
            resp = self._send(method, url, h, body() if body else None)
            if resp.status == 401 and attempt == 0 and self._auth.challenged(
                    resp.headers.get_all("WWW-Authenticate") or [], scope):
                resp.close()
                continue
            if resp.status in ok:
                return resp
            with resp:
                detail = _error_detail(resp.read(64 << 10)) if method != "HEAD" else ""
            cls = errors.Unavailable if resp.status >= 500 else _STATUS_ERRORS.get(resp.status,
                                                                                   errors.FailedPrecondition)
            raise cls(f"{method} {url}: {resp.status} {resp.reason}" + (f" ({detail})" if detail else ""))
        raise AssertionError("unreachable")

    def _retrying(self, what: str, attempt: Callable[[], object]):
        """Runs attempt until it succeeds or has failed transiently more than the retry budget."""
        failures = 0
        while True:
            try:
                return attempt()
            except _transient() as e:
                failures += 1
                if failures > self._retries:
                    raise errors.Unavailable(f"{what}: {e} (after {failures} attempts)") from None
                time.sleep(self._backoff * 2 ** (failures - 1))

    @staticmethod
    def _scope(repo: str, actions: str = "pull") -> str:
        return f"repository:{repo}:{actions}"

    @staticmethod
    def _path(repo: str, desc: Descriptor) -> str:
        kind = "manifests" if desc.media_type in DISTRIBUTABLE_MANIFESTS else "blobs"
        return f"/v2/{repo}/{kind}/{desc.digest}"

    # -- pulling -------------------------------------------------------------

    def resolve(self, repo: str, obj: str) -> Descriptor:
        """The descriptor a tag or digest names: HEAD first, GET when the registry
        does not say the digest (then it is computed from the body)."""
        url, headers = f"/v2/{repo}/manifests/{obj}", {"Accept": _ACCEPT}

        def attempt():
            with self._request("HEAD", url, self._scope(repo), headers) as resp:
                media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
                digest = resp.headers.get("Docker-Content-Digest", "")
                size = resp.headers.get("Content-Length")
            if digest.startswith("sha256:") and size and media_type in DISTRIBUTABLE_MANIFESTS:
                if obj.startswith("sha256:") and digest != obj:
                    raise errors.FailedPrecondition(f"registry answered {digest} for manifest {obj}")
                return Descriptor(media_type, digest, int(size))
            with self._request("GET", url, self._scope(repo), headers) as resp:
                media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
                body = resp.read(_MANIFEST_LIMIT + 1)
            if len(body) > _MANIFEST_LIMIT:
                raise errors.FailedPrecondition(f"manifest {obj} is larger than {_MANIFEST_LIMIT} bytes")
            digest = digests.of_small(body)
            if obj.startswith("sha256:") and digest != obj:
                raise errors.FailedPrecondition(f"manifest {obj} has digest {digest}")
            if media_type not in DISTRIBUTABLE_MANIFESTS:
                media_type = json.loads(body).get("mediaType", media_type)
            return Descriptor(media_type, digest, len(body))

        reference = f"{self.config.host}/{repo}{'@' if obj.startswith('sha256:') else ':'}{obj}"
        return self._retrying(f'failed to resolve reference "{reference}"', attempt)

    def fetch(self, repo: str, desc: Descriptor, write: Callable[[bytes], None], offset: int = 0) -> None:
        """Streams the object's bytes from offset into write.

        Checks the length; the digest is for the receiving writer to check.
        """
        position = [offset]
        headers = {"Accept": _ACCEPT} if desc.media_type in DISTRIBUTABLE_MANIFESTS else {}

        def attempt():
            start = position[0]
            h = dict(headers, Range=f"bytes={start}-") if start else headers
            with self._request("GET", self._path(repo, desc), self._scope(repo), h, ok=(200, 206)) as resp:
                skip = start if resp.status == 200 else 0  # the server ignored Range: drop what we have
                while chunk := resp.read(_CHUNK):
                    if skip:
                        dropped = min(skip, len(chunk))
                        chunk, skip = chunk[dropped:], skip - dropped
                    if position[0] + len(chunk) > desc.size:
                        raise errors.FailedPrecondition(
                            f"{desc.digest}: registry sent more than the expected {desc.size} bytes")
                    if chunk:
                        write(chunk)
                        position[0] += len(chunk)
            if position[0] < desc.size:
                import http.client

                raise http.client.IncompleteRead(b"", desc.size - position[0])

        if offset < desc.size:
            self._retrying(f"failed to fetch {desc.digest}", attempt)

    def fetch_bytes(self, repo: str, desc: Descriptor) -> bytes:
        """A small object (a manifest) in memory, verified against its digest."""
        if desc.size > _MANIFEST_LIMIT:
            raise errors.FailedPrecondition(f"{desc.digest}: {desc.size} bytes is too big to hold in memory")
        parts: list[bytes] = []
        self.fetch(repo, desc, parts.append)
        data = b"".join(parts)
        if digests.of_small(data) != desc.digest:
            raise errors.FailedPrecondition(f"{desc.digest}: the registry sent different content")
        return data

    # -- pushing -------------------------------------------------------------

    def blob_exists(self, repo: str, digest: str, scope: str = "") -> bool:
        def attempt():
            with self._request("HEAD", f"/v2/{repo}/blobs/{digest}", scope or self._scope(repo), ok=(200, 404)) as r:
                return r.status == 200
        return self._retrying(f"failed to check blob {digest}", attempt)

    def push_blob(self, repo: str, desc: Descriptor, open_blob: Callable[[], BinaryIO],
                  mount_from: tuple[str, ...] = (), chunk_size: int = 0,
                  progress: Callable[[int], None] | None = None) -> str:
        """Uploads a blob unless the repository has it; returns "exists", "mounted" or "pushed".

        mount_from names repositories of this registry that hold the blob,
        tried for a cross-repository mount first. chunk_size > 0 uploads in
        PATCH chunks of that size, else in one PUT.
        """
        scope = self._scope(repo, "pull,push")
        if self.blob_exists(repo, desc.digest, scope):
            return "exists"
        return self._retrying(f"failed to push {desc.digest}",
                              lambda: self._upload(repo, desc, open_blob, mount_from, chunk_size, progress))

    def _upload(self, repo, desc, open_blob, mount_from, chunk_size, progress) -> str:
        scope = self._scope(repo, "pull,push")
        location = None
        for source in (s for s in mount_from if s != repo):
            with self._request("POST", f"/v2/{repo}/blobs/uploads/?mount={desc.digest}&from={source}",
                               f"{scope} {self._scope(source)}", ok=(201, 202)) as resp:
                if resp.status == 201:
                    return "mounted"
                location = resp.headers["Location"]  # mount refused; an upload was started instead
                break
        if location is None:
            with self._request("POST", f"/v2/{repo}/blobs/uploads/", scope, ok=(202,)) as resp:
                location = resp.headers["Location"]
        location = urljoin(self.base_url + "/", location)
        octets = {"Content-Type": "application/octet-stream"}
        with open_blob() as blob:
            source = _Counting(blob, progress)
            if chunk_size <= 0:
                with self._request("PUT", _with_digest(location, desc.digest), scope,
                                   dict(octets, **{"Content-Length": str(desc.size)}), lambda: source, ok=(201,)):
                    return "pushed"
            offset = 0
            while chunk := source.read(chunk_size):
                headers = dict(octets, **{"Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                                          "Content-Length": str(len(chunk))})
                with self._request("PATCH", location, scope, headers, lambda: chunk, ok=(202,)) as resp:
                    location = urljoin(location, resp.headers["Location"])
                offset += len(chunk)
        with self._request("PUT", _with_digest(location, desc.digest), scope, {"Content-Length": "0"},
                           lambda: b"", ok=(201,)):
            return "pushed"

    def put_manifest(self, repo: str, reference: str, desc: Descriptor, data: bytes) -> None:
        """Stores a manifest or index under a tag (or its digest)."""
        def attempt():
            with self._request("PUT", f"/v2/{repo}/manifests/{reference}", self._scope(repo, "pull,push"),
                               {"Content-Type": desc.media_type, "Content-Length": str(len(data))},
                               lambda: data, ok=(201,)):
                pass
        self._retrying(f"failed to push manifest {desc.digest}", attempt)


def _with_digest(location: str, digest: str) -> str:
    return location + ("&" if "?" in location else "?") + f"digest={digest}"


class _Counting:
    """A reader that reports how many bytes went through it."""

    def __init__(self, stream: BinaryIO, progress: Callable[[int], None] | None):
        self._stream, self._progress = stream, progress

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        if self._progress and data:
            self._progress(len(data))
        return data
