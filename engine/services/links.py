"""Legacy links (``--link name[:alias]``) on the default bridge, as dockerd
gives them: checked and written down at create in dockerd's form
("/db:/web/db"), and at start the linked container's address in /etc/hosts
("ip<TAB>alias hostname name") and its ports, name and environment in the
environment (DB_PORT_80_TCP_ADDR=..., DB_ENV_X=...). On user networks a link
is a DNS alias, which the resolver does not offer yet; the links are kept."""
from dataclasses import dataclass

from engine.errors import InvalidParameter, NotFound, System
from engine.store import Container, ContainerStore


@dataclass(frozen=True)
class Link:
    alias: str
    linked: Container


def normalized(links: list[str] | None, own_name: str, store: ContainerStore) -> list[str] | None:
    """HostConfig.Links as dockerd records them; an unknown container is its error."""
    if not links:
        return links
    recorded = []
    for link in links:
        name, _, alias = link.partition(":")
        try:
            linked = store.get(name.lstrip("/"))
        except NotFound as err:
            raise InvalidParameter(f"could not get container for {name}: {err}") from None
        recorded.append(f"{linked.name}:{own_name}/{(alias or linked.name).lstrip('/').rpartition('/')[2]}")
    return recorded


def at_start(record: Container, store: ContainerStore) -> list[Link]:
    """The running containers the record links to; one that is not running is dockerd's error."""
    found = []
    for link in record.host_config.get("Links") or ():
        name, _, path = link.partition(":")
        try:
            linked = store.get(name.lstrip("/"))
        except NotFound as err:
            raise System(f"could not get container for {name}: {err}") from None
        if not linked.state.running:
            raise System(f"Cannot link to a non running container: {linked.name} AS {path}")
        found.append(Link(path.rpartition("/")[2], linked))
    return found


def _address(linked: Container) -> str:
    return ((linked.network_settings.get("Networks") or {}).get("bridge") or {}).get("IPAddress") or ""


def hosts_lines(links: list[Link]) -> list[str]:
    """libnetwork's extra hosts for the links: "ip<TAB>alias hostname [name]"."""
    lines = []
    for link in links:
        names = [link.alias, link.linked.config.get("Hostname") or link.linked.id[:12]]
        if link.alias != link.linked.name.lstrip("/"):
            names.append(link.linked.name.lstrip("/"))
        lines.append(f"{_address(link.linked)}\t{' '.join(names)}\n")
    return lines


def environment(links: list[Link], own_name: str) -> list[str]:
    """dockerd's link variables (links.Link.ToEnv), each link's in turn."""
    env = []
    for link in links:
        prefix = link.alias.upper().replace("-", "_")
        address = _address(link.linked)
        ports = sorted(((int(port), proto) for port, _, proto in
                        (key.partition("/") for key in link.linked.config.get("ExposedPorts") or {})))
        if ports:
            env.append(f"{prefix}_PORT={ports[0][1]}://{address}:{ports[0][0]}")
        for port, proto in ports:
            base = f"{prefix}_PORT_{port}_{proto.upper()}"
            env += [f"{base}={proto}://{address}:{port}", f"{base}_ADDR={address}", f"{base}_PORT={port}",
                    f"{base}_PROTO={proto}"]
        env.append(f"{prefix}_NAME={own_name}/{link.alias}")
        for variable in link.linked.config.get("Env") or ():
            key, sep, value = variable.partition("=")
            if sep and key not in ("HOME", "PATH"):
                env.append(f"{prefix}_ENV_{key}={value}")
    return env


def add_to_spec(spec: dict, env: list[str], links: list[Link], config_env: list[str]) -> None:
    """The links' variables after PATH, HOSTNAME (and TERM), before the
    container's own, which win on a clash (dockerd's CreateDaemonEnvironment);
    those of an earlier start (not in ``config_env``) replaced."""
    prefixes = tuple(link.alias.upper().replace("-", "_") + "_" for link in links)
    configured = {variable.partition("=")[0] for variable in config_env}
    own = [variable for variable in spec["process"].get("env") or []
           if not variable.startswith(prefixes) or variable.partition("=")[0] in configured]
    start = 0
    while start < min(len(own), 3) and own[start].partition("=")[0] in ("PATH", "HOSTNAME", "TERM"):
        start += 1
    own_keys = {variable.partition("=")[0] for variable in own}
    spec["process"]["env"] = own[:start] + [v for v in env if v.partition("=")[0] not in own_keys] + own[start:]
