"""Status is derived from the recorded init and the exec fifo, never stored."""
import os

import pytest

from runpy_oci.errors import ContainerExists, ContainerNotFound, RuntimeFailure
from runpy_oci.state import Container, proc_stat, rfc3339_nano, validate_id


def saved(tmp_path, **data):
    c = Container.new(str(tmp_path), "c1")
    c.data = {"id": "c1", "bundle": "/b", "rootfs": "/b/rootfs", "created": "t", **data}
    c.save()
    c.close()
    return Container.load(str(tmp_path), "c1", lock=False)


def test_no_pid_yet_is_creating(tmp_path):
    assert saved(tmp_path).status() == "creating"


def test_live_init_with_fifo_is_created_and_without_is_running(tmp_path):
    me = os.getpid()
    c = saved(tmp_path, pid=me, pid_start=proc_stat(me)[1])
    os.mkfifo(c.fifo_path)
    assert c.status() == "created"
    os.unlink(c.fifo_path)
    assert c.status() == "running"
    assert c.oci_state()["pid"] == me


def test_a_reused_pid_is_not_our_init(tmp_path):
    me = os.getpid()
    c = saved(tmp_path, pid=me, pid_start=proc_stat(me)[1] + 1)
    assert c.status() == "stopped"
    assert c.oci_state()["pid"] == 0


def test_oci_state_has_runc_fields_in_order(tmp_path):
    c = saved(tmp_path, annotations={"a": "b"})
    assert list(c.oci_state()) == ["ociVersion", "id", "pid", "status", "bundle", "rootfs", "created",
                                   "annotations", "owner"]


def test_ids_are_reserved_once_and_validated(tmp_path):
    Container.new(str(tmp_path), "c1").close()
    with pytest.raises(ContainerExists):
        Container.new(str(tmp_path), "c1")
    for bad in ("", ".", "..", "a/b"):
        with pytest.raises(RuntimeFailure):
            Container.new(str(tmp_path), bad)
    with pytest.raises(ContainerNotFound):
        Container.load(str(tmp_path), "other")


def test_created_timestamp_is_rfc3339_nano():
    assert rfc3339_nano(1_700_000_000_123_456_000) == "2023-11-14T22:13:20.123456Z"
    assert rfc3339_nano(1_700_000_000_000_000_000) == "2023-11-14T22:13:20Z"


@pytest.mark.parametrize("cid", ["a,b", "a+b", "x.y-z_0", "..."])
def test_ids_in_runcs_character_range_pass(cid):
    validate_id(cid)


@pytest.mark.parametrize("cid", ["", ".", "..", "a b", "\u00e9", "\u0661", "a\nb", "a*b", "a/b"])
def test_other_ids_are_refused_in_runcs_words(cid):
    with pytest.raises(RuntimeFailure, match="^invalid container ID format$"):
        validate_id(cid)


def test_root_and_state_are_private_to_their_owner(tmp_path):
    # runc's modes: the state holds the hooks' environment
    root = tmp_path / "root"
    c = Container.new(str(root), "c1")
    c.data = {"id": "c1"}
    c.save()
    c.close()
    assert root.stat().st_mode & 0o777 == 0o700
    assert (root / "c1" / "state.json").stat().st_mode & 0o077 == 0
