"""Images service."""
from google.protobuf import empty_pb2

from .. import errors
from ..api.containerd.services import images_pb2 as pb
from ..convert import image_from_proto, image_to_proto
from ..gc.scheduler import Scheduler
from ..metadata.store import ImageStore
from .common import namespace


class ImagesServicer:
    SERVICE = pb.DESCRIPTOR.services_by_name["Images"]

    def __init__(self, store: ImageStore, gc: Scheduler):
        self._store, self._gc = store, gc

    def Get(self, request, context):
        return pb.GetImageResponse(image=image_to_proto(self._store.get(namespace(context), request.name)))

    def List(self, request, context):
        images = self._store.list(namespace(context), list(request.filters))
        return pb.ListImagesResponse(images=[image_to_proto(i) for i in images])

    def Create(self, request, context):
        if not request.image.name:
            raise errors.InvalidArgument("Image.Name required")
        created = self._store.create(namespace(context), image_from_proto(request.image))
        return pb.CreateImageResponse(image=image_to_proto(created))

    def Update(self, request, context):
        updated = self._store.update(namespace(context), image_from_proto(request.image),
                                     list(request.update_mask.paths))
        return pb.UpdateImageResponse(image=image_to_proto(updated))

    def Delete(self, request, context):
        self._store.delete(namespace(context), request.name)
        self._gc.deleted(request.sync)
        return empty_pb2.Empty()
