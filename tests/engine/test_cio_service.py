"""top, stats, diff, export and the archive API at the service level, over
a private containerd-py, on busybox containers."""
import io
import tarfile

import pytest

from containers_helpers import busybox, containerd_py, engine  # noqa: F401 (fixtures)
from containers_helpers import wait_for_output
from engine.containerd.layers import ContainerdLayers
from engine.errors import Conflict, InvalidParameter, NotFound
from engine.oci.host import LocalHost
from engine.services.container_fs import ContainerFiles, go_file_mode
from engine.services.stats import StatsService

pytestmark = pytest.mark.root

SLEEPER = ["sh", "-c", "echo ready; while :; do sleep 0.1; done"]


@pytest.fixture
def files(engine):
    return ContainerFiles(engine.service.store, ContainerdLayers(engine.client, str(engine.data_root / "tmp")))


@pytest.fixture
def stats(engine):
    return StatsService(engine.service.store, engine.service.cgroup_parent, LocalHost().cgroup_version)


def _ran(engine, script: str, name=None):
    record = engine.service.create({"Image": "busybox", "Cmd": ["sh", "-c", script]}, {}, name)
    engine.service.start(record.id)
    engine.service.wait(record.id)
    return record


def _running(engine, name=None):
    record = engine.service.create({"Image": "busybox", "Cmd": SLEEPER}, {}, name)
    engine.service.start(record.id)
    wait_for_output(engine, record, "ready")
    return record


def test_changes_are_the_containers_own_without_the_runtimes_mount_points(engine, files):
    record = _ran(engine, "mkdir -p /tmp/new && echo x > /tmp/new/f && rm /bin/ls && echo y >> /etc/passwd")
    assert files.changes(record.id) == [
        {"Path": "/bin", "Kind": 0}, {"Path": "/bin/ls", "Kind": 2}, {"Path": "/etc", "Kind": 0},
        {"Path": "/etc/passwd", "Kind": 0}, {"Path": "/tmp", "Kind": 0}, {"Path": "/tmp/new", "Kind": 1},
        {"Path": "/tmp/new/f", "Kind": 1}]


def test_a_container_without_changes_has_none_while_it_runs(engine, files):
    record = _running(engine)
    assert files.changes(record.id) is None


def test_export_is_the_whole_tree_as_a_tar(engine, files):
    record = _ran(engine, "echo hello > /greeting")
    with tarfile.open(fileobj=io.BytesIO(b"".join(files.export(record.id)))) as tf:
        names = tf.getnames()
        assert "bin/busybox" in names and "etc/passwd" in names and "bin/" not in names
        assert tf.extractfile("greeting").read() == b"hello\n"


@pytest.mark.parametrize("running", [False, True])
def test_archive_stat_get_and_put_as_docker_cp_uses_them(engine, files, running):
    record = _running(engine) if running else _ran(engine, "mkdir /data && echo one > /data/one")
    if running:  # the running one is given its /data through the archive API itself
        files.extract(record.id, "/", _tar({"data/": None, "data/one": b"one\n"}))
    described = files.stat_path(record.id, "/data")
    assert described["name"] == "data" and described["mode"] == go_file_mode(0o40755) == 2147484141
    _, chunks = files.archive(record.id, "/data/")
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tf:
        assert tf.getnames() == ["data", "data/one"]
        assert tf.extractfile("data/one").read() == b"one\n"
    files.extract(record.id, "/data", _tar({"two": b"2"}))
    _, chunks = files.archive(record.id, "/data/two")
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tf:
        assert tf.extractfile("two").read() == b"2"


def test_archive_errors_are_dockerds(engine, files):
    record = _ran(engine, "true", "quiet")
    with pytest.raises(NotFound, match="^Could not find the file /nothing in container quiet$"):
        files.stat_path("quiet", "/nothing")
    with pytest.raises(NotFound, match="^Could not find the file /nothing in container quiet$"):
        files.extract("quiet", "/nothing", _tar({"x": b""}))
    with pytest.raises(InvalidParameter, match="^extraction point is not a directory$"):
        files.extract(record.id, "/etc/passwd", _tar({"x": b""}))
    with pytest.raises(InvalidParameter, match="^Path cannot be empty$"):
        files.stat_path(record.id, "")


def test_a_symlinks_stat_names_its_target_inside_the_container(engine, files):
    record = _ran(engine, "ln -s /etc/passwd /pw")
    described = files.stat_path(record.id, "/pw")
    assert (described["linkTarget"], described["mode"] & (1 << 27)) == ("/etc/passwd", 1 << 27)


def test_top_lists_the_containers_processes_only(engine, stats):
    record = _running(engine)
    top = stats.top(record.id)
    assert top["Titles"][:2] == ["UID", "PID"]
    commands = [p[-1] for p in top["Processes"]]
    assert any("while :" in c for c in commands), commands
    assert all(str(p[1]).isdigit() for p in top["Processes"])
    assert stats.top(record.id, "aux")["Titles"][1] == "PID"
    with pytest.raises(InvalidParameter, match='specifying "user=PID" is not allowed'):
        stats.top(record.id, "-o user=PID")


def test_top_of_a_stopped_container_is_a_conflict(engine, stats):
    record = _ran(engine, "true")
    with pytest.raises(Conflict, match=f"^Container {record.id} is not running$"):
        stats.top(record.id)


def test_stats_of_a_running_container_as_dockerd_reports_them(engine, stats):
    record = _running(engine, "measured")
    sample, = stats.stats(record.id, stream=False)
    assert (sample["name"], sample["id"]) == ("/measured", record.id)
    assert sample["cpu_stats"]["cpu_usage"]["total_usage"] > 0
    assert sample["precpu_stats"]["cpu_usage"]["total_usage"] > 0  # the sample a second before
    assert sample["cpu_stats"]["system_cpu_usage"] > sample["precpu_stats"]["system_cpu_usage"]
    assert sample["memory_stats"]["usage"] > 0 and sample["memory_stats"]["limit"] > 0
    assert sample["pids_stats"]["current"] >= 1
    assert "networks" not in sample
    one, = stats.stats(record.id, stream=False, one_shot=True)
    assert one["preread"] == "0001-01-01T00:00:00Z"
    stream = stats.stats(record.id)
    first, second = next(stream), next(stream)
    assert second["preread"] == first["read"]
    stream.close()


def test_stats_of_a_stopped_container_are_empty(engine, stats):
    record = _ran(engine, "true", "stopped")
    sample, = stats.stats(record.id, stream=False)
    assert (sample["name"], sample["read"], sample["memory_stats"]) == ("/stopped", "0001-01-01T00:00:00Z", {})


def _tar(files: dict[str, bytes | None]):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            else:
                info.size, info.mode = len(data), 0o644
            tf.addfile(info, None if data is None else io.BytesIO(data))
    out.seek(0)
    return out
