"""Images service."""
from google.protobuf import empty_pb2

from .. import errors
from ..api.containerd.events import image_pb2 as events
from ..api.containerd.services import images_pb2 as pb
from ..events.exchange import Exchange
from ..gc.scheduler import Scheduler
from ..convert import image_from_proto, image_to_proto
from ..metadata.store import ImageStore
from .common import namespace


class ImagesServicer:
    SERVICE = pb.DESCRIPTOR.services_by_name["Images"]

    def __init__(self, store: ImageStore, gc: Scheduler, exchange: Exchange):
        self._store, self._gc, self._exchange = store, gc, exchange

    def Get(self, request, context):
        return pb.GetImageResponse(image=image_to_proto(self._store.get(namespace(context), request.name)))

    def List(self, request, context):
        images = self._store.list(namespace(context), list(request.filters))
        return pb.ListImagesResponse(images=[image_to_proto(i) for i in images])

    def Create(self, request, context):
        if not request.image.name:
            raise errors.InvalidArgument("Image.Name required")
        ns = namespace(context)
        created = self._store.create(ns, image_from_proto(request.image))
        self._exchange.publish(ns, "/images/create", events.ImageCreate(name=created.name, labels=created.labels))
        return pb.CreateImageResponse(image=image_to_proto(created))

    def Update(self, request, context):
        ns = namespace(context)
        updated = self._store.update(ns, image_from_proto(request.image), list(request.update_mask.paths))
        self._exchange.publish(ns, "/images/update", events.ImageUpdate(name=updated.name, labels=updated.labels))
        return pb.UpdateImageResponse(image=image_to_proto(updated))

    def Delete(self, request, context):
        ns = namespace(context)
        self._store.delete(ns, request.name)
        self._exchange.publish(ns, "/images/delete", events.ImageDelete(name=request.name))
        self._gc.deleted(request.sync)
        return empty_pb2.Empty()
