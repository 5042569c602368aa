"""Tasks service: a thin adapter over the task manager."""
import time

from google.protobuf import any_pb2, empty_pb2

from .. import errors, rpc
from ..api.containerd.runtime import runc_options_pb2
from ..api.containerd.services import tasks_pb2 as pb
from ..api.containerd.types import task_pb2
from ..convert import any_from_proto, mount_from_proto, task_status_to_proto, timestamp
from ..tasks import metrics
from ..tasks.manager import TaskManager
from ..tasks.task import PAUSED, RUNNING, STOPPED, Process
from ..types import Stdio
from .common import namespace


def process_to_proto(p: Process) -> task_pb2.Process:
    status = p.status()
    out = task_pb2.Process(container_id=p.task.id, id=p.id, pid=p.pid, status=task_status_to_proto(status),
                           stdin=p.io.stdin, stdout=p.io.stdout, stderr=p.io.stderr, terminal=p.io.terminal)
    if status == STOPPED:
        out.exit_status = p.exit_status
        out.exited_at.CopyFrom(timestamp(p.exited_at))
    return out


def _delete_response(p: Process) -> pb.DeleteResponse:
    return pb.DeleteResponse(id=p.id, pid=p.pid, exit_status=p.exit_status, exited_at=timestamp(p.exited_at))


class TasksServicer:
    SERVICE = pb.DESCRIPTOR.services_by_name["Tasks"]

    def __init__(self, tasks: TaskManager):
        self._tasks = tasks

    def Create(self, request, context):
        if request.HasField("checkpoint") and request.checkpoint.digest:
            raise errors.Unimplemented("restoring a task from a checkpoint")
        io = Stdio(request.stdin, request.stdout, request.stderr, request.terminal)
        options = any_from_proto(request.options) if request.HasField("options") else None
        p = self._tasks.create(namespace(context), request.container_id,
                               [mount_from_proto(m) for m in request.rootfs], io, options)
        return pb.CreateTaskResponse(container_id=request.container_id, pid=p.pid)

    def Start(self, request, context):
        p = self._tasks.start(namespace(context), request.container_id, request.exec_id)
        return pb.StartResponse(pid=p.pid)

    def Delete(self, request, context):
        return _delete_response(self._tasks.delete(namespace(context), request.container_id))

    def DeleteProcess(self, request, context):
        return _delete_response(self._tasks.delete_process(namespace(context), request.container_id,
                                                           request.exec_id))

    def Get(self, request, context):
        p = self._tasks.get(namespace(context), request.container_id, request.exec_id)
        return pb.GetResponse(process=process_to_proto(p))

    def List(self, request, context):
        return pb.ListTasksResponse(tasks=[process_to_proto(p) for p in self._tasks.list(namespace(context))])

    def Kill(self, request, context):
        self._tasks.kill(namespace(context), request.container_id, request.exec_id, request.signal, request.all)
        return empty_pb2.Empty()

    def Exec(self, request, context):
        io = Stdio(request.stdin, request.stdout, request.stderr, request.terminal)
        spec = any_from_proto(request.spec) if request.HasField("spec") else None
        self._tasks.exec(namespace(context), request.container_id, request.exec_id, io, spec)
        return empty_pb2.Empty()

    def ResizePty(self, request, context):
        self._tasks.resize_pty(namespace(context), request.container_id, request.exec_id, request.width,
                               request.height)
        return empty_pb2.Empty()

    def CloseIO(self, request, context):
        # stdin is the client's FIFO itself in the container (or in the shim's terminal relay): the
        # client closing its end is the container's EOF. Only the process must exist.
        self._tasks.get(namespace(context), request.container_id, request.exec_id)
        return empty_pb2.Empty()

    def Pause(self, request, context):
        self._tasks.pause(namespace(context), request.container_id)
        return empty_pb2.Empty()

    def Resume(self, request, context):
        self._tasks.resume(namespace(context), request.container_id)
        return empty_pb2.Empty()

    def ListPids(self, request, context):
        out = pb.ListPidsResponse()
        for pid, exec_id in self._tasks.pids(namespace(context), request.container_id):
            info = out.processes.add(pid=pid)
            if exec_id:
                # containerd's type URLs are bare message names
                info.info.type_url = runc_options_pb2.ProcessDetails.DESCRIPTOR.full_name
                info.info.value = runc_options_pb2.ProcessDetails(exec_id=exec_id).SerializeToString()
        return out

    def Checkpoint(self, request, context):
        raise errors.Unimplemented("checkpoints")

    def Update(self, request, context):
        if not request.HasField("resources"):
            raise errors.InvalidArgument("resources are required")
        self._tasks.update(namespace(context), request.container_id, any_from_proto(request.resources))
        return empty_pb2.Empty()

    def Metrics(self, request, context):
        out = pb.MetricsResponse()
        ns = namespace(context)
        for p in self._tasks.select(ns, list(request.filters)):
            if p.status() not in (RUNNING, PAUSED):
                continue
            m = metrics.from_runc_stats(self._tasks.stats(ns, p.task.id))
            out.metrics.add(id=p.task.id, timestamp=timestamp(time.time_ns()),
                            data=any_pb2.Any(type_url=metrics.TYPE_URL, value=m.SerializeToString()))
        return out

    def Wait(self, request, context):
        p = self._tasks.wait(namespace(context), request.container_id, request.exec_id, context.is_active)
        if p is None:
            raise rpc.Cancelled()
        return pb.WaitResponse(exit_status=p.exit_status, exited_at=timestamp(p.exited_at))
