"""A task's bundle, as containerd's runtime/v2 bundle.go: the directory the runtime
is given (config.json, the mounted rootfs) and the task's record, made at create
and removed whole at delete (see DESIGN.md for its files)."""
from __future__ import annotations

import json
import os
import shutil

from .. import errors, mount as mountlib
from ..errors import q
from ..types import Mount

STATE_DIR = "io.containerd.runtime.v2.task"


class Bundle:
    def __init__(self, path: str):
        self.path = path

    @classmethod
    def of(cls, state: str, ns: str, container_id: str) -> Bundle:
        return cls(os.path.join(state, STATE_DIR, ns, container_id))

    @classmethod
    def all(cls, state: str) -> list[Bundle]:
        """Every bundle under the daemon's state directory, namespace by namespace."""
        top = os.path.join(state, STATE_DIR)
        return [cls(os.path.join(top, ns, container_id))
                for ns in (sorted(os.listdir(top)) if os.path.isdir(top) else [])
                for container_id in sorted(os.listdir(os.path.join(top, ns)))]

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def create(self, container_id: str, spec: dict, rootfs: list[Mount]) -> None:
        """The directory with config.json and the rootfs mounted (rootfs.mounted says so)."""
        if os.path.exists(self.path):
            shutil.rmtree(self.path)  # a leftover of a task deleted while the daemon was down
        os.makedirs(self.file("rootfs"), mode=0o711)
        with open(self.file("config.json"), "w") as f:
            json.dump(spec, f)
        if rootfs:
            try:
                mountlib.mount_all(rootfs, self.file("rootfs"))
            except OSError as e:
                raise errors.InvalidArgument(f"rootfs of task {q(container_id)}: {e}") from None
            with open(self.file("rootfs.mounted"), "w"):
                pass

    def delete(self) -> None:
        """Unmounts the rootfs (if this bundle mounted it) and removes the directory."""
        if os.path.exists(self.file("rootfs.mounted")):
            mountlib.unmount(self.file("rootfs"))
        shutil.rmtree(self.path, ignore_errors=True)

    def save_record(self, data: dict) -> None:
        """task.json, replaced whole (temp, rename): a reader sees the old record or the new. Not
        fsync'd: it has to outlive the daemon, not the machine, whose end takes the containers
        along (and an unreadable record after a power loss only has its bundle removed)."""
        path = self.file("task.json")
        with open(path + ".tmp", "w") as f:
            json.dump(data, f)
        os.rename(path + ".tmp", path)

    def load_record(self) -> dict:
        with open(self.file("task.json")) as f:
            return json.load(f)
