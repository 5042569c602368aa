"""A new image on top of another, as dockerd's NewChildImage makes it: the
base's layers and at most one new layer, a config with the new Config and
ContainerConfig, a history entry, stored as blobs under a manifest, named in
containerd's image store and unpacked so a container can run from it.

`docker commit` and each step of a build write their images here. An image
a build step made records its parent image ID as a label on its names
(moby's containerd image store does the same), which the build cache and
`docker images`/`inspect` read.
"""
import datetime
from dataclasses import dataclass

from containerd_py.transfer.manifests import chain_ids, gc_labels, to_json
from containerd_py.types import Descriptor

from engine.containerd.images import ContainerdImages, Resolved
from engine.containerd.tasks import SNAPSHOTTER
from engine.containerd.layers import ContainerdLayers
from engine.services.images import DANGLING, PARENT_LABEL, go_config
from engine.services.system import VERSION

EMPTY_LAYER_DIFF_ID = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"  # a tar of nothing
# A new layer is a plain tar, as dockerd's layer store keeps it: gzip costs ~2.4 s per 100 MB of
# incompressible files on these machines, on every RUN, COPY and commit. Registries and pulls
# take plain layers as they are.
DOCKER_TYPES = ("application/vnd.docker.distribution.manifest.v2+json",
                "application/vnd.docker.container.image.v1+json",
                "application/vnd.docker.image.rootfs.diff.tar")
SNAPSHOT_GC_LABEL = f"containerd.io/gc.ref.snapshot.{SNAPSHOTTER}"  # keeps the image's top snapshot
OCI_TYPES = ("application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.config.v1+json",
             "application/vnd.oci.image.layer.v1.tar")


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def media_types(base: Resolved | None) -> tuple[str, str, str]:
    """A child keeps its base's manifest flavour (OCI or Docker; Docker's over scratch)."""
    return OCI_TYPES if base and any(".oci." in layer.media_type for layer in base.layers) else DOCKER_TYPES


@dataclass
class Child:
    """What the child image says of itself beyond its base's."""
    config: dict  # the API's Config (container.Config) the image runs with
    container_config: dict  # the config of the container (or build step) it came from
    created_by: str  # its history line
    container: str = ""  # the container it was committed from
    author: str = ""
    comment: str = ""


class ImageWriter:
    def __init__(self, layers: ContainerdLayers, images: ContainerdImages):
        self.layers, self.images = layers, images

    def write(self, base: Resolved | None, child: Child, layer: Descriptor | None, diff_id: str,
              name: str | None = None, parent_id: str = "", unpacked: bool = False) -> str:
        """The child image of ``base`` (None: scratch) with ``layer`` on top
        (skipped when its diff is empty), named ``name`` or dangling; its ID.
        ``unpacked``: the caller knows the top layer's snapshot is there (no new
        layer, or one it committed), so nothing is unpacked. Call it under the
        layers' lease, which keeps the blobs until the name does."""
        base_config = base.config if base else {}
        types = media_types(base)
        created = now()
        empty = layer is None or diff_id == EMPTY_LAYER_DIFF_ID
        entry = {"created": created, "created_by": child.created_by, "author": child.author or None,
                 "comment": child.comment or None, "empty_layer": empty or None}
        image_config = {
            "architecture": base_config.get("architecture", "amd64"),
            "author": child.author or None,
            "comment": child.comment or None, "config": go_config(child.config), "container": child.container or None,
            "container_config": go_config(child.container_config), "created": created, "docker_version": VERSION,
            "history": list(base_config.get("history") or []) + [{k: v for k, v in entry.items() if v is not None}],
            "os": base_config.get("os", "linux"),
            "rootfs": {"type": "layers",
                       "diff_ids": list((base_config.get("rootfs") or {}).get("diff_ids") or [])
                       + ([] if empty else [diff_id])}}
        image_config = {k: v for k, v in image_config.items() if v is not None}
        layers = list(base.layers if base else ()) + ([] if empty else [layer])
        return self.store(image_config, layers, types, name, parent_id, unpacked)

    def store(self, image_config: dict, layers: list[Descriptor], types: tuple[str, str, str], name: str | None,
              parent_id: str, unpacked: bool) -> str:
        """An image of this config over these layer blobs, named (or dangling) and unpacked unless it is."""
        chain = chain_ids(image_config["rootfs"]["diff_ids"])
        config_desc = self.layers.store_json(image_config, types[1],
                                             {SNAPSHOT_GC_LABEL: chain[-1]} if unpacked and chain else {})
        manifest = {"schemaVersion": 2, "mediaType": types[0], "config": to_json(config_desc),
                    "layers": [to_json(desc) for desc in layers]}
        manifest_desc = self.layers.store_json(manifest, types[0],
                                               gc_labels(Descriptor(types[0], "", 0), [config_desc] + layers))
        if not unpacked:
            self.layers.unpack(manifest_desc)
        self.images.put(name or DANGLING + manifest_desc.digest, manifest_desc,
                        {PARENT_LABEL: parent_id} if parent_id else None)
        return config_desc.digest
