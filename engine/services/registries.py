"""`docker login` (POST /auth) and `docker search` (GET /images/search),
talking to registries as dockerd does: HTTPS, plain HTTP for insecure
registries and, when nothing answers in TLS, for loopback ones.

login checks the credentials on the registry's `/v2/` (answering its Basic
or Bearer challenge) and answers `Login Succeeded`; the CLI keeps them.
search has no Docker Hub index to ask here: a term naming a registry
(`127.0.0.1:5000/busy`) is looked up in that registry's `/v2/_catalog`, a
plain term in the catalog of the first `registry-mirrors` entry (Docker
Hub's stand-in), each match in dockerd's search-result shape.
"""
import ipaddress
import json
from urllib.parse import urljoin, urlsplit

from containerd_py import errors as cerrors
from containerd_py.reference import DOCKER_HUB
from containerd_py.remotes.auth import Authorizer
from containerd_py.remotes.hosts import HostConfig, host_config
from containerd_py.remotes.registry import TransportError, _speaks_no_tls
from engine.errors import InvalidParameter, System, Unauthorized, Unavailable
from engine.filters import Filters

SEARCH_FILTERS = frozenset(("is-automated", "is-official", "stars"))
DEFAULT_LIMIT = 25
_HUB_ADDRESSES = ("", "https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")
_TIMEOUT = 30


def no_answer(method: str, url: str, cause: BaseException) -> str:
    """A request that got no answer, in Go's net/http words: `Get "url": dial tcp ...: connection refused`."""
    return str(TransportError(method, url, cause)).removeprefix("failed to do request: ")


class _Session:
    """Requests to one registry, with its authorization state; HTTPS falls back to HTTP where allowed."""

    def __init__(self, config: HostConfig, credentials: tuple[str, str] | None):
        self.config, self.base_url = config, config.base_url
        self._context = config.ssl_context()
        self.auth = Authorizer(credentials, self._token)

    def send(self, path: str, authorization: str | None = None):
        import urllib.error  # at the first use: see containerd_py/remotes/registry.py
        import urllib.request

        url = urljoin(self.base_url + "/", path)
        request = urllib.request.Request(url, headers={"Authorization": authorization} if authorization else {})
        try:
            return urllib.request.urlopen(request, timeout=_TIMEOUT, context=self._context)
        except urllib.error.HTTPError as e:
            return e
        except urllib.error.URLError as e:
            cause = e.reason if isinstance(e.reason, BaseException) else e
            if self.config.http_fallback and self.base_url.startswith("https:") and _speaks_no_tls(cause):
                self.base_url = "http" + self.base_url[len("https"):]
                return self.send(path, authorization)
            raise Unavailable(no_answer("GET", url, cause)) from None

    def _token(self, url: str, authorization: str | None) -> dict:
        with self.send(url, authorization) as resp:
            if resp.status != 200:
                raise cerrors.Unauthenticated(f"{resp.status} {resp.reason}")
            return json.loads(resp.read())

    def get(self, path: str, scope: str):
        """GET with authorization: a first 401 is answered, a second one is the caller's to word."""
        resp = self.send(path)
        if resp.status == 401 and self.auth.challenged(resp.headers.get_all("WWW-Authenticate") or [], scope):
            resp.close()
            resp = self.send(path, self.auth.header(scope))
        return resp


class RegistryAccess:
    def __init__(self, insecure_registries: tuple[str, ...] = (), mirrors: tuple[str, ...] = (),
                 hosts_dir: str | None = None):
        self.mirrors = [mirror_host(url) for url in mirrors]
        self.insecure = frozenset(insecure_registries) | {host for host, plain_http in self.mirrors if plain_http}
        self.hosts_dir = hosts_dir

    def _session(self, host: str, credentials: tuple[str, str] | None) -> _Session:
        try:
            return _Session(host_config(host, is_insecure(host, self.insecure), self.hosts_dir), credentials)
        except cerrors.Error as e:
            raise System(str(e.args[0])) from None

    # -- login ------------------------------------------------------------------

    def login(self, auth: dict) -> dict:
        """POST /auth: the credentials work on the registry, or dockerd's 401."""
        if not isinstance(auth, dict):
            raise InvalidParameter("invalid JSON: the body is not a JSON object")
        server = str(auth.get("serveraddress") or "")
        host = DOCKER_HUB if server in _HUB_ADDRESSES else urlsplit(server if "://" in server
                                                                   else "//" + server).netloc
        session = self._session(host, (str(auth.get("username") or ""), str(auth.get("password") or "")))
        try:
            resp = session.get("/v2/", "")
        except cerrors.Unauthenticated as e:
            raise Unauthorized(f"login attempt to {session.base_url}/v2/ failed with status: {e.args[0]}") from None
        with resp:
            if resp.status == 200:
                return {"IdentityToken": "", "Status": "Login Succeeded"}
            raise Unauthorized(f"login attempt to {session.base_url}/v2/ failed with status: "
                               f"{resp.status} {resp.reason}")

    # -- search -----------------------------------------------------------------

    def search(self, term: str, limit: str | None = None, filters_param: str | None = None,
               credentials: tuple[str, str] | None = None) -> list[dict]:
        wanted = Filters.parse(filters_param).validate(SEARCH_FILTERS)
        official = _bool_filter(wanted, "is-official")
        automated = _bool_filter(wanted, "is-automated")
        stars = 0
        for value in wanted.get("stars"):
            try:
                stars = max(stars, int(value))
            except ValueError:
                raise InvalidParameter(f"Invalid filter 'stars={value}'") from None
        count = DEFAULT_LIMIT
        if limit:
            try:
                count = int(limit)
            except ValueError:
                raise InvalidParameter(f'strconv.Atoi: parsing "{limit}": invalid syntax') from None
        if not 1 <= count <= 100:
            raise InvalidParameter(f"Limit {count} is outside the range of [1, 100]")
        host, query, hub = self._index(term)
        results = []
        for repo in self._catalog(host, credentials):
            if query not in repo:
                continue
            is_official = hub and repo.startswith("library/")
            name = repo.removeprefix("library/") if hub else f"{host}/{repo}"
            if (official is not None and official != is_official) or automated or stars > 0:
                continue
            results.append({"star_count": 0, "is_official": is_official, "name": name, "is_automated": False,
                            "description": ""})
        return results[:count]

    def _index(self, term: str) -> tuple[str, str, bool]:
        """(registry host, what to look for, whether it stands for Docker Hub)."""
        first, slash, rest = term.partition("/")
        if slash and (any(c in first for c in ".:") or first == "localhost") and first not in _HUB_ADDRESSES:
            return first, rest, False
        if self.mirrors:
            return self.mirrors[0][0], term, True
        return DOCKER_HUB, term, True

    def _catalog(self, host: str, credentials: tuple[str, str] | None) -> list[str]:
        return _listed(self._session(host, credentials), "/v2/_catalog?n=1000", "registry:catalog:*",
                       "repositories")


def ping(config: HostConfig) -> str:
    """dockerd's first request to a registry (GET /v2/; any answer will do): a registry that does
    not answer fails here, in dockerd's words, before anything is asked of it. Returns the base URL
    that answered (plain HTTP after a loopback registry's fallback)."""
    session = _Session(config, None)
    session.send("/v2/").close()
    return session.base_url


def repository_tags(config: HostConfig, credentials: tuple[str, str] | None, repo: str) -> list[str]:
    """The tags of a repository of the registry (`docker pull -a`); NotFound when it has no such repository."""
    return _listed(_Session(config, credentials), f"/v2/{repo}/tags/list?n=1000", f"repository:{repo}:pull",
                   "tags")


def _listed(session: _Session, path: str, scope: str, key: str) -> list[str]:
    """A list the registry answers in pages (`Link: <next>`), every page's `key` joined."""
    items = []
    while path:
        try:
            resp = session.get(path, scope)
        except cerrors.Unauthenticated as e:
            raise Unauthorized(f"unauthorized: {e.args[0]}") from None
        with resp:
            url = f"{session.base_url}{path.split('?')[0]}"
            if resp.status == 404:
                raise cerrors.NotFound(f"{url}: {resp.status} {resp.reason}")
            if resp.status != 200:
                raise (Unauthorized if resp.status == 401 else System)(f"{url}: {resp.status} {resp.reason}")
            items += json.loads(resp.read()).get(key) or []
            link = resp.headers.get("Link", "")
        path = link[link.find("<") + 1:link.find(">")] if link.startswith("<") else ""
    return items


def is_insecure(host: str, insecure_registries) -> bool:
    """dockerd's insecure-registries: host[:port] names, or CIDRs an IP address host is in."""
    if host in insecure_registries:
        return True
    name = host[1:host.index("]")] if host.startswith("[") and "]" in host else host.rsplit(":", 1)[0]
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    for entry in insecure_registries:
        try:
            if "/" in entry and address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def mirror_host(url: str) -> tuple[str, bool]:
    """A registry-mirrors entry (a URL) as (host[:port], whether it is plain HTTP)."""
    parts = urlsplit(url if "://" in url else f"https://{url}")
    return parts.netloc, parts.scheme == "http"


def _bool_filter(wanted: Filters, name: str) -> bool | None:
    if not wanted.contains(name):
        return None
    values = wanted.fields[name]
    if values == {"true"}:
        return True
    if values == {"false"}:
        return False
    raise InvalidParameter(f"Invalid filter '{name}=[{' '.join(wanted.get(name))}]'")
