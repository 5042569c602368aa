"""Running containers through a daemon's containers, snapshots and tasks services,
as ctr does: the client makes the FIFOs and copies the container's IO itself."""
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
from dataclasses import dataclass, field

import grpc
from google.protobuf import any_pb2

from .. import errors
from ..api.containerd.runtime import runc_options_pb2
from ..api.containerd.services import (containers_pb2, containers_pb2_grpc, events_pb2, events_pb2_grpc,
                                       snapshots_pb2, snapshots_pb2_grpc, tasks_pb2, tasks_pb2_grpc)
from ..api.containerd.types import task_pb2
from ..transfer.manifests import chain_ids, read_json, resolve_manifest
from . import oci
from .remote import Connection, RemoteContentStore, RemoteImageStore, domain_error

RUNTIME = "io.containerd.runc.v2"
SPEC_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/Spec"
PROCESS_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/Process"
STATUS_NAMES = {task_pb2.CREATED: "CREATED", task_pb2.RUNNING: "RUNNING", task_pb2.STOPPED: "STOPPED",
                task_pb2.PAUSED: "PAUSED", task_pb2.PAUSING: "PAUSING", task_pb2.UNKNOWN: "UNKNOWN"}


@dataclass
class RunOptions:
    args: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    mounts: list[dict] = field(default_factory=list)
    terminal: bool = False
    detach: bool = False
    remove: bool = False
    runtime: str = ""  # a runc-compatible binary; the daemon's default when empty
    snapshotter: str = "overlayfs"
    cwd: str = ""
    user: str = ""


def _call(fn, request, md, **kw):
    try:
        return fn(request, metadata=md, **kw)
    except grpc.RpcError as e:
        raise domain_error(e) from None


class _IO:
    """FIFOs in a private directory, and the threads that copy between them and our stdio."""

    def __init__(self, terminal: bool):
        self.dir = tempfile.mkdtemp(prefix="containerd-py-ctl-")
        self.terminal = terminal
        self.stdin, self.stdout = os.path.join(self.dir, "stdin"), os.path.join(self.dir, "stdout")
        self.stderr = "" if terminal else os.path.join(self.dir, "stderr")
        for path in (self.stdin, self.stdout, self.stderr):
            if path:
                os.mkfifo(path, 0o600)
        # Read ends opened non-blocking (no writer yet), stdin read-write: no open ever waits.
        self._out = [(self._open_read(self.stdout), sys.stdout.buffer)]
        if self.stderr:
            self._out.append((self._open_read(self.stderr), sys.stderr.buffer))
        self._in = os.open(self.stdin, os.O_RDWR)
        self._threads: list[threading.Thread] = []

    @staticmethod
    def _open_read(path: str) -> int:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        os.set_blocking(fd, True)
        return fd

    def start(self) -> None:
        for fd, dest in self._out:
            t = threading.Thread(target=self._copy_out, args=(fd, dest), daemon=True)
            t.start()
            self._threads.append(t)
        threading.Thread(target=self._copy_in, daemon=True).start()

    @staticmethod
    def _copy_out(fd: int, dest) -> None:
        try:
            while data := os.read(fd, 32768):
                dest.write(data)
                dest.flush()
        except (OSError, ValueError):
            pass
        finally:
            os.close(fd)

    def _copy_in(self) -> None:
        try:
            while data := os.read(sys.stdin.fileno(), 32768):
                os.write(self._in, data)
        except OSError:
            pass
        finally:
            self.close_stdin()

    def close_stdin(self) -> None:
        fd, self._in = self._in, -1
        if fd >= 0:
            os.close(fd)

    def wait(self, timeout: float = 10) -> None:
        """Until the container's output ends (every writer of the FIFOs closed)."""
        for t in self._threads:
            t.join(timeout)

    def close(self) -> None:
        self.close_stdin()
        shutil.rmtree(self.dir, ignore_errors=True)


class _RawTerminal:
    """Our terminal in raw mode for the duration, as ctr and docker put it."""

    def __enter__(self):
        import termios
        import tty

        self._fd = sys.stdin.fileno()
        self._saved = termios.tcgetattr(self._fd) if os.isatty(self._fd) else None
        if self._saved is not None:
            tty.setraw(self._fd)
        return self

    def __exit__(self, *exc):
        if self._saved is not None:
            import termios

            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)


class Tasks:
    def __init__(self, conn: Connection, ns: str):
        self.conn, self.ns, self.md = conn, ns, conn.md(ns)
        self.containers = containers_pb2_grpc.ContainersStub(conn.channel)
        self.tasks = tasks_pb2_grpc.TasksStub(conn.channel)
        self.snapshots = snapshots_pb2_grpc.SnapshotsStub(conn.channel)
        self.content = RemoteContentStore(conn)
        self.images = RemoteImageStore(conn)

    # -- run

    def create_container(self, image_ref: str, container_id: str, opts: RunOptions):
        """Container record, spec and snapshot; returns the rootfs mounts."""
        image = self.images.get(self.ns, image_ref)
        manifest = resolve_manifest(self.content, self.ns, image.target)
        config = read_json(self.content, self.ns, manifest.config)
        try:
            spec = oci.spec_for(config, opts.args, opts.env, opts.mounts, opts.terminal, opts.cwd, opts.user)
        except ValueError as e:
            raise errors.InvalidArgument(str(e)) from None
        parent = chain_ids(manifest.diff_ids)[-1] if manifest.diff_ids else ""
        prepared = _call(self.snapshots.Prepare, snapshots_pb2.PrepareSnapshotRequest(
            snapshotter=opts.snapshotter, key=container_id, parent=parent), self.md)
        runtime = containers_pb2.Container.Runtime(name=RUNTIME)
        if opts.runtime:
            runtime.options.type_url = runc_options_pb2.Options.DESCRIPTOR.full_name
            runtime.options.value = runc_options_pb2.Options(binary_name=opts.runtime).SerializeToString()
        container = containers_pb2.Container(
            id=container_id, image=image.name, runtime=runtime, snapshotter=opts.snapshotter,
            snapshot_key=container_id, spec=any_pb2.Any(type_url=SPEC_TYPE, value=json.dumps(spec).encode()))
        try:
            _call(self.containers.Create, containers_pb2.CreateContainerRequest(container=container), self.md)
        except errors.Error:
            _call(self.snapshots.Remove, snapshots_pb2.RemoveSnapshotRequest(snapshotter=opts.snapshotter,
                                                                             key=container_id), self.md)
            raise
        return prepared.mounts

    def run(self, image_ref: str, container_id: str, opts: RunOptions) -> int:
        """Returns the container's exit status (0 once started, when detached)."""
        mounts = self.create_container(image_ref, container_id, opts)
        io = None if opts.detach else _IO(opts.terminal)
        try:
            request = tasks_pb2.CreateTaskRequest(container_id=container_id, rootfs=mounts, terminal=opts.terminal)
            if io is not None:
                request.stdin, request.stdout, request.stderr = io.stdin, io.stdout, io.stderr
            _call(self.tasks.Create, request, self.md)
            if opts.detach:
                _call(self.tasks.Start, tasks_pb2.StartRequest(container_id=container_id), self.md)
                return 0
            return self._attach_and_wait(container_id, "", io)
        except BaseException:
            if opts.detach or not opts.remove:
                raise
            self.remove(container_id, force=True)
            raise
        finally:
            if io is not None:
                io.close()
            if opts.remove and not opts.detach:
                self.remove(container_id, force=True, missing_ok=True)

    def _attach_and_wait(self, container_id: str, exec_id: str, io: _IO) -> int:
        waited: dict = {}
        waiter = threading.Thread(target=self._wait_into, args=(container_id, exec_id, waited), daemon=True)
        waiter.start()
        with (_RawTerminal() if io.terminal else contextlib.nullcontext()):
            _call(self.tasks.Start, tasks_pb2.StartRequest(container_id=container_id, exec_id=exec_id), self.md)
            io.start()  # only now: a FIFO read before its writer (the process) has it open is EOF
            restore = self._forward_signals(container_id, exec_id, io.terminal)
            try:
                while waiter.is_alive():
                    waiter.join(0.2)
            finally:
                restore()
            io.wait()
        if "error" in waited:
            raise waited["error"]
        if exec_id:
            _call(self.tasks.DeleteProcess, tasks_pb2.DeleteProcessRequest(container_id=container_id,
                                                                           exec_id=exec_id), self.md)
        else:
            _call(self.tasks.Delete, tasks_pb2.DeleteTaskRequest(container_id=container_id), self.md)
        return waited["status"]

    def _wait_into(self, container_id: str, exec_id: str, out: dict) -> None:
        try:
            r = _call(self.tasks.Wait, tasks_pb2.WaitRequest(container_id=container_id, exec_id=exec_id), self.md)
            out["status"] = r.exit_status
        except errors.Error as e:
            out["error"] = e

    def _forward_signals(self, container_id: str, exec_id: str, terminal: bool):
        """Signals to us go to the process (as ctr's do); a terminal's size follows ours."""
        def forward(sig, _frame):
            try:
                self.kill(container_id, sig, exec_id=exec_id)
            except errors.Error:
                pass

        def resize(*_):
            try:
                cols, rows = shutil.get_terminal_size()
                _call(self.tasks.ResizePty, tasks_pb2.ResizePtyRequest(
                    container_id=container_id, exec_id=exec_id, width=cols, height=rows), self.md)
            except (errors.Error, OSError):
                pass

        handled = [signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT] + ([] if terminal else [signal.SIGINT])
        saved = {s: signal.signal(s, forward) for s in handled}
        if terminal and os.isatty(sys.stdout.fileno()):
            saved[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, resize)
            resize()

        def restore():
            for s, handler in saved.items():
                signal.signal(s, handler)
        return restore

    # -- exec

    def exec(self, container_id: str, exec_id: str, args: list[str], terminal: bool, env: list[str],
             cwd: str = "") -> int:
        got = _call(self.containers.Get, containers_pb2.GetContainerRequest(id=container_id), self.md).container
        process = json.loads(got.spec.value)["process"]
        process.update(args=args, terminal=terminal, env=oci._merge_env(process.get("env") or [], env))
        if cwd:
            process["cwd"] = cwd
        io = _IO(terminal)
        try:
            _call(self.tasks.Exec, tasks_pb2.ExecProcessRequest(
                container_id=container_id, exec_id=exec_id, stdin=io.stdin, stdout=io.stdout, stderr=io.stderr,
                terminal=terminal, spec=any_pb2.Any(type_url=PROCESS_TYPE, value=json.dumps(process).encode())),
                self.md)
            return self._attach_and_wait(container_id, exec_id, io)
        finally:
            io.close()

    # -- the rest

    def list_tasks(self) -> list[task_pb2.Process]:
        return list(_call(self.tasks.List, tasks_pb2.ListTasksRequest(), self.md).tasks)

    def list_containers(self) -> list[containers_pb2.Container]:
        return list(_call(self.containers.List, containers_pb2.ListContainersRequest(), self.md).containers)

    def kill(self, container_id: str, sig: int, all_: bool = False, exec_id: str = "") -> None:
        _call(self.tasks.Kill, tasks_pb2.KillRequest(container_id=container_id, exec_id=exec_id, signal=sig,
                                                     all=all_), self.md)

    def remove(self, container_id: str, force: bool = False, missing_ok: bool = False) -> None:
        """Task (killed first with force), container record and its snapshot."""
        try:
            got = _call(self.containers.Get, containers_pb2.GetContainerRequest(id=container_id), self.md).container
        except errors.NotFound:
            if missing_ok:
                return
            raise
        try:
            task = _call(self.tasks.Get, tasks_pb2.GetRequest(container_id=container_id), self.md).process
        except errors.NotFound:
            task = None
        if task is not None:
            if task.status in (task_pb2.RUNNING, task_pb2.PAUSED):
                if not force:
                    raise errors.FailedPrecondition(f"container {errors.q(container_id)} is running "
                                                    f"(stop it first, or remove with --force)")
                self.kill(container_id, signal.SIGKILL, all_=True)
                _call(self.tasks.Wait, tasks_pb2.WaitRequest(container_id=container_id), self.md)
            _call(self.tasks.Delete, tasks_pb2.DeleteTaskRequest(container_id=container_id), self.md)
        _call(self.containers.Delete, containers_pb2.DeleteContainerRequest(id=container_id), self.md)
        if got.snapshot_key:
            try:
                _call(self.snapshots.Remove, snapshots_pb2.RemoveSnapshotRequest(
                    snapshotter=got.snapshotter, key=got.snapshot_key), self.md)
            except errors.NotFound:
                pass

    def events(self, filters: list[str]):
        """Envelopes as they come, until the caller stops iterating."""
        stub = events_pb2_grpc.EventsStub(self.conn.channel)
        try:
            yield from stub.Subscribe(events_pb2.SubscribeRequest(filters=filters))
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.CANCELLED:
                raise domain_error(e) from None
