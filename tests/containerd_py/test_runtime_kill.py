"""The runtime's kill of a container whose process has just ended: runc
(and runpy-oci) say "container not running"; containerd's shim turns that
into NotFound "process already finished", which dockerd reads as "the exit
is on its way" (a `docker stop` racing an exit then succeeds)."""
import pytest

from containerd_py import errors
from containerd_py.tasks.runtime import Runtime


def fake_runtime(tmp_path, stderr: str):
    binary = tmp_path / "fake-runc"
    binary.write_text(f"#!/bin/sh\necho '{stderr}' >&2\nexit 1\n")
    binary.chmod(0o755)
    return Runtime(str(binary), str(tmp_path / "root"))


@pytest.mark.parametrize("stderr", ["container not running", "kill: no such process",
                                    'time="x" level=error msg="os: process already finished"'])
def test_a_process_that_just_ended_is_not_found(tmp_path, stderr):
    with pytest.raises(errors.NotFound) as e:
        fake_runtime(tmp_path, stderr).kill("c1", 9)
    assert str(e.value) == "process already finished: not found"


def test_other_kill_failures_stay_unknown(tmp_path):
    with pytest.raises(errors.Unknown) as e:
        fake_runtime(tmp_path, "permission denied").kill("c1", 9)
    assert str(e.value) == "fake-runc kill failed: permission denied: unknown"
