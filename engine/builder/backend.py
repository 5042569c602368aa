"""What the dispatcher needs of the engine to run a build: images to start
from, the cache, containers for RUN, and new images for each step. The
engine's implementation is engine/services/build.py (over containerd and
the container service); tests give a fake. Every method that makes an
image takes the step's ``Commit``: the image's Config, the config the step
is known by (its ContainerConfig, which the cache compares) and its author.
"""
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

Emit = Callable[[dict], None]
Output = Callable[[str, str], None]  # (stream name, text): what a RUN prints


@dataclass(frozen=True)
class BaseImage:
    """An image a stage starts from (or COPY --from reads); id "" is scratch."""
    id: str
    config: dict  # its Config (the API's container.Config)


@dataclass(frozen=True)
class Commit:
    parent: str  # the image the step starts from ("" for scratch)
    config: dict  # the Config of the new image
    container_config: dict  # the step's config (its Cmd names the step)
    author: str = ""
    container: str = ""  # the container the image is committed from (or the ID a metadata step records)


class StepFailed(Exception):
    """A step that ran and failed: the build's error (a RUN's exit code as ``code``)."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


class BuildBackend(Protocol):
    def base_image(self, ref: str, pull: bool, emit: Emit, registry_config: dict) -> BaseImage:
        """The image called ref: local, else (or with pull) pulled with the credentials
        registry_config (X-Registry-Config) has for its registry, the pull's progress emitted."""

    def cached(self, parent: str, container_config: dict, sources: tuple[str, ...] = ()) -> str | None:
        """The image a former step with the same parent and config made (dockerd's cache probe);
        with ``sources`` (--cache-from's image IDs), also a step their histories hold."""

    def commit_config(self, commit: Commit) -> str:
        """A new image with no new layer (a metadata step); its ID."""

    def add_layer(self, commit: Commit, fill: Callable[[str], None]) -> str:
        """A new image whose layer is what ``fill(root)`` writes into the parent's tree; its ID."""

    def create_container(self, run_config: dict, host_config: dict) -> str:
        """A RUN step's container; its ID."""

    def run(self, container_id: str, output: Output, cancelled) -> int:
        """The container run to its end, its output given as it comes; its exit code.
        ``cancelled`` (an Event) kills it."""

    def commit_container(self, commit: Commit) -> str:
        """The changes of the container (commit.container) as a new image; its ID."""

    def remove_container(self, container_id: str) -> None: ...

    def mounted_image(self, image_id: str) -> AbstractContextManager[str]:
        """The image's tree mounted read-only (COPY --from)."""
