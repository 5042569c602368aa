"""Introspection service: the plugin table and the daemon's identity."""
import os

from google.rpc import status_pb2

from ..api.containerd.services import introspection_pb2 as pb
from ..api.containerd.types import platform_pb2
from ..filters import Filter, adaptor
from ..plugins import Plugin

_UNKNOWN = 2  # google.rpc.Code.UNKNOWN


def _to_proto(p: Plugin) -> pb.Plugin:
    return pb.Plugin(
        type=p.type, id=p.id, requires=p.requires, exports=p.exports, capabilities=p.capabilities,
        platforms=[platform_pb2.Platform(os=x.os, architecture=x.architecture, variant=x.variant) for x in p.platforms],
        init_err=status_pb2.Status(code=_UNKNOWN, message=p.init_error) if p.init_error else None)


class IntrospectionServicer:
    SERVICE = pb.DESCRIPTOR.services_by_name["Introspection"]

    def __init__(self, plugins: list[Plugin], uuid: str):
        self._plugins = plugins
        self._uuid = uuid

    def Plugins(self, request, context):
        selector = Filter(list(request.filters))
        return pb.PluginsResponse(plugins=[
            _to_proto(p) for p in self._plugins
            if selector.match(adaptor({"type": p.type, "id": p.id, "capabilities": ",".join(p.capabilities)}))])

    def Server(self, request, context):
        pidns = os.stat("/proc/self/ns/pid").st_ino
        return pb.ServerResponse(uuid=self._uuid, pid=os.getpid(), pidns=pidns)
