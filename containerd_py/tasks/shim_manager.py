"""Shims, as containerd's runtime/v2 shim manager: starts the shim of each process,
learns when it ends, and finds again those an earlier daemon started (see DESIGN.md)."""
from __future__ import annotations

import json
import logging
import os
import select
import subprocess
import threading
import time
from collections.abc import Callable

from .. import errors
from ..shim import BINARY as SHIM
from .task import Process

log = logging.getLogger(__name__)

SHIM_TIMEOUT = 120  # seconds for a shim to report its process started (guards a hang only)


class ShimManager:
    def __init__(self, on_exit: Callable[[Process, int, int], None]):
        """on_exit(process, status, exited_at) is called once a process's shim has ended."""
        self._on_exit = on_exit

    def start(self, p: Process) -> None:
        """Has the shim create the process (`create` for an init, `exec --detach` else): returns once
        it exists, with its pid, and the shim watched."""
        t = p.task
        argv = [SHIM, t.id, t.bundle.path, p.name, t.runtime.binary, t.runtime.root,
                "1" if p.io.terminal else "0", p.io.stdin, p.io.stdout, p.io.stderr, "1" if t.no_pivot else "0"]
        with open(p.file("shim.log"), "ab") as log_file:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log_file,
                                    cwd=t.bundle.path, start_new_session=True, close_fds=True)
        ready, _, _ = select.select([proc.stdout], [], [], SHIM_TIMEOUT)
        line = proc.stdout.readline() if ready else b""
        proc.stdout.close()
        try:
            report = json.loads(line)
        except ValueError:
            report = {"error": f"the shim reported nothing (see {p.file('shim.log')})"}
        if "pid" not in report:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            what = "create" if not p.exec_id else "exec"
            raise errors.Unknown(f"OCI runtime {what} failed: {report.get('error', 'unknown error')}")
        p.pid, p.shim = report["pid"], proc.pid
        self._watch(p, proc.wait)

    def reattach(self, p: Process) -> None:
        """A process an earlier daemon started: stopped if its shim left an exit record or is gone
        (status 255 then, as containerd reports a task whose shim died), else watched again."""
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
