"""``docker commit``: a container's changes as a new image.

The changes become a layer through containerd's diff service (the image's
tree below the container compared with the container's own); the new image
is its base image's layers and that one, with a config made as dockerd
makes it — the container's Config merged under the ``--change``
instructions, a history entry, the new diff ID — under a manifest in the
content store, named in containerd's image store and unpacked so a
container can run from it at once. A running container is paused meanwhile
unless asked not to be, as dockerd does.
"""
from engine.containerd.images import ContainerdImages
from engine.containerd.layers import ContainerdLayers
from engine.errors import Conflict, InvalidParameter, NotFound
from engine.reference import parse_normalized
from engine.services.config_merge import merge
from engine.services.containers import ContainerService
from engine.services.image_changes import apply_changes
from engine.services.image_writer import Child, ImageWriter, media_types
from engine.services.images import Catalog


class CommitService:
    def __init__(self, containers: ContainerService, layers: ContainerdLayers, images: ContainerdImages,
                 publish_image=lambda action, image_id, name: None):
        """``publish_image(action, image_id, name)`` reports the new name's "tag" event."""
        self.containers, self.layers, self.images, self.publish_image = containers, layers, images, publish_image
        self.writer = ImageWriter(layers, images)

    def commit(self, ref: str, repo: str = "", tag: str = "", comment: str = "", author: str = "",
               pause: bool = True, changes: list[str] = (), config: dict | None = None) -> str:
        """``POST /commit``; the new image's ID."""
        name = self._name(repo, tag)
        record = self.containers.store.get(ref)
        if record.state.removal_in_progress or record.state.dead:
            raise Conflict(f"You cannot commit container {record.id} which is being removed")
        # the request's config, else the container's own (what the CLI leaves it to), under the changes
        new_config = merge(apply_changes(record.config if config is None else config, list(changes)), record.config)
        base = Catalog(self.images).by_id.get(record.image)
        if base is None:
            raise NotFound(f"No such image: {record.image}")
        paused_here = pause and record.state.running and not record.state.paused
        with self.layers.leased():  # the new blobs and snapshot stay until the image names them
            if paused_here:
                self.containers.pause(record.id)
            try:  # paused until the commit is told, as dockerd's deferred unpause
                layer, diff_id = self.layers.diff(record.id, media_types(base.resolved)[2])
                child = Child(new_config, record.config, " ".join(record.config.get("Cmd") or []), record.id,
                              author, comment)
                image_id = self.writer.write(base.resolved, child, layer, diff_id, name)
                image_ref = parse_normalized(name).familiar() if name else ""
                if image_ref:
                    self.publish_image("tag", image_id, image_ref)  # before the commit's, as dockerd's
                self.containers.publish(record, "commit", {"comment": comment, "imageID": image_id,
                                                           "imageRef": image_ref})
            finally:
                if paused_here:
                    self.containers.unpause(record.id)
        return image_id

    @staticmethod
    def _name(repo: str, tag: str) -> str | None:
        """The image's name (docker.io/library/x:latest) or None for a dangling one; dockerd's 400s."""
        if not repo:
            if tag:
                raise InvalidParameter("invalid reference format: repository name must have at least one component")
            return None
        named = parse_normalized(repo)
        if named.digest or named.tag and tag:
            raise InvalidParameter("invalid reference format")
        return str(named.with_tag(tag) if tag else named.tag_name_only())
