"""Shared pytest setup: the ``root`` marker skips where the tests cannot have
root (a developer's unprivileged shell); CI runs as root, so nothing skips there."""
import os

import pytest


def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (namespaces, mounts, cgroups)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


# Cgroups: whatever a run made at the top of a hierarchy and left (a test's
# container parent, a namespace's /<ns>) fails the run, and is removed.
_CGROUP_GLOBS = ("/sys/fs/cgroup/*/", "/sys/fs/cgroup/*/*/")
_cgroups_before: set[str] = set()


def _cgroup_dirs() -> set[str]:
    import glob

    return {d for pattern in _CGROUP_GLOBS for d in glob.glob(pattern)}


def _other_pytest_runs() -> bool:
    """A pytest process on this machine other than this one (and its workers)."""
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent != me and any(arg.endswith(b"pytest") or arg == b"pytest" for arg in argv[:3]):
            return True
    return False


def pytest_sessionstart(session):
    if os.geteuid() == 0:
        _cgroups_before.update(_cgroup_dirs())


def pytest_sessionfinish(session, exitstatus):
    if os.geteuid() != 0:
        return
    import cgroup_trees

    left = sorted(_cgroup_dirs() - _cgroups_before, key=len, reverse=True)
    if left and _other_pytest_runs():
        # Another run's container parents come and go meanwhile: removing one
        # that is empty for a moment would break that run. CI runs one at a time.
        print(f"\n{len(left)} new cgroup(s) not checked: another pytest run is going on")
        return
    for d in left:
        cgroup_trees.remove(d)
    if left:
        print(f"\nthe run left {len(left)} cgroup(s) behind (removed where empty): " + ", ".join(left[-10:]))
        session.exitstatus = 1


@pytest.fixture(scope="session")
def dockerd():
    """One private real dockerd for the whole run, shared by every engine test
    that compares with it (tests/engine/dockerd_oracle.py; that directory is on
    sys.path once one of its modules is collected)."""
    from dockerd_oracle import running_dockerd

    with running_dockerd() as daemon:
        yield daemon


@pytest.fixture(scope="session")
def engine_py():
    """One private engine-py for the whole run, with busybox loaded
    (tests/engine/engine_daemon.py); `engine_py.docker(...)` runs the docker CLI at it."""
    from engine_daemon import running_engine

    with running_engine() as engine:
        yield engine


@pytest.fixture
def dockerpy(engine_py):
    """docker-py 7's client at the session's engine-py."""
    import docker

    client = docker.DockerClient(base_url=engine_py.host, version="auto")
    yield client
    client.close()
