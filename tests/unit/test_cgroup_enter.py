"""How create's stage 1 gets into the container's cgroup without a move by
pid: born there on the unified hierarchy (clone3, with a fallback to fork),
moving itself by writing "0" elsewhere. Directories stand in for cgroupfs."""
import errno
import os

import pytest

from runpy_oci import kernel
from runpy_oci.cgroups import Cgroup, Hierarchy

from fakes import RecordingSysCalls


@pytest.fixture
def fake_kernel():
    fake = RecordingSysCalls()
    previous = kernel.use(fake)
    yield fake
    kernel.use(previous)


@pytest.fixture
def forks(monkeypatch):
    calls = []

    def fake_fork():
        calls.append("fork")
        return 99
    monkeypatch.setattr(os, "fork", fake_fork)
    return calls


def cgroup(tmp_path, layout):
    found, paths = [], {}
    if layout in ("v1", "hybrid"):
        for ctrl in ("cpu", "memory"):
            found.append(Hierarchy(str(tmp_path / ctrl), (ctrl,), 1))
    if layout in ("v2", "hybrid"):
        found.append(Hierarchy(str(tmp_path / "unified"), (), 2))
    for h in found:
        path = os.path.join(h.mountpoint, "c1")
        os.makedirs(path)
        for name in ("tasks", "cgroup.procs"):
            open(os.path.join(path, name), "w").close()
        paths[h.mountpoint] = path
    return Cgroup(paths, found)


def read(path):
    with open(path) as f:
        return f.read()


@pytest.mark.parametrize("layout", ["v2", "hybrid"])
def test_child_is_born_in_the_unified_cgroup(tmp_path, fake_kernel, forks, layout):
    assert cgroup(tmp_path, layout).fork() == (4242, True)
    assert [c[0] for c in fake_kernel.calls] == ["fork_into_cgroup"]
    assert forks == []
    with pytest.raises(OSError):
        os.fstat(fake_kernel.calls[0][1])  # the directory's descriptor is closed again


@pytest.mark.parametrize("err", [errno.ENOSYS, errno.EINVAL, errno.E2BIG])
def test_without_clone_into_cgroup_it_forks(tmp_path, fake_kernel, forks, err):
    fake_kernel.fail["fork_into_cgroup"] = OSError(err, os.strerror(err))
    assert cgroup(tmp_path, "hybrid").fork() == (99, False)
    assert forks == ["fork"]


def test_pure_v1_just_forks(tmp_path, fake_kernel, forks):
    assert cgroup(tmp_path, "v1").fork() == (99, False)
    assert fake_kernel.calls == [] and forks == ["fork"]


def test_other_clone3_errors_name_the_cgroup(tmp_path, fake_kernel, forks):
    fake_kernel.fail["fork_into_cgroup"] = OSError(errno.EBUSY, os.strerror(errno.EBUSY))
    with pytest.raises(OSError, match="cannot join cgroup") as e:
        cgroup(tmp_path, "v2").fork()
    assert e.value.filename == str(tmp_path / "unified" / "c1")
    assert forks == []


@pytest.mark.parametrize("unified", [True, False])
def test_enter_moves_the_caller_itself(tmp_path, unified):
    cgroup(tmp_path, "hybrid").enter(unified=unified)
    for ctrl in ("cpu", "memory"):
        assert read(tmp_path / ctrl / "c1" / "tasks") == "0"
        assert read(tmp_path / ctrl / "c1" / "cgroup.procs") == ""
    assert read(tmp_path / "unified" / "c1" / "cgroup.procs") == ("0" if unified else "")


def test_enter_failure_names_the_file(tmp_path):
    cg = cgroup(tmp_path, "v1")
    os.remove(tmp_path / "memory" / "c1" / "tasks")
    os.mkdir(tmp_path / "memory" / "c1" / "tasks")
    with pytest.raises(OSError, match="cannot join cgroup") as e:
        cg.enter()
    assert e.value.filename == str(tmp_path / "memory" / "c1" / "tasks")


@pytest.mark.parametrize("layout", ["v2", "hybrid"])
def test_the_init_can_be_born_in_its_namespaces_too(tmp_path, fake_kernel, forks, layout):
    flags = kernel.CLONE_NEWPID | kernel.CLONE_NEWNS
    assert cgroup(tmp_path, layout).fork_into_namespaces(flags) == 4242
    assert [(c[0], c[2]) for c in fake_kernel.calls] == [("fork_into_cgroup", flags)]
    assert forks == []


@pytest.mark.parametrize("err", [errno.ENOSYS, errno.EINVAL, errno.EPERM])
def test_refused_namespaces_fork_nothing(tmp_path, fake_kernel, forks, err):
    fake_kernel.fail["fork_into_cgroup"] = OSError(err, os.strerror(err))
    assert cgroup(tmp_path, "v2").fork_into_namespaces(kernel.CLONE_NEWPID) is None
    assert forks == []


def test_pure_v1_cannot_be_born_in_namespaces(tmp_path, fake_kernel, forks):
    assert cgroup(tmp_path, "v1").fork_into_namespaces(kernel.CLONE_NEWPID) is None
    assert fake_kernel.calls == [] and forks == []
