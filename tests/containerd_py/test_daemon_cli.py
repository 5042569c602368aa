"""The containerd-py command line: flags, config file, root lock, clean shutdown."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2

from conftest import Client, our_daemon_argv, running
from containerd_py import config as configlib
from containerd_py.api.containerd.services import images_pb2
from containerd_py.api.containerd.types import descriptor_pb2

pytestmark = pytest.mark.root


def run_cli(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "containerd_py.daemon", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("flag", ["--version", "-v"])
def test_version_flag_in_containerds_shape(flag, client):
    """`containerd github.com/containerd/containerd 1.6.20 <revision>`: the version and revision are the Version
    service's."""
    theirs = subprocess.run(["containerd", flag], capture_output=True, text=True, check=True).stdout.split()
    result = run_cli(flag)
    assert result.returncode == 0 and result.stdout.endswith("\n")
    ours = result.stdout.split()
    served = client.version.Version(empty_pb2.Empty())
    assert len(ours) == len(theirs) == 4
    assert ours == ["containerd-py", "containerd_py", served.version, served.revision]


def test_sigterm_removes_the_socket_and_releases_the_root():
    with running(our_daemon_argv, "cpy-cli") as proc:
        assert os.path.exists(proc.address)
        assert proc.stop() == 0
        assert not os.path.exists(proc.address)
        assert "shutting down" in proc.log()
        # The lock went with the process: a new daemon may take the root.
        with running(lambda w: our_daemon_argv(w, "--root", f"{proc.workdir}/root"), "cpy-cli-again") as again:
            assert again.proc.poll() is None


def test_a_second_daemon_on_the_same_root_is_refused(tmp_path):
    with running(our_daemon_argv, "cpy-cli") as proc:
        result = run_cli("--root", f"{proc.workdir}/root", "--state", str(tmp_path / "state"),
                         "--address", str(tmp_path / "other.sock"))
        assert result.returncode == 1
        assert result.stderr == f"containerd-py: root {proc.workdir}/root is in use by another containerd-py " \
                                f"(pid {proc.proc.pid})\n"
        assert os.listdir(tmp_path) == []  # neither its state directory nor its socket
        client = Client(proc.address)
        try:
            assert client.version.Version(empty_pb2.Empty()).version  # the first one is unharmed
        finally:
            client.close()


def assert_refused_address(result, address: str, pid: int) -> None:
    assert result.returncode == 1
    assert result.stderr.startswith(f"containerd-py: failed to get listener for main endpoint: address {address} "
                                    f"is in use by another daemon (pid {pid}, ")
    assert result.stderr.count("\n") == 1, result.stderr


def assert_answers(address: str) -> None:
    client = Client(address)
    try:
        assert client.version.Version(empty_pb2.Empty()).version
    finally:
        client.close()


def test_a_second_daemon_on_the_same_address_is_refused(tmp_path):
    """containerd would unlink the first one's socket and take the address over."""
    with running(our_daemon_argv, "cpy-cli") as proc:
        result = run_cli("--root", str(tmp_path / "root"), "--state", str(tmp_path / "state"), "--address", proc.address)
        assert_refused_address(result, proc.address, proc.proc.pid)
        assert os.listdir(tmp_path) == []
        assert_answers(proc.address)


def test_the_address_real_containerd_serves_is_refused(containerd, tmp_path):
    result = run_cli("--root", str(tmp_path / "root"), "--state", str(tmp_path / "state"),
                     "--address", containerd.address)
    assert_refused_address(result, containerd.address, containerd.proc.pid)
    assert os.listdir(tmp_path) == []
    assert_answers(containerd.address)


def test_a_stale_socket_is_replaced():
    """A socket nobody listens on is what a killed daemon leaves."""
    def argv(workdir):
        with socket.socket(socket.AF_UNIX) as stale:
            stale.bind(f"{workdir}/containerd.sock")
        return our_daemon_argv(workdir)
    with running(argv, "cpy-cli") as proc:
        assert_answers(proc.address)


def test_at_exit_a_socket_that_is_no_longer_its_own_is_left(tmp_path):
    with running(our_daemon_argv, "cpy-cli") as proc:
        os.rename(proc.address, tmp_path / "first.sock")  # another daemon took the address over, as containerd does
        with socket.socket(socket.AF_UNIX) as other:
            other.bind(proc.address)
            other.listen()
            assert proc.stop() == 0
            assert os.path.exists(proc.address)
            os.unlink(proc.address)


def test_something_else_at_the_address_is_refused(tmp_path):
    (tmp_path / "not-a-socket").write_text("x")
    result = run_cli("--root", str(tmp_path / "root"), "--state", str(tmp_path / "state"),
                     "--address", str(tmp_path / "not-a-socket"))
    assert (result.returncode, result.stderr) == (1, "containerd-py: failed to get listener for main endpoint: "
                                                     f"{tmp_path}/not-a-socket exists and is not a socket\n")
    assert os.listdir(tmp_path) == ["not-a-socket"]


NOBODY = 65534


def run_as_nobody(*args):
    return subprocess.run([sys.executable, "-m", "containerd_py.daemon", *args], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, user=NOBODY, group=NOBODY, extra_groups=[])


@pytest.fixture
def open_dir():
    """A directory everybody may reach (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="cpy-nobody-"))
    yield path
    shutil.rmtree(path)


def test_as_non_root_a_directory_it_cannot_make_is_one_line(open_dir):
    open_dir.chmod(0o755)  # nobody may look, not write
    result = run_as_nobody("--root", str(open_dir / "root"), "--state", str(open_dir / "state"),
                           "--address", str(open_dir / "state" / "containerd.sock"))
    assert (result.returncode, result.stderr) == (1, f"containerd-py: mkdir {open_dir}/root: permission denied\n")


def test_as_non_root_a_start_that_fails_later_leaves_nothing(open_dir):
    """Where it may make its directories, the socket's owner (root, by default) cannot be set."""
    open_dir.chmod(0o777)
    result = run_as_nobody("--root", str(open_dir / "a" / "root"), "--state", str(open_dir / "a" / "state"),
                           "--address", str(open_dir / "a" / "state" / "containerd.sock"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == ("containerd-py: failed to get listener for main endpoint: "
                                              f"chown {open_dir}/a/state/containerd.sock: operation not permitted")
    assert os.listdir(open_dir) == []


def test_config_file_sets_paths_and_flags_win():
    def argv(workdir):
        with open(f"{workdir}/config.toml", "w") as f:
            f.write(f'version = 2\nroot = "{workdir}/cfg-root"\nstate = "{workdir}/cfg-state"\n'
                    f'[grpc]\n  address = "{workdir}/ignored.sock"\n[debug]\n  level = "debug"\n'
                    f'[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "x"\n')
        return [sys.executable, "-m", "containerd_py.daemon", "-c", f"{workdir}/config.toml",
                "-a", f"{workdir}/containerd.sock"]
    with running(argv, "cpy-cli") as proc:
        assert os.path.isdir(f"{proc.workdir}/cfg-root/io.containerd.content.v1.content")
        assert os.path.isdir(f"{proc.workdir}/cfg-state")
        assert not os.path.exists(f"{proc.workdir}/ignored.sock")
        assert_logs_errors_at_debug(proc)
        assert (f'level=warning msg="Ignoring unknown key in TOML" file={proc.workdir}/config.toml '
                f'key="plugins io.containerd.grpc.v1.cri"') in proc.log()


def test_disabled_plugins_are_not_loaded():
    def argv(workdir):
        with open(f"{workdir}/config.toml", "w") as f:
            f.write('version = 2\ndisabled_plugins = ["io.containerd.snapshotter.v1.native"]\n')
        return our_daemon_argv(workdir, "-c", f"{workdir}/config.toml")
    with running(argv, "cpy-cli") as proc:
        assert not os.path.exists(f"{proc.workdir}/root/io.containerd.snapshotter.v1.native")
        assert os.path.isdir(f"{proc.workdir}/root/io.containerd.snapshotter.v1.overlayfs")


@pytest.mark.parametrize("content, message", [
    ("[grpc]\naddress = 5\n", "grpc.address: expected str"),
    ("version = 7\n", "unsupported config version 7"),
    ("root = \n", "invalid TOML"),
])
def test_bad_config_files_name_the_problem(tmp_path, content, message):
    (tmp_path / "config.toml").write_text(content)
    result = run_cli("-c", str(tmp_path / "config.toml"), "--root", str(tmp_path / "root"))
    assert result.returncode == 1 and message in result.stderr
    assert not (tmp_path / "root").exists()


def test_missing_explicit_config_is_an_error(tmp_path):
    result = run_cli("-c", str(tmp_path / "nope.toml"))
    assert result.returncode == 1 and "does not exist" in result.stderr


def test_config_parse_defaults_and_types():
    assert configlib.parse("") == configlib.Config()
    parsed = configlib.parse('[grpc]\nuid = 10\ngid = 20\n[debug]\nlevel = "warn"\n')
    assert (parsed.uid, parsed.gid, parsed.log_level) == (10, 20, "warn")
    with pytest.raises(configlib.ConfigError, match="grpc.uid: expected int"):
        configlib.parse("[grpc]\nuid = true\n")
    with pytest.raises(configlib.ConfigError, match="debug.level"):
        configlib.parse('[debug]\nlevel = "loud"\n')


def test_requests_without_a_namespace_use_default(client):
    target = descriptor_pb2.Descriptor(media_type="m", digest="sha256:" + "cd" * 32, size=1)
    client.images.Create(images_pb2.CreateImageRequest(image=images_pb2.Image(name="no-ns", target=target)))
    try:
        names = [i.name for i in client.images.List(images_pb2.ListImagesRequest(), metadata=client.md("default")).images]
        assert "no-ns" in names
    finally:
        client.images.Delete(images_pb2.DeleteImageRequest(name="no-ns"), metadata=client.md("default"))


def assert_logs_errors_at_debug(proc, expected=True):
    client = Client(proc.address)
    try:
        with pytest.raises(grpc.RpcError) as e:
            client.images.Get(images_pb2.GetImageRequest(name="missing"))
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        client.close()
    proc.stop()
    line = 'level=debug msg="/containerd.services.images.v1.Images/Get: NOT_FOUND: image \\"missing\\": not found"'
    assert (line in proc.log()) == expected, proc.log()


@pytest.mark.parametrize("level, logged", [("debug", True), ("info", False)])
def test_log_level_flag(level, logged):
    with running(lambda w: our_daemon_argv(w, "-l", level), "cpy-cli") as proc:
        assert_logs_errors_at_debug(proc, logged)


def test_gc_scheduler_delays_are_go_durations():
    parsed = configlib.parse('version = 2\n[plugins."io.containerd.gc.v1.scheduler"]\n'
                             'schedule_delay = "1m30s"\nstartup_delay = "250ms"\n')
    assert (parsed.gc_schedule_delay, parsed.gc_startup_delay) == (90, 0.25)
    assert configlib.parse('[plugins.scheduler]\nschedule_delay = "2h"\n').gc_schedule_delay == 7200
    with pytest.raises(configlib.ConfigError, match="invalid duration"):
        configlib.parse('version = 2\n[plugins."io.containerd.gc.v1.scheduler"]\nschedule_delay = "soon"\n')


def test_config_default_prints_every_key_it_understands():
    result = run_cli("config", "default")
    assert result.returncode == 0 and result.stdout == configlib.render(configlib.Config())
    parsed = configlib.parse(result.stdout)
    assert parsed == configlib.Config() and parsed.ignored == []
    help_text = run_cli("--help").stdout  # the format is in the help too
    assert all(f"  {line}\n" in help_text for line in result.stdout.splitlines() if line)


def leaves(table: dict, path=()) -> set[tuple[str, ...]]:
    return {leaf for key, value in table.items()
            for leaf in (leaves(value, path + (key,)) if isinstance(value, dict) else {path + (key,)})}


def test_config_default_has_containerds_shape():
    """Every key we print is one `containerd config default` prints, in the same table."""
    ours = leaves(tomllib.loads(run_cli("config", "default").stdout))
    theirs = leaves(tomllib.loads(subprocess.run(["containerd", "config", "default"], capture_output=True, text=True,
                                                 check=True).stdout))
    assert ours and ours <= theirs, ours - theirs


def test_config_dump_shows_the_file_as_read(tmp_path):
    (tmp_path / "config.toml").write_text('version = 2\nroot = "/srv/r"\n[plugins."io.containerd.gc.v1.scheduler"]\n'
                                          '  schedule_delay = "90s"\n')
    dumped = configlib.parse(run_cli("-c", str(tmp_path / "config.toml"), "config", "dump").stdout)
    assert (dumped.root, dumped.gc_schedule_delay, dumped.state) == ("/srv/r", 90, configlib.DEFAULT_STATE)


def test_a_rendered_config_parses_back_to_itself():
    config = configlib.Config(root="/r \"q\"", state="/s", address="/a.sock", uid=5, gid=6, max_recv_message_size=1,
                              log_level="debug", disabled_plugins=["io.containerd.snapshotter.v1.native"],
                              gc_schedule_delay=5400.25, gc_startup_delay=0.000002)
    assert configlib.parse(configlib.render(config)) == config


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (0.1, "100ms"), (90, "1m30s"), (7200, "2h0m0s"),
                                           (1.5, "1.5s"), (2e-6, "2µs"), (5e-9, "5ns")])
def test_durations_print_as_go_prints_them(seconds, text):
    assert configlib.format_duration(seconds) == text
    assert configlib.parse_duration(text, "") == pytest.approx(seconds)


def test_unknown_keys_and_tables_are_listed_for_a_warning():
    parsed = configlib.parse('version = 2\noom_score = 0\n[ttrpc]\n  address = ""\n[grpc]\n  tcp_address = ""\n'
                             '[plugins."io.containerd.grpc.v1.cri"]\n  x = 1\n'
                             '[plugins."io.containerd.gc.v1.scheduler"]\n  pause_threshold = 0.02\n')
    assert parsed.ignored == ["oom_score", "ttrpc", "grpc tcp_address", "plugins io.containerd.grpc.v1.cri",
                              "plugins io.containerd.gc.v1.scheduler pause_threshold"]
    assert configlib.parse("[plugins.scheduler]\n  pause_threshold = 0.02\n").ignored == [
        "plugins scheduler pause_threshold"]
