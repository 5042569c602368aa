"""A container's /etc/resolv.conf as dockerd 20.10 writes it (libnetwork's
sandbox_dns_unix.go and resolvconf package), and the upstreams its embedded
resolver forwards to.

Containers on the default bridge get the host's file minus the loopback
nameservers (unreachable from their namespace) and the IPv6 ones (the
networks are IPv4 only), Google's public servers if none is left;
--dns/--dns-search/--dns-option replace the parts they give.
Containers on user-defined networks get `nameserver 127.0.0.11` (the
embedded resolver, see dns.py) with the same search list and options plus
`ndots:0`; the real nameservers become the resolver's upstreams.
"""
import logging
import re
from dataclasses import dataclass

EMBEDDED_NAMESERVER = "127.0.0.11"
_DEFAULT_NAMESERVERS = "\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"   # appended as dockerd 20.10 does

# libnetwork/resolvconf's expressions, as they are (including what they let through)
_IPV4_BLOCK = r"(25[0-5]|(2[0-4]|1[0-9]|[1-9]|)[0-9])"
_IPV4 = rf"({_IPV4_BLOCK}\.){{3}}{_IPV4_BLOCK}"
_IPV6 = r"([0-9A-Fa-f]{0,4}:){2,7}([0-9A-Fa-f]{0,4})(%\w+)?"
_LOCALHOST_NAMESERVER = re.compile(r"^\s*nameserver\s*((127\.([0-9]{1,3}\.){2}[0-9]{1,3})|(::1)$)\s*\n*",
                                   re.MULTILINE)
_IPV6_NAMESERVER = re.compile(rf"^\s*nameserver\s*{_IPV6}\s*\n*", re.MULTILINE)
_NAMESERVER = {"ip": re.compile(rf"^\s*nameserver\s*(({_IPV4})|({_IPV6}))\s*$"),
               "ipv4": re.compile(rf"^\s*nameserver\s*(({_IPV4}))\s*$"),
               "ipv6": re.compile(rf"^\s*nameserver\s*(({_IPV6}))\s*$")}
_SEARCH = re.compile(r"^\s*search\s*(([^\s]+\s*)*)$")
_OPTIONS = re.compile(r"^\s*options\s*(([^\s]+\s*)*)$")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DnsSettings:
    """--dns, --dns-search and --dns-option of a container (else the daemon's)."""
    servers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


def _lines(text: str) -> list[str]:
    return [line.partition("#")[0] for line in text.split("\n")]


def nameservers(text: str, kind: str = "ip") -> list[str]:
    """The nameserver addresses of a resolv.conf; kind "ip", "ipv4" or "ipv6"."""
    found = (_NAMESERVER[kind].match(line) for line in _lines(text))
    return [match.group(1) for match in found if match]


def _last_fields(text: str, expression: re.Pattern) -> list[str]:
    """The fields of the last search (or options) line: the last one counts, as for the C resolver."""
    fields = []
    for line in _lines(text):
        match = expression.match(line)
        if match:
            fields = match.group(1).split()
    return fields


def _build(servers, search, options) -> str:
    """libnetwork's resolvconf.Build: search, nameservers, options."""
    text = ""
    if search and " ".join(search).strip(" ") != ".":
        text += "search " + " ".join(search) + "\n"
    text += "".join(f"nameserver {server}\n" for server in servers)
    if options and " ".join(options).strip(" "):
        text += "options " + " ".join(options) + "\n"
    return text


def _filtered(host_text: str) -> str:
    """The host's file without loopback and IPv6 nameservers, public defaults if none is left."""
    cleaned = _IPV6_NAMESERVER.sub("", _LOCALHOST_NAMESERVER.sub("", host_text))
    return cleaned if nameservers(cleaned) else cleaned + _DEFAULT_NAMESERVERS


def resolv_conf(host_text: str, dns: DnsSettings = DnsSettings(), host_network: bool = False) -> str:
    """The file of a container outside user-defined networks (the default
    bridge; with the host's network, the host's file as it is)."""
    if not (dns.servers or dns.search or dns.options):
        return host_text if host_network else _filtered(host_text)
    return _build(dns.servers or nameservers(host_text), dns.search or _last_fields(host_text, _SEARCH),
                  dns.options or _last_fields(host_text, _OPTIONS))


def embedded_resolv_conf(host_text: str, dns: DnsSettings = DnsSettings()) -> str:
    """The file of a container on a user-defined network: the embedded
    resolver first, IPv6 nameservers after it (it forwards over IPv4 only),
    and ndots:0 unless the options set ndots, so that a bare name is first
    asked as it is (container names are bare). A bad ndots option leaves
    the file without the resolver, as dockerd does (it logs and goes on)."""
    own = resolv_conf(host_text, dns)
    options = _last_fields(own, _OPTIONS)
    try:
        if not _user_sets_ndots(options):
            options.append("ndots:0")
    except ValueError as e:
        log.warning("resolv.conf: %s", e)
        return own
    return _build([EMBEDDED_NAMESERVER] + nameservers(own, "ipv6"), _last_fields(own, _SEARCH), options)


def upstreams(host_text: str, dns: DnsSettings = DnsSettings()) -> list[str]:
    """The IPv4 nameservers the embedded resolver forwards to: --dns's, else
    the host's (loopback ones too: the resolver forwards from the engine's
    namespace), else the public defaults. IPv6 ones are left to the
    container (they stay in its file)."""
    if dns.servers or dns.search or dns.options:
        return nameservers(resolv_conf(host_text, dns), "ipv4")
    return nameservers(host_text, "ipv4") or nameservers(_filtered(host_text), "ipv4")


def _user_sets_ndots(options: list[str]) -> bool:
    for option in options:
        if "ndots" in option:
            parts = option.split(":")
            if len(parts) != 2:
                raise ValueError(f"invalid ndots option {option}")
            try:
                number = int(parts[1])
            except ValueError:
                raise ValueError(f"invalid number for ndots option: {parts[1]}") from None
            if number < 0:
                raise ValueError(f"invalid number for ndots option: {number}")
            return True
    return False
