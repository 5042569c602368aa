"""How to reach one registry: scheme and TLS trust, as containerd's hosts.toml says.

`<hosts_dir>/<host[:port]>/hosts.toml` may hold `server = "http://..."`
(plain HTTP) or an https server, `ca = "file"` or a list of files, and
`skip_verify = true`. Plain HTTP is otherwise opted into per call
(`--plain-http`), except for a loopback registry (localhost, 127.0.0.0/8,
::1) that hosts.toml names no server for: that one is tried over HTTPS and,
when nothing answers in TLS there, over plain HTTP, as containerd and
docker let a local registry work without a flag.
"""
import ipaddress
import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .. import errors
from ..errors import q


@dataclass(frozen=True)
class HostConfig:
    host: str  # host[:port] as in the reference
    plain_http: bool = False
    ca_files: tuple[str, ...] = field(default_factory=tuple)
    skip_verify: bool = False
    http_fallback: bool = False  # HTTPS first, plain HTTP when the host does not speak TLS

    @property
    def base_url(self) -> str:
        host = "registry-1.docker.io" if self.host == "docker.io" else self.host
        return f"{'http' if self.plain_http else 'https'}://{host}"

    def ssl_context(self):
        """The TLS trust to reach it with (ssl is imported only now: see registry.py)."""
        import ssl

        context = ssl.create_default_context()
        for ca in self.ca_files:
            context.load_verify_locations(cafile=ca)
        if self.skip_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


def host_config(host: str, plain_http: bool = False, hosts_dir: str | None = None) -> HostConfig:
    """The configuration of host: hosts.toml when present, then the plain_http flag on top."""
    path = os.path.join(hosts_dir, host, "hosts.toml") if hosts_dir else ""
    if not path or not os.path.exists(path):
        return HostConfig(host, plain_http, http_fallback=not plain_http and is_loopback(host))
    import tomllib  # only where a hosts.toml is: the engine imports this module at start

    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise errors.InvalidArgument(f"{path}: invalid TOML: {e}") from None
    server = data.get("server", "")
    scheme = urlsplit(server).scheme if server else "https"
    if scheme not in ("http", "https"):
        raise errors.InvalidArgument(f"{path}: server {q(server)} must be an http or https URL")
    ca = data.get("ca", [])
    ca_files = [ca] if isinstance(ca, str) else ca
    if not isinstance(ca_files, list) or not all(isinstance(c, str) for c in ca_files):
        raise errors.InvalidArgument(f"{path}: ca must be a file name or a list of them")
    skip_verify = data.get("skip_verify", False)
    if not isinstance(skip_verify, bool):
        raise errors.InvalidArgument(f"{path}: skip_verify must be true or false")
    base = os.path.dirname(path)
    return HostConfig(host, plain_http or scheme == "http", tuple(os.path.join(base, c) for c in ca_files),
                      skip_verify, http_fallback=not plain_http and not server and is_loopback(host))


def is_loopback(host: str) -> bool:
    """host[:port] names this machine: localhost or a loopback address (Go's docker.MatchLocalhost)."""
    name = host[1:host.index("]")] if host.startswith("[") and "]" in host else host.rsplit(":", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
