"""The builder's backend over the engine (engine/builder/backend.py):
base images from the image service (pulled when missing), the cache read
from the images' parent labels, RUN steps as containers of the container
service with their output followed in their json-file log, and each
step's image written by the ImageWriter (a container's changes through
containerd's diff service; a COPY's files written into a fresh snapshot of
the parent, committed as the new layer's snapshot so nothing is applied twice).
"""
import base64
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from containerd_py import errors as cerrors
from containerd_py.mount import readonly, temp_mount
from containerd_py.transfer.manifests import chain_ids

from engine.builder.backend import BaseImage, Commit, Emit, Output, StepFailed
from engine.builder.cache import cached_history_step, newest_match
from engine.containerd.layers import ContainerdLayers
from engine.containerd.tasks import engine_errors
from engine.errors import EngineError, NotFound, System
from engine.reference import DOCKER_HUB, parse_normalized
from engine.services.containers import ContainerService
from engine.services.image_writer import EMPTY_LAYER_DIFF_ID, Child, ImageWriter, media_types
from engine.services.images import PARENT_LABEL, ImageService, go_config
from engine.services.system import VERSION
from engine.services.logs import ExitOrEnd, LogService, LogsRequest


class EngineBuildBackend:
    def __init__(self, images: ImageService, containers: ContainerService, logs: LogService,
                 layers: ContainerdLayers):
        self.images, self.containers, self.logs, self.layers = images, containers, logs, layers
        self.writer = ImageWriter(layers, images.door)

    # -- images ------------------------------------------------------------------------------

    def base_image(self, ref: str, pull: bool, emit: Emit, registry_config: dict) -> BaseImage:
        if not pull:
            try:
                view = self.images.get(ref)
                return BaseImage(view.id, dict(view.config.get("config") or {}))
            except NotFound:
                pass
        for message in self.images.pull(ref, registry_auth=_registry_auth(ref, registry_config)):
            if message.get("error"):
                raise StepFailed(message["error"])
            emit(message)
        view = self.images.get(ref)
        return BaseImage(view.id, dict(view.config.get("config") or {}))

    def cached(self, parent: str, container_config: dict, sources: tuple[str, ...] = ()) -> str | None:
        catalog = self.images.catalog()
        siblings = catalog.children.get(parent, []) if parent else \
            [view.id for view in catalog.by_id.values() if not view.parent]
        local = newest_match(((image_id, catalog.by_id[image_id].created,
                               catalog.by_id[image_id].config.get("container_config")) for image_id in siblings),
                             container_config)
        if not sources or (local and any(_descends(catalog, source, local) for source in sources)):
            return local
        parent_view = catalog.by_id.get(parent) if parent else None
        for source in sources:
            target = catalog.by_id.get(source)
            index = target and cached_history_step(target.config, parent_view and parent_view.config,
                                                   container_config)
            if index is None:
                continue
            if index == len(target.config["history"]) - 1:
                if parent:
                    for name in target.names:
                        self.images.door.put(name, target.target, {PARENT_LABEL: parent})
                return target.id
            return self._restore(parent_view, target, index, container_config)
        return None

    def _restore(self, parent, target, index: int, container_config: dict) -> str:
        """dockerd's restoreCachedImage: the parent and the target's entry (and its layer) as a new image."""
        base = parent.resolved if parent else None
        layers = list(base.layers if base else ())
        diff_ids = list((base.config.get("rootfs") or {}).get("diff_ids") or []) if base else []
        entry = target.config["history"][index]
        if not entry.get("empty_layer"):  # its layer is the target's next after the parent's (which it starts with)
            layers.append(target.resolved.layers[len(diff_ids)])
            diff_ids.append(target.config["rootfs"]["diff_ids"][len(diff_ids)])
        image_config = {"architecture": target.config.get("architecture", "amd64"), "config": go_config(container_config),
                        "container_config": go_config({}), "created": entry.get("created"),
                        "docker_version": VERSION, "history": [*(base.config.get("history") or []), entry]
                        if base else [entry], "os": target.config.get("os", "linux"),
                        "rootfs": {"type": "layers", "diff_ids": diff_ids}}
        if target.config.get("author"):
            image_config["author"] = target.config["author"]
        with self.layers.leased():
            return self.writer.store(image_config, layers, media_types(target.resolved), None,
                                     parent.id if parent else "", unpacked=False)

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
            committed = False
            try:
                with self._mounted(mounts, key) as root:
                    fill(root)
                layer, diff_id = self.layers.diff(key, media_types(base)[2])
                if diff_id != EMPTY_LAYER_DIFF_ID:  # (WORKDIR of a directory that is there: no layer)
                    committed = self._commit_snapshot(
                        key, [*base.config.get("rootfs", {}).get("diff_ids", []), diff_id] if base else [diff_id])
                return self.writer.write(base, self._child(commit), layer, diff_id, parent_id=commit.parent,
                                         unpacked=True)
            finally:
                if not committed:
                    snapshots.remove(key)

    def _commit_snapshot(self, key: str, diff_ids: list[str]) -> bool:
        """The filled snapshot kept as the new layer's (named by its chain ID, as unpacking
        names it); False when that is there already (the key is left to remove)."""
        try:
            self.layers.snapshots.commit(chain_ids(diff_ids)[-1], key)
        except cerrors.AlreadyExists:
            return False
        return True

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
        """A RUN's container; its config's VOLUMEs become anonymous volumes (filled from the
        image), as dockerd gives them, so what the step writes under them is not committed."""
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
        self.containers.remove(container_id, force=True, volumes=True)


def _descends(catalog, image_id: str, ancestor: str) -> bool:
    """Whether ``ancestor`` is on the image's chain of parents."""
    seen = set()
    while image_id and image_id not in seen:
        seen.add(image_id)
        view = catalog.by_id.get(image_id)
        image_id = view.parent if view else ""
        if image_id == ancestor:
            return True
    return False


def _registry_auth(ref: str, registry_config: dict) -> str | None:
    """The X-Registry-Auth of a pull for ref: its registry's entry of the build's X-Registry-Config
    (Docker Hub's under the index's address, as the CLI keys it)."""
    host = parse_normalized(ref).host
    for key, auth in registry_config.items():
        name = key.removeprefix("https://").removeprefix("http://").removesuffix("/").removesuffix("/v1")
        if name == host or (host == DOCKER_HUB and name in ("index.docker.io", "docker.io")):
            return base64.urlsafe_b64encode(json.dumps(auth).encode()).decode()
    return None
