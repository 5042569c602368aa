"""Fixtures and markers for the runtime conformance suite.

RUNTIME=/usr/sbin/runc python3 -m pytest tests/conformance -q
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from . import harness
from .harness import Bundle, Runtime

HERE = Path(__file__).resolve().parent
RUNTIME_PATH, RUNTIME_GIVEN = harness.resolve_runtime()
RUNTIME_NAME = harness.runtime_name(RUNTIME_PATH or RUNTIME_GIVEN)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "root: needs root and a real kernel (namespaces, mounts, cgroups)")
    config.addinivalue_line(
        "markers",
        "deviation(runtime, why): the named runtime deviates from the OCI runtime-spec "
        "(or from runc's CLI contract) here; xfail(strict=True) when RUNTIME is that runtime")


def _ours(item) -> bool:
    return HERE in Path(str(item.fspath)).resolve().parents


def pytest_collection_modifyitems(config, items):
    for item in items:
        if not _ours(item):
            continue
        if RUNTIME_PATH is None:
            item.add_marker(pytest.mark.skip(
                reason=f"runtime {RUNTIME_GIVEN!r} not found "
                       "(set RUNTIME=/path/to/a/runc-compatible/runtime)"))
            continue
        if item.get_closest_marker("root") and os.geteuid() != 0:
            item.add_marker(pytest.mark.skip(reason="needs root"))
            continue
        for m in item.iter_markers("deviation"):
            who, why = m.args[0], (m.args[1] if len(m.args) > 1 else m.kwargs.get("why", ""))
            if who == RUNTIME_NAME:
                item.add_marker(pytest.mark.xfail(strict=True, reason=f"{who} deviation: {why}"))


def pytest_report_header(config):
    return f"conformance runtime: {RUNTIME_GIVEN} -> {RUNTIME_PATH} (as {RUNTIME_NAME!r})"


# --------------------------------------------------------------------------
# session-wide: temp base, busybox template, leak check

@pytest.fixture(scope="session")
def session_base():
    base = Path(tempfile.mkdtemp(prefix=f"{harness.PREFIX}-", dir="/tmp"))
    yield base
    problems = list(harness.LEAKS)
    # anything still mounted, running, or created by us?
    for mp in harness.mounts_under(base):
        problems.append(f"mount left behind: {mp}")
    procs = harness.processes_matching(needle=str(base))
    for pid, cmd in procs:
        problems.append(f"process left behind: {pid} {cmd}")
    for ns in harness.netns_list():
        if ns in harness.USED_NETNS:
            problems.append(f"network namespace left behind: {ns}")
    for d in harness.cgroup_dirs_named(harness.USED_IDS):
        problems.append(f"cgroup left behind: {d}")
    # clean up whatever leaked so the machine is left as we found it
    for pid, _ in procs:
        harness.kill_pid(pid)
    for mp in sorted(harness.mounts_under(base), key=len, reverse=True):
        harness.umount_lazy(mp)
    for ns in harness.netns_list():
        if ns in harness.USED_NETNS:
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
    for d in sorted(harness.cgroup_dirs_named(harness.USED_IDS), key=len, reverse=True):
        try:
            os.rmdir(d)
        except OSError:
            pass
    if not harness.mounts_under(base):
        shutil.rmtree(base, ignore_errors=True)
    if problems:
        pytest.fail("the conformance run leaked state:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture(scope="session")
def template_rootfs(session_base):
    return harness.make_template(session_base / "template")


@pytest.fixture(scope="session")
def runtime_path():
    if RUNTIME_PATH is None:
        pytest.skip(f"runtime {RUNTIME_GIVEN!r} not found")
    return RUNTIME_PATH


# --------------------------------------------------------------------------
# per test

class Workdir:
    def __init__(self, path: Path):
        self.path = path
        self.bundles: list[Bundle] = []
        self._n = 0  # bundle counter

    def sub(self, name: str) -> Path:
        p = self.path / name
        p.mkdir(parents=True, exist_ok=True)
        return p


@pytest.fixture
def workdir(session_base, request):
    name = request.node.name
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in name)[:40]
    path = session_base / f"{safe}-{uuid.uuid4().hex[:6]}"
    path.mkdir()
    wd = Workdir(path)
    yield wd
    # processes still running in one of this test's rootfs, or naming its dir
    roots = set()
    for b in wd.bundles:
        try:
            roots.add(b.root_ident())
        except OSError:
            pass

    def leftover():
        return harness.processes_matching(needle=str(path), roots=roots)
    try:
        harness.wait_for(lambda: not leftover(), timeout=10, what="container processes to exit")
    except AssertionError:
        for pid, cmd in leftover():
            harness.LEAKS.append(f"{request.node.nodeid}: process left behind: {pid} {cmd}")
            harness.kill_pid(pid)
    mps = harness.mounts_under(path)
    for mp in mps:
        harness.LEAKS.append(f"{request.node.nodeid}: mount left behind: {mp}")
    for mp in sorted(mps, key=len, reverse=True):
        harness.umount_lazy(mp)
    if not harness.mounts_under(path):
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def runtime(runtime_path, workdir):
    rt = Runtime(runtime_path, workdir.sub("state"), workdir.sub("io"), name=RUNTIME_NAME)
    yield rt
    rt.cleanup()


@pytest.fixture
def make_bundle(workdir, template_rootfs):
    """make_bundle(config=None, name=None) -> a fresh Bundle in this test's dir."""
    def make(config=None, name=None):
        workdir._n += 1
        b = Bundle(workdir.path / (name or f"bundle{workdir._n}"), template_rootfs, config)
        workdir.bundles.append(b)
        return b
    return make


@pytest.fixture
def bundle(make_bundle):
    return make_bundle()


@pytest.fixture
def host_dir(workdir):
    """host_dir(name) -> an empty host directory for bind mounts."""
    def make(name="host"):
        return workdir.sub(name)
    return make


@pytest.fixture
def netns():
    """netns() -> name of a fresh network namespace (ip netns add), deleted after."""
    made = []

    def make():
        name = f"{harness.PREFIX}-{uuid.uuid4().hex[:8]}"
        harness.USED_NETNS.add(name)
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
        made.append(name)
        return name
    yield make
    for name in made:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)


@pytest.fixture
def host_mounts():
    """host_mounts(argv...) -> run `mount argv...` on the host; unmounted after."""
    made = []

    def mount(*args, target):
        subprocess.run(["mount", *map(str, args), str(target)], check=True, capture_output=True)
        made.append(str(target))
        return target
    yield mount
    for target in reversed(made):
        subprocess.run(["umount", "-l", target], capture_output=True)


@pytest.fixture
def console_socket(workdir):
    """console_socket() -> a listening harness.ConsoleSocket (short path)."""
    socks = []
    short = Path(tempfile.mkdtemp(prefix=f"{harness.PREFIX}-sock-", dir="/tmp"))

    def make():
        s = harness.ConsoleSocket(short / f"c{len(socks)}.sock")
        socks.append(s)
        return s
    yield make
    for s in socks:
        s.close()
    shutil.rmtree(short, ignore_errors=True)
