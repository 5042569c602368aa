"""Content service, including the Write stream's STAT/WRITE/COMMIT protocol."""
from google.protobuf import empty_pb2

from .. import errors
from ..api.containerd.events import content_pb2 as events
from ..api.containerd.services import content_pb2 as pb
from ..content.store import ContentStore, Info
from ..convert import content_info_to_proto, status_to_proto, timestamp
from ..events.exchange import Exchange
from ..gc.scheduler import Scheduler
from .common import batched, namespace

_READ_CHUNK = 1 << 20


class ContentServicer:
    SERVICE = pb.DESCRIPTOR.services_by_name["Content"]

    def __init__(self, store: ContentStore, gc: Scheduler, exchange: Exchange):
        self._store, self._gc, self._exchange = store, gc, exchange

    def Info(self, request, context):
        return pb.InfoResponse(info=content_info_to_proto(self._store.info(namespace(context), request.digest)))

    def Update(self, request, context):
        info = Info(request.info.digest, 0, labels=dict(request.info.labels))
        updated = self._store.update(namespace(context), info, list(request.update_mask.paths))
        return pb.UpdateResponse(info=content_info_to_proto(updated))

    def List(self, request, context):
        infos = self._store.list(namespace(context), list(request.filters))
        for batch in batched(infos):
            yield pb.ListContentResponse(info=[content_info_to_proto(i) for i in batch])

    def Delete(self, request, context):
        ns = namespace(context)
        self._store.delete(ns, request.digest)
        self._exchange.publish(ns, "/content/delete", events.ContentDelete(digest=request.digest))
        self._gc.deleted()
        return empty_pb2.Empty()

    def Read(self, request, context):
        ns = namespace(context)
        info = self._store.info(ns, request.digest)
        offset = max(request.offset, 0)
        if offset > info.size:
            raise errors.OutOfRange(f"read past object length {info.size} bytes")
        size = request.size if 0 < request.size <= info.size - offset else info.size - offset
        with self._store.open(ns, request.digest) as blob:
            blob.seek(offset)
            while size > 0:
                data = blob.read(min(_READ_CHUNK, size))
                if not data:
                    break
                yield pb.ReadContentResponse(offset=offset, data=data)
                offset += len(data)
                size -= len(data)

    def Status(self, request, context):
        return pb.StatusResponse(status=status_to_proto(self._store.status(namespace(context), request.ref)))

    def ListStatuses(self, request, context):
        statuses = self._store.list_statuses(namespace(context), list(request.filters))
        return pb.ListStatusesResponse(statuses=[status_to_proto(s) for s in statuses])

    def Abort(self, request, context):
        self._store.abort(namespace(context), request.ref)
        return empty_pb2.Empty()

    def Write(self, request_iterator, context):
        """One ingest per stream: the first message names the ref, and the stream
        holds the ref's lock until it ends. Expected size and digest may come
        with any message; the latest ones are checked at COMMIT."""
        ns = namespace(context)
        requests = iter(request_iterator)
        req = next(requests, None)
        if req is None:
            return
        if not req.ref:
            raise errors.InvalidArgument("first message must have a reference")
        ref, total, expected = req.ref, req.total, req.expected
        writer = self._store.writer(ns, ref, total, expected)
        try:
            while req is not None:
                status = writer.status()
                resp = pb.WriteContentResponse(action=req.action, offset=status.offset)
                if req.expected:
                    expected = req.expected
                    try:
                        self._store.info(ns, expected)
                    except errors.NotFound:
                        pass
                    else:
                        writer.close()
                        self._store.abort(ns, ref)
                        raise errors.AlreadyExists(f"blob with expected digest {expected}")
                if req.total > 0:
                    total = req.total
                if req.action == pb.STAT:
                    resp.digest = writer.digest()
                    resp.total = total
                    resp.started_at.CopyFrom(timestamp(status.started_at))
                    resp.updated_at.CopyFrom(timestamp(status.updated_at))
                elif req.action in (pb.WRITE, pb.COMMIT):
                    if req.offset > 0 and req.offset != status.offset:
                        raise errors.OutOfRange(f"write @{req.offset} must occur at current offset {status.offset}")
                    if req.offset == 0 and status.offset > 0:
                        writer.truncate(0)
                        resp.offset = 0
                    if req.data:
                        writer.write(req.data)
                        resp.offset += len(req.data)
                    if req.action == pb.COMMIT:
                        writer.commit(total, expected, dict(req.labels))
                    resp.digest = writer.digest()
                yield resp
                req = next(requests, None)
        finally:
            writer.close()
