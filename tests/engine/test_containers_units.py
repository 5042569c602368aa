"""The container service's pure parts: signals as docker takes them,
docker's short image names, the snapshots a removal asks containerd for."""
import signal
from types import SimpleNamespace

import pytest

from containerd_py import errors as cerrors
from engine.containerd.tasks import ContainerdTasks, docker_reference
from engine.errors import InvalidParameter
from engine.services.containers import parse_signal


@pytest.mark.parametrize("given,number", [("KILL", 9), ("SIGKILL", 9), ("sigterm", 15), ("9", 9), (10, 10),
                                          ("USR1", signal.SIGUSR1), ("RTMIN", signal.SIGRTMIN)])
def test_signals_by_name_or_number(given, number):
    assert parse_signal(given) == number


@pytest.mark.parametrize("given", ["NOPE", "0", "65", "-1", ""])
def test_bad_signals_are_400s(given):
    with pytest.raises(InvalidParameter, match=f"^Invalid signal: {given}$"):
        parse_signal(given)


@pytest.mark.parametrize("short,full", [("busybox", "docker.io/library/busybox:latest"),
                                        ("user/app:1", "docker.io/user/app:1"),
                                        ("localhost:5000/app", "localhost:5000/app:latest"),
                                        ("registry.example/a/b@sha256:" + "0" * 64,
                                         "registry.example/a/b@sha256:" + "0" * 64)])
def test_short_image_names_as_docker_expands_them(short, full):
    assert docker_reference(short) == full


class FakeSnapshots:
    """A snapshotter holding ``keys``; records every remove asked of it."""

    def __init__(self, keys):
        self.keys, self.removes = set(keys), []

    def remove(self, key):
        self.removes.append(key)
        if key not in self.keys:
            raise cerrors.NotFound(f"snapshot {key}")
        self.keys.remove(key)


def _tasks_over(snapshots):
    return ContainerdTasks(SimpleNamespace(snapshots=lambda snapshotter: snapshots))


def test_a_removal_asks_for_no_init_prepare_once_the_init_layer_went():
    snapshots = FakeSnapshots({"c", "c-init"})
    _tasks_over(snapshots).remove_snapshot("c")
    assert snapshots.removes == ["c", "c-init"] and not snapshots.keys


@pytest.mark.parametrize("left", [{"c-init-prepare"}, set()], ids=["create stopped before the commit", "nothing"])
def test_what_a_create_that_stopped_half_way_left_is_removed(left):
    snapshots = FakeSnapshots(left)
    _tasks_over(snapshots).remove_snapshot("c")
    assert snapshots.removes == ["c", "c-init", "c-init-prepare"] and not snapshots.keys
