"""The Content service over gRPC: the Write protocol, reads, labels, namespaces."""
import hashlib
import os

import grpc
import pytest
from google.protobuf import field_mask_pb2

from containerd_py.api.containerd.services import content_pb2 as pb

pytestmark = pytest.mark.root


def dgst(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write(client, ns, reqs):
    """Runs one Write stream; returns its responses."""
    return list(client.content.Write(iter(reqs), metadata=client.md(ns)))


def put(client, ns, data: bytes, ref="ref", labels=None, expected=True):
    return write(client, ns, [pb.WriteContentRequest(action=pb.COMMIT, ref=ref, data=data, total=len(data),
                                                     expected=dgst(data) if expected else "", labels=labels)])


def code_of(call, *args, **kwargs):
    with pytest.raises(grpc.RpcError) as e:
        result = call(*args, **kwargs)
        if hasattr(result, "__iter__") and not isinstance(result, (bytes, str)):
            list(result)
    return e.value.code(), e.value.details()


def read(client, ns, digest, offset=0, size=0) -> bytes:
    return b"".join(r.data for r in client.content.Read(pb.ReadContentRequest(digest=digest, offset=offset,
                                                                              size=size), metadata=client.md(ns)))


def blob_path(daemon, digest):
    return os.path.join(daemon.workdir, "root", "io.containerd.content.v1.content", "blobs", "sha256",
                        digest.split(":")[1])


def test_single_message_commit(client, ns):
    data = b"hello world"
    (resp,) = put(client, ns, data, labels={"a": "b"})
    assert (resp.action, resp.offset, resp.digest) == (pb.COMMIT, len(data), dgst(data))
    info = client.content.Info(pb.InfoRequest(digest=dgst(data)), metadata=client.md(ns)).info
    assert (info.size, dict(info.labels)) == (len(data), {"a": "b"})
    assert read(client, ns, dgst(data)) == data


def test_stat_write_commit_in_steps(client, ns):
    data = os.urandom(3 * 1024 * 1024 + 17)
    chunks = [data[i:i + (1 << 20)] for i in range(0, len(data), 1 << 20)]
    reqs = [pb.WriteContentRequest(action=pb.STAT, ref="steps", total=len(data), expected=dgst(data))]
    offset = 0
    for c in chunks:
        reqs.append(pb.WriteContentRequest(action=pb.WRITE, offset=offset, data=c))
        offset += len(c)
    reqs.append(pb.WriteContentRequest(action=pb.COMMIT, offset=offset, total=len(data), expected=dgst(data)))
    resps = write(client, ns, reqs)
    assert [r.action for r in resps] == [pb.STAT] + [pb.WRITE] * len(chunks) + [pb.COMMIT]
    assert resps[0].total == len(data) and resps[0].offset == 0 and resps[0].started_at.seconds > 0
    assert [r.offset for r in resps[1:-1]] == [min((i + 1) << 20, len(data)) for i in range(len(chunks))]
    assert resps[-1].digest == dgst(data)
    assert read(client, ns, dgst(data), offset=1000, size=5000) == data[1000:6000]
    assert read(client, ns, dgst(data), offset=len(data) - 10, size=100) == data[-10:]


def test_resume_after_a_broken_stream(client, ns, daemon):
    data = b"0123456789" * 1000
    write(client, ns, [pb.WriteContentRequest(action=pb.WRITE, ref="resume", total=len(data), data=data[:4000])])
    status = client.content.Status(pb.StatusRequest(ref="resume"), metadata=client.md(ns)).status
    assert (status.ref, status.offset, status.total) == ("resume", 4000, len(data))
    assert not os.path.exists(blob_path(daemon, dgst(data)))
    (stat,) = write(client, ns, [pb.WriteContentRequest(action=pb.STAT, ref="resume")])
    assert stat.offset == 4000 and stat.digest == dgst(data[:4000])
    resps = write(client, ns, [pb.WriteContentRequest(action=pb.STAT, ref="resume"),
                               pb.WriteContentRequest(action=pb.COMMIT, ref="resume", offset=4000, data=data[4000:],
                                                      expected=dgst(data))])
    assert resps[-1].digest == dgst(data)
    assert read(client, ns, dgst(data)) == data
    assert os.stat(blob_path(daemon, dgst(data))).st_mode & 0o777 == 0o444
    assert client.content.ListStatuses(pb.ListStatusesRequest(), metadata=client.md(ns)).statuses == []


def test_write_at_offset_zero_restarts(client, ns):
    write(client, ns, [pb.WriteContentRequest(action=pb.WRITE, ref="r", data=b"garbage")])
    (resp,) = write(client, ns, [pb.WriteContentRequest(action=pb.COMMIT, ref="r", offset=0, data=b"good")])
    assert resp.digest == dgst(b"good")


def test_write_at_a_wrong_offset_is_out_of_range(client, ns):
    code, details = code_of(write, client, ns, [pb.WriteContentRequest(action=pb.WRITE, ref="r", data=b"abc"),
                                                pb.WriteContentRequest(action=pb.WRITE, offset=10, data=b"x")])
    assert code == grpc.StatusCode.OUT_OF_RANGE and "current offset 3" in details


def test_commit_checks_size_and_digest(client, ns):
    code, details = code_of(write, client, ns, [pb.WriteContentRequest(action=pb.COMMIT, ref="s", data=b"abc",
                                                                       total=4)])
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "unexpected commit size 3, expected 4" in details
    code, details = code_of(write, client, ns, [pb.WriteContentRequest(action=pb.COMMIT, ref="d", data=b"abc",
                                                                       expected=dgst(b"abd"))])
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "unexpected commit digest" in details
    code, _ = code_of(client.content.Info, pb.InfoRequest(digest=dgst(b"abc")), metadata=client.md(ns))
    assert code == grpc.StatusCode.NOT_FOUND


def test_existing_content_is_already_exists(client, ns):
    put(client, ns, b"once")
    code, _ = code_of(put, client, ns, b"once", ref="again")
    assert code == grpc.StatusCode.ALREADY_EXISTS
    code, _ = code_of(put, client, ns, b"once", ref="again-unannounced", expected=False)
    assert code == grpc.StatusCode.ALREADY_EXISTS
    statuses = client.content.ListStatuses(pb.ListStatusesRequest(), metadata=client.md(ns)).statuses
    assert statuses == []


def test_a_ref_is_locked_while_a_stream_holds_it(client, ns):
    def held():
        yield pb.WriteContentRequest(action=pb.STAT, ref="locked")
        second = iter(client.content.Write(iter([pb.WriteContentRequest(action=pb.STAT, ref="locked")]),
                                           metadata=client.md(ns)))
        with pytest.raises(grpc.RpcError) as e:
            next(second)
        outcome.append(e.value.code())
    outcome = []
    write(client, ns, held())
    assert outcome == [grpc.StatusCode.UNAVAILABLE]


def test_first_message_needs_a_ref(client, ns):
    code, details = code_of(write, client, ns, [pb.WriteContentRequest(action=pb.STAT)])
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "reference" in details


def test_abort_removes_the_ingest(client, ns):
    write(client, ns, [pb.WriteContentRequest(action=pb.WRITE, ref="gone", data=b"x")])
    client.content.Abort(pb.AbortRequest(ref="gone"), metadata=client.md(ns))
    code, _ = code_of(client.content.Status, pb.StatusRequest(ref="gone"), metadata=client.md(ns))
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = code_of(client.content.Abort, pb.AbortRequest(ref="gone"), metadata=client.md(ns))
    assert code == grpc.StatusCode.NOT_FOUND


def test_list_statuses_filters_by_ref(client, ns):
    for ref in ("layer-1", "layer-2", "config"):
        write(client, ns, [pb.WriteContentRequest(action=pb.WRITE, ref=ref, data=b"x")])
    refs = [s.ref for s in client.content.ListStatuses(pb.ListStatusesRequest(filters=["ref~=^layer-"]),
                                                       metadata=client.md(ns)).statuses]
    assert refs == ["layer-1", "layer-2"]
    other = client.content.ListStatuses(pb.ListStatusesRequest(), metadata=client.md(ns + "-other")).statuses
    assert other == []


def test_update_labels_with_field_mask(client, ns):
    put(client, ns, b"labelled", labels={"keep": "1", "drop": "2", "change": "3"})
    d = dgst(b"labelled")
    info = pb.Info(digest=d, labels={"change": "new", "add": "4"})
    mask = field_mask_pb2.FieldMask(paths=["labels.change", "labels.drop", "labels.add"])
    updated = client.content.Update(pb.UpdateRequest(info=info, update_mask=mask), metadata=client.md(ns)).info
    assert dict(updated.labels) == {"keep": "1", "change": "new", "add": "4"}
    replaced = client.content.Update(pb.UpdateRequest(info=pb.Info(digest=d, labels={"only": "x"})),
                                     metadata=client.md(ns)).info
    assert dict(replaced.labels) == {"only": "x"}
    code, _ = code_of(client.content.Update, pb.UpdateRequest(info=info, update_mask=field_mask_pb2.FieldMask(
        paths=["size"])), metadata=client.md(ns))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_list_with_filters(client, ns):
    put(client, ns, b"one", labels={"kind": "a"})
    put(client, ns, b"two", ref="r2", labels={"kind": "b"})
    listed = [i.digest for r in client.content.List(pb.ListContentRequest(), metadata=client.md(ns)) for i in r.info]
    assert listed == sorted([dgst(b"one"), dgst(b"two")])
    filtered = [i.digest for r in client.content.List(pb.ListContentRequest(filters=["labels.kind==b"]),
                                                      metadata=client.md(ns)) for i in r.info]
    assert filtered == [dgst(b"two")]


def test_read_past_the_end_is_out_of_range(client, ns):
    put(client, ns, b"short")
    code, _ = code_of(read, client, ns, dgst(b"short"), offset=6)
    assert code == grpc.StatusCode.OUT_OF_RANGE


def test_namespaces_see_only_their_content_but_share_blobs(client, ns, daemon):
    data = b"shared between namespaces"
    put(client, ns, data)
    other = ns + "-b"
    code, _ = code_of(client.content.Info, pb.InfoRequest(digest=dgst(data)), metadata=client.md(other))
    assert code == grpc.StatusCode.NOT_FOUND
    put(client, other, data)
    client.content.Delete(pb.DeleteContentRequest(digest=dgst(data)), metadata=client.md(ns))
    assert read(client, other, dgst(data)) == data
    client.content.Delete(pb.DeleteContentRequest(digest=dgst(data)), metadata=client.md(other))
    assert not os.path.exists(blob_path(daemon, dgst(data)))
    code, _ = code_of(client.content.Delete, pb.DeleteContentRequest(digest=dgst(data)), metadata=client.md(other))
    assert code == grpc.StatusCode.NOT_FOUND


def test_invalid_digest_is_invalid_argument(client, ns):
    code, details = code_of(client.content.Info, pb.InfoRequest(digest="sha256:zz"), metadata=client.md(ns))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "invalid digest" in details
