"""The container service's pure parts: signals as docker takes them,
docker's short image names."""
import signal

import pytest

from engine.containerd.tasks import docker_reference
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
