"""Leases service. What a lease holds survives garbage collection until the lease ends."""
import base64
import os
import time

from google.protobuf import empty_pb2

from ..api.containerd.services import leases_pb2 as pb
from ..convert import lease_to_proto
from ..gc.collector import Collector
from ..gc.scheduler import Scheduler
from ..metadata.store import LeaseStore, Resource
from .common import namespace


def random_id() -> str:
    """containerd's leases.WithRandomID: the clock's nanoseconds within its second, then
    three random bytes in URL-safe base64."""
    return f"{time.time_ns() % 1_000_000_000}-{base64.urlsafe_b64encode(os.urandom(3)).decode()}"


class LeasesServicer:
    SERVICE = pb.DESCRIPTOR.services_by_name["Leases"]

    def __init__(self, store: LeaseStore, collector: Collector, gc: Scheduler):
        self._store, self._collector, self._gc = store, collector, gc

    def Create(self, request, context):
        lease = self._store.create(namespace(context), request.id or random_id(), dict(request.labels))
        return pb.CreateResponse(lease=lease_to_proto(lease))

    def Delete(self, request, context):
        self._collector.end_lease(namespace(context), request.id)
        self._gc.deleted(request.sync)
        return empty_pb2.Empty()

    def List(self, request, context):
        leases = self._store.list(namespace(context), list(request.filters))
        return pb.ListResponse(leases=[lease_to_proto(lease) for lease in leases])

    def AddResource(self, request, context):
        resource = Resource(request.resource.id, request.resource.type)
        self._store.add_resource(namespace(context), request.id, resource)
        return empty_pb2.Empty()

    def DeleteResource(self, request, context):
        resource = Resource(request.resource.id, request.resource.type)
        self._store.delete_resource(namespace(context), request.id, resource)
        return empty_pb2.Empty()

    def ListResources(self, request, context):
        resources = self._store.list_resources(namespace(context), request.id)
        return pb.ListResourcesResponse(resources=[pb.Resource(id=r.id, type=r.type) for r in resources])
