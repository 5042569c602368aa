"""Diff service: Apply only; computing diffs (Diff) is not implemented yet."""
from .. import errors
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
        raise errors.Unimplemented("computing a diff between mounts")
