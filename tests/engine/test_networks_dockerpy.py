"""docker-py 7's networks API at engine-py and at dockerd 20.10: the same
calls, the same attributes and errors (IDs and creation times aside)."""
import uuid

import docker
import pytest
from docker.types import IPAMConfig, IPAMPool

from test_cio_cli import ipv4_only


@pytest.fixture
def clients(engine_py, dockerd):
    made = [docker.DockerClient(base_url=f"unix://{d.socket}", version="auto") for d in (engine_py, dockerd)]
    yield made
    for client in made:
        client.close()


def scenario(client) -> list:
    name = f"dp-{uuid.uuid4().hex[:8]}"
    seen = []
    pool = IPAMPool(subnet="10.240.0.0/24", iprange="10.240.0.128/25", gateway="10.240.0.1")
    network = client.networks.create(name, labels={"k": "v"}, internal=True,
                                     options={"com.docker.network.driver.mtu": "1400"},
                                     ipam=IPAMConfig(pool_configs=[pool]))
    try:
        attrs = client.networks.get(network.id[:12]).attrs
        seen.append({key: value for key, value in attrs.items() if key not in ("Id", "Created", "Name")})
        seen.append([n.name == name for n in client.networks.list(names=[name], filters={"label": "k=v"})])
        seen.append(sorted(n.name for n in client.networks.list(filters={"type": "builtin"})))
        with pytest.raises(docker.errors.APIError) as duplicate:
            client.networks.create(name, check_duplicate=True)
        seen.append((duplicate.value.status_code, duplicate.value.explanation.replace(name, "N")))
        with pytest.raises(docker.errors.APIError) as overlap:
            client.networks.create(name + "-2", ipam=IPAMConfig(pool_configs=[IPAMPool(subnet="10.240.0.0/16")]))
        seen.append((overlap.value.status_code, overlap.value.explanation))
        with pytest.raises(docker.errors.APIError) as predefined:
            client.api.remove_network("none")
        seen.append((predefined.value.status_code, predefined.value.explanation))
        network.remove()
        with pytest.raises(docker.errors.NotFound) as gone:
            client.networks.get(name)
        seen.append(gone.value.explanation.replace(name, "N"))
        seen.append(client.networks.prune(filters={"label": f"nothing-{name}"}))
    finally:
        for left in client.networks.list(names=[name]):
            left.remove()
    return seen


def test_networks_through_dockerpy_as_dockerd(clients):
    ours, theirs = (scenario(client) for client in clients)
    assert ours == theirs


def containers_scenario(client) -> list:
    """Containers with ports and networks through docker-py's high-level API:
    what reload() shows of them, connect/disconnect, and the network's view."""
    tag = uuid.uuid4().hex[:8]
    network = client.networks.create(f"dpc-{tag}", ipam=IPAMConfig(pool_configs=[IPAMPool(subnet="10.241.0.0/24")]))
    web = client.containers.run("busybox", ["httpd", "-f", "-p", "80"], name=f"web-{tag}", detach=True,
                                ports={"80/tcp": 18080, "81/udp": None})
    try:
        seen = []
        web.reload()
        settings = web.attrs["NetworkSettings"]
        seen.append((ipv4_only(web.ports)["80/tcp"], sorted(web.ports), sorted(settings["Networks"])))
        seen.append(sorted(settings["Networks"]["bridge"]))
        network.connect(web, aliases=["site"], ipv4_address="10.241.0.50")
        web.reload()
        joined = web.attrs["NetworkSettings"]["Networks"][network.name]
        seen.append((joined["IPAddress"], joined["IPPrefixLen"], joined["Gateway"], joined["Aliases"][0],
                     joined["MacAddress"]))
        network.reload()
        seen.append([(c.name.replace(tag, "T"), c.id == web.id) for c in network.containers])
        with pytest.raises(docker.errors.APIError) as twice:
            network.connect(web)
        seen.append((twice.value.status_code, twice.value.explanation.replace(tag, "T")))
        network.disconnect(web)
        web.reload()
        seen.append(sorted(web.attrs["NetworkSettings"]["Networks"]))
        return seen
    finally:
        web.remove(force=True)
        network.remove()


def test_containers_on_networks_as_docker_py_sees_them(clients):
    ours, theirs = (containers_scenario(client) for client in clients)
    assert ours == theirs
