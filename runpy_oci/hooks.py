"""The config's hooks, run at the moments the runtime-spec names, each with the
container's state on its stdin.

Where each kind runs (runtime-spec "Lifecycle" and "POSIX-platform Hooks"):
  prestart, createRuntime  create, after the namespaces and mounts exist, before
                           the pivot; in the runtime's namespaces (this module,
                           called by the runtime process);
  createContainer          the same moment, in the container's namespaces (the
                           init runs them, before it pivots: their path still
                           resolves as the runtime sees it);
  startContainer           start, just before the program runs; in the container
                           (the init, after the pivot);
  poststart                start, once the program runs; runtime namespaces;
  poststop                 delete, once the container is gone; runtime namespaces.
A failure of the first four is an error that stops the container; of
poststart or poststop, a warning, and the lifecycle goes on.
"""
import os
import time

from runpy_oci.errors import HookFailure, RuntimeFailure
from runpy_oci.process import env_dict

_POLL = 0.001  # seconds between checks on a hook with a timeout
AT_CREATE = ("prestart", "createRuntime", "createContainer", "startContainer")  # need the state in the init
KEPT = ("poststart", "poststop")  # run by later verbs: kept in state.json


def needs_state(hooks):
    """The init must get the container's state (its host pid) from the runtime."""
    return any(hooks.get(kind) for kind in AT_CREATE)


def record(hooks):
    """The later verbs' hooks as plain JSON for state.json."""
    return {kind: [{"path": h.path, "args": h.args, "env": h.env, "timeout": h.timeout} for h in hooks[kind]]
            for kind in KEPT if hooks.get(kind)}


def from_record(data):
    from runpy_oci.spec.fields import Fields
    from runpy_oci.spec.model import Hook

    return {kind: [Hook(Fields({k: v for k, v in h.items() if v is not None}, f"hooks.{kind}[{i}]"))
                   for i, h in enumerate(items)] for kind, items in (data or {}).items()}


def warn_all(hooks, kind, state_json):
    """poststart and poststop: a failure is a warning, and the rest go on (runtime-spec)."""
    from runpy_oci import log

    for i, hook in enumerate(hooks.get(kind, ())):
        try:
            run_one(hook, state_json, f"hooks.{kind}[{i}]")
        except RuntimeFailure as e:
            log.warning(str(e))


def run_all(hooks, kind, state_json):
    """Runs every hook of `kind` in order; HookFailure naming the first that fails."""
    for i, hook in enumerate(hooks.get(kind, ())):
        try:
            run_one(hook, state_json, f"hooks.{kind}[{i}]")
        except RuntimeFailure as e:
            raise HookFailure(str(e)) from None


def run_one(hook, state_json, where):
    """One hook: state on stdin, its output kept for the error message."""
    stdin_r, stdin_w = os.pipe2(os.O_CLOEXEC)
    out = os.memfd_create("hook-output", os.MFD_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(stdin_r, 0)
            os.dup2(out, 1)
            os.dup2(out, 2)
            os.closerange(3, 1 << 20)
            os.execve(hook.path, hook.args or [hook.path], env_dict(hook.env))
        finally:
            os._exit(127)
    os.close(stdin_r)
    try:
        try:
            os.write(stdin_w, state_json.encode())
        except BrokenPipeError:
            pass  # a hook that does not read its stdin
        os.close(stdin_w)
        status = _wait(pid, hook.timeout)
        if status is None:
            raise RuntimeFailure(f"{where}: {hook.path} did not finish within {hook.timeout}s (killed)")
        if status != 0:
            output = os.pread(out, 4096, 0).decode(errors="replace").strip()
            detail = f": {output}" if output else ""
            raise RuntimeFailure(f"{where}: {hook.path} exited with status {status}{detail}")
    finally:
        os.close(out)


def _wait(pid, timeout):
    """The hook's exit status (128+N for signal N), or None after killing it at its timeout."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        got, status = os.waitpid(pid, os.WNOHANG if deadline is not None else 0)
        if got == pid:
            return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            return None
        time.sleep(_POLL)
