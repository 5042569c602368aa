"""Version service."""
from google.protobuf import empty_pb2

from ..api.containerd.services import version_pb2 as pb


class VersionServicer:
    SERVICE = pb.DESCRIPTOR.services_by_name["Version"]

    def __init__(self, version: str, revision: str):
        self._response = pb.VersionResponse(version=version, revision=revision)

    def Version(self, request: empty_pb2.Empty, context):
        return self._response
