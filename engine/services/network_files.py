"""A container's /etc/hostname, /etc/hosts and /etc/resolv.conf: written
under its directory and bind-mounted, as dockerd writes them (networking's
issue adds the container's own addresses and its networks' names)."""
import os
from dataclasses import dataclass

from engine.network.resolvconf import resolv_conf
from engine.textfiles import read_or_empty

_HOSTS = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
          "ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")


@dataclass(frozen=True)
class NetworkFiles:
    """/etc/hostname, /etc/hosts, /etc/resolv.conf of a container, written
    under its directory and bind-mounted (or those of the container whose
    network it joins)."""
    hostname: str
    hosts: str
    resolv_conf: str
    own: bool = True

    @classmethod
    def under(cls, directory: str) -> "NetworkFiles":
        return cls(*(os.path.join(directory, n) for n in ("hostname", "hosts", "resolv.conf")))

    def write(self, hostname: str, host_network: bool, extra_hosts: list[str] = (), resolv: str | None = None) -> None:
        """``extra_hosts``: --add-host's "name:address" entries. As libnetwork:
        with host networking the host's file is copied — unless there are
        extra hosts, which go below the defaults as in any other mode.
        ``resolv``: the resolv.conf text (by default the host's, filtered)."""
        if host_network and not extra_hosts:
            hosts = read_or_empty("/etc/hosts")
        else:
            hosts = _hosts(extra_hosts)
        if resolv is None:
            resolv = resolv_conf(read_or_empty("/etc/resolv.conf"), host_network=host_network)
        for path, text in ((self.hostname, hostname + "\n"), (self.hosts, hosts), (self.resolv_conf, resolv)):
            with open(path, "w") as f:
                f.write(text)

    def write_hosts(self, hostname: str, domainname: str, extra_hosts: list[str], addresses: list[str],
                    link_lines: list[str] = ()) -> None:
        """/etc/hosts once the container has its addresses (at start), each
        naming the container as libnetwork does: "ip<TAB>host.domain host";
        legacy links' lines before them."""
        names = f"{hostname}.{domainname}\t{hostname}" if domainname else hostname
        with open(self.hosts, "w") as f:
            f.write(_hosts(extra_hosts) + "".join(link_lines)
                    + "".join(f"{address}\t{names}\n" for address in addresses))


def _hosts(extra_hosts: list[str]) -> str:
    extra = (entry.partition(":") for entry in extra_hosts)
    return _HOSTS + "".join(f"{address}\t{name}\n" for name, _, address in extra)
