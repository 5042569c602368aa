"""docker-py 7's networks API at engine-py and at dockerd 20.10: the same
calls, the same attributes and errors (IDs and creation times aside)."""
import uuid

import docker
import pytest
from docker.types import IPAMConfig, IPAMPool


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
