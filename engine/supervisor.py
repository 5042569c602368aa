"""The engine's own containerd-py, started and kept running as dockerd keeps
its containerd (moby's libcontainerd/supervisor) when no `--containerd` is
given: root under <data-root>/containerd, state and socket under
<exec-root>/containerd.

It runs in a session of its own, so a `kill -9` of the engine leaves it (and
the containers under its shims) running; a restarted engine finds it by its
pidfile and adopts it instead of starting a second one. When it dies it is
started again, after a back-off that grows while it keeps dying. Stopping
the engine stops it (its shims, and so the containers, stay).
"""
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time

from containerd_py.endpoint import StartupError

log = logging.getLogger("engine-py")

READY_DEADLINE = 60.0  # seconds for containerd-py to answer on its socket
STOP_GRACE = 10.0      # seconds after SIGTERM before SIGKILL, as dockerd waits for its containerd
FIRST_BACKOFF, MAX_BACKOFF = 0.1, 10.0  # seconds before a restart
STEADY = 10.0  # seconds up after which a containerd-py that dies is restarted after FIRST_BACKOFF again
PROGRAM = "containerd_py.daemon"


class ContainerdSupervisor:
    def __init__(self, data_root: str, exec_root: str, log_level: str):
        self.root = os.path.join(data_root, "containerd")
        self.state = os.path.join(exec_root, "containerd")
        self.address = os.path.join(self.state, "containerd.sock")
        self.pidfile = os.path.join(self.state, "containerd.pid")
        self.config = os.path.join(self.state, "config.toml")
        self.log_level = log_level
        self.pid = 0
        self._child: subprocess.Popen | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        """Adopts a containerd-py left running by an earlier engine, or starts one; StartupError if it cannot."""
        os.makedirs(self.state, mode=0o711, exist_ok=True)
        with open(self.config, "w") as f:  # the host's /etc/containerd-py/config.toml is not the engine's
            f.write("version = 2\n")
        adopted = self._running_pid()
        if adopted:
            self.pid = adopted
            log.info("containerd-py is already running", extra={"fields": {"pid": adopted, "address": self.address}})
        else:
            self._spawn()
        if not self._wait_ready():
            self.stop()
            raise StartupError(f"failed to start containerd: containerd-py did not answer on {self.address}")
        self._watcher = threading.Thread(target=self._watch, name="containerd-supervisor", daemon=True)
        self._watcher.start()

    def argv(self) -> list[str]:
        return [sys.executable, "-m", PROGRAM, "--root", self.root, "--state", self.state, "--address", self.address,
                "-c", self.config, "-l", self.log_level]

    def version(self) -> tuple[str, str]:
        """(version, revision) as `containerd-py --version` prints them (containerd's
        form: name, package, version, revision); asked in a process of its own, so
        the engine does not load containerd-py's server to learn a string."""
        try:
            out = subprocess.run([sys.executable, "-m", PROGRAM, "--version"], capture_output=True, text=True,
                                 timeout=60, stdin=subprocess.DEVNULL).stdout.split()
        except (OSError, subprocess.SubprocessError):
            return "", ""
        return (out[2], out[3]) if len(out) == 4 else ("", "")

    def _spawn(self) -> None:
        # Its log lines go where the engine's go, as dockerd passes containerd's on.
        self._child = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid = self._child.pid
        with open(self.pidfile + ".tmp", "w") as f:
            f.write(str(self.pid))
        os.rename(self.pidfile + ".tmp", self.pidfile)
        log.info("started new containerd-py process", extra={"fields": {"pid": self.pid, "address": self.address}})

    def _running_pid(self) -> int:
        """The pid in the pidfile if that process is a containerd-py on our address (not a pid reused since)."""
        try:
            with open(self.pidfile) as f:
                pid = int(f.read().strip())
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except (OSError, ValueError):
            return 0
        return pid if PROGRAM.encode() in argv and self.address.encode() in argv else 0

    def _alive(self) -> bool:
        if self._child is not None:
            return self._child.poll() is None
        return self._running_pid() == self.pid

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + READY_DEADLINE
        while time.monotonic() < deadline and self._alive() and not self._stopping.is_set():
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as probe:
                try:
                    probe.connect(self.address)
                    return True
                except OSError:
                    pass
            self._stopping.wait(0.05)
        return False

    def _wait_exit(self) -> int | None:
        """Blocks until the process ends (or stop() is called): its exit status when it is our child."""
        if self._child is not None:
            return self._child.wait()
        try:
            fd = os.pidfd_open(self.pid)
        except ProcessLookupError:
            return None
        try:
            select.select([fd], [], [])
        finally:
            os.close(fd)
        return None

    def _watch(self) -> None:
        delay, started = FIRST_BACKOFF, time.monotonic()
        while True:
            status = self._wait_exit()
            if self._stopping.is_set():
                return
            # One that ran a while is started again soon; one that keeps dying waits longer each time.
            delay = FIRST_BACKOFF if time.monotonic() - started > STEADY else min(delay * 2, MAX_BACKOFF)
            log.warning("containerd-py exited; restarting it", extra={"fields": {
                "pid": self.pid, "status": "unknown" if status is None else status, "in": f"{delay:.1f}s"}})
            if self._stopping.wait(delay):
                return
            started = time.monotonic()
            try:
                self._spawn()
            except OSError as e:
                log.error("cannot start containerd-py: %s", e)
                continue
            self._wait_ready()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after STOP_GRACE; the pidfile goes with it."""
        self._stopping.set()
        if self.pid and self._alive():
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + STOP_GRACE
            while self._alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            if self._alive():
                log.warning("containerd-py did not stop in %ss; killing it", STOP_GRACE)
                os.kill(self.pid, signal.SIGKILL)
        if self._child is not None:
            self._child.wait()
        if self._watcher is not None:
            self._watcher.join()
        try:
            os.unlink(self.pidfile)
        except FileNotFoundError:
            pass
