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


# The host's network namespace (the run's own): a daemon under test runs in
# a namespace of the test's, so any link or nftables table that appears here
# is a leak (an engine started without one makes its bridge and rules here).
_host_network_before: set[str] = set()


def _host_network() -> set[str]:
    import subprocess

    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout.splitlines()
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout.splitlines()
    return {"link " + line.split(":")[1].strip().partition("@")[0] for line in links if ":" in line} | \
        {line.strip() for line in tables if line.startswith("table ")}


def _remove_host_network(left: list[str]) -> None:
    import subprocess

    for item in left:
        kind, _, name = item.partition(" ")
        argv = ["ip", "link", "del", name] if kind == "link" else ["nft", "delete", "table", *name.split()]
        subprocess.run(argv, capture_output=True)


def pytest_sessionstart(session):
    if os.geteuid() == 0:
        _cgroups_before.update(_cgroup_dirs())
        _host_network_before.update(_host_network())


def pytest_sessionfinish(session, exitstatus):
    if os.geteuid() != 0:
        return
    import cgroup_trees

    network_left = sorted(_host_network() - _host_network_before)
    others = (network_left or _cgroup_dirs() - _cgroups_before) and _other_pytest_runs()
    if network_left and not others:
        _remove_host_network(network_left)
        print("\nthe run left links or nftables tables in the host's network namespace (removed): "
              + ", ".join(network_left))
        session.exitstatus = 1
    left = sorted(_cgroup_dirs() - _cgroups_before, key=len, reverse=True)
    if left and others:
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
