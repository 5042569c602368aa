"""`docker build` (POST /build, the legacy builder): the Dockerfile parsed,
its stages dispatched (engine/builder/dispatch.py) on a thread of their own
over the engine's backend, their messages streamed as they come, the
result tagged. A client that goes away cancels the build: its RUN is
killed and its container removed. `docker builder prune` removes the
cache, which is the build steps' untagged images."""
import logging
import threading
from collections.abc import Iterator

from engine.builder.backend import BuildBackend, StepFailed
from engine.builder.dispatch import Build, BuildSettings
from engine.builder.dockerfile import parse
from engine.errors import Conflict, EngineError, NotFound
from engine.services.images import ImageService
from engine.services.streaming import error_message, in_thread

log = logging.getLogger(__name__)
RUN_HOST_CONFIG_KEYS = ("Memory", "MemorySwap", "CpuShares", "CpuPeriod", "CpuQuota", "CpusetCpus", "CpusetMems",
                        "Ulimits")


class BuildService:
    def __init__(self, backend: BuildBackend, images: ImageService, tmp_dir: str):
        """``tmp_dir``: where the route receives contexts (the data-root's, beside the layers)."""
        self.backend, self.images, self.tmp_dir = backend, images, tmp_dir

    def build(self, options, context, disconnected: threading.Event | None = None) -> Iterator[dict]:
        """The build's messages; what fails before the first one raises (dockerd's HTTP error),
        what fails after is the stream's last message. ``disconnected`` (the client gone)
        cancels it, also while a RUN prints nothing."""
        dockerfile = parse(context.dockerfile_text)
        if options.target:
            dockerfile = dockerfile.up_to(options.target)
        return self._stream(dockerfile, options, context, disconnected)

    def _stream(self, dockerfile, options, context, disconnected) -> Iterator[dict]:
        cancelled = threading.Event()
        if disconnected is not None:
            threading.Thread(target=_cancel_when, args=(disconnected, cancelled), name="build-client",
                             daemon=True).start()
        settings = BuildSettings(dict(options.build_args), dict(options.labels), options.no_cache, options.pull,
                                 options.remove, options.force_remove, _run_host_config(options),
                                 self._cache_sources(options.cache_from), dict(options.registry_config))

        def work(emit):
            for warning in dockerfile.warnings:
                emit({"stream": warning + "\n"})
            return Build(dockerfile, context.root, self.backend, settings, emit, cancelled, context.sums).run()

        try:
            image_id = yield from in_thread(work, "build")
            yield {"stream": f"Successfully built {image_id.removeprefix('sha256:')[:12]}\n"}
            for tag in options.tags:
                named = self.images.tag(image_id, tag)
                yield {"stream": f"Successfully tagged {named.familiar()}\n"}
        except StepFailed as err:
            message = error_message(str(err))
            if err.code is not None:
                message["errorDetail"]["code"] = err.code
            yield message
        except EngineError as err:
            yield error_message(str(err))
        finally:
            cancelled.set()

    def _cache_sources(self, refs) -> tuple[str, ...]:
        """--cache-from's images; one not here is skipped, as dockerd skips it (with a warning in its log)."""
        found = []
        for ref in refs:
            try:
                found.append(self.images.get(ref).id)
            except EngineError as err:
                log.warning("Could not look up %s for cache resolution, skipping: %s", ref, err)
        return tuple(found)

    def prune(self, filters=None, all: bool = False) -> dict:
        """`docker builder prune`: the build steps' untagged images that no container uses and no
        other image is made on (their parents go with them when nothing else holds them)."""
        deleted, reclaimed = [], 0
        catalog = self.images.catalog()
        for view in catalog.by_id.values():
            if not view.parent or view.refs or view.id in catalog.children or self.images.in_use(view.id):
                continue
            sizes = {chain: self.images.door.layer_size(layer)
                     for chain, layer in zip(view.resolved.chain_ids, view.resolved.layers)}
            try:
                records = self.images.remove(view.id)
            except (Conflict, NotFound):
                continue  # used or removed meanwhile
            deleted += [r["Deleted"] for r in records if r.get("Deleted", "").startswith("sha256:")]
            reclaimed += sum(sizes.get(r.get("Deleted", ""), 0) for r in records)
        return {"CachesDeleted": deleted or None, "SpaceReclaimed": reclaimed}


def _cancel_when(disconnected: threading.Event, cancelled: threading.Event) -> None:
    """Cancels the build once its client is gone; ends with the build."""
    while not cancelled.wait(0.2):
        if disconnected.is_set():
            cancelled.set()


def _run_host_config(options) -> dict:
    """dockerd's hostConfigFromOptions: what a RUN container gets of the request."""
    host_config = {key: value for key, value in (options.resources or {}).items() if key in RUN_HOST_CONFIG_KEYS}
    if options.network_mode and options.network_mode != "default":
        host_config["NetworkMode"] = options.network_mode
    if options.shm_size:
        host_config["ShmSize"] = options.shm_size
    if options.extra_hosts:
        host_config["ExtraHosts"] = list(options.extra_hosts)
    if options.cgroup_parent:
        host_config["CgroupParent"] = options.cgroup_parent
    return host_config
