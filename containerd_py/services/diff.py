"""Diff service: Apply (a layer onto mounts) and Diff (two mounted trees into a layer), by the walking differ."""
from ..api.containerd.services import diff_pb2 as pb
from ..convert import descriptor_from_proto, descriptor_to_proto, mount_from_proto
from ..diff.walking import WalkingDiffer
from .common import namespace


class DiffServicer:
    SERVICE = pb.DESCRIPTOR.services_by_name["Diff"]

    def __init__(self, differ: WalkingDiffer):
        self._differ = differ

    def Apply(self, request, context):
        applied = self._differ.apply(namespace(context), descriptor_from_proto(request.diff),
                                     [mount_from_proto(m) for m in request.mounts])
        return pb.ApplyResponse(applied=descriptor_to_proto(applied))

    def Diff(self, request, context):
        diff = self._differ.compare(namespace(context), [mount_from_proto(m) for m in request.left],
                                    [mount_from_proto(m) for m in request.right], request.media_type, request.ref,
                                    dict(request.labels))
        return pb.DiffResponse(diff=descriptor_to_proto(diff))
