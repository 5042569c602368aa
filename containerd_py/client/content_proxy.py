"""The content service as a ContentStore: blobs read through one Read stream,
ingests written through one Write stream (STAT, WRITE..., COMMIT)."""
import io

from google.protobuf import field_mask_pb2

from .. import errors
from ..api.containerd.services import content_pb2
from ..content.store import ContentStore, Status, Writer
from ..convert import content_info_from_proto, nanoseconds, status_from_proto
from ..rpc.client_channel import RpcError
from .connection import Connection, domain_error, mapped


class ContentProxy(ContentStore):
    """The content service as a ContentStore."""

    def __init__(self, conn: Connection):
        self._conn = conn
        self._stub = conn.stub(content_pb2, "Content")

    @mapped
    def info(self, ns, digest):
        response = self._stub.Info(content_pb2.InfoRequest(digest=digest), metadata=self._conn.md(ns))
        return content_info_from_proto(response.info)

    @mapped
    def update(self, ns, info, paths):
        request = content_pb2.UpdateRequest(info=content_pb2.Info(digest=info.digest, labels=info.labels),
                                            update_mask=field_mask_pb2.FieldMask(paths=paths))
        return content_info_from_proto(self._stub.Update(request, metadata=self._conn.md(ns)).info)

    @mapped
    def list(self, ns, filters):
        responses = self._stub.List(content_pb2.ListContentRequest(filters=filters), metadata=self._conn.md(ns))
        return [content_info_from_proto(i) for r in responses for i in r.info]

    @mapped
    def delete(self, ns, digest):
        self._stub.Delete(content_pb2.DeleteContentRequest(digest=digest), metadata=self._conn.md(ns))

    def open(self, ns, digest):
        return io.BufferedReader(_RemoteBlob(self._stub, self._conn.md(ns), digest), 1 << 20)

    @mapped
    def writer(self, ns, ref, total=0, expected=""):
        return _RemoteWriter(self._stub, self._conn.md(ns), ref, total, expected)

    @mapped
    def status(self, ns, ref):
        response = self._stub.Status(content_pb2.StatusRequest(ref=ref), metadata=self._conn.md(ns))
        return status_from_proto(response.status)

    @mapped
    def list_statuses(self, ns, filters):
        response = self._stub.ListStatuses(content_pb2.ListStatusesRequest(filters=filters), metadata=self._conn.md(ns))
        return [status_from_proto(s) for s in response.statuses]

    @mapped
    def abort(self, ns, ref):
        self._stub.Abort(content_pb2.AbortRequest(ref=ref), metadata=self._conn.md(ns))


class _RemoteBlob(io.RawIOBase):
    """A blob read sequentially through one Read stream."""

    def __init__(self, stub, md, digest: str):
        self._stream = stub.Read(content_pb2.ReadContentRequest(digest=digest), metadata=md)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            try:
                self._pending = next(self._stream).data
            except StopIteration:
                return 0
            except RpcError as e:
                raise domain_error(e) from None
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        self._stream.cancel()
        super().close()


class _RemoteWriter(Writer):
    """One Write stream: each call sends a request and waits for its answer."""

    def __init__(self, stub, md, ref: str, total: int, expected: str):
        self._call = stub.Write(metadata=md)
        self._ref = ref
        self._last = self._send(content_pb2.WriteContentRequest(action=content_pb2.STAT, ref=ref, total=total,
                                                                expected=expected))
        self._total = self._last.total

    def _send(self, request):
        self._call.send(request)
        try:
            return next(self._call)
        except RpcError as e:
            raise domain_error(e) from None

    def status(self):
        r = self._last
        return Status(self._ref, r.offset, self._total, "", nanoseconds(r.started_at), nanoseconds(r.updated_at))

    def digest(self):
        return self._last.digest

    def write(self, data):
        self._last = self._send(content_pb2.WriteContentRequest(action=content_pb2.WRITE, offset=self._last.offset,
                                                                 data=data))

    def truncate(self, size):
        if size != 0:
            raise errors.Unimplemented("truncating a remote ingest to a size other than 0")
        self._last = self._send(content_pb2.WriteContentRequest(action=content_pb2.WRITE, offset=0))

    def commit(self, size, expected, labels):
        self._last = self._send(content_pb2.WriteContentRequest(action=content_pb2.COMMIT, offset=self._last.offset,
                                                                total=size, expected=expected, labels=labels))
        return self._last.digest

    def close(self):
        """Ends the request stream and waits for the daemon to end its side (and release the ref)."""
        self._call.done_sending()
        try:
            for _ in self._call:
                pass
        except RpcError:
            pass  # the stream had already failed; that error was raised to the caller
