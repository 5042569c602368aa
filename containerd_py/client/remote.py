"""The store interfaces implemented over a daemon's gRPC API (ours or containerd's),
so the transfer code runs in a client just as it runs in the daemon."""
import io
import os
import queue
from collections.abc import Iterator
from contextlib import contextmanager
from functools import wraps

import grpc
from google.protobuf import empty_pb2, field_mask_pb2

from .. import errors
from ..api.containerd.services import (content_pb2, content_pb2_grpc, diff_pb2, diff_pb2_grpc, images_pb2,
                                       images_pb2_grpc, leases_pb2, leases_pb2_grpc, namespaces_pb2,
                                       namespaces_pb2_grpc, snapshots_pb2, snapshots_pb2_grpc, version_pb2_grpc)
from ..content.store import ContentStore, Status, Writer
from ..convert import (LEASE_KEY, NAMESPACE_KEY, content_info_from_proto, descriptor_from_proto, descriptor_to_proto,
                       image_from_proto, mount_from_proto, mount_to_proto, nanoseconds, snapshot_info_from_proto,
                       status_from_proto)
from ..diff.applier import Applier
from ..metadata.store import Image, ImageStore, Namespace
from ..snapshots.snapshotter import Snapshotter, Usage
from ..transfer.backend import Backend, expiry_label


_CODES = {
    grpc.StatusCode.NOT_FOUND: errors.NotFound, grpc.StatusCode.ALREADY_EXISTS: errors.AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: errors.FailedPrecondition,
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidArgument, grpc.StatusCode.UNAVAILABLE: errors.Unavailable,
    grpc.StatusCode.OUT_OF_RANGE: errors.OutOfRange, grpc.StatusCode.UNIMPLEMENTED: errors.Unimplemented,
    grpc.StatusCode.UNAUTHENTICATED: errors.Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: errors.PermissionDenied,
}


class DaemonError(errors.Error):
    """A status the daemon answered that has no domain error class."""

    text = "daemon error"


def domain_error(e: grpc.RpcError) -> errors.Error:
    """The domain error a status stands for, its message as the daemon wrote it."""
    cls = _CODES.get(e.code(), DaemonError)
    details = e.details() or ""
    suffix = f": {cls.text}"
    return cls(details[:-len(suffix)] if details.endswith(suffix) else details)


def _mapped(fn):
    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except grpc.RpcError as e:
            raise domain_error(e) from None
    return wrapper


class Connection:
    """A channel to the daemon, and the metadata every call carries."""

    def __init__(self, address: str, lease: str | None = None):
        self.address = address
        self.channel = grpc.insecure_channel(f"unix:{address}", options=[("grpc.max_receive_message_length", 16 << 20),
                                                                          ("grpc.max_send_message_length", 16 << 20)])
        self.lease = lease

    def md(self, ns: str) -> list[tuple[str, str]]:
        return [(NAMESPACE_KEY, ns)] + ([(LEASE_KEY, self.lease)] if self.lease else [])

    def close(self) -> None:
        self.channel.close()


class RemoteContentStore(ContentStore):
    def __init__(self, conn: Connection):
        self._conn = conn
        self._stub = content_pb2_grpc.ContentStub(conn.channel)

    @_mapped
    def info(self, ns, digest):
        return content_info_from_proto(self._stub.Info(content_pb2.InfoRequest(digest=digest), metadata=self._conn.md(ns)).info)

    @_mapped
    def update(self, ns, info, paths):
        request = content_pb2.UpdateRequest(info=content_pb2.Info(digest=info.digest, labels=info.labels),
                                            update_mask=field_mask_pb2.FieldMask(paths=paths))
        return content_info_from_proto(self._stub.Update(request, metadata=self._conn.md(ns)).info)

    @_mapped
    def list(self, ns, filters):
        responses = self._stub.List(content_pb2.ListContentRequest(filters=filters), metadata=self._conn.md(ns))
        return [content_info_from_proto(i) for r in responses for i in r.info]

    @_mapped
    def delete(self, ns, digest):
        self._stub.Delete(content_pb2.DeleteContentRequest(digest=digest), metadata=self._conn.md(ns))

    def open(self, ns, digest):
        return io.BufferedReader(_RemoteBlob(self._stub, self._conn.md(ns), digest), 1 << 20)

    @_mapped
    def writer(self, ns, ref, total=0, expected=""):
        return _RemoteWriter(self._stub, self._conn.md(ns), ref, total, expected)

    @_mapped
    def status(self, ns, ref):
        return status_from_proto(self._stub.Status(content_pb2.StatusRequest(ref=ref), metadata=self._conn.md(ns)).status)

    @_mapped
    def list_statuses(self, ns, filters):
        response = self._stub.ListStatuses(content_pb2.ListStatusesRequest(filters=filters), metadata=self._conn.md(ns))
        return [status_from_proto(s) for s in response.statuses]

    @_mapped
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
            except grpc.RpcError as e:
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
        self._requests: queue.Queue = queue.Queue()
        self._responses = stub.Write(iter(self._requests.get, None), metadata=md)
        self._ref = ref
        self._last = self._send(content_pb2.WriteContentRequest(action=content_pb2.STAT, ref=ref, total=total,
                                                                expected=expected))
        self._total = self._last.total

    def _send(self, request):
        self._requests.put(request)
        try:
            return next(self._responses)
        except grpc.RpcError as e:
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
        self._requests.put(None)
        try:
            for _ in self._responses:
                pass
        except grpc.RpcError:
            pass  # the stream had already failed; that error was raised to the caller


class RemoteImageStore(ImageStore):
    def __init__(self, conn: Connection):
        self._conn = conn
        self._stub = images_pb2_grpc.ImagesStub(conn.channel)

    @staticmethod
    def _proto(i: Image):
        return images_pb2.Image(name=i.name, labels=i.labels, target=descriptor_to_proto(i.target))

    @_mapped
    def get(self, ns, name):
        return image_from_proto(self._stub.Get(images_pb2.GetImageRequest(name=name), metadata=self._conn.md(ns)).image)

    @_mapped
    def list(self, ns, filters):
        response = self._stub.List(images_pb2.ListImagesRequest(filters=filters), metadata=self._conn.md(ns))
        return [image_from_proto(i) for i in response.images]

    @_mapped
    def create(self, ns, image):
        response = self._stub.Create(images_pb2.CreateImageRequest(image=self._proto(image)),
                                     metadata=self._conn.md(ns))
        return image_from_proto(response.image)

    @_mapped
    def update(self, ns, image, paths):
        request = images_pb2.UpdateImageRequest(image=self._proto(image),
                                                update_mask=field_mask_pb2.FieldMask(paths=paths) if paths else None)
        return image_from_proto(self._stub.Update(request, metadata=self._conn.md(ns)).image)

    @_mapped
    def delete(self, ns, name, sync: bool = False):
        self._stub.Delete(images_pb2.DeleteImageRequest(name=name, sync=sync), metadata=self._conn.md(ns))


class RemoteSnapshotter(Snapshotter):
    def __init__(self, conn: Connection, name: str):
        self._conn, self.name, self.root = conn, name, ""
        self._stub = snapshots_pb2_grpc.SnapshotsStub(conn.channel)

    @_mapped
    def stat(self, ns, key):
        request = snapshots_pb2.StatSnapshotRequest(snapshotter=self.name, key=key)
        return snapshot_info_from_proto(self._stub.Stat(request, metadata=self._conn.md(ns)).info)

    @_mapped
    def update(self, ns, info, paths):
        request = snapshots_pb2.UpdateSnapshotRequest(
            snapshotter=self.name, info=snapshots_pb2.Info(name=info.name, labels=info.labels),
            update_mask=field_mask_pb2.FieldMask(paths=paths))
        return snapshot_info_from_proto(self._stub.Update(request, metadata=self._conn.md(ns)).info)

    @_mapped
    def usage(self, ns, key):
        r = self._stub.Usage(snapshots_pb2.UsageRequest(snapshotter=self.name, key=key), metadata=self._conn.md(ns))
        return Usage(r.size, r.inodes)

    @_mapped
    def mounts(self, ns, key):
        r = self._stub.Mounts(snapshots_pb2.MountsRequest(snapshotter=self.name, key=key), metadata=self._conn.md(ns))
        return [mount_from_proto(m) for m in r.mounts]

    @_mapped
    def prepare(self, ns, key, parent="", labels=None):
        request = snapshots_pb2.PrepareSnapshotRequest(snapshotter=self.name, key=key, parent=parent, labels=labels)
        return [mount_from_proto(m) for m in self._stub.Prepare(request, metadata=self._conn.md(ns)).mounts]

    @_mapped
    def view(self, ns, key, parent="", labels=None):
        request = snapshots_pb2.ViewSnapshotRequest(snapshotter=self.name, key=key, parent=parent, labels=labels)
        return [mount_from_proto(m) for m in self._stub.View(request, metadata=self._conn.md(ns)).mounts]

    @_mapped
    def commit(self, ns, name, key, labels=None):
        request = snapshots_pb2.CommitSnapshotRequest(snapshotter=self.name, name=name, key=key, labels=labels)
        self._stub.Commit(request, metadata=self._conn.md(ns))

    @_mapped
    def remove(self, ns, key):
        self._stub.Remove(snapshots_pb2.RemoveSnapshotRequest(snapshotter=self.name, key=key),
                          metadata=self._conn.md(ns))

    @_mapped
    def walk(self, ns, filters=()):
        responses = self._stub.List(snapshots_pb2.ListSnapshotsRequest(snapshotter=self.name, filters=list(filters)),
                                    metadata=self._conn.md(ns))
        return [snapshot_info_from_proto(i) for r in responses for i in r.info]

    @_mapped
    def cleanup(self):
        self._stub.Cleanup(snapshots_pb2.CleanupRequest(snapshotter=self.name))

    def close(self):
        pass


class RemoteApplier(Applier):
    def __init__(self, conn: Connection):
        self._conn = conn
        self._stub = diff_pb2_grpc.DiffStub(conn.channel)

    @_mapped
    def apply(self, ns, desc, mounts):
        request = diff_pb2.ApplyRequest(diff=descriptor_to_proto(desc), mounts=[mount_to_proto(m) for m in mounts])
        return descriptor_from_proto(self._stub.Apply(request, metadata=self._conn.md(ns)).applied)


class RemoteNamespaces:
    """The namespace calls the command line makes."""

    def __init__(self, conn: Connection):
        self._stub = namespaces_pb2_grpc.NamespacesStub(conn.channel)

    @_mapped
    def list(self) -> list[Namespace]:
        return [Namespace(n.name, dict(n.labels))
                for n in self._stub.List(namespaces_pb2.ListNamespacesRequest()).namespaces]

    @_mapped
    def create(self, name: str, labels: dict[str, str]) -> None:
        self._stub.Create(namespaces_pb2.CreateNamespaceRequest(namespace=namespaces_pb2.Namespace(name=name,
                                                                                                  labels=labels)))

    @_mapped
    def delete(self, name: str) -> None:
        self._stub.Delete(namespaces_pb2.DeleteNamespaceRequest(name=name))


class RemoteBackend(Backend):
    """A transfer Backend over one connection; leased() makes its calls carry a lease."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.content = RemoteContentStore(conn)
        self.images = RemoteImageStore(conn)
        self.applier = RemoteApplier(conn)
        self._leases = leases_pb2_grpc.LeasesStub(conn.channel)

    def snapshotter(self, name):
        return RemoteSnapshotter(self.conn, name)

    @contextmanager
    def leased(self, ns: str) -> Iterator[str]:
        lease_id = f"containerd-py-ctl-{os.urandom(8).hex()}"
        md = [(NAMESPACE_KEY, ns)]
        try:
            self._leases.Create(leases_pb2.CreateRequest(id=lease_id, labels=expiry_label()), metadata=md)
        except grpc.RpcError as e:
            raise domain_error(e) from None
        self.conn.lease = lease_id
        failed = True
        try:
            yield lease_id
            failed = False
        finally:
            self.conn.lease = None
            try:  # a failure's leftovers are collected before it is reported
                self._leases.Delete(leases_pb2.DeleteRequest(id=lease_id, sync=failed), metadata=md)
            except grpc.RpcError as e:
                raise domain_error(e) from None


def ping(conn: Connection, timeout: float) -> None:
    """Fails unless the daemon answers within timeout seconds."""
    try:
        version_pb2_grpc.VersionStub(conn.channel).Version(empty_pb2.Empty(), timeout=timeout)
    except grpc.RpcError as e:
        raise errors.Unavailable(f"connecting to {conn.address}: {e.details()}") from None
