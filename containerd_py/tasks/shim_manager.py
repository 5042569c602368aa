"""Shims, as containerd's runtime/v2 shim manager: starts the shim of each process,
learns when it ends, and finds again those an earlier daemon started (see DESIGN.md)."""
from __future__ import annotations

import json
import logging
import os
import select
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Callable

from .. import errors
from ..shim import BINARY as SHIM
from . import crashpoints
from .task import Process

log = logging.getLogger(__name__)

SHIM_TIMEOUT = 120  # seconds for a shim to report its process started (guards a hang only)
GO = b"1"  # what a shim waits for on its stdin before it runs the runtime


class ShimManager:
    def __init__(self, on_exit: Callable[[Process, int, int], None]):
        """on_exit(process, status, exited_at) is called once a process's shim has ended."""
        self._on_exit = on_exit

    def start(self, p: Process, record: Callable[[], None]) -> None:
        """Has the shim create the process (`create` for an init, `exec --detach` else): returns once
        it exists, with its pid, and the shim watched. `record()` saves the task with the shim's pid
        before the shim may run the runtime, so a restarted daemon finds every shim that did."""
        with open(p.file("shim.log"), "ab") as log_file:
            proc = subprocess.Popen(shim_argv(p), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_file,
                                    cwd=p.task.bundle.path, start_new_session=True, close_fds=True)
        try:
            p.shim = proc.pid
            record()
            crashpoints.reached("exec-shim-recorded" if p.exec_id else "shim-recorded")
            try:
                proc.stdin.write(GO)
                proc.stdin.flush()
            except BrokenPipeError:
                pass  # it has ended already: it reports nothing, said below
            report = _read_report(proc.stdout.fileno())
        except BaseException:
            proc.kill()
            proc.wait()
            p.shim = 0
            raise
        finally:
            for pipe in (proc.stdin, proc.stdout):
                try:
                    pipe.close()
                except BrokenPipeError:
                    pass
        if "pid" not in report:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            p.shim = 0
            what = "create" if not p.exec_id else "exec"
            error = report.get("error", f"the shim reported nothing (see {p.file('shim.log')})")
            raise errors.Unknown(f"OCI runtime {what} failed: {error}")
        p.pid = report["pid"]
        self._watch(p, proc.wait)

    def reattach(self, p: Process) -> None:
        """A process an earlier daemon started: stopped if its shim left an exit record or is gone
        (status 255 then, as containerd reports a task whose shim died), else watched again. One
        whose create that daemon did not see end gets its pid from the shim, or none if the create
        failed or never ran (its shim then ended)."""
        if not p.pid and p.shim:
            p.pid = _outcome_of_interrupted_create(p)
            if not p.pid:
                p.shim = 0
                return
            p.started = p.started or bool(p.exec_id)  # an exec runs once created
        if not p.pid:
            return  # an exec never started
        if os.path.exists(p.file("exit")) or not _is_shim_of(p.shim, p):
            p.set_exited(*_read_exit(p))
        else:
            self._watch(p, lambda: _wait_pid(p.shim))

    def _watch(self, p: Process, wait_shim: Callable[[], object]) -> None:
        def watch():
            wait_shim()
            self._on_exit(p, *_read_exit(p))
        threading.Thread(target=watch, daemon=True, name=f"shim-{p.task.id}-{p.name}").start()


def shim_argv(p: Process) -> list[str]:
    t = p.task
    return [SHIM, t.id, t.bundle.path, p.name, t.runtime.binary, t.runtime.root, "1" if p.io.terminal else "0",
            p.io.stdin, p.io.stdout, p.io.stderr, "1" if t.no_pivot else "0"]


def _read_exit(p: Process) -> tuple[int, int]:
    """The exit record a shim leaves; status 255 when its shim died without one (as containerd reports)."""
    try:
        with open(p.file("exit")) as f:
            data = json.load(f)
        return data["status"], data["exited_at"]
    except (OSError, ValueError, KeyError):
        return 255, time.time_ns()


def _wait_pid(pid: int) -> None:
    """Blocks until `pid` exits, for a process not our child (a shim of an earlier daemon)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        select.select([fd], [], [])
    finally:
        os.close(fd)


def _is_shim_of(pid: int, p: Process) -> bool:
    """The live process `pid` is the shim of `p` (not a pid reused since)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return argv[:1] == [SHIM.encode()] and p.task.bundle.path.encode() in argv and p.name.encode() in argv


def _read_report(fd: int) -> dict:
    """A shim's one JSON line ({"pid": N} or {"error": "..."}), {} if it ends without one."""
    line = b""
    while not line.endswith(b"\n"):
        if not select.select([fd], [], [], SHIM_TIMEOUT)[0]:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        line += chunk
    try:
        report = json.loads(line)
    except ValueError:
        return {}
    return report if isinstance(report, dict) else {}


def _report_pipe_of(shim: int) -> int | None:
    """A new read end of the pipe a shim reports on (its stdout, then a copy of it, until it has
    reported): /proc lets any process of the shim's owner open it. None once it has reported.
    Looked for twice: a shim starting moves the pipe from its stdout to another fd, maybe
    between the listing of its fds and their opening."""
    for _ in range(2):
        try:  # not its stdin, which was a pipe of the daemon's too
            fds = sorted(int(fd) for fd in os.listdir(f"/proc/{shim}/fd") if fd != "0")
        except OSError:
            return None
        for n in fds:
            try:
                fd = os.open(f"/proc/{shim}/fd/{n}", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError:
                continue
            if stat.S_ISFIFO(os.fstat(fd).st_mode) and os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:"):
                return fd  # an anonymous pipe: the daemon's, not a FIFO of the container's stdio
            os.close(fd)
    return None


def _outcome_of_interrupted_create(p: Process) -> int:
    """The pid of a process whose shim was recorded but whose report its daemon never read: the
    report, if the shim is still creating (read from its pipe, waiting for it), else the
    runtime's pid file, if the shim got that far. 0 when the create failed, never ran, or hangs:
    the shim has then ended (ended here, if it hangs)."""
    alive = _is_shim_of(p.shim, p)
    fd = _report_pipe_of(p.shim) if alive else None
    if fd is not None:
        try:
            report = _read_report(fd)
        finally:
            os.close(fd)
        if report:
            pid = report.get("pid", 0)
            if not pid:
                log.warning("task %s: %s failed while the daemon was down: %s", p.task.id, p.name,
                            report.get("error", "no reason given"))
                _end_shim(p)
            return pid
    try:
        with open(p.file("pid")) as f:
            pid = int(f.read().strip() or 0)
    except (OSError, ValueError):
        pid = 0
    if not pid and alive:
        _end_shim(p)
    return pid


def _end_shim(p: Process) -> None:
    """Kills a shim (and the runtime it runs, in its process group) and waits for it to be gone."""
    if _is_shim_of(p.shim, p):
        try:
            os.killpg(p.shim, signal.SIGKILL)
        except ProcessLookupError:
            return
        _wait_pid(p.shim)
