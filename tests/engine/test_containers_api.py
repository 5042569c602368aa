"""The container verbs through the real docker CLI (28 and 20.10) at engine-py,
and what a user sees of them compared with real dockerd: exit codes, the
messages of refusals, inspect's fields."""
import json
import os
import re
import socket
import uuid

import pytest

CLIS = ("28", "20.10")


def unique(prefix: str = "c") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def name(engine_py):
    made = unique()
    yield made
    engine_py.docker("rm", "-f", made, check=False)


@pytest.mark.parametrize("cli", CLIS)
def test_run_detached_then_ps_inspect_stop_start_rm(engine_py, name, cli):
    docker = engine_py.docker
    cid = docker("run", "-d", "--name", name, "-e", "A=1", "--label", "x=y", "busybox", "sleep", "1000",
                 cli=cli).stdout.strip()
    assert len(cid) == 64
    listed = docker("ps", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.Command}} {{.Status}}", cli=cli).stdout
    assert f'{cid} {name} "sleep 1000" Up' in listed
    shown = docker("inspect", "-f", "{{.State.Status}} {{.State.Running}} {{.Config.Env}} {{.Name}} "
                   "{{.HostConfig.Memory}} {{.Config.Labels.x}}", name, cli=cli).stdout.split(" ", 3)
    assert shown[:3] == ["running", "true", "[A=1"]
    assert f"/{name} 0 y" in shown[3]
    assert docker("stop", "-t", "1", name, cli=cli).stdout.strip() == name
    state = json.loads(docker("inspect", name, cli=cli).stdout)[0]["State"]
    assert (state["Status"], state["Running"], state["ExitCode"]) == ("exited", False, 137)  # sleep ignores TERM
    assert docker("start", name, cli=cli).stdout.strip() == name
    assert docker("inspect", "-f", "{{.State.Running}}", name, cli=cli).stdout.strip() == "true"
    assert docker("rm", "-f", name, cli=cli).stdout.strip() == name
    gone = docker("inspect", name, check=False, cli=cli)
    assert gone.returncode == 1 and f"No such object: {name}" in gone.stderr


def test_wait_gives_the_exit_code(engine_py, name):
    docker = engine_py.docker
    docker("create", "--name", name, "busybox", "sh", "-c", "exit 3")
    docker("start", name)
    assert docker("wait", name).stdout.strip() == "3"
    assert docker("inspect", "-f", "{{.State.ExitCode}}", name).stdout.strip() == "3"


def test_kill_with_a_signal_and_pause(engine_py, name):
    docker = engine_py.docker
    docker("run", "-d", "--name", name, "busybox", "sh", "-c", "trap 'exit 9' USR1; while :; do sleep 0.1; done")
    docker("pause", name)
    assert docker("inspect", "-f", "{{.State.Status}} {{.State.Paused}}", name).stdout.split() == ["paused", "true"]
    assert "Up" in docker("ps", "--filter", f"name={name}", "--format", "{{.Status}}").stdout
    docker("unpause", name)
    docker("kill", "-s", "USR1", name)
    assert docker("wait", name).stdout.strip() == "9"


def test_rename_and_prefix_lookup(engine_py, name):
    docker = engine_py.docker
    cid = docker("create", "busybox", "true").stdout.strip()
    try:
        docker("rename", cid[:10], name)
        assert docker("inspect", "-f", "{{.Id}}", name).stdout.strip() == cid
    finally:
        docker("rm", cid, check=False)


def test_ps_filters_and_prune(engine_py):
    docker = engine_py.docker
    project = unique("p")
    made = [docker("create", "--label", f"com.docker.compose.project={project}", "--label", f"n={i}",
                   "busybox", "true").stdout.strip() for i in range(3)]
    try:
        listed = docker("ps", "-aq", "--no-trunc", "--filter", f"label=com.docker.compose.project={project}").stdout
        assert listed.split() == made[::-1]
        one = docker("ps", "-aq", "--no-trunc", "--filter", f"label=com.docker.compose.project={project}",
                     "--filter", "label=n=1").stdout
        assert one.split() == [made[1]]
        assert docker("ps", "-aq", "--no-trunc", "--filter", "status=running",
                      "--filter", f"label=com.docker.compose.project={project}").stdout == ""
        pruned = docker("container", "prune", "-f", "--filter", f"label=com.docker.compose.project={project}").stdout
        assert all(cid in pruned for cid in made)
        assert docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project}").stdout == ""
    finally:
        docker("rm", "-f", *made, check=False)


# -- refusals, compared with dockerd ---------------------------------------------------------------------------------

def both(engine_py, dockerd, *args):
    """(ours, theirs): exit code and stderr of the same docker command (the
    CLI the dockerd fixture uses: 20.10's)."""
    ours = engine_py.docker(*args, check=False, cli="20.10")
    theirs = dockerd.docker(*args, check=False)
    return (ours.returncode, ours.stderr.strip()), (theirs.returncode, theirs.stderr.strip())


@pytest.mark.parametrize("args", [
    ("start", "nosuchcontainer"),
    ("stop", "nosuchcontainer"),
    ("rm", "nosuchcontainer"),
    ("create", "--name", "bad/name", "busybox"),
    ("create", "--runtime", "nosuch", "busybox"),
    ("ps", "--filter", "nosuch=1"),
    ("ps", "--filter", "status=sleepy"),
    ("wait", "nosuchcontainer"),
    ("kill", "-s", "NOSUCH", "nosuchcontainer"),
])
def test_refusals_match_dockerd(engine_py, dockerd, args):
    ours, theirs = both(engine_py, dockerd, *args)
    assert ours == theirs


def test_name_conflict_matches_dockerd(engine_py, dockerd, name):
    results = []
    for daemon in (engine_py.cli("20.10"), dockerd):
        first = daemon.docker("create", "--name", name, "busybox", "true").stdout.strip()
        again = daemon.docker("create", "--name", name, "busybox", "true", check=False)
        daemon.docker("rm", name)
        results.append((again.returncode, again.stderr.replace(first, "<id>")))
    assert results[0] == results[1]
    assert 'Conflict. The container name "/' in results[0][1]


def test_start_of_started_and_stop_of_stopped_match_dockerd(engine_py, dockerd, name):
    results = []
    for daemon in (engine_py.cli("20.10"), dockerd):
        daemon.docker("run", "-d", "--name", name, "--network", "none", "busybox", "sleep", "1000")
        again = daemon.docker("start", name, check=False)
        daemon.docker("kill", name)
        stopped = daemon.docker("stop", name, check=False)
        daemon.docker("rm", name)
        results.append([(r.returncode, r.stdout, r.stderr) for r in (again, stopped)])
    assert results[0] == results[1]


def test_rm_of_a_running_container_matches_dockerd(engine_py, dockerd, name):
    results = []
    for daemon in (engine_py.cli("20.10"), dockerd):
        cid = daemon.docker("run", "-d", "--name", name, "--network", "none", "busybox", "sleep", "1000").stdout
        refused = daemon.docker("rm", name, check=False)
        daemon.docker("rm", "-f", name)
        results.append((refused.returncode, refused.stderr.replace(cid.strip(), "<id>")))
    assert results[0] == results[1]


def test_init_forwards_the_stop_signal_and_reaps_as_dockerd(engine_py, dockerd, name):
    """busybox sleep as pid 1 ignores SIGTERM (137 after the timeout); behind --init it dies of it (143)."""
    results = []
    for daemon in (engine_py.cli("20.10"), dockerd):
        daemon.docker("run", "-d", "--init", "--name", name, "--network", "none", "busybox", "sh", "-c",
                      "sleep 1000 & sleep 1000")
        daemon.docker("stop", "-t", "30", name)
        results.append(daemon.docker("inspect", "-f", "{{.State.ExitCode}} {{.Path}} {{.Args}}", name).stdout.strip())
        daemon.docker("rm", name)
    assert results[0] == results[1] == "143 sh [-c sleep 1000 & sleep 1000]"


def _cgroup_value(engine_py, pid: str, controller: str, name: str) -> str:
    with open(f"/proc/{pid}/cgroup") as f:
        path = next(line.split(":", 2)[2].strip() for line in f if f":{controller}:" in line
                    or line.split(":")[1].split(",").count(controller))
    with open(f"/sys/fs/cgroup/{controller}{path}/{name}") as f:
        return f.read().strip()


def test_update_changes_a_running_container_s_limits(engine_py, name):
    docker = engine_py.docker
    docker("run", "-d", "--name", name, "--memory", "64m", "--memory-swap", "-1", "busybox", "sleep", "1000")
    docker("update", "--memory", "96m", "--pids-limit", "50", "--cpu-shares", "512", name)
    shown = docker("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.CpuShares}}",
                   name).stdout.split()
    assert shown == [str(96 << 20), "50", "512"]
    pid = docker("inspect", "-f", "{{.State.Pid}}", name).stdout.strip()
    assert _cgroup_value(engine_py, pid, "memory", "memory.limit_in_bytes") == str(96 << 20)
    assert _cgroup_value(engine_py, pid, "pids", "pids.max") == "50"
    assert _cgroup_value(engine_py, pid, "cpu", "cpu.shares") == "512"


def test_update_refusals_match_dockerd(engine_py, dockerd, name):
    results = []
    for daemon in (engine_py.cli("20.10"), dockerd):
        daemon.docker("create", "--name", name, "--memory", "64m", "busybox", "true")
        results.append([daemon.docker("update", *flags, name, check=False).stderr for flags in
                        (("--memory", "1m"), ("--cpus", "1", "--cpu-period", "1000"))])
        daemon.docker("rm", name)
    assert results[0] == results[1]


def test_inspect_mounts_match_dockerd(engine_py, dockerd, name, tmp_path):
    flags = ("-v", f"{tmp_path}:/data:ro", "--mount", f"type=bind,src={tmp_path},dst=/x",
             "--mount", "type=tmpfs,dst=/t", "--tmpfs", "/y", "-v", f"{tmp_path}:/z")
    results = []
    for daemon in (engine_py.cli("20.10"), dockerd):
        daemon.docker("create", "--name", name, *flags, "busybox", "true")
        results.append((daemon.docker("inspect", "-f", "{{json .Mounts}}", name).stdout,
                        daemon.docker("ps", "-a", "--filter", f"name={name}", "--format", "{{.Mounts}}").stdout))
        daemon.docker("rm", name)
    ours, theirs = ([json.loads(r[0]), r[1]] for r in results)
    by_destination = lambda mounts: sorted(mounts, key=lambda m: m["Destination"])  # noqa: E731 (dockerd's order is a Go map's)
    assert by_destination(ours[0]) == by_destination(theirs[0])
    assert sorted(ours[1].strip().split(",")) == sorted(theirs[1].strip().split(","))


@pytest.mark.parametrize("runtime", ["runpy-oci", "runc"])
def test_run_picks_the_runtime(engine_py, runtime):
    out = engine_py.docker("run", "--rm", "--runtime", runtime, "busybox", "sh", "-c", "echo $$ $(hostname)")
    pid, hostname = out.stdout.split()
    assert pid == "1" and len(hostname) == 12


def test_a_run_rm_whose_start_fails_ends_and_leaves_nothing(engine_py):
    """crun refuses this host's hybrid cgroup layout; any failed start will do."""
    before = engine_py.docker("ps", "-aq").stdout
    failed = engine_py.docker("run", "--rm", "--runtime", "crun", "busybox", "true", check=False, timeout=60)
    assert failed.returncode in (126, 127) or failed.returncode == 125, failed
    assert "Error response from daemon" in failed.stderr
    assert engine_py.docker("ps", "-aq").stdout == before


def test_namespace_modes_join_what_they_name(engine_py, name):
    """--network/--ipc/--pid container:<x> share x's namespaces; --network none
    has only loopback, the default bridge an eth0 besides; --pid host and
    --uts host see the host's."""
    docker = engine_py.docker
    docker("run", "-d", "--name", name, "--ipc", "shareable", "busybox", "sleep", "1000")
    pid = docker("inspect", "-f", "{{.State.Pid}}", name).stdout.strip()
    joined = docker("run", "--rm", "--network", f"container:{name}", "--ipc", f"container:{name}",
                    "--pid", f"container:{name}", "busybox", "sh", "-c",
                    "readlink /proc/1/ns/net; readlink /proc/self/ns/ipc; ps -o comm | grep -c sleep").stdout.split()
    assert joined[:2] == [os.readlink(f"/proc/{pid}/ns/net"), os.readlink(f"/proc/{pid}/ns/ipc")]
    assert joined[2] == "1"
    for network, expected in (((), ["lo", "eth0"]), (("--network", "none"), ["lo"])):
        links = docker("run", "--rm", *network, "busybox", "ip", "-o", "link").stdout
        assert [line.split(":")[1].strip().partition("@")[0] for line in links.splitlines()] == expected
    host = docker("run", "--rm", "--pid", "host", "--uts", "host", "--network", "host", "busybox", "sh", "-c",
                  "hostname; readlink /proc/self/ns/pid; readlink /proc/self/ns/net").stdout.split()
    assert host[0] == socket.gethostname()
    assert host[1] == os.readlink("/proc/self/ns/pid")
    assert host[2] == f"net:[{os.stat(f'/run/netns/{engine_py.netns}').st_ino}]"  # the engine's own


@pytest.mark.parametrize("network, extra", [("none", True), ("host", True), ("none", False), ("host", False)])
def test_etc_files_match_dockerd(engine_py, dockerd, network, extra):
    flags = ["--network", network] + (["--add-host", "db:10.1.2.3"] if extra else []) + \
        (["--hostname", "box"] if network != "host" else [])
    results = []
    for daemon in (engine_py.cli("20.10"), dockerd):
        results.append(daemon.docker("run", "--rm", *flags, "busybox", "sh", "-c",
                                     "hostname; echo; cat /etc/hosts; echo; cat /etc/hostname").stdout)
    assert results[0] == results[1]


def test_sizes_of_a_container_s_writable_layer(engine_py, name):
    docker = engine_py.docker
    docker("run", "--name", name, "busybox", "dd", "if=/dev/zero", "of=/blob", "bs=1024", "count=300")
    listed = docker("ps", "-a", "-s", "--filter", f"name={name}", "--format", "{{.Size}}").stdout
    assert re.match(r"^3[01]\d\.?\d*kB \(virtual 2\.\d+MB\)$", listed.strip()), listed  # 300 KiB, and the image
    shown = json.loads(docker("inspect", "-s", name).stdout)[0]
    assert shown["SizeRw"] >= 300 * 1024 and shown["SizeRootFs"] > shown["SizeRw"]


def test_the_init_layer_is_dockerds_and_stays_out_of_commit_and_diff(engine_py, dockerd, name):
    """/.dockerenv and the runtime's mount points come from an init layer
    below the container's own: present in the container, absent from
    `docker diff` and from a committed image's layer."""
    results = []
    for daemon in (engine_py.cli("20.10"), dockerd):
        daemon.docker("run", "--name", name, "--network", "none", "busybox", "sh", "-c",
                      "ls -la /.dockerenv /etc/mtab | cut -c1-10,40-; touch /made")
        seen = daemon.docker("logs", name).stdout
        changes = daemon.docker("diff", name).stdout
        image = f"{name}-image"
        daemon.docker("commit", name, image)
        listed = daemon.docker("run", "--rm", "--network", "none", "--entrypoint", "sh", image, "-c",
                               "ls /made /.dockerenv").stdout
        daemon.docker("rm", name)
        daemon.docker("rmi", image)
        results.append((seen, changes, listed))
    assert results[0] == results[1]
    assert results[0][1] == "A /made\n"
