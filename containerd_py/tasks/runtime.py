"""The OCI runtime binary (runc's command line) for the short-lived verbs the daemon runs itself.

`create` and `exec`, whose processes outlive the call, go through a shim instead
(containerd_py.shim). Every call is an exec of the binary, never a fork of Python code.
"""
import json
import os
import shutil
import subprocess

from .. import errors
from ..api.containerd.runtime import runc_options_pb2
from ..errors import q
from ..types import AnyValue

TIMEOUT = 60  # seconds; a runtime verb that hangs longer is an error, not a hung RPC
RUNTIMES = ("io.containerd.runc.v2", "io.containerd.runc.v1")
RUNC_OPTIONS = "containerd.runc.v1.Options"
_ALREADY_FINISHED = ("os: process already finished", "container not running", "no such process")


class Runtime:
    def __init__(self, binary: str, root: str):
        self.binary, self.root = binary, root

    @property
    def name(self) -> str:
        return os.path.basename(self.binary)

    def _run(self, *args: str) -> str:
        argv = [self.binary, "--root", self.root, *args]
        try:
            r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT)
        except FileNotFoundError:
            raise errors.NotFound(f"runtime binary {q(self.binary)}") from None
        except subprocess.TimeoutExpired:
            raise errors.Unavailable(f"{self.name} {args[0]} did not finish in {TIMEOUT}s") from None
        if r.returncode != 0:
            message = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit status {r.returncode}"
            raise errors.Unknown(f"{self.name} {args[0]} failed: {_plain(message)}")
        return r.stdout

    def start(self, container_id: str) -> None:
        self._run("start", container_id)

    def state(self, container_id: str) -> dict:
        return json.loads(self._run("state", container_id))

    def kill(self, container_id: str, signal: int, all_: bool = False) -> None:
        """A process that ended meanwhile is NotFound "process already
        finished", as containerd's shim says it (checkKillError): dockerd
        then waits for the exit rather than failing the stop."""
        try:
            self._run("kill", *(["--all"] if all_ else []), container_id, str(signal))
        except errors.Unknown as err:
            if any(why in str(err).lower() for why in _ALREADY_FINISHED):
                raise errors.NotFound("process already finished") from None
            raise

    def delete(self, container_id: str, force: bool = False) -> None:
        self._run("delete", *(["--force"] if force else []), container_id)

    def pause(self, container_id: str) -> None:
        self._run("pause", container_id)

    def resume(self, container_id: str) -> None:
        self._run("resume", container_id)

    def pids(self, container_id: str) -> list[int]:
        return json.loads(self._run("ps", "--format", "json", container_id) or "[]") or []

    def stats(self, container_id: str) -> dict:
        return json.loads(self._run("events", "--stats", container_id))

    def update(self, container_id: str, resources_json: str) -> None:
        self._run("update", "--resources", resources_json, container_id)


def choose(runtime_name: str, options: AnyValue | None, ns: str, state: str,
           default_binary: str) -> tuple[Runtime, bool]:
    """The runtime binary and root for a container, and whether it runs without pivot_root: runc's
    options (the task's, else the container's) may name a binary and a root (ctr's --runc-binary)."""
    if runtime_name not in RUNTIMES:
        raise errors.NotFound(f"runtime {q(runtime_name)}")
    opts = runc_options_pb2.Options()
    if options is not None and options.type_url.rsplit("/", 1)[-1] == RUNC_OPTIONS:
        opts.ParseFromString(options.value)
    binary = opts.binary_name or default_binary
    found = shutil.which(binary)
    if found is None:
        raise errors.NotFound(f"runtime binary {q(binary)}")
    name = os.path.basename(found)
    root = os.path.join(opts.root, ns) if opts.root else os.path.join(state, "runtime", name, ns)
    return Runtime(os.path.abspath(found), root), opts.no_pivot_root


def _plain(line: str) -> str:
    """runc's logrus line (`time=... level=error msg="..."`) down to its message."""
    marker = 'msg="'
    if marker in line:
        return line.split(marker, 1)[1].rsplit('"', 1)[0].replace('\\"', '"')
    return line
