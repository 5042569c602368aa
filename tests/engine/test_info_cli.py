"""`docker info` and `docker system df [-v]` (CLI 28 and 20.10) at engine-py:
printed without errors, the lines dockerd's reply makes the same CLI print,
`--format '{{json .}}'` with dockerd's keys, and /system/df's fields."""
import json

import pytest

from test_api_server import Client
from test_containers_api import CLIS, unique


@pytest.fixture
def running(engine_py):
    name = unique("info")
    engine_py.docker("run", "-d", "--name", name, "busybox", "sleep", "1000")
    yield name
    engine_py.docker("rm", "-f", name, check=False)


def labels(printed: str) -> list[str]:
    """The `Name:` of each line of `docker info`'s output, indented as printed."""
    return [line.split(":")[0] for line in printed.splitlines() if ":" in line]


@pytest.mark.parametrize("cli", CLIS)
def test_info_prints_without_complaint_and_counts_the_running_container(engine_py, running, cli):
    shown = engine_py.docker("info", cli=cli)
    assert shown.stderr.strip() == ""  # forwarding on, bridge-nf on in the engine's namespace: no warning
    assert " Running: 1\n" in shown.stdout and " Storage Driver: overlayfs\n" in shown.stdout
    assert " Default Runtime: runpy-oci\n" in shown.stdout and " Cgroup Driver: cgroupfs\n" in shown.stdout
    assert " Swarm: inactive\n" in shown.stdout and " Live Restore Enabled: true\n" in shown.stdout


def test_info_prints_the_lines_dockerds_does(engine_py, dockerd):
    """The same CLI (20.10) over both daemons: every line of dockerd's, but its
    overlay2 details (ours: the containerd snapshotter's driver-type)."""
    ours = labels(engine_py.docker("info", cli="20.10").stdout)
    theirs = labels(dockerd.docker("info").stdout)
    overlay2 = {"  Backing Filesystem", "  Supports d_type", "  Native Overlay Diff", "  userxattr"}
    assert [line for line in theirs if line not in overlay2] == [line for line in ours if line != "  driver-type"]


def test_info_json_has_dockerds_keys(engine_py, dockerd):
    ours = json.loads(engine_py.docker("info", "--format", "{{json .}}", cli="20.10").stdout)
    theirs = json.loads(dockerd.docker("info", "--format", "{{json .}}").stdout)
    assert list(ours) == list(theirs)
    both = [k for k in ours if ours[k] is not None and theirs[k] is not None]  # Warnings: null at dockerd's
    assert {k: type(ours[k]) for k in both} == {k: type(theirs[k]) for k in both}
    assert isinstance(ours["Warnings"], list)


@pytest.mark.parametrize("cli", CLIS)
def test_system_df_counts_images_and_containers(engine_py, running, cli):
    table = engine_py.docker("system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}", cli=cli).stdout
    assert table.splitlines()[:2] == ["Images 1 1", "Containers 1 1"]
    verbose = engine_py.docker("system", "df", "-v", cli=cli)
    assert verbose.stderr == "" and running in verbose.stdout and "busybox" in verbose.stdout


def test_system_df_api_has_dockerds_fields(engine_py, dockerd):
    def disk_usage(socket_path):
        client = Client(socket_path)
        try:
            status, _, body = client.get("/v1.41/system/df")
        finally:
            client.close()
        assert status == 200
        return json.loads(body)

    ours, theirs = disk_usage(engine_py.socket), disk_usage(dockerd.socket)
    assert set(ours) == set(theirs)
    assert set(ours["Images"][0]) == set(theirs["Images"][0])
    assert (ours["Volumes"], ours["BuildCache"], ours["BuilderSize"]) == ([], [], 0)
    assert ours["LayersSize"] == sum(image["Size"] for image in ours["Images"])  # busybox alone: no shared layer


def test_system_df_measures_a_containers_writable_layer(engine_py, running):
    engine_py.docker("exec", running, "sh", "-c", "head -c 100000 /dev/zero > /written")
    client = Client(engine_py.socket)
    try:
        usage = json.loads(client.get("/system/df")[2])
    finally:
        client.close()
    (container,) = [c for c in usage["Containers"] if c["Names"] == [f"/{running}"]]
    (image,) = [i for i in usage["Images"] if i["Id"] == container["ImageID"]]
    assert container["SizeRw"] >= 100000 and container["SizeRootFs"] == container["SizeRw"] + image["Size"]
    shown = engine_py.docker("system", "df", "-v", "--format", "{{json .}}").stdout
    assert running in shown
