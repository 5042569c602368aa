"""The generated API modules match proto/, and proto/ matches containerd's wire format."""
import filecmp
import os
import subprocess

import pytest

from conftest import REPO
from containerd_py.api.containerd.services import (content_pb2, diff_pb2, images_pb2, introspection_pb2,
                                                   snapshots_pb2, tasks_pb2)
from containerd_py.api.containerd.types import descriptor_pb2, mount_pb2, task_pb2


def _tree(root: str) -> set[str]:
    return {os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root)
            for f in files if f.endswith(".py")}


def test_generated_code_is_fresh(tmp_path):
    out = tmp_path / "api"
    subprocess.run(["bash", str(REPO / "scripts" / "gen-proto.sh"), str(out)], check=True, cwd=REPO)
    checked_in = str(REPO / "containerd_py" / "api")
    fresh, current = _tree(str(out)), _tree(checked_in)
    assert fresh == current, "generated file set differs: run scripts/gen-proto.sh"
    stale = [f for f in sorted(fresh) if not filecmp.cmp(out / f, os.path.join(checked_in, f), shallow=False)]
    assert not stale, f"stale generated modules (run scripts/gen-proto.sh): {stale}"


@pytest.mark.parametrize("message, field, number", [
    (descriptor_pb2.Descriptor, "annotations", 5),
    (mount_pb2.Mount, "options", 4),
    (content_pb2.WriteContentRequest, "labels", 7),
    (content_pb2.Info, "labels", 5),
    (images_pb2.Image, "created_at", 7),
    (images_pb2.Image, "updated_at", 8),
    (diff_pb2.DiffResponse, "diff", 3),
    (snapshots_pb2.Info, "labels", 6),
    (snapshots_pb2.UsageResponse, "inodes", 2),
    (introspection_pb2.Plugin, "init_err", 7),
    (tasks_pb2.CreateTaskRequest, "rootfs", 3),
    (tasks_pb2.CreateTaskRequest, "runtime_path", 10),
    (task_pb2.Process, "exited_at", 10),
])
def test_field_numbers_match_containerd(message, field, number):
    assert message.DESCRIPTOR.fields_by_name[field].number == number


@pytest.mark.parametrize("message, full_name", [
    (content_pb2.WriteContentRequest, "containerd.services.content.v1.WriteContentRequest"),
    (snapshots_pb2.PrepareSnapshotRequest, "containerd.services.snapshots.v1.PrepareSnapshotRequest"),
    (task_pb2.Process, "containerd.v1.types.Process"),
    (mount_pb2.Mount, "containerd.types.Mount"),
])
def test_package_names_match_containerd(message, full_name):
    assert message.DESCRIPTOR.full_name == full_name


def test_service_names_match_containerd():
    names = {s.full_name for m in (content_pb2, images_pb2, snapshots_pb2, diff_pb2, tasks_pb2)
             for s in m.DESCRIPTOR.services_by_name.values()}
    assert names == {"containerd.services.content.v1.Content", "containerd.services.images.v1.Images",
                     "containerd.services.snapshots.v1.Snapshots", "containerd.services.diff.v1.Diff",
                     "containerd.services.tasks.v1.Tasks"}
