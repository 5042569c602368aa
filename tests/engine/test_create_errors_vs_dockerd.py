"""Bad create requests: engine.oci refuses what dockerd 20.10 refuses at
create, with the same message. dockerd answers some of them 500 (its
volume parser and security options are not classified); ours are all 400,
as later dockerd versions answer them."""
import http.client
import json
import socket
from urllib.parse import quote

import pytest

from engine.errors import InvalidParameter, http_status
from engine.names import validate_name
from engine.oci import LocalHost, check_against_host, parse_config, parse_host_config

pytestmark = pytest.mark.root

DOCKERD_ANSWERS_500 = {"binds-bad", "binds-relative-target", "binds-mode", "security-opt-1", "security-opt-2"}
CASES = {
    "binds-bad": {"HostConfig": {"Binds": ["/a:/b:/c:d"]}},
    "binds-relative-target": {"HostConfig": {"Binds": ["/a:b"]}},
    "binds-mode": {"HostConfig": {"Binds": ["/a:/b:xx"]}},
    "mount-type": {"HostConfig": {"Mounts": [{"Type": "foo", "Source": "/etc", "Target": "/x"}]}},
    "mount-relative-source": {"HostConfig": {"Mounts": [{"Type": "bind", "Source": "etc", "Target": "/x"}]}},
    "mount-no-target": {"HostConfig": {"Mounts": [{"Type": "bind", "Source": "/etc"}]}},
    "mount-no-source": {"HostConfig": {"Mounts": [{"Type": "bind", "Source": "/no-such-engine-test-source",
                                                 "Target": "/x"}]}},
    "mount-duplicate": {"HostConfig": {"Binds": ["/etc:/x"],
                                       "Mounts": [{"Type": "bind", "Source": "/etc", "Target": "/x"}]}},
    "security-opt-1": {"HostConfig": {"SecurityOpt": ["foo"]}},
    "security-opt-2": {"HostConfig": {"SecurityOpt": ["foo=bar"]}},
    "cap-unknown": {"HostConfig": {"CapAdd": ["FOO"]}},
    "memory-low": {"HostConfig": {"Memory": 1000}},
    "swap-below-memory": {"HostConfig": {"Memory": 10000000, "MemorySwap": 1000}},
    "swap-without-memory": {"HostConfig": {"MemorySwap": 100000000}},
    "reservation-above-memory": {"HostConfig": {"Memory": 10000000, "MemoryReservation": 20000000}},
    "nano-cpus-and-quota": {"HostConfig": {"NanoCpus": 1000000000, "CpuQuota": 5000}},
    "nano-cpus-too-many": {"HostConfig": {"NanoCpus": 1000 * 1000000000}},
    "cpu-period": {"HostConfig": {"CpuPeriod": 100}},
    "cpu-quota": {"HostConfig": {"CpuQuota": 100}},
    "cpuset-format": {"HostConfig": {"CpusetCpus": "abc"}},
    "cpuset-unavailable": {"HostConfig": {"CpusetCpus": "1000"}},
    "tmpfs-relative": {"HostConfig": {"Tmpfs": {"run": ""}}},
    "shm-negative": {"HostConfig": {"ShmSize": -1}},
    "env": {"Env": ["=x"]},
    "working-dir": {"WorkingDir": "rel"},
}


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def dockerd_create(dockerd, body: dict, name: str = "") -> tuple[int, str]:
    conn = UnixConnection(dockerd.socket)
    try:
        query = f"?name={quote(name)}" if name else ""
        conn.request("POST", f"/v1.41/containers/create{query}", json.dumps({"Image": "busybox", **body}),
                     {"Content-Type": "application/json"})
        response = conn.getresponse()
        answer = json.loads(response.read())
    finally:
        conn.close()
    if response.status == 201:
        dockerd.docker("rm", "-f", answer["Id"], check=False)
    return response.status, answer.get("message", "")


def our_create(body: dict, name: str = "") -> str:
    with pytest.raises(InvalidParameter) as info:
        if name:
            validate_name(name)
        parse_config(body)
        check_against_host(parse_host_config(body.get("HostConfig")), LocalHost())
    assert http_status(info.value) == 400
    return str(info.value)


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_with_dockerds_message(dockerd, case):
    status, message = dockerd_create(dockerd, CASES[case])
    assert status == (500 if case in DOCKERD_ANSWERS_500 else 400), message
    assert our_create(CASES[case]) == message


@pytest.mark.parametrize("name", ["a/b", "-x", "a"])
def test_invalid_name_with_dockerds_message(dockerd, name):
    assert dockerd_create(dockerd, {}, name) == (400, our_create({}, name))
