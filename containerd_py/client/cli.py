"""`containerd-py-ctl`: a ctr-like client. It talks gRPC to the daemon (ours or
containerd) and, like ctr, does the registry I/O itself, writing through the
daemon's content service; unpacking goes through its snapshots and diff services."""
import json
import os
import sys

import click

from .. import errors
from ..reference import parse as parse_reference
from ..api.containerd.types import task_pb2
from ..remotes.auth import load_docker_config
from ..remotes.hosts import host_config
from ..remotes.registry import Registry
from ..transfer import archive, manifests
from ..transfer.pull import pull as pull_image
from ..transfer.push import push as push_image
from .progress import Display, human
from .remote import Connection, RemoteBackend, RemoteNamespaces, ping

DEFAULT_ADDRESS = "/run/containerd-py/containerd.sock"


class _State:
    def __init__(self, address: str, namespace: str, timeout: float):
        self.address, self.namespace, self.timeout = address, namespace, timeout
        self._conn: Connection | None = None

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            self._conn = Connection(self.address)
            ping(self._conn, self.timeout)
        return self._conn

    @property
    def backend(self) -> RemoteBackend:
        return RemoteBackend(self.conn)


def _display(kinds=frozenset({"layer"})) -> Display:
    return Display(sys.stdout, sys.stdout.isatty(), kinds)


def _registry(host: str, plain_http: bool, hosts_dir: str | None, user: str | None,
              docker_config: str | None) -> Registry:
    if user:
        name, _, password = user.partition(":")
        credentials = (name, password or click.prompt("Password", hide_input=True, err=True))
    else:
        credentials = load_docker_config(docker_config).get(host)
    return Registry(host_config(host, plain_http, hosts_dir), credentials)


def _platform(value: str | None, all_platforms: bool):
    if all_platforms:
        return None
    return manifests.parse_platform(value) if value else manifests.DEFAULT_PLATFORM


_registry_options = [
    click.option("--plain-http", is_flag=True, help="Talk HTTP, not HTTPS, to the registry."),
    click.option("--hosts-dir", type=click.Path(file_okay=False), help="containerd-style certs.d directory "
                 "(<host>/hosts.toml with server, ca, skip_verify)."),
    click.option("--user", "-u", help="user[:password] for the registry (else from the docker config)."),
    click.option("--docker-config", type=click.Path(dir_okay=False),
                 help="docker config.json with credentials (default $DOCKER_CONFIG or ~/.docker)."),
]


def registry_options(fn):
    for option in reversed(_registry_options):
        fn = option(fn)
    return fn


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--address", "-a", envvar="CONTAINERD_ADDRESS", default=DEFAULT_ADDRESS, show_default=True,
              help="The daemon's socket.")
@click.option("--namespace", "-n", envvar="CONTAINERD_NAMESPACE", default="default", show_default=True)
@click.option("--connect-timeout", type=float, default=10, show_default=True, help="Seconds to wait for the daemon.")
@click.pass_context
def cli(ctx, address, namespace, connect_timeout):
    """Images (pull, push, import, export) and containers (run, exec, ps, kill, rm) through a containerd(-py)
    daemon."""
    ctx.obj = _State(address, namespace, connect_timeout)


@cli.command()
@registry_options
@click.option("--platform", help="os/arch[/variant] to pull (default linux/amd64).")
@click.option("--all-platforms", is_flag=True, help="Fetch every platform of an index (unpacks none).")
@click.option("--snapshotter", default="overlayfs", show_default=True)
@click.option("--no-unpack", is_flag=True, help="Only fetch the content.")
@click.argument("ref")
@click.pass_obj
def pull(state, plain_http, hosts_dir, user, docker_config, platform, all_platforms, snapshotter, no_unpack, ref):
    """Fetch an image from a registry, record it and unpack it."""
    reference = parse_reference(ref)
    registry = _registry(reference.host, plain_http, hosts_dir, user, docker_config)
    click.echo(f"{reference.object}: Pulling from {reference.repository}")
    image = pull_image(state.backend, state.namespace, registry, reference, _platform(platform, all_platforms),
                       None if no_unpack else snapshotter, _display())
    click.echo(f"Digest: {image.target.digest}")
    click.echo(f"Status: Downloaded image for {image.name}")


@cli.command()
@registry_options
@click.option("--platform", help="Push only this platform's manifest of an index.")
@click.option("--chunk-size", type=int, default=0, help="Upload blobs in chunks of this many bytes (default: whole).")
@click.argument("remote")
@click.argument("local", required=False)
@click.pass_obj
def push(state, plain_http, hosts_dir, user, docker_config, platform, chunk_size, remote, local):
    """Push the image LOCAL (default: REMOTE) to the registry as REMOTE."""
    reference = parse_reference(remote)
    registry = _registry(reference.host, plain_http, hosts_dir, user, docker_config)
    click.echo(f"The push refers to repository [{reference.name}]")
    desc = push_image(state.backend, state.namespace, registry, reference, local or str(reference),
                      manifests.parse_platform(platform) if platform else None, chunk_size,
                      _display(frozenset({"layer", "config", "manifest", "index"})))
    click.echo(f"{reference.object}: digest: {desc.digest} size: {desc.size}")


@cli.command(name="import")
@click.option("--platform", help="Platform to unpack (default linux/amd64).")
@click.option("--snapshotter", default="overlayfs", show_default=True)
@click.option("--no-unpack", is_flag=True)
@click.argument("file", type=click.File("rb"))
@click.pass_obj
def import_(state, platform, snapshotter, no_unpack, file):
    """Import images from an OCI layout tar or a docker-archive (docker save) tar; '-' reads stdin."""
    images = archive.import_archive(state.backend, state.namespace, file, _platform(platform, False),
                                    None if no_unpack else snapshotter)
    for image in images:
        click.echo(f"{image.name} {image.target.digest}")


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["oci", "docker"]), default="oci", show_default=True,
              help="OCI image layout, or docker save's layout.")
@click.option("--platform", help="Export only this platform (default: every platform present).")
@click.argument("file", type=click.File("wb"))
@click.argument("refs", nargs=-1, required=True)
@click.pass_obj
def export(state, fmt, platform, file, refs):
    """Write the images REFS into the tar FILE ('-' for stdout)."""
    archive.export_archive(state.backend, state.namespace, file, list(refs), fmt,
                           manifests.parse_platform(platform) if platform else None)


@cli.group()
def images():
    """Images in the namespace."""


@images.command(name="ls")
@click.option("--quiet", "-q", is_flag=True)
@click.argument("filters", nargs=-1)
@click.pass_obj
def images_ls(state, quiet, filters):
    backend = state.backend
    rows = [("REF", "TYPE", "DIGEST", "SIZE", "PLATFORMS")]
    for image in backend.images.list(state.namespace, list(filters)):
        if quiet:
            click.echo(image.name)
            continue
        size, platforms = archive.image_summary(backend.content, state.namespace, image.target)
        rows.append((image.name, image.target.media_type, image.target.digest, human(size),
                     ",".join(manifests.format_platform(p) for p in platforms) or "-"))
    if not quiet:
        _table(rows)


@images.command(name="rm")
@click.option("--sync", is_flag=True, help="Wait until the garbage collector has removed what the image held.")
@click.argument("refs", nargs=-1, required=True)
@click.pass_obj
def images_rm(state, sync, refs):
    store = state.backend.images
    for ref in refs:
        store.delete(state.namespace, ref, sync=sync)
        click.echo(ref)


@cli.group()
def content():
    """Blobs in the namespace."""


@content.command(name="ls")
@click.option("--quiet", "-q", is_flag=True)
@click.argument("filters", nargs=-1)
@click.pass_obj
def content_ls(state, quiet, filters):
    infos = state.backend.content.list(state.namespace, list(filters))
    if quiet:
        for info in infos:
            click.echo(info.digest)
        return
    _table([("DIGEST", "SIZE", "LABELS")] + [
        (i.digest, human(i.size), ",".join(f"{k}={v}" for k, v in sorted(i.labels.items())) or "-") for i in infos])


@cli.group()
def snapshots():
    """Snapshots in the namespace."""


@snapshots.command(name="ls")
@click.option("--snapshotter", default="overlayfs", show_default=True)
@click.pass_obj
def snapshots_ls(state, snapshotter):
    infos = state.backend.snapshotter(snapshotter).walk(state.namespace)
    _table([("KEY", "PARENT", "KIND")] + [(i.name, i.parent, i.kind.name.capitalize()) for i in infos])


@cli.group()
def namespaces():
    """Namespaces of the daemon."""


@namespaces.command(name="ls")
@click.option("--quiet", "-q", is_flag=True)
@click.pass_obj
def namespaces_ls(state, quiet):
    found = RemoteNamespaces(state.conn).list()
    if quiet:
        for n in found:
            click.echo(n.name)
        return
    _table([("NAME", "LABELS")] + [(n.name, ",".join(f"{k}={v}" for k, v in sorted(n.labels.items())))
                                   for n in found])


@namespaces.command(name="create")
@click.argument("name")
@click.argument("labels", nargs=-1)
@click.pass_obj
def namespaces_create(state, name, labels):
    pairs = dict(label.partition("=")[::2] for label in labels)
    RemoteNamespaces(state.conn).create(name, pairs)


@namespaces.command(name="rm")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def namespaces_rm(state, names):
    store = RemoteNamespaces(state.conn)
    for name in names:
        store.delete(name)
        click.echo(name)


def _tasks(state):
    from .tasks import Tasks

    return Tasks(state.conn, state.namespace)


def _signal_number(name: str) -> int:
    """SIGKILL, KILL or 9."""
    import signal

    if name.isdigit():
        return int(name)
    try:
        return int(signal.Signals[name.upper() if name.upper().startswith("SIG") else "SIG" + name.upper()])
    except KeyError:
        raise click.BadParameter(f"unknown signal {name!r}") from None


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@_registry_options[0]
@_registry_options[1]
@click.option("--rm", "remove", is_flag=True, help="Remove the container (and its snapshot) when it exits.")
@click.option("--detach", "-d", is_flag=True, help="Start it and return.")
@click.option("--tty", "-t", is_flag=True, help="Give it a terminal.")
@click.option("--env", "-e", multiple=True, help="KEY=VALUE for its environment (repeatable).")
@click.option("--mount", multiple=True, help="type=bind,src=/host,dst=/in,options=rbind:ro (repeatable).")
@click.option("--runtime", default="", help="A runc-compatible binary (default: the daemon's, runpy-oci).")
@click.option("--cwd", default="", help="Working directory in the container.")
@click.option("--user", "-u", "run_user", default="", help="uid[:gid] to run as.")
@click.option("--snapshotter", default="overlayfs", show_default=True)
@click.argument("ref")
@click.argument("container_id")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def run(state, plain_http, hosts_dir, remove, detach, tty, env, mount, runtime, cwd, run_user, snapshotter, ref,
        container_id, args):
    """Run a container of image REF named CONTAINER_ID (pulled first if missing); exits with its status."""
    from . import oci
    from .tasks import RunOptions

    if remove and detach:
        raise click.UsageError("--rm and --detach cannot be combined")
    try:
        mounts = [oci.parse_mount(m) for m in mount]
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    reference = parse_reference(ref)
    try:
        state.backend.images.get(state.namespace, str(reference))
    except errors.NotFound:
        registry = _registry(reference.host, plain_http, hosts_dir, None, None)
        click.echo(f"Unable to find image '{reference}' locally", err=True)
        pull_image(state.backend, state.namespace, registry, reference, manifests.DEFAULT_PLATFORM, snapshotter,
                   Display(sys.stderr, sys.stderr.isatty(), frozenset({"layer"})))
    opts = RunOptions(list(args), list(env), mounts, tty, detach, remove, runtime, snapshotter, cwd, run_user)
    status = _tasks(state).run(str(reference), container_id, opts)
    if detach:
        click.echo(container_id)
    sys.exit(status)


@cli.command(name="exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--tty", "-t", is_flag=True)
@click.option("--env", "-e", multiple=True)
@click.option("--cwd", default="")
@click.option("--exec-id", default="", help="The process's id (default: a random one).")
@click.argument("container_id")
@click.argument("args", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_obj
def exec_(state, tty, env, cwd, exec_id, container_id, args):
    """Run ARGS in the running container CONTAINER_ID; exits with its status."""
    sys.exit(_tasks(state).exec(container_id, exec_id or f"exec-{os.urandom(6).hex()}", list(args), tty,
                                list(env), cwd))


@cli.command(name="ps")
@click.option("--all", "-a", "show_all", is_flag=True, help="Also containers without a running task.")
@click.pass_obj
def ps(state, show_all):
    """List containers with their tasks, like docker ps."""
    from .tasks import STATUS_NAMES

    t = _tasks(state)
    tasks = {p.id: p for p in t.list_tasks()}
    rows = [("CONTAINER ID", "IMAGE", "COMMAND", "PID", "STATUS")]
    for c in sorted(t.list_containers(), key=lambda c: c.id):
        task = tasks.get(c.id)
        if task is None and not show_all:
            continue
        args = (json.loads(c.spec.value).get("process") or {}).get("args") or [] if c.spec.value else []
        status = "Created" if task is None else STATUS_NAMES[task.status].capitalize()
        if task is not None and task.status == task_pb2.STOPPED:
            status = f"Exited ({task.exit_status})"
        rows.append((c.id, c.image, '"' + " ".join(args)[:30] + '"', str(task.pid) if task else "-", status))
    _table(rows)


@cli.group()
def tasks():
    """Tasks: the running side of containers."""


@tasks.command(name="ls")
@click.pass_obj
def tasks_ls(state):
    from .tasks import STATUS_NAMES

    _table([("TASK", "PID", "STATUS")] + [(p.id, str(p.pid), STATUS_NAMES[p.status])
                                          for p in _tasks(state).list_tasks()])


@cli.group()
def containers():
    """Container records."""


@containers.command(name="ls")
@click.option("--quiet", "-q", is_flag=True)
@click.pass_obj
def containers_ls(state, quiet):
    found = sorted(_tasks(state).list_containers(), key=lambda c: c.id)
    if quiet:
        for c in found:
            click.echo(c.id)
        return
    _table([("CONTAINER", "IMAGE", "RUNTIME")] + [(c.id, c.image or "-", c.runtime.name) for c in found])


@cli.command()
@click.option("--signal", "-s", "sig", default="SIGTERM", show_default=True)
@click.option("--all", "-a", "all_", is_flag=True, help="Signal every process of the container.")
@click.argument("container_ids", nargs=-1, required=True)
@click.pass_obj
def kill(state, sig, all_, container_ids):
    """Send a signal to containers' init processes."""
    number = _signal_number(sig)
    for cid in container_ids:
        _tasks(state).kill(cid, number, all_)


@cli.command()
@click.option("--force", "-f", is_flag=True, help="Kill a running container first.")
@click.argument("container_ids", nargs=-1, required=True)
@click.pass_obj
def rm(state, force, container_ids):
    """Remove containers: task, record and snapshot."""
    for cid in container_ids:
        _tasks(state).remove(cid, force)
        click.echo(cid)


@cli.command()
@click.argument("filters", nargs=-1)
@click.pass_obj
def events(state, filters):
    """Print events as they happen: time, namespace, topic and the event as JSON."""
    from google.protobuf import json_format, symbol_database

    from ..api.containerd.events import container_pb2, image_pb2, snapshot_pb2, task_pb2 as _  # noqa: F401 - decoders

    for env in _tasks(state).events(list(filters)):
        try:
            cls = symbol_database.Default().GetSymbol(env.event.type_url.rsplit("/", 1)[-1])
            body = json_format.MessageToJson(cls.FromString(env.event.value), indent=None)
        except KeyError:
            body = env.event.type_url
        stamp = env.timestamp.ToDatetime().strftime("%Y-%m-%d %H:%M:%S.%f")
        click.echo(f"{stamp} {env.namespace} {env.topic} {body}")


def _table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="containerd-py-ctl", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted!", err=True)
        return 1
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except errors.Error as e:
        click.echo(f"containerd-py-ctl: {e}", err=True)
        return 1
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0
