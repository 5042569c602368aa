"""Containers and their tasks: run, exec, ps, kill, rm, tasks, containers and
events, as ctr runs them over the client library: the FIFOs and the copying of
the process's IO happen here, in the client, and signals sent to us go to the
process."""
import contextlib
import datetime
import json
import os
import shutil
import signal
import sys
import threading

import click

from ... import errors
from ...reference import parse as parse_reference
from ...transfer import manifests
from ...transfer.pull import pull as pull_image
from ...types import Stdio
from .. import oci
from ..cio import FIFOs
from ..client import Client, ContainerOptions
from .images import display, hosts_dir_option, plain_http_option, registry_for
from .session import listing, table

_EPOCH = datetime.datetime(1970, 1, 1)


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


def _forward_signals(client: Client, container_id: str, exec_id: str, terminal: bool):
    """Signals to us go to the process (as ctr's do); a terminal's size follows ours.
    Returns what puts our own handlers back."""
    def forward(sig, _frame):
        try:
            client.tasks.kill(container_id, sig, exec_id=exec_id)
        except errors.Error:
            pass

    def resize(*_):
        try:
            cols, rows = shutil.get_terminal_size()
            client.tasks.resize_pty(container_id, exec_id, cols, rows)
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


def _attach_and_wait(client: Client, container_id: str, exec_id: str, fifos: FIFOs) -> int:
    """Starts the process, copies its IO until it exits, removes it; returns its exit status."""
    waited: dict = {}

    def wait():
        try:
            waited["exit"] = client.tasks.wait(container_id, exec_id)
        except errors.Error as e:
            waited["error"] = e

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    with (_RawTerminal() if fifos.stdio.terminal else contextlib.nullcontext()):
        client.tasks.start(container_id, exec_id)
        # Before the copying starts: nothing the process says can reach anyone while a signal
        # to us would still end us instead of reaching it.
        restore = _forward_signals(client, container_id, exec_id, fifos.stdio.terminal)
        fifos.start()
        try:
            while waiter.is_alive():
                waiter.join(0.2)
        finally:
            restore()
        fifos.wait()
    if "error" in waited:
        raise waited["error"]
    client.tasks.delete(container_id, exec_id)
    return waited["exit"].status


def _stdio_fifos(terminal: bool) -> FIFOs:
    return FIFOs(terminal, sys.stdin.buffer, sys.stdout.buffer, sys.stderr.buffer)


def _signal_number(name: str) -> int:
    """SIGKILL, KILL or 9."""
    if name.isdigit():
        return int(name)
    try:
        return int(signal.Signals[name.upper() if name.upper().startswith("SIG") else "SIG" + name.upper()])
    except KeyError:
        raise click.BadParameter(f"unknown signal {name!r}") from None


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@plain_http_option
@hosts_dir_option
@click.option("--rm", "remove", is_flag=True, help="Remove the container (and its snapshot) when it exits.")
@click.option("--detach", "-d", is_flag=True, help="Start it and return.")
@click.option("--tty", "-t", is_flag=True, help="Give it a terminal.")
@click.option("--env", "-e", multiple=True, help="KEY=VALUE for its environment (repeatable).")
@click.option("--mount", multiple=True, help="type=bind,src=/host,dst=/in,options=rbind:ro (repeatable).")
@click.option("--runtime", default="", help="A runc-compatible binary (default: the daemon's, runpy-oci).")
@click.option("--cwd", default="", help="Working directory in the container.")
@click.option("--user", "-u", "run_user", default="", help="uid[:gid] to run as.")
@click.option("--snapshotter", default="overlayfs", show_default=True, help="Snapshotter for its rootfs.")
@click.argument("ref")
@click.argument("container_id")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def run(session, plain_http, hosts_dir, remove, detach, tty, env, mount, runtime, cwd, run_user, snapshotter, ref,
        container_id, args):
    """Run a container of image REF named CONTAINER_ID (pulled first if missing); exits with its status."""
    if remove and detach:
        raise click.UsageError("--rm and --detach cannot be combined")
    try:
        mounts = [oci.parse_mount(m) for m in mount]
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    reference = parse_reference(ref)
    client = session.client
    try:
        client.images.get(str(reference))
    except errors.NotFound:
        registry = registry_for(reference.host, plain_http, hosts_dir, None, None)
        click.echo(f"Unable to find image '{reference}' locally", err=True)
        pull_image(client.backend, client.namespace, registry, reference, manifests.DEFAULT_PLATFORM, snapshotter,
                   display(out=sys.stderr))
    opts = ContainerOptions(list(args), list(env), mounts, tty, cwd, run_user, runtime, snapshotter)
    client.new_container(container_id, str(reference), opts)
    fifos = None if detach else _stdio_fifos(tty)
    try:
        client.new_task(container_id, fifos.stdio if fifos else Stdio())
        if detach:
            client.tasks.start(container_id)
            status = 0
        else:
            status = _attach_and_wait(client, container_id, "", fifos)
    finally:
        if fifos is not None:
            fifos.close()
        if remove:
            with contextlib.suppress(errors.NotFound):
                client.remove_container(container_id, force=True)
    if detach:
        click.echo(container_id)
    sys.exit(status)


@click.command(name="exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--tty", "-t", is_flag=True, help="Give it a terminal.")
@click.option("--env", "-e", multiple=True, help="KEY=VALUE added to the container's environment (repeatable).")
@click.option("--cwd", default="", help="Working directory (default: the container's).")
@click.option("--exec-id", default="", help="The process's id (default: a random one).")
@click.argument("container_id")
@click.argument("args", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_obj
def exec_(session, tty, env, cwd, exec_id, container_id, args):
    """Run ARGS in the running container CONTAINER_ID; exits with its status."""
    client = session.client
    exec_id = exec_id or f"exec-{os.urandom(6).hex()}"
    fifos = _stdio_fifos(tty)
    try:
        client.exec_process(container_id, exec_id, list(args), fifos.stdio, list(env), cwd)
        sys.exit(_attach_and_wait(client, container_id, exec_id, fifos))
    finally:
        fifos.close()


@click.command(name="ps")
@click.option("--all", "-a", "show_all", is_flag=True, help="Also containers without a running task.")
@click.pass_obj
def ps(session, show_all):
    """List containers with their tasks, like docker ps."""
    client = session.client
    tasks = {p.id: p for p in client.tasks.list()}
    rows = [("CONTAINER ID", "IMAGE", "COMMAND", "PID", "STATUS")]
    for c in sorted(client.containers.list([]), key=lambda c: c.id):
        task = tasks.get(c.id)
        if task is None and not show_all:
            continue
        args = (json.loads(c.spec.value).get("process") or {}).get("args") or [] if c.spec and c.spec.value else []
        status = "Created" if task is None else task.status.capitalize()
        if task is not None and task.status == "stopped":
            status = f"Exited ({task.exit_status})"
        rows.append((c.id, c.image, '"' + " ".join(args)[:30] + '"', str(task.pid) if task else "-", status))
    table(rows)


@click.group()
def tasks():
    """Tasks: the running side of containers."""


@tasks.command(name="ls")
@click.pass_obj
def tasks_ls(session):
    """List tasks with their pids and states."""
    table([("TASK", "PID", "STATUS")] + [(p.id, str(p.pid), p.status.upper()) for p in session.client.tasks.list()])


@click.group()
def containers():
    """Container records."""


@containers.command(name="ls")
@click.option("--quiet", "-q", is_flag=True, help="Print only the container ids.")
@click.pass_obj
def containers_ls(session, quiet):
    """List containers with their images and runtimes."""
    listing(sorted(session.client.containers.list([]), key=lambda c: c.id), quiet, lambda c: c.id,
            ("CONTAINER", "IMAGE", "RUNTIME"), lambda c: (c.id, c.image or "-", c.runtime))


@click.command()
@click.option("--signal", "-s", "sig", default="SIGTERM", show_default=True, help="Name or number of the signal.")
@click.option("--all", "-a", "all_", is_flag=True, help="Signal every process of the container.")
@click.argument("container_ids", nargs=-1, required=True)
@click.pass_obj
def kill(session, sig, all_, container_ids):
    """Send a signal to containers' init processes."""
    number = _signal_number(sig)
    for cid in container_ids:
        session.client.tasks.kill(cid, number, all_)


@click.command()
@click.option("--force", "-f", is_flag=True, help="Kill a running container first.")
@click.argument("container_ids", nargs=-1, required=True)
@click.pass_obj
def rm(session, force, container_ids):
    """Remove containers: task, record and snapshot."""
    for cid in container_ids:
        session.client.remove_container(cid, force)
        click.echo(cid)


@click.command()
@click.argument("filters", nargs=-1)
@click.pass_obj
def events(session, filters):
    """Print events as they happen: time, namespace, topic and the event as JSON."""
    from google.protobuf import json_format, symbol_database

    from ...api.containerd.events import container_pb2, image_pb2, snapshot_pb2, task_pb2  # noqa: F401 - decoders

    with session.client.events.subscribe(list(filters)) as subscription:
        for env in subscription:
            try:
                cls = symbol_database.Default().GetSymbol(env.event.type_url.rsplit("/", 1)[-1])
                body = json_format.MessageToJson(cls.FromString(env.event.value), indent=None)
            except KeyError:
                body = env.event.type_url
            stamp = _EPOCH + datetime.timedelta(microseconds=env.timestamp // 1000)
            click.echo(f"{stamp:%Y-%m-%d %H:%M:%S.%f} {env.namespace} {env.topic} {body}")


COMMANDS = [run, exec_, ps, tasks, containers, kill, rm, events]
