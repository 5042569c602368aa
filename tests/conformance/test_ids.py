"""Container IDs: runc takes only ASCII letters, digits and ``_+-.`` (its
``^[\\w+-\\.]+$``, and not "." or ".."), in every verb that names one, so an
ID that works with one runtime works with the other."""
from __future__ import annotations

import pytest

from . import harness

pytestmark = pytest.mark.root

# given to create: a runtime that takes them makes no more than a strange directory
BAD_IDS = ["a b", "a\\b", "caf\u00e9", "a\tb", "a\x01b", "a:b"]
# given to state only: a runtime that took them would reach outside its --root
ESCAPING_IDS = ["a/b", ".", ".."]
IDS_RUNC_TAKES = ["A_1-2.3", "a+b", "a..b", "9"]
CRUN = "crun 1.8.1 checks no ID format (create makes a directory of any name but one with '/')"


@pytest.mark.deviation("crun", CRUN)
@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
def test_create_refuses_an_id_runc_refuses(runtime, bundle, bad):
    bundle.write()
    cp = runtime.create(bad, bundle.path)
    if cp.returncode == 0:
        runtime.delete(bad, force=True)
    assert cp.returncode == 1
    assert "invalid container ID format" in cp.stderr
    assert cp.stderr.count("\n") == 1, cp.stderr
    assert runtime.list_ids() == []
    assert list(runtime.root.iterdir()) == []


@pytest.mark.deviation("crun", CRUN)
@pytest.mark.parametrize("verb", [("state",), ("start",), ("kill",), ("delete",), ("delete", "--force"),
                                  ("pause",), ("resume",), ("ps",), ("events", "--stats")], ids=" ".join)
def test_every_verb_refuses_an_id_runc_refuses(runtime, verb):
    cp = runtime.cmd(*verb, "a b")
    assert cp.returncode == 1
    assert "invalid container ID format" in cp.stderr


@pytest.mark.deviation("crun", CRUN)
@pytest.mark.parametrize("bad", ESCAPING_IDS)
def test_state_refuses_an_id_that_leaves_the_root(runtime, bad):
    cp = runtime.state(bad)
    assert cp.returncode == 1
    assert "invalid container ID format" in cp.stderr


@pytest.mark.deviation("crun", CRUN)
def test_exec_refuses_an_id_runc_refuses_with_255(runtime):
    cp = runtime.cmd("exec", "a b", "true")
    assert cp.returncode == 255
    assert "invalid container ID format" in cp.stderr


@pytest.mark.parametrize("cid", IDS_RUNC_TAKES)
def test_ids_runc_takes_work(runtime, bundle, cid):
    bundle.write()
    cid = runtime.new_id("id") + cid
    runtime.ids.append(cid)  # for the fixture's cleanup and leak checks
    harness.USED_IDS.add(cid)
    runtime.check(runtime.create(cid, bundle.path), "create")
    assert runtime.list_ids() == [cid]
    runtime.check(runtime.delete(cid, force=True), "delete")
