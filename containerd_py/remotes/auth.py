"""Registry authentication: docker's config.json credentials and the 401 challenge flow.

A registry answers an unauthorised request with `WWW-Authenticate: Basic
realm=...` (send the credentials) or `Bearer realm=...,service=...,scope=...`
(trade the credentials, or nothing, for a token at the realm, per scope).
"""
import base64
import json
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from .. import errors

_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')
_DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower case: "basic" or "bearer"
    params: dict[str, str]


def parse_challenges(headers: list[str]) -> list[Challenge]:
    """Parses WWW-Authenticate values (one challenge each, as registries send them)."""
    result = []
    for header in headers:
        scheme, _, rest = header.strip().partition(" ")
        params = {m.group(1).lower(): re.sub(r"\\(.)", r"\1", m.group(2)) if m.group(2) is not None else m.group(3)
                  for m in _PARAM.finditer(rest)}
        result.append(Challenge(scheme.lower(), params))
    return result


def load_docker_config(path: str | None = None) -> dict[str, tuple[str, str]]:
    """Credentials by registry host from a docker config.json (`auths` entries).

    Default path: $DOCKER_CONFIG/config.json, else ~/.docker/config.json; a
    missing file means no credentials. Credential helpers are not run.
    """
    if path is None:
        path = os.path.join(os.environ.get("DOCKER_CONFIG") or os.path.expanduser("~/.docker"), "config.json")
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise errors.InvalidArgument(f"{path}: {e}") from None
    result = {}
    for key, entry in (data.get("auths") or {}).items():
        if entry.get("auth"):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise errors.InvalidArgument(f"{path}: auths.{key}.auth is not base64 of user:password") from None
        elif entry.get("username"):
            user, password = entry["username"], entry.get("password", "")
        else:
            continue
        host = urlsplit(key).netloc if "://" in key else key.rstrip("/")
        result["docker.io" if key in _DOCKER_HUB_KEYS else host] = (user, password)
    return result


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# Fetches a token: (realm URL with query, Authorization header or None) -> decoded JSON answer.
TokenFetcher = Callable[[str, str | None], dict]


class Authorizer:
    """Authorization state for one registry, shared by the threads of a pull or push.

    Remembers how the registry challenged and caches one bearer token per scope.
    """

    def __init__(self, credentials: tuple[str, str] | None, fetch_token: TokenFetcher):
        self._credentials = credentials
        self._fetch_token = fetch_token
        self._challenge: Challenge | None = None
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()

    def header(self, scope: str) -> str | None:
        """The Authorization header for a request needing scope (space-separated
        `repository:<name>:<actions>` items), fetching a token when due."""
        with self._lock:
            challenge = self._challenge
            if challenge is None:
                return None
            if challenge.scheme == "basic":
                return basic(*self._credentials) if self._credentials else None
            if scope not in self._tokens:
                self._tokens[scope] = self._token(challenge, scope)
            return f"Bearer {self._tokens[scope]}"

    def challenged(self, headers: list[str], scope: str) -> bool:
        """Learns from a 401; true when retrying with new authorization may succeed."""
        usable = [c for c in parse_challenges(headers) if c.scheme == "bearer" and c.params.get("realm")
                  or c.scheme == "basic" and self._credentials]
        if not usable:
            return False
        with self._lock:
            stale = self._challenge == usable[0] and (usable[0].scheme == "basic" or scope in self._tokens)
            self._challenge = usable[0]
            self._tokens.pop(scope, None)
        return not stale

    def _token(self, challenge: Challenge, scope: str) -> str:
        query = [("service", challenge.params["service"])] if challenge.params.get("service") else []
        query += [("scope", s) for s in scope.split()]
        realm = challenge.params["realm"]
        url = realm + ("&" if "?" in realm else "?") + urlencode(query) if query else realm
        answer = self._fetch_token(url, basic(*self._credentials) if self._credentials else None)
        token = answer.get("token") or answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise errors.Unauthenticated(f"token server {realm} answered without a token")
        return token
