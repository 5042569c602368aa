"""Bad input: `create` fails with exit status 1, says why on stderr, and leaves
nothing behind (no container in `list`, no mounts, no cgroups, no processes)."""
from __future__ import annotations

import pytest

from .harness import (cgroup_dirs_named, mountinfo_lines_mentioning, mounts_under,
                      processes_matching, wait_for)

pytestmark = pytest.mark.root


def assert_create_fails_cleanly(runtime, bundle, raw=None):
    if raw is not None:
        bundle.write(raw)
    else:
        bundle.write()
    cid = runtime.new_id("bad")
    mounts_before = mountinfo_lines_mentioning(str(bundle.path), cid)
    assert mounts_before == []
    cp = runtime.create(cid, bundle.path)
    problems = []
    if cp.returncode != 1:
        problems.append(f"exit status {cp.returncode}, expected 1")
    if not cp.stderr.strip():
        problems.append("nothing on stderr")
    ids = runtime.list_ids()
    if ids:
        problems.append(f"`list -q` shows {ids}")
    mounts_after = mountinfo_lines_mentioning(str(bundle.path), cid) + mounts_under(bundle.path)
    if mounts_after:
        problems.append(f"mounts left: {mounts_after}")
    roots = {bundle.root_ident()} if bundle.rootfs.exists() else set()

    def procs():
        return processes_matching(needle=str(bundle.path), roots=roots)
    if cp.returncode == 0:
        problems.append("the container was created")
    else:
        try:
            wait_for(lambda: not procs(), timeout=5, what="processes to exit")
        except AssertionError:
            problems.append(f"processes left: {procs()}")
    cgroups = cgroup_dirs_named({cid})
    if cgroups:
        problems.append(f"cgroups left: {cgroups}")
    assert not problems, "; ".join(problems) + f"\nstderr: {cp.stderr}"
    return cp


def test_malformed_json(runtime, bundle):
    assert_create_fails_cleanly(runtime, bundle, raw='{"ociVersion": "1.0.2", "process": {')


@pytest.mark.parametrize("raw", [
    '{"ociVersion": "1.0.2",}',
    '{"ociVersion: "1.0.2"}',
    '{\n  "ociVersion": "1.0.2",\n  "process": {"args": ["true",]}\n}',
    '{"ociVersion": "1.0.2", "process": {"ar',
    "[" * 100_000 + "]" * 100_000,
    '{"a":' * 100_000 + "1" + "}" * 100_000,
], ids=["trailing-comma", "missing-quote", "comma-in-list", "truncated", "deep-array", "deep-object"])
def test_json_syntax_errors_are_one_line(runtime, bundle, raw):
    cp = assert_create_fails_cleanly(runtime, bundle, raw=raw)
    assert len(cp.stderr.strip().splitlines()) == 1, cp.stderr


def test_config_not_an_object(runtime, bundle):
    assert_create_fails_cleanly(runtime, bundle, raw='["not", "an", "object"]')


def test_missing_config(runtime, bundle):
    bundle.config_path.unlink()
    cid = runtime.new_id("noconfig")
    cp = runtime.create(cid, bundle.path)
    assert cp.returncode == 1
    assert cp.stderr.strip()
    assert runtime.list_ids() == []


@pytest.mark.deviation("crun", "create accepts a config without process.args (config.md: "
                       "args is REQUIRED); it fails only at start")
def test_process_args_missing(runtime, bundle):
    del bundle.config["process"]["args"]
    assert_create_fails_cleanly(runtime, bundle)


def test_process_args_empty(runtime, bundle):
    bundle.config["process"]["args"] = []
    assert_create_fails_cleanly(runtime, bundle)


@pytest.mark.deviation("crun", "accepts process.user.uid given as a JSON string")
def test_uid_is_a_string(runtime, bundle):
    bundle.config["process"]["user"]["uid"] = "0"
    assert_create_fails_cleanly(runtime, bundle)


@pytest.mark.deviation("runc", "accepts ociVersion 2.0.0 (runtime-spec: ociVersion is SemVer and "
                       "a runtime must not run a config of an unsupported major version)")
def test_unsupported_oci_version(runtime, bundle):
    bundle.config["ociVersion"] = "2.0.0"
    assert_create_fails_cleanly(runtime, bundle)


def test_nonexistent_root_path(runtime, bundle):
    bundle.config["root"]["path"] = "no-such-rootfs"
    assert_create_fails_cleanly(runtime, bundle)


def test_unknown_namespace_type(runtime, bundle):
    bundle.config["linux"]["namespaces"].append({"type": "foo"})
    assert_create_fails_cleanly(runtime, bundle)


def test_mount_without_destination(runtime, bundle):
    bundle.config["mounts"].append({"type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]})
    assert_create_fails_cleanly(runtime, bundle)


@pytest.mark.deviation("crun", "accepts a relative process.cwd (config.md: MUST be absolute)")
def test_relative_cwd(runtime, bundle):
    # config.md: cwd MUST be an absolute path
    bundle.config["process"]["cwd"] = "tmp"
    assert_create_fails_cleanly(runtime, bundle)


def test_program_not_found(runtime, bundle):
    # runc reports exec failures at create time (the init execs after start,
    # but runc looks the program up first); either way: an error and no leftovers
    bundle.config["process"]["args"] = ["/no/such/program"]
    bundle.write()
    cid = runtime.new_id("noprog")
    cp = runtime.create(cid, bundle.path)
    if cp.returncode == 0:
        cp = runtime.start(cid)
        assert cp.returncode != 0 or runtime.status(cid) == "stopped"
    else:
        assert cp.returncode == 1
        assert cp.stderr.strip()
        assert runtime.list_ids() == []


def test_terminal_without_console_socket(runtime, bundle):
    bundle.config["process"]["terminal"] = True
    assert_create_fails_cleanly(runtime, bundle)
