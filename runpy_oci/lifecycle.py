"""The lifecycle verbs after ``create``: start, state, kill, delete, list and
the foreground ``run``. Each takes the container's lock for its duration
(``state`` and ``list`` only read, atomically written state)."""
import os
import time

import _signal

from runpy_oci.errors import ContainerNotFound, HookFailure, RuntimeFailure, WrongState
from runpy_oci.state import DELETE_REQUESTED, Container, container_ids, validate_id

_SIGNALS = {name[3:]: getattr(_signal, name) for name in dir(_signal) if name.startswith("SIG") and not name.startswith("SIG_")}


def parse_signal(text):
    """'TERM', 'SIGTERM', 'term', '15', 'RTMIN+3' -> signal number (runc's forms)."""
    if text.isdigit():
        num = int(text)
        if 0 < num <= _SIGNALS["RTMAX"]:
            return num
        raise RuntimeFailure(f"unknown signal {text!r}")
    name = text.upper()
    if name.startswith("SIG"):
        name = name[3:]
    for base in ("RTMIN", "RTMAX"):
        if name.startswith(base + "+") or name.startswith(base + "-"):
            offset = name[len(base):]
            if offset[1:].isdigit():
                num = _SIGNALS[base] + int(offset)
                if _SIGNALS["RTMIN"] <= num <= _SIGNALS["RTMAX"]:
                    return num
    if name in _SIGNALS:
        return _SIGNALS[name]
    raise RuntimeFailure(f"unknown signal {text!r}")


def start(root, container_id):
    c = Container.load(root, container_id)
    try:
        start_loaded(c)
    finally:
        c.close()


def start_loaded(c):
    status = c.status()
    if status == "stopped":
        raise WrongState("cannot start a container that has stopped")
    if status != "created":
        raise WrongState(f"cannot start an already {status} container")
    fd = os.open(c.fifo_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        # The init, blocked opening the fifo for writing, now gets through and
        # writes one byte. While it holds the fifo open a blocking read waits
        # for exactly that byte, without polling latency; a read that finds no
        # writer (the init not yet there, or dead) returns b"" at once, and we
        # poll by hand (no select module on the hot path), making sure the
        # init has not died meanwhile, or we would wait forever.
        os.set_blocking(fd, True)
        first = os.read(fd, 1)
        os.set_blocking(fd, False)
        delay = 0.0001
        while not first and not (first := _read_byte(fd)):
            if not c.init_alive():
                # It may have written, exec'd and even exited since our read.
                if first := _read_byte(fd):
                    break
                raise WrongState("cannot start a container that has stopped")
            time.sleep(delay)
            delay = min(delay * 2, 0.01)
        # The init keeps its end open until the program's exec (or its
        # death): at EOF the program runs.
        os.set_blocking(fd, True)
        rest = _read_rest(fd)
        if first == b"E":  # a startContainer hook failed; the init has given up
            raise HookFailure(rest)
    finally:
        os.close(fd)
    os.unlink(c.fifo_path)
    kept = _kept_hooks(c, "poststart")
    if kept:  # only then the state: it reads /proc
        _run_kept_hooks("poststart", kept, c.oci_state())


def _kept_hooks(c, kind):
    return c.data.get("hooks", {}).get(kind)


def _run_kept_hooks(kind, kept, state):
    """poststart and poststop, from state.json: warnings only if they fail."""
    from runpy_oci import fastjson, hooks

    hooks.warn_all(hooks.from_record({kind: kept}), kind, fastjson.dumps(state))


def _read_rest(fd):
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def _read_byte(fd):
    try:
        return os.read(fd, 1)
    except BlockingIOError:
        return b""


def state(root, container_id):
    c = Container.load(root, container_id, lock=False)
    try:
        return c.oci_state()
    finally:
        c.close()


def list_containers(root):
    """OCI states of every container under root, with runc's ``owner`` filled in."""
    import pwd

    result = []
    for name in container_ids(root):
        try:
            c = Container.load(root, name, lock=False)
        except (ContainerNotFound, RuntimeFailure):
            continue
        try:
            st = c.oci_state()
            uid = os.stat(c.dir).st_uid
            try:
                st["owner"] = pwd.getpwuid(uid).pw_name
            except KeyError:
                st["owner"] = f"#{uid}"
            result.append(st)
        finally:
            c.close()
    return result


def _cgroup(c):
    from runpy_oci.cgroups import Cgroup  # here: ``state`` and ``start`` need none

    return Cgroup(c.data.get("cgroup_paths", {}))


def kill(root, container_id, sig, all_processes=False):
    c = Container.load(root, container_id)
    try:
        status = c.status()
        if status == "stopped" or status == "creating":
            raise WrongState("container not running")
        if all_processes:
            _signal_all(c, sig)
        else:
            os.kill(c.pid, sig)
    finally:
        c.close()


def _signal_all(c, sig):
    pids = _cgroup(c).pids() or [c.pid]
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def delete(root, container_id, force=False):
    if force:
        _request_deletion(root, container_id)
    try:
        c = Container.load(root, container_id)
    except ContainerNotFound:
        if force:
            return  # runc: forcing the removal of what is not there is no error
        raise
    try:
        status = c.status()
        if status in ("running", "paused") and not force:
            raise WrongState(f"cannot delete container {container_id} that is not stopped: {status}")
        if status != "stopped":
            stop(c)
        destroy(c)
    finally:
        c.close()


def _request_deletion(root, container_id):
    validate_id(container_id)
    try:
        os.close(os.open(os.path.join(root, container_id, DELETE_REQUESTED), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC,
                         0o600))
    except OSError:
        pass  # nothing there to ask (or to delete: ``load`` says which)


def stop(c, timeout=10.0):
    """SIGKILL every process of the container and wait until the init is gone."""
    shares_pidns = c.data.get("namespaces", {}).get("pid", None) != ""
    if shares_pidns:
        _signal_all(c, _SIGNALS["KILL"])
    elif c.pid:
        try:
            os.kill(c.pid, _SIGNALS["KILL"])
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while c.init_alive():
        if time.monotonic() > deadline:
            raise RuntimeFailure(f"container {c.id}: init process {c.pid} did not die")
        time.sleep(0.005)


def destroy(c):
    """Remove what a stopped container still holds: cgroup and state."""
    try:
        _cgroup(c).destroy()
    except OSError as e:
        raise RuntimeFailure(f"cannot remove cgroup of container {c.id}: {e.strerror}") from None
    kept = _kept_hooks(c, "poststop")
    state = c.oci_state() if kept else None  # only then: it reads /proc
    c.remove()
    if kept:
        _run_kept_hooks("poststop", kept, state)
