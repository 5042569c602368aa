"""docker top, stats --no-stream, diff, export, cp and commit through the
real docker CLI at engine-py, compared with real dockerd where the output is
comparable."""
import io
import json
import os
import re
import subprocess
import tarfile
import time
import uuid

import pytest

pytestmark = pytest.mark.root
CLIS = ("28", "20.10")
SLEEP = ("sh", "-c", "echo ready; while :; do sleep 0.1; done")


def unique(prefix: str = "c") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def name(engine_py, dockerd):
    made = unique()
    yield made
    engine_py.docker("rm", "-f", made, check=False)
    dockerd.docker("rm", "-f", made, check=False)


def _ran(daemon, name: str, script: str, *flags: str) -> None:
    """A busybox container that ran the script to its end (detached: no attach needed)."""
    daemon.docker("run", "-d", "--name", name, "--network", "none", *flags, "busybox", "sh", "-c", script)
    assert daemon.docker("wait", name).stdout.strip() == "0"


def _daemons(engine_py, dockerd):
    """Ours through the CLI the dockerd fixture uses (20.10), and dockerd."""
    return {"ours": engine_py.cli("20.10"), "dockerd": dockerd}


def test_diff_lists_what_dockerd_lists(engine_py, dockerd, name):
    script = "mkdir -p /tmp/new && echo x > /tmp/new/f && rm /bin/ls && echo y >> /etc/passwd && touch /root/.ash"
    shown = {}
    for who, daemon in _daemons(engine_py, dockerd).items():
        _ran(daemon, name, script)
        shown[who] = sorted(daemon.docker("diff", name).stdout.splitlines())
        daemon.docker("rm", name)
    assert shown["ours"] == shown["dockerd"]
    assert "D /bin/ls" in shown["ours"] and "A /tmp/new/f" in shown["ours"]


@pytest.mark.parametrize("cli", CLIS)
def test_top_shows_the_containers_processes(engine_py, name, cli):
    engine_py.docker("run", "-d", "--name", name, "busybox", *SLEEP, cli=cli)
    lines = engine_py.docker("top", name, cli=cli).stdout.splitlines()
    assert lines[0].split()[:3] == ["UID", "PID", "PPID"]
    assert any("while :" in line for line in lines[1:])
    assert "sleep" in engine_py.docker("top", name, "-o", "pid,comm", cli=cli).stdout


def test_top_of_a_stopped_container_is_refused_as_dockerd_refuses_it(engine_py, dockerd, name):
    said = {}
    for who, daemon in _daemons(engine_py, dockerd).items():
        cid = daemon.docker("create", "--name", name, "busybox", "true").stdout.strip()
        r = daemon.docker("top", name, check=False)
        said[who] = (r.returncode, r.stderr.replace(cid, "<id>"))
        daemon.docker("rm", name)
    assert said["ours"] == said["dockerd"]


@pytest.mark.parametrize("cli", CLIS)
def test_stats_no_stream_prints_a_row(engine_py, name, cli):
    engine_py.docker("run", "-d", "--name", name, "busybox", *SLEEP, cli=cli)
    out = engine_py.docker("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}} {{.CPUPerc}}",
                           name, cli=cli).stdout.split()
    assert out[0] == name and out[1].endswith("B") and out[-2] != "0" and out[-1].endswith("%")
    one = json.loads(engine_py.docker("stats", "--no-stream", "--format", "{{json .}}", name, cli=cli).stdout)
    assert one["Name"] == name and re.fullmatch(r"[0-9.]+[kMG]?B / [0-9.]+[kMG]?B", one["NetIO"])  # its eth0's


def test_export_is_the_containers_tree(engine_py, name, tmp_path):
    _ran(engine_py, name, "echo exported > /greeting")
    engine_py.docker("export", "-o", str(tmp_path / "out.tar"), name)
    with tarfile.open(tmp_path / "out.tar") as tf:
        assert tf.extractfile("greeting").read() == b"exported\n"
        assert "bin/busybox" in tf.getnames()


@pytest.mark.parametrize("running", [False, True], ids=["stopped", "running"])
def test_cp_both_ways_as_with_dockerd(engine_py, dockerd, name, tmp_path, running):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "file").write_text("to the container\n")
    for who, daemon in _daemons(engine_py, dockerd).items():
        if running:
            daemon.docker("run", "-d", "--name", name, "--network", "none", "busybox", *SLEEP)
        else:
            daemon.docker("create", "--name", name, "--network", "none", "busybox")
        daemon.docker("cp", str(tmp_path / "in"), f"{name}:/tmp/")
        daemon.docker("cp", str(tmp_path / "in" / "file"), f"{name}:/etc/copied")
        out = tmp_path / who
        out.mkdir()
        daemon.docker("cp", f"{name}:/tmp/in", str(out))
        daemon.docker("cp", f"{name}:/etc/copied", str(out / "copied"))
        daemon.docker("cp", f"{name}:/bin", str(out / "bin"))
        missing = daemon.docker("cp", f"{name}:/nothing", str(out), check=False)
        assert missing.returncode == 1
        (out / "missing").write_text(missing.stderr)
        daemon.docker("rm", "-f", name)
    for who in ("ours", "dockerd"):
        assert (tmp_path / who / "in" / "file").read_text() == "to the container\n"
        assert (tmp_path / who / "copied").read_text() == "to the container\n"
    assert (tmp_path / "ours" / "missing").read_text() == (tmp_path / "dockerd" / "missing").read_text()
    assert sorted(os.listdir(tmp_path / "ours" / "bin")) == sorted(os.listdir(tmp_path / "dockerd" / "bin"))
    assert os.path.islink(tmp_path / "ours" / "bin" / "ls") == os.path.islink(tmp_path / "dockerd" / "bin" / "ls")


def test_cp_to_stdout_is_a_tar_with_the_paths_name(engine_py, name):
    _ran(engine_py, name, "mkdir /d && echo 1 > /d/one")
    raw = engine_py.docker("cp", f"{name}:/d", "-", check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(raw.encode("latin-1"))) as tf:
        assert tf.getnames() == ["d", "d/one"]


@pytest.mark.parametrize("cli", CLIS)
def test_commit_makes_an_image_a_container_runs_from(engine_py, name, cli):
    image, child = unique("committed"), unique()
    docker = engine_py.cli(cli).docker
    _ran(engine_py.cli(cli), name, "echo from the layer > /greeting")
    image_id = docker("commit", "-m", "a message", "-a", "someone", "-c", "CMD cat /greeting", "-c", "ENV MARK=1",
                      name, f"{image}:v1").stdout.strip()
    assert image_id.startswith("sha256:")
    try:
        docker("run", "-d", "--name", child, f"{image}:v1")
        assert docker("wait", child).stdout.strip() == "0"
        shown = docker("inspect", "-f", "{{.Image}} {{.Config.Cmd}} {{.Config.Env}}", child).stdout
        assert shown.startswith(f"{image_id} [/bin/sh -c cat /greeting] [")
        assert "MARK=1" in shown
        copied = docker("cp", f"{child}:/greeting", "-").stdout
        with tarfile.open(fileobj=io.BytesIO(copied.encode())) as tf:
            assert tf.extractfile("greeting").read() == b"from the layer\n"
    finally:
        docker("rm", "-f", child, check=False)
        docker("rmi", image_id)


def test_commit_refusals_match_dockerd(engine_py, dockerd, name):
    said = {}
    for who, daemon in _daemons(engine_py, dockerd).items():
        daemon.docker("create", "--name", name, "busybox", "true")
        said[who] = [daemon.docker(*args, check=False) for args in (
            ("commit", "nosuchcontainer", "x"), ("commit", "-c", "FROM busybox", name, "x"),
            ("commit", "-c", "STOPSIGNAL INT", name, "x"), ("commit", "-c", "ENV a", name, "x"),
            ("commit", "-c", "LABEL", name, "x"), ("commit", "-c", "USER", name, "x"),
            ("commit", name, "UPPER"))]
        daemon.docker("rm", name)
    assert [(r.returncode, r.stderr) for r in said["ours"]] == [(r.returncode, r.stderr) for r in said["dockerd"]]


def ipv4_only(ports: dict | None) -> dict | None:
    """dockerd 20.10's Ports less its "::" twins: docker-proxy also listens on
    IPv6, the engine's kernel NAT forwards IPv4 only and shows what it forwards."""
    if not ports:
        return ports
    return {key: [b for b in bindings if b["HostIp"] != "::"] if bindings else bindings
            for key, bindings in ports.items()}


@pytest.mark.parametrize("network", [[], ["--network", "none"], ["--network", "host"]], ids=["default", "none", "host"])
def test_ports_in_inspect_and_docker_port_as_dockerd(engine_py, dockerd, name, network):
    seen = {}
    for who, daemon in _daemons(engine_py, dockerd).items():
        daemon.docker("create", "--name", name, *network, "--expose", "80", "-p", "8080:90",
                      "-p", "127.0.0.1:8081:91/udp", "busybox", "sleep", "100")
        states = []
        for step in ("created", "start", "kill"):
            if step != "created":
                daemon.docker(step, name)
            shown = json.loads(daemon.docker("inspect", name).stdout)[0]
            port, port_90 = daemon.docker("port", name, check=False), daemon.docker("port", name, "90", check=False)
            states.append((ipv4_only(shown["NetworkSettings"]["Ports"]), shown["HostConfig"]["PortBindings"],
                           sorted(shown["Config"]["ExposedPorts"]),
                           sorted(line for line in port.stdout.splitlines() if ":::" not in line),  # Go map order
                           port_90.returncode, port_90.stderr))
        daemon.docker("rm", "-f", name)
        seen[who] = states
    assert seen["ours"] == seen["dockerd"]
    published = seen["ours"][1][0]
    assert published == ({} if network else {"80/tcp": None, "90/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}],
                                             "91/udp": [{"HostIp": "127.0.0.1", "HostPort": "8081"}]})


def _key_paths(obj, prefix="") -> set[str]:
    if not isinstance(obj, dict):
        return {prefix}
    return {path for key, value in obj.items() for path in _key_paths(value, f"{prefix}.{key}")}


def _api_get(socket: str, path: str) -> bytes:
    return subprocess.run(["curl", "-sf", "--unix-socket", socket, f"http://docker{path}"], capture_output=True,
                          check=True, timeout=60).stdout


@pytest.mark.parametrize("query", ["stream=false", "stream=false&one-shot=true"])
def test_stats_json_has_dockerds_keys(engine_py, dockerd, name, query):
    """The same key paths (memory.stat's keys apart, which follow the kernel) for a running container."""
    shapes = {}
    for who, daemon, socket in (("ours", engine_py.cli("20.10"), engine_py.socket), ("dockerd", dockerd,
                                                                                       dockerd.socket)):
        daemon.docker("run", "-d", "--name", name, "--network", "none", "busybox", *SLEEP)
        sample = json.loads(_api_get(socket, f"/containers/{name}/stats?{query}"))
        sample["memory_stats"].pop("stats")
        shapes[who] = _key_paths(sample)
        daemon.docker("rm", "-f", name)
    assert shapes["ours"] == shapes["dockerd"]


def test_stats_stream_sends_a_sample_each_second_with_the_previous_one(engine_py, name):
    engine_py.docker("run", "-d", "--name", name, "busybox", *SLEEP)
    stream = subprocess.Popen(["curl", "-sN", "--unix-socket", engine_py.socket,
                               f"http://docker/containers/{name}/stats"], stdout=subprocess.PIPE)
    try:
        first, second = json.loads(stream.stdout.readline()), json.loads(stream.stdout.readline())
    finally:
        stream.kill()
        stream.wait()
    assert second["preread"] == first["read"] and second["precpu_stats"] == first["cpu_stats"]
    assert second["pids_stats"]["current"] >= 1


def _listing(top) -> list[str]:
    """Every path under top with its kind (d, l -> target, f)."""
    found = []
    for directory, dirs, files in os.walk(top):
        for entry in sorted(dirs + files):
            full = os.path.join(directory, entry)
            kind = f"l->{os.readlink(full)}" if os.path.islink(full) else "d" if os.path.isdir(full) else "f"
            found.append(f"{os.path.relpath(full, top)} {kind}")
    return sorted(found)


def test_cp_edge_cases_match_dockerd(engine_py, dockerd, name, tmp_path):
    """Trailing "/.", symlinks with and without -L, a file where a directory is,
    kernel filesystems of a running container: the same outcome and the same tree."""
    (tmp_path / "bin").write_text("a file named bin\n")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_text("x")
    script = "mkdir -p /dir/sub && echo a > /dir/a && ln -s /dir /ln && ln -s a /dir/rel && echo ready && sleep 100"
    seen = {}
    for who, daemon in _daemons(engine_py, dockerd).items():
        daemon.docker("run", "-d", "--name", name, "--network", "none", "busybox", "sh", "-c", script)
        while daemon.docker("cp", f"{name}:/dir/rel", "-", check=False).returncode != 0:
            pass  # the script has not made it yet
        out = tmp_path / who
        out.mkdir()
        results = []
        for args in ([f"{name}:/dir/.", f"{out}/dot"], [f"{name}:/ln", f"{out}/ln"], ["-L", f"{name}:/ln", f"{out}/lnL"],
                     [f"{name}:/dir/rel", f"{out}/rel"], ["-L", f"{name}:/dir/rel", f"{out}/relL"],
                     [f"{tmp_path}/bin", f"{name}:/"], [f"{tmp_path}/d", f"{name}:/dir/a"],
                     [f"{tmp_path}/d", f"{name}:/nonexist/x"], [f"{tmp_path}/d", f"{name}:/newdir"],
                     [f"{name}:/newdir", f"{out}/newdir"], [f"{name}:/proc/1/status", f"{out}/status"],
                     [f"{name}:/bin/ls", f"{out}/ls"]):
            r = daemon.docker("cp", *args, check=False)
            results.append((r.returncode, r.stderr.replace(str(out), "<out>")))
        seen[who] = (results, _listing(out))
        daemon.docker("rm", "-f", name)
    assert seen["ours"][0] == seen["dockerd"][0]
    assert seen["ours"][1] == seen["dockerd"][1]


@pytest.mark.parametrize("args", [
    ("top", "nosuchcontainer"), ("diff", "nosuchcontainer"), ("export", "nosuchcontainer"),
    ("stats", "--no-stream", "nosuchcontainer"), ("cp", "nosuchcontainer:/etc", "-"),
    ("port", "nosuchcontainer"), ("commit", "nosuchcontainer"),
])
def test_missing_container_refusals_match_dockerd(engine_py, dockerd, args):
    ours = engine_py.docker(*args, check=False, cli="20.10")
    theirs = dockerd.docker(*args, check=False)
    assert (ours.returncode, ours.stderr) == (theirs.returncode, theirs.stderr)


def test_export_of_a_running_container_and_top_with_ps_options_as_dockerd(engine_py, dockerd, name, tmp_path):
    seen = {}
    for who, daemon in _daemons(engine_py, dockerd).items():
        daemon.docker("run", "-d", "--name", name, "--network", "none", "busybox", "sleep", "1000")
        daemon.docker("export", "-o", str(tmp_path / f"{who}.tar"), name)
        with tarfile.open(tmp_path / f"{who}.tar") as tf:
            exported = sorted(tf.getnames())
        top = daemon.docker("top", name, "-o", "pid,args").stdout.splitlines()
        bad = daemon.docker("top", name, "-o", "user=PID", check=False)
        seen[who] = ([n for n in exported if n.startswith(("bin/ls", "etc/passwd", "proc"))],
                     top[0].split(), [line.split(None, 1)[1] for line in top[1:]], bad.returncode, bad.stderr)
        daemon.docker("rm", "-f", name)
    assert seen["ours"] == seen["dockerd"]


def test_events_of_top_export_cp_and_commit_as_dockerds(engine_py, dockerd, name, tmp_path):
    (tmp_path / "f").write_text("f")
    seen = {}
    for who, daemon in _daemons(engine_py, dockerd).items():
        since = time.time()
        daemon.docker("run", "-d", "--name", name, "--network", "none", "busybox", "sleep", "1000")
        daemon.docker("top", name)
        daemon.docker("export", "-o", str(tmp_path / "export.tar"), name)
        daemon.docker("cp", f"{name}:/etc/passwd", str(tmp_path / f"passwd-{who}"))
        daemon.docker("cp", str(tmp_path / "f"), f"{name}:/tmp/")
        image = daemon.docker("commit", "-m", "why", name, "eventful:v1").stdout.strip()
        daemon.docker("rm", "-f", name)
        daemon.docker("rmi", image)
        out = daemon.docker("events", "--since", f"{since:.9f}", "--until", f"{time.time():.9f}", "--filter",
                            f"container={name}", "--format", "{{json .}}").stdout
        happened = [json.loads(line) for line in out.splitlines()]
        commit = next(e for e in happened if e["Action"] == "commit")["Actor"]["Attributes"]
        assert commit["imageID"] == image
        seen[who] = ([e["Action"] for e in happened], commit["comment"], commit["imageRef"])
    assert seen["ours"] == seen["dockerd"]


def test_a_committed_images_inspect_and_history_as_dockerds(engine_py, dockerd, name):
    seen = {}
    for who, daemon in _daemons(engine_py, dockerd).items():
        cid = daemon.docker("run", "-d", "--name", name, "--network", "none", "-e", "X=1", "-w", "/tmp", "busybox",
                            "sh", "-c", "echo hi > /f; sleep 100").stdout.strip()
        image = daemon.docker("commit", "-a", "me", "-m", "msg", "-c", "EXPOSE 80", "-c", "LABEL a=b", "-c",
                              "USER nobody", "-c", 'ENTRYPOINT ["/bin/sh"]', name, "inspected:v1").stdout.strip()
        shown = json.loads(daemon.docker("image", "inspect", image).stdout)[0]
        history = daemon.docker("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}",
                                image).stdout.splitlines()
        daemon.docker("rm", "-f", name)
        daemon.docker("rmi", image)
        config = dict(shown["Config"], Hostname=shown["Config"]["Hostname"] == cid[:12])
        seen[who] = (config, shown["Author"], shown["Comment"], shown["Container"] == cid,
                     len(shown["RootFS"]["Layers"]), shown["RepoTags"], history[0], len(history))
    assert seen["ours"] == seen["dockerd"]


@pytest.mark.parametrize("running", [False, True], ids=["created", "running"])
def test_cp_into_a_read_only_container_is_refused_as_by_dockerd(engine_py, dockerd, name, tmp_path, running):
    (tmp_path / "f").write_text("f")
    said = {}
    for who, daemon in _daemons(engine_py, dockerd).items():
        daemon.docker("run" if running else "create", *(["-d"] if running else []), "--name", name, "--read-only",
                      "--network", "none", "busybox", "sleep", "100")
        r = daemon.docker("cp", str(tmp_path / "f"), f"{name}:/tmp/", check=False)
        said[who] = (r.returncode, r.stderr)
        daemon.docker("rm", "-f", name)
    assert said["ours"] == said["dockerd"]


def test_stats_of_all_running_containers_and_of_a_paused_one_as_dockerds(engine_py, dockerd, name):
    seen = {}
    for who, daemon in _daemons(engine_py, dockerd).items():
        for suffix in ("a", "b"):
            daemon.docker("run", "-d", "--name", f"{name}-{suffix}", "--network", "none", "busybox", "sleep", "100")
        daemon.docker("pause", f"{name}-a")
        listed = daemon.docker("stats", "--no-stream", "--format", "{{.Name}} {{.NetIO}} {{.PIDs}}").stdout
        top = daemon.docker("top", f"{name}-a", check=False)
        seen[who] = (sorted(line for line in listed.splitlines() if line.startswith(name)), top.returncode)
        daemon.docker("rm", "-f", f"{name}-a", f"{name}-b")
    assert seen["ours"] == seen["dockerd"]
    assert len(seen["ours"][0]) == 2


def test_cp_keeps_the_archives_owners_and_cp_a_gives_them_to_the_containers_user(engine_py, dockerd, name, tmp_path):
    (tmp_path / "owned").write_text("x")
    os.chown(tmp_path / "owned", 1234, 4321)
    seen = {}
    for who, daemon in _daemons(engine_py, dockerd).items():
        daemon.docker("run", "-d", "--name", name, "--network", "none", "--user", "nobody", "busybox", "sleep", "100")
        daemon.docker("cp", str(tmp_path / "owned"), f"{name}:/tmp/plain")
        daemon.docker("cp", "-a", str(tmp_path / "owned"), f"{name}:/tmp/archive")
        seen[who] = daemon.docker("exec", name, "stat", "-c", "%n %u %g", "/tmp/plain", "/tmp/archive").stdout
        daemon.docker("rm", "-f", name)
    assert seen["ours"] == seen["dockerd"] == "/tmp/plain 1234 4321\n/tmp/archive 65534 65534\n"


@pytest.mark.parametrize("changes", [
    ["CMD"], ["CMD echo a", 'ENTRYPOINT ["/bin/sh", "-c"]'], ['ENTRYPOINT ["top"]'], ["ENV A 1", "ENV B=2 C=\"3 3\""],
    ["HEALTHCHECK --interval=5s --retries=2 CMD true"], ["HEALTHCHECK NONE"], ['VOLUME ["/a", "/b"]', "VOLUME /c"],
    ["ONBUILD RUN true", "WORKDIR /x", "WORKDIR y", "USER nobody", "EXPOSE 80 53/udp", "LABEL k=v"],
], ids=["empty-cmd", "cmd-then-entrypoint", "entrypoint", "env", "healthcheck", "no-healthcheck", "volumes", "rest"])
def test_commit_changes_give_dockerds_config(engine_py, dockerd, name, changes):
    configs = {}
    for who, daemon in _daemons(engine_py, dockerd).items():
        daemon.docker("create", "--name", name, "--network", "none", "busybox", "sh", "-c", "true")
        flags = [flag for change in changes for flag in ("-c", change)]
        image = daemon.docker("commit", *flags, name).stdout.strip()
        configs[who] = json.loads(daemon.docker("image", "inspect", image).stdout)[0]["Config"]
        configs[who]["Hostname"] = None  # the container's own ID
        daemon.docker("rm", name)
        daemon.docker("rmi", image)
    assert configs["ours"] == configs["dockerd"]


@pytest.mark.parametrize("running", [False, True], ids=["created", "running"])
def test_cp_through_a_containers_binds_as_dockerd(engine_py, dockerd, name, tmp_path, running):
    """A copy into and out of a bind mount reaches its source, stopped or running; a read-only one
    refuses a copy in; a read-only rootfs takes one into a writable bind."""
    (tmp_path / "f").write_text("copied in\n")
    seen = {}
    for who, daemon in _daemons(engine_py, dockerd).items():
        rw, ro = tmp_path / f"{who}-rw", tmp_path / f"{who}-ro"
        rw.mkdir()
        ro.mkdir()
        (ro / "there").write_text("from the host\n")
        daemon.docker("run" if running else "create", *(["-d"] if running else []), "--name", name, "--network",
                      "none", "--read-only", "-v", f"{rw}:/data", "-v", f"{ro}:/etc/ro:ro", "busybox", "sleep", "100")
        into_rw = daemon.docker("cp", str(tmp_path / "f"), f"{name}:/data/", check=False)
        into_ro = daemon.docker("cp", str(tmp_path / "f"), f"{name}:/etc/ro/", check=False)
        out = daemon.docker("cp", f"{name}:/etc/ro/there", "-", check=False)
        daemon.docker("rm", "-f", name)
        seen[who] = (into_rw.returncode, into_rw.stderr, into_ro.returncode, into_ro.stderr, out.returncode,
                     "from the host" in out.stdout, sorted(os.listdir(rw)), sorted(os.listdir(ro)))
    assert seen["ours"] == seen["dockerd"]
    assert seen["ours"][6] == ["f"]
