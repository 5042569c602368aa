"""`docker system df` (-v, --format), docker-py's `df()` and the prunes
(container, image, volume, network, system; their filters, bad filters,
the space reclaimed) at engine-py and at real dockerd 20.10, through the
docker CLI 28 and 20.10 at both. Every object a test makes is named and
labelled with a prefix of its own, and every prune is filtered by that
label: the daemons are shared with the rest of the run."""
import json
import os
import re
import subprocess
import uuid
from collections.abc import Iterator

import docker
import pytest

from containerd_py.types import Mount
from engine.containerd.tasks import writable_dir
from engine.disk import files_size
from engine_daemon import DOCKER_CLIS

CLIS = ("28", "20.10")
_ID = re.compile(r"(?:sha256:)?[0-9a-f]{64}|\b[0-9a-f]{12}\b")


class Side:
    """One daemon (by its socket) as each CLI drives it."""

    def __init__(self, socket: str):
        self.socket = socket

    def docker(self, *args: str, cli: str = "20.10", check: bool = True, input: str | None = None):
        r = subprocess.run([DOCKER_CLIS[cli], "-H", f"unix://{self.socket}", *args], capture_output=True, text=True,
                           input=input, stdin=None if input is not None else subprocess.DEVNULL, timeout=120,
                           env={**os.environ, "DOCKER_CONFIG": os.path.dirname(self.socket) + "/ops-docker-config"})
        if check and r.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed: {r.stderr}")
        return r


@pytest.fixture(scope="module")
def sides(engine_py, dockerd) -> dict[str, Side]:
    return {"ours": Side(engine_py.socket), "dockerd": Side(dockerd.socket)}


def fill(side: Side, prefix: str) -> None:
    """A stopped container that wrote 5000 bytes to its own layer and 3000
    to a named volume (and has an anonymous one); an image committed from
    a container that wrote 40000 bytes, tagged and once more untagged; an
    unused volume of 7000 bytes (a hard link and a symlink in it), an empty
    one, two networks; everything labelled ops=<prefix>, some keep=1 too."""
    d, label = side.docker, f"ops={prefix}"
    d("run", "--name", f"{prefix}c1", "--label", label, "-v", f"{prefix}v1:/data", "-v", "/anon", "busybox", "sh",
      "-c", "head -c 5000 /dev/zero > /f; head -c 3000 /dev/zero > /data/f")
    d("create", "--name", f"{prefix}c2", "--label", label, "--label", "keep=1", "busybox", "true")
    writer = d("run", "-d", "--label", label, "busybox", "sh", "-c",
               "head -c 40000 /dev/urandom > /g; sleep 1000").stdout.strip()
    d("commit", "-c", f"LABEL {label}", writer, f"{prefix}image:1")
    d("commit", "-c", f"LABEL {label}", writer)
    d("rm", "-f", writer)
    d("volume", "create", "--label", label, f"{prefix}v2")
    d("run", "--rm", "-v", f"{prefix}v2:/data", "busybox", "sh", "-c",
      "head -c 7000 /dev/zero > /data/f; ln /data/f /data/g; ln -s f /data/h")
    d("volume", "create", "--label", label, "--label", "keep=1", f"{prefix}v3")
    d("network", "create", "--label", label, f"{prefix}n1")
    d("network", "create", "--label", label, "--label", "keep=1", f"{prefix}n2")


def unfill(side: Side, prefix: str) -> None:
    """What fill made (what a test's prunes left of it), removed: the daemons
    serve the whole session, and later modules list their networks and volumes."""
    side.docker("rm", "-fv", f"{prefix}c1", f"{prefix}c2", check=False)
    side.docker("volume", "rm", f"{prefix}v1", f"{prefix}v2", f"{prefix}v3", check=False)
    side.docker("network", "rm", f"{prefix}n1", f"{prefix}n2", check=False)
    side.docker("image", "prune", "-af", "--filter", f"label=ops={prefix}", check=False)


def masked(text: str, prefix: str) -> str:
    return _ID.sub("<id>", text.replace(prefix, "<P>"))


@pytest.fixture(scope="module")
def filled(sides) -> Iterator[dict[str, str]]:
    """Each daemon filled once for the df tests: its prefix."""
    prefixes = {name: f"df{uuid.uuid4().hex[:8]}" for name in sides}
    try:
        for name, side in sides.items():
            fill(side, prefixes[name])
        yield prefixes
    finally:
        for name, side in sides.items():
            unfill(side, prefixes[name])


def own_rows(side: Side, prefix: str, cli: str) -> dict[str, list[dict]]:
    """`system df -v --format '{{json .}}'`'s rows of what the prefix made
    (the anonymous volume by its container), masked, the times left out."""
    shown = json.loads(side.docker("system", "df", "-v", "--format", "{{json .}}", cli=cli).stdout)
    mounts = json.loads(side.docker("inspect", f"{prefix}c1").stdout)[0]["Mounts"]
    anonymous = next(m["Name"] for m in mounts if m["Destination"] == "/anon")
    rows = {}
    for section, key in (("Images", "Repository"), ("Containers", "Names"), ("Volumes", "Name")):
        mine = [{k: v for k, v in row.items() if k not in ("CreatedAt", "CreatedSince", "RunningFor", "Status",
                                                              "Mountpoint")}
                for row in shown[section] if row[key].startswith(prefix) or row[key] == anonymous]
        rows[section] = sorted(({k: ",".join(sorted(v.split(","))) if k in ("Mounts", "Labels") else v
                                 for k, v in row.items()} for row in json.loads(masked(json.dumps(mine), prefix))),
                               key=json.dumps)  # lists in Go's map order, sorted
    return rows


@pytest.mark.root
@pytest.mark.parametrize("cli", CLIS)
def test_system_df_verbose_lists_volumes_containers_images_as_dockerd(sides, filled, cli):
    ours, theirs = (own_rows(sides[name], filled[name], cli) for name in ("ours", "dockerd"))
    assert ours == theirs
    assert {row["Name"]: (row["Links"], row["Size"]) for row in ours["Volumes"]} == {
        "<P>v1": ("1", "3kB"), "<id>": ("1", "0B"), "<P>v2": ("0", "7.001kB"), "<P>v3": ("0", "0B")}
    assert {row["Names"]: row["Size"] for row in ours["Containers"]} == {"<P>c1": "5kB", "<P>c2": "0B"}


@pytest.mark.root
@pytest.mark.parametrize("cli", CLIS)
def test_system_df_sections_and_totals_as_dockerd(sides, filled, cli):
    """The table's section and column headings; the totals of what each daemon has."""
    def headings(side):
        table = side.docker("system", "df", "-v", cli=cli).stdout.splitlines()
        return [re.sub(r"\s+", " ", line) for line in table if line.endswith(":") or line.startswith(
            ("REPOSITORY", "CONTAINER ID", "VOLUME NAME", "CACHE ID", "Build cache usage"))]

    def totals(side):
        rows = {row["Type"]: row for row in map(json.loads, side.docker(
            "system", "df", "--format", "{{json .}}", cli=cli).stdout.splitlines())}
        volumes = side.docker("volume", "ls", "-q").stdout.split()
        return rows["Local Volumes"]["TotalCount"] == str(len(volumes)), sorted(rows)

    assert headings(sides["ours"]) == headings(sides["dockerd"])
    assert totals(sides["ours"]) == totals(sides["dockerd"]) == (True, [
        "Build Cache", "Containers", "Images", "Local Volumes"])


@pytest.mark.root
def test_docker_py_df_as_dockerds(sides, filled):
    def own(name):
        with docker.APIClient(base_url=f"unix://{sides[name].socket}") as api:
            df = api.df()
        prefix = filled[name]
        volumes = [{k: v for k, v in volume.items() if k not in ("CreatedAt", "Mountpoint")}
                   for volume in df["Volumes"] if volume["Name"].startswith(prefix)]
        containers = [sorted(c) for c in df["Containers"] if c["Names"][0].startswith("/" + prefix)]
        return (json.loads(masked(json.dumps(sorted(volumes, key=lambda v: v["Name"])), prefix)), containers,
                sorted(df), type(df["LayersSize"]))

    assert own("ours") == own("dockerd")
    assert [v["UsageData"] for v in own("ours")[0]] == [
        {"RefCount": 1, "Size": 3000}, {"RefCount": 0, "Size": 7001}, {"RefCount": 0, "Size": 0}]  # a link once


PRUNES = [
    ("container", "prune", "-f", "--filter", "label=ops=<P>", "--filter", "label!=keep"),
    ("container", "prune", "-f", "--filter", "label=ops=<P>", "--filter", "until=10m"),
    ("container", "prune", "-f", "--filter", "bogus=1"),
    ("container", "prune", "-f", "--filter", "until=garbage"),
    ("volume", "prune", "-f", "--filter", "label=ops=<P>", "--filter", "label!=keep"),
    ("volume", "prune", "-f", "--filter", "label=ops=<P>", "--filter", "until=10m"),
    ("volume", "prune", "-af", "--filter", "label=ops=<P>"),  # CLI 28: API 1.41 has no anonymous-only prune
    ("network", "prune", "-f", "--filter", "label=ops=<P>", "--filter", "label!=keep"),
    ("network", "prune", "-f", "--filter", "label=ops=<P>", "--filter", "until=10m"),
    ("network", "prune", "-f", "--filter", "until=garbage"),
    ("image", "prune", "-f", "--filter", "dangling=maybe"),
    ("image", "prune", "-f", "--filter", "until=garbage"),
    ("image", "prune", "-af", "--filter", "label=ops=<P>", "--filter", "until=10m"),
    ("image", "prune", "-f", "--filter", "label=ops=<P>"),
    ("image", "prune", "-af", "--filter", "label=ops=<P>", "--filter", "dangling=false"),
    ("system", "prune", "-f", "--filter", "bogus=1"),
    ("system", "prune", "-f", "--volumes", "--filter", "label=ops=<P>", "--filter", "until=1h"),
    ("system", "prune", "-a", "--volumes", "--filter", "label=ops=<P>"),  # answered "n"
    ("system", "prune", "-af", "--volumes", "--filter", "label=ops=<P>"),
]


def transcript(side: Side, cli: str, commands) -> list[str]:
    """Each command's exit status and output, masked, with the lines of
    each "Deleted ..." list sorted (dockerd lists from Go maps)."""
    prefix = f"pr{uuid.uuid4().hex[:8]}"
    seen = []
    try:
        fill(side, prefix)
        for command in commands:
            r = side.docker(*(arg.replace("<P>", prefix) for arg in command), cli=cli, check=False, input="n\n")
            text = masked(r.stdout + r.stderr, prefix)
            blocks = [block.splitlines()[:1] + sorted(block.splitlines()[1:]) if block.startswith("Deleted")
                      else block.splitlines() for block in text.split("\n\n")]
            seen.append(f"$ {' '.join(command)} [{r.returncode}]\n" + "\n".join(line for b in blocks for line in b))
    finally:
        unfill(side, prefix)
    return seen


@pytest.mark.root
@pytest.mark.parametrize("cli", CLIS)
def test_prunes_print_and_refuse_as_dockerd(sides, cli):
    ours, theirs = transcript(sides["ours"], cli, PRUNES), transcript(sides["dockerd"], cli, PRUNES)
    for our, their in zip(ours, theirs):
        assert our == their
    reclaimed = {command[0]: text.rsplit("\n", 1)[-1] for command, text in zip(PRUNES, ours)
                 if "label!=keep" in command or "dangling=false" in command}
    assert reclaimed == {"container": "Total reclaimed space: 5kB",  # the container's own 5000 bytes
                         "volume": "Total reclaimed space: 7.001kB", "network": "<P>n1",
                         "image": "Total reclaimed space: 40kB"}


@pytest.mark.root
def test_container_prune_reports_what_it_reclaims_through_the_api(sides):
    def pruned(name):
        prefix = f"pr{uuid.uuid4().hex[:8]}"
        try:
            fill(sides[name], prefix)
            with docker.APIClient(base_url=f"unix://{sides[name].socket}") as api:
                report = api.prune_containers({"label": [f"ops={prefix}"]})
        finally:
            unfill(sides[name], prefix)
        return len(report["ContainersDeleted"]), report["SpaceReclaimed"]

    assert pruned("ours") == pruned("dockerd") == (2, 5000)


def test_files_weigh_their_bytes_a_hard_link_once_directories_nothing(tmp_path):
    (tmp_path / "dir" / "deeper").mkdir(parents=True)
    (tmp_path / "dir" / "f").write_bytes(b"x" * 7000)
    os.link(tmp_path / "dir" / "f", tmp_path / "g")
    os.symlink("dir/f", tmp_path / "h")  # its target's text: 5 bytes
    (tmp_path / "empty").touch()
    assert files_size(str(tmp_path)) == 7005
    assert files_size(str(tmp_path / "missing")) == 0


def test_a_snapshots_writes_go_to_its_upper_directory_or_its_bind():
    overlay = Mount("overlay", "overlay", ["workdir=/s/2/work", "upperdir=/s/2/fs", "lowerdir=/s/1/fs"])
    assert writable_dir([overlay]) == "/s/2/fs"
    assert writable_dir([Mount("bind", "/s/3/fs", ["rbind", "rw"])]) == "/s/3/fs"
