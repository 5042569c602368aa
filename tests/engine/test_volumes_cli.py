"""`docker volume create/ls/inspect/rm/prune` at engine-py and at real
dockerd 20.10: the same commands, and what the user sees compared (creation
times, generated names and the data roots aside)."""
import json
import os
import re
import time

import pytest

from test_networks_cli import ID as GENERATED
from test_networks_cli import cli, engine, oracle, seen  # noqa: F401 (fixtures: each daemon through each CLI)
from test_networks_cli import unique as unique_name


def unique(prefix: str = "vol") -> str:
    return unique_name(prefix)


def inspected(daemon, name: str) -> dict:
    shown = json.loads(daemon.docker("volume", "inspect", name).stdout)[0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)", shown.pop("CreatedAt"))
    assert shown.pop("Mountpoint").endswith(f"/volumes/{shown['Name']}/_data")
    return shown


def test_create_inspect_ls_rm_as_dockerd(engine, oracle):
    def scenario(daemon):
        name, tmpfs = unique(), unique()
        try:
            made = [seen(daemon, "volume", "create", "--label", "k=v", name),
                    seen(daemon, "volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m",
                         tmpfs)]
            shown = [inspected(daemon, n) for n in (name, tmpfs)]
            listed = seen(daemon, "volume", "ls", "--filter", "label=k=v", "--format",
                          "{{.Driver}} {{.Name}} {{.Labels}} {{.Scope}}")
            removed = seen(daemon, "volume", "rm", name, tmpfs)
            made = [(code, out.replace(name, "N").replace(tmpfs, "T"), err) for code, out, err in made]
            return (made, [{**s, "Name": "N"} for s in shown], listed[1].replace(name, "N"),
                    removed[1].replace(name, "N").replace(tmpfs, "T"), seen(daemon, "volume", "inspect", name)[0])
        finally:
            daemon.docker("volume", "rm", "-f", name, tmpfs, check=False)

    assert scenario(engine) == scenario(oracle)


@pytest.mark.parametrize("args", [
    ("x",), ("a/b",), ("--driver", "nope", "v3"), ("-o", "foo=1", "v3"), ("-o", "type=tmpfs", "v3"),
])
def test_create_errors_as_dockerd(engine, oracle, args):
    assert seen(engine, "volume", "create", *args) == seen(oracle, "volume", "create", *args)


def test_missing_volume_errors_as_dockerd(engine, oracle):
    for args in (("inspect", "nope"), ("rm", "nope"), ("rm", "-f", "nope"), ("ls", "-f", "dangling=x"),
                 ("ls", "-f", "foo=1")):
        assert seen(engine, "volume", *args) == seen(oracle, "volume", *args), args


def test_prune_removes_unused_volumes_as_dockerd(engine, oracle):
    def scenario(daemon):
        names = [unique() for _ in range(3)]
        try:
            daemon.docker("volume", "create", "--label", "x=1", names[0])
            daemon.docker("volume", "create", names[1])
            labelled = seen(daemon, "volume", "prune", "-f", "--filter", "label=x=1")
            rest = daemon.docker("volume", "prune", "-f").stdout
            return (labelled[1].replace(names[0], "A"), names[1] in rest,
                    seen(daemon, "volume", "ls", "-q", "-f", f"name={names[0]}"))
        finally:
            daemon.docker("volume", "rm", "-f", *names, check=False)

    assert scenario(engine) == scenario(oracle)


def mounts_seen(daemon, container: str, names: dict) -> list:
    """The container's Mounts by destination, volume names given as their role, sources relative to the root."""
    shown = json.loads(daemon.docker("inspect", "-f", "{{json .Mounts}}", container).stdout)
    for mount in shown:
        if mount["Type"] != "volume":
            continue
        assert mount["Source"].endswith(f"/volumes/{mount['Name']}/_data")
        mount["Source"] = "<root>"
        mount["Name"] = names.get(mount["Name"], "<anonymous>" if GENERATED.fullmatch(mount["Name"]) else "?")
    return sorted(shown, key=lambda m: m["Destination"])


def test_containers_share_named_volumes_as_dockerd(engine, oracle):
    """One container writes a named volume (made at its first use, the image's
    /etc copied up into it), another reads it; in use it cannot be removed;
    inspect's Mounts; rm -v takes the anonymous volume and leaves the named."""
    def scenario(daemon):
        name, empty, container = unique(), unique(), unique("c")
        try:
            wrote = seen(daemon, "run", "--rm", "-v", f"{name}:/etc", "busybox", "sh", "-c",
                         "echo hi > /etc/note; ls /etc")
            read = seen(daemon, "run", "--rm", "-v", f"{name}:/data:ro", "busybox", "sh", "-c",
                        "cat /data/note; echo x > /data/y")
            daemon.docker("create", "--name", container, "-v", "/anon", "-v", f"{name}:/etc",
                          "--mount", f"type=volume,src={empty},dst=/usr,volume-nocopy", "busybox")
            mounts = mounts_seen(daemon, container, {name: "named", empty: "empty"})
            in_use = seen(daemon, "volume", "rm", name)
            daemon.docker("rm", "-v", container)
            left = seen(daemon, "volume", "ls", "-q", "-f", f"name={name}"), \
                seen(daemon, "volume", "ls", "-q", "-f", f"name={empty}")
            return (wrote, read, mounts, (in_use[0], in_use[2].replace(name, "N")),
                    [(code, out.replace(name, "N").replace(empty, "E")) for code, out, _ in left])
        finally:
            daemon.docker("rm", "-f", container, check=False)
            daemon.docker("volume", "rm", "-f", name, empty, check=False)

    assert scenario(engine) == scenario(oracle)


def test_run_rm_leaves_no_anonymous_volume(engine, oracle):
    def scenario(daemon):
        before = set(daemon.docker("volume", "ls", "-q").stdout.split())
        ran = seen(daemon, "run", "--rm", "-v", "/data", "busybox", "sh", "-c", "echo x > /data/f; cat /data/f")
        return ran, set(daemon.docker("volume", "ls", "-q").stdout.split()) - before

    assert scenario(engine) == scenario(oracle) == ((0, "x\n", ""), set())


def test_volumes_with_driver_options_are_mounted_while_used_as_dockerd(engine, oracle, tmp_path):
    """A tmpfs volume is mounted for its container and gone after it (its
    files too); a bind volume's writes land in its device directory."""
    def scenario(daemon, directory):
        tmpfs, bind = unique(), unique()
        os.makedirs(directory)
        try:
            daemon.docker("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m", tmpfs)
            daemon.docker("volume", "create", "-o", "type=none", "-o", f"device={directory}", "-o", "o=bind", bind)
            first = seen(daemon, "run", "--rm", "-v", f"{tmpfs}:/t", "-v", f"{bind}:/b", "busybox", "sh", "-c",
                         "grep ' /t ' /proc/mounts | cut -d' ' -f1,3,4; echo x > /t/f; echo y > /b/g")
            again = seen(daemon, "run", "--rm", "-v", f"{tmpfs}:/t", "busybox", "ls", "/t")
            mountpoint = json.loads(daemon.docker("volume", "inspect", tmpfs).stdout)[0]["Mountpoint"]
            with open("/proc/self/mountinfo") as f:
                still_mounted = any(f" {mountpoint} " in line for line in f)
            return first, again, os.listdir(directory), still_mounted
        finally:
            daemon.docker("volume", "rm", "-f", tmpfs, bind, check=False)

    assert scenario(engine, str(tmp_path / "ours")) == scenario(oracle, str(tmp_path / "theirs"))


def test_volume_events_as_dockerd(engine, oracle):
    """create (again at each use of an existing one), mount and unmount per
    container, destroy: the actors and attributes dockerd gives them."""
    def scenario(daemon):
        name = unique()
        since = str(int(time.time()) - 1)
        daemon.docker("volume", "create", name)
        daemon.docker("run", "--rm", "-v", f"{name}:/d:ro", "-v", "/anon", "busybox", "true")
        daemon.docker("volume", "rm", name)
        shown = daemon.docker("events", "--since", since, "--until", str(int(time.time()) + 1), "--filter",
                              "type=volume", "--filter", f"volume={name}", "--format", "{{json .}}").stdout
        events = [json.loads(line) for line in shown.splitlines()]
        return [(e["Action"], e["Actor"]["ID"].replace(name, "N"),
                 sorted((k, GENERATED.sub("<id>", v)) for k, v in e["Actor"]["Attributes"].items()))
                for e in events]

    ours = scenario(engine)
    assert ours == scenario(oracle)
    assert [action for action, _, _ in ours] == ["create", "create", "mount", "unmount", "destroy"]


def test_volumes_from_as_dockerd(engine, oracle, tmp_path):
    """A second container gets the first's volumes and binds (read-only with
    :ro), its own mount winning at a destination they share; errors as dockerd."""
    def scenario(daemon, directory):
        name, first = unique(), unique("c")
        os.makedirs(directory)
        try:
            daemon.docker("run", "--name", first, "-v", f"{name}:/n", "-v", "/anon", "-v", f"{directory}:/b",
                          "-v", "/shared", "busybox", "sh", "-c", "echo n > /n/f; echo a > /anon/f")
            ro = seen(daemon, "run", "--rm", "--volumes-from", f"{first}:ro", "-v", "/shared", "busybox", "sh", "-c",
                      "cat /n/f /anon/f; touch /n/x /b/x 2>&1 | sed 's/.*: //'; grep -c ' /shared ' /proc/mounts")
            second = unique("c")
            daemon.docker("create", "--name", second, "--volumes-from", first, "busybox")
            mounts = mounts_seen(daemon, second, {name: "named"})
            daemon.docker("rm", second)
            errors = [seen(daemon, "create", "--volumes-from", spec, "busybox")[::2]
                      for spec in ("nope", f"{first}:xx", f"{first}:rshared")]
            return ro, [{**m, "Source": "<dir>" if m["Type"] == "bind" else m["Source"]} for m in mounts], \
                [(code, err.replace(first, "F")) for code, err in errors]
        finally:
            daemon.docker("rm", "-fv", first, check=False)
            daemon.docker("volume", "rm", "-f", name, check=False)

    assert scenario(engine, str(tmp_path / "ours")) == scenario(oracle, str(tmp_path / "theirs"))


def test_a_mounts_volume_options_make_its_volume_as_dockerd(engine, oracle):
    def scenario(daemon):
        name = unique()
        try:
            ran = seen(daemon, "run", "--rm", "--mount", f"type=volume,src={name},dst=/d,volume-label=a=b,"
                       "volume-opt=type=tmpfs,volume-opt=device=tmpfs", "busybox", "sh", "-c",
                       "grep ' /d ' /proc/mounts | cut -d' ' -f1,3")
            refused = unique()
            bad = seen(daemon, "run", "--rm", "--mount", f"type=volume,src={refused},dst=/d,volume-opt=foo=1",
                       "busybox", "true")
            return ran, {**inspected(daemon, name), "Name": "N"}, (bad[0], bad[2].replace(refused, "R"))
        finally:
            daemon.docker("volume", "rm", "-f", name, check=False)

    assert scenario(engine) == scenario(oracle)


def test_users_of_a_volume_listed_as_dockerd(engine, oracle):
    """ps --filter volume= (by name or destination) and volume ls's dangling see the container's volumes."""
    def scenario(daemon):
        name, container = unique(), unique("c")
        try:
            daemon.docker("create", "--name", container, "-v", f"{name}:/data", "busybox")
            shown = [seen(daemon, "ps", "-a", "--format", "{{.Names}}", "--filter", f"volume={ref}")[1]
                     for ref in (name, "/data")]
            dangling = [seen(daemon, "volume", "ls", "-q", "-f", f"name={name}", "-f", f"dangling={value}")[1]
                        for value in ("true", "false")]
            return [s.replace(container, "C") for s in shown], [d.replace(name, "N") for d in dangling]
        finally:
            daemon.docker("rm", "-f", container, check=False)
            daemon.docker("volume", "rm", "-f", name, check=False)

    ours = scenario(engine)
    assert ours == scenario(oracle) == (["C\n", "C\n"], ["", "N\n"])


def test_copy_up_keeps_the_image_directorys_mode_and_owner_as_dockerd(engine, oracle):
    def scenario(daemon):
        name = unique()
        try:
            return [seen(daemon, "run", "--rm", "-v", volume, "busybox", "stat", "-c", "%a %u:%g %n", "/tmp",
                         "/var/www") for volume in (f"{name}:/tmp", "/tmp", "/var/www")]
        finally:
            daemon.docker("volume", "rm", "-f", name, check=False)

    assert scenario(engine) == scenario(oracle)
