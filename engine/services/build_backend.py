"""The builder's backend over the engine (engine/builder/backend.py):
base images from the image service (pulled when missing), the cache read
from the images' parent labels, RUN steps as containers of the container
service with their output followed in their json-file log, and each
step's image written by the ImageWriter (a container's changes through
containerd's diff service; a COPY's files written into a fresh snapshot of
the parent, committed as the new layer's snapshot so nothing is applied twice).
"""
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from containerd_py import errors as cerrors
from containerd_py.mount import readonly, temp_mount
from containerd_py.transfer.manifests import chain_ids

from engine.builder.backend import BaseImage, Commit, Emit, Output, StepFailed
from engine.builder.cache import newest_match
from engine.containerd.layers import ContainerdLayers
from engine.containerd.tasks import engine_errors
from engine.errors import EngineError, NotFound, System
from engine.services.containers import ContainerService
from engine.services.image_writer import EMPTY_LAYER_DIFF_ID, Child, ImageWriter, media_types
from engine.services.images import ImageService
from engine.services.logs import ExitOrEnd, LogService, LogsRequest


class EngineBuildBackend:
    def __init__(self, images: ImageService, containers: ContainerService, logs: LogService,
                 layers: ContainerdLayers):
        self.images, self.containers, self.logs, self.layers = images, containers, logs, layers
        self.writer = ImageWriter(layers, images.door)

    # -- images ------------------------------------------------------------------------------

    def base_image(self, ref: str, pull: bool, emit: Emit) -> BaseImage:
        if not pull:
            try:
                view = self.images.get(ref)
                return BaseImage(view.id, dict(view.config.get("config") or {}))
            except NotFound:
                pass
        for message in self.images.pull(ref):
            if message.get("error"):
                raise StepFailed(message["error"])
            emit(message)
        view = self.images.get(ref)
        return BaseImage(view.id, dict(view.config.get("config") or {}))

    def cached(self, parent: str, container_config: dict) -> str | None:
        catalog = self.images.catalog()
        siblings = catalog.children.get(parent, []) if parent else \
            [view.id for view in catalog.by_id.values() if not view.parent]
        return newest_match(((image_id, catalog.by_id[image_id].created,
                              catalog.by_id[image_id].config.get("container_config")) for image_id in siblings),
                            container_config)

    def _base(self, image_id: str):
        return self.images.catalog().by_id[image_id].resolved if image_id else None

    @staticmethod
    def _child(commit: Commit) -> Child:
        return Child(commit.config, commit.container_config, " ".join(commit.container_config.get("Cmd") or []),
                     commit.container, commit.author)

    def commit_config(self, commit: Commit) -> str:
        with self.layers.leased():
            return self.writer.write(self._base(commit.parent), self._child(commit), None, "",
                                     parent_id=commit.parent, unpacked=True)

    def commit_container(self, commit: Commit) -> str:
        base = self._base(commit.parent)
        with self.layers.leased():
            layer, diff_id = self.layers.diff(commit.container, media_types(base)[2])
            return self.writer.write(base, self._child(commit), layer, diff_id, parent_id=commit.parent)

    def add_layer(self, commit: Commit, fill: Callable[[str], None]) -> str:
        base = self._base(commit.parent)
        parent_chain = base.chain_ids[-1] if base and base.chain_ids else ""
        key = f"build-{os.urandom(8).hex()}"
        snapshots = self.layers.snapshots
        with self.layers.leased():
            with engine_errors():
                mounts = snapshots.prepare(key, parent_chain)
            try:
                with self._mounted(mounts, key) as root:
                    fill(root)
                layer, diff_id = self.layers.diff(key, media_types(base)[2])
                if diff_id != EMPTY_LAYER_DIFF_ID:  # (WORKDIR of a directory that is there: no layer)
                    self._commit_snapshot(key, [*base.config.get("rootfs", {}).get("diff_ids", []), diff_id]
                                          if base else [diff_id])
                return self.writer.write(base, self._child(commit), layer, diff_id, parent_id=commit.parent,
                                         unpacked=True)
            finally:
                try:
                    snapshots.remove(key)
                except cerrors.NotFound:
                    pass

    def _commit_snapshot(self, key: str, diff_ids: list[str]) -> None:
        """The filled snapshot kept as the new layer's (named by its chain ID, as unpacking names it)."""
        try:
            self.layers.snapshots.commit(chain_ids(diff_ids)[-1], key)
        except cerrors.AlreadyExists:
            pass

    @contextmanager
    def _mounted(self, mounts, what: str) -> Iterator[str]:
        try:
            with temp_mount(mounts, self.layers.mount_dir) as root:
                yield root
        except OSError as err:
            raise System(f"mounting the filesystem of {what}: {err}") from None

    @contextmanager
    def mounted_image(self, image_id: str) -> Iterator[str]:
        base = self._base(image_id)
        if not base or not base.chain_ids:
            with tempfile.TemporaryDirectory(dir=self.layers.mount_dir) as empty:
                yield empty
            return
        key = f"build-view-{os.urandom(8).hex()}"
        with self.layers.leased():
            with engine_errors():
                mounts = self.layers.snapshots.view(key, base.chain_ids[-1])
            try:
                with self._mounted(readonly(mounts), key) as root:
                    yield root
            finally:
                self.layers.snapshots.remove(key)

    # -- RUN -------------------------------------------------------------------------------------

    def create_container(self, run_config: dict, host_config: dict) -> str:
        return self.containers.create(run_config, {**host_config, "LogConfig": {"Type": "json-file"}}).id

    def run(self, container_id: str, output: Output, cancelled: threading.Event) -> int:
        ended = ExitOrEnd(self.containers, container_id)
        self.containers.start(container_id)
        threading.Thread(target=self._kill_when, args=(container_id, cancelled, ended), daemon=True).start()
        _, entries = self.logs.logs(container_id, LogsRequest(follow=True), threading.Event())
        for entry in entries:
            output(entry.stream, entry.line.decode(errors="replace"))
        return int(self.containers.wait(container_id, "not-running").get("StatusCode", -1))

    def _kill_when(self, container_id: str, cancelled: threading.Event, ended: ExitOrEnd) -> None:
        """A cancelled build's RUN is killed (checked until the container ends)."""
        while not ended.is_set():
            if cancelled.wait(0.2):
                try:
                    self.containers.kill(container_id)
                except EngineError:
                    pass
                return

    def remove_container(self, container_id: str) -> None:
        self.containers.remove(container_id, force=True)
