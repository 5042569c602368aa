"""PortBindings checks worded as real dockerd words them: each bad spec sent
to dockerd's API gives the status and message validate_port_bindings gives."""
import json

import pytest

from engine import errors
from engine.network.portmap import validate_port_bindings
from test_bad_input_api import call

pytestmark = pytest.mark.root

BAD_BINDINGS = {
    "container-port-a-word": {"abc/tcp": []},
    "container-port-a-range": {"80-90/tcp": []},
    "container-port-too-big": {"70000/tcp": []},
    "host-port-a-word": {"80/tcp": [{"HostIp": "", "HostPort": "x"}]},
    "host-range-backwards": {"80/tcp": [{"HostIp": "", "HostPort": "9000-8000"}]},
    "host-port-signed": {"80/tcp": [{"HostIp": "", "HostPort": "+8080"}]},
    "host-port-too-big": {"80/tcp": [{"HostIp": "", "HostPort": "65536"}]},
}


@pytest.mark.parametrize("case", sorted(BAD_BINDINGS))
def test_bad_port_bindings_are_refused_as_dockerd_refuses_them(dockerd, case):
    body = json.dumps({"Image": "busybox", "HostConfig": {"PortBindings": BAD_BINDINGS[case]}}).encode()
    with pytest.raises(errors.InvalidParameter) as ours:
        validate_port_bindings(BAD_BINDINGS[case])
    assert call(dockerd.socket, "POST", "/containers/create", body) == (400, str(ours.value))
