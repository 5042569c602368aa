"""Images and what they are made of: pull, push, import, export; images,
content and snapshots listings. Registry I/O happens here, in the client, as
ctr does it, writing through the daemon's content service."""
import sys

import click

from ...reference import parse as parse_reference
from ...remotes.auth import load_docker_config
from ...remotes.hosts import host_config
from ...remotes.registry import Registry
from ...transfer import archive, manifests
from ...transfer.pull import pull as pull_image
from ...transfer.push import push as push_image
from .progress import Display, human
from .session import labels_text, listing, table


def display(kinds=frozenset({"layer"}), out=None) -> Display:
    out = out or sys.stdout
    return Display(out, out.isatty(), kinds)


def registry_for(host: str, plain_http: bool, hosts_dir: str | None, user: str | None,
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


plain_http_option = click.option("--plain-http", is_flag=True, help="Talk HTTP, not HTTPS, to the registry.")
hosts_dir_option = click.option("--hosts-dir", type=click.Path(file_okay=False), help="containerd-style certs.d "
                                "directory (<host>/hosts.toml with server, ca, skip_verify).")
_registry_options = [
    plain_http_option, hosts_dir_option,
    click.option("--user", "-u", help="user[:password] for the registry (else from the docker config)."),
    click.option("--docker-config", type=click.Path(dir_okay=False),
                 help="docker config.json with credentials (default $DOCKER_CONFIG or ~/.docker)."),
]


def registry_options(fn):
    for option in reversed(_registry_options):
        fn = option(fn)
    return fn


@click.command()
@registry_options
@click.option("--platform", help="os/arch[/variant] to pull (default linux/amd64).")
@click.option("--all-platforms", is_flag=True, help="Fetch every platform of an index (unpacks none).")
@click.option("--snapshotter", default="overlayfs", show_default=True, help="Snapshotter to unpack into.")
@click.option("--no-unpack", is_flag=True, help="Only fetch the content.")
@click.argument("ref")
@click.pass_obj
def pull(session, plain_http, hosts_dir, user, docker_config, platform, all_platforms, snapshotter, no_unpack, ref):
    """Fetch an image from a registry, record it and unpack it."""
    reference = parse_reference(ref)
    registry = registry_for(reference.host, plain_http, hosts_dir, user, docker_config)
    click.echo(f"{reference.object}: Pulling from {reference.repository}")
    client = session.client
    image = pull_image(client.backend, client.namespace, registry, reference, _platform(platform, all_platforms),
                       None if no_unpack else snapshotter, display())
    click.echo(f"Digest: {image.target.digest}")
    click.echo(f"Status: Downloaded image for {image.name}")


@click.command()
@registry_options
@click.option("--platform", help="Push only this platform's manifest of an index.")
@click.option("--chunk-size", type=int, default=0, help="Upload blobs in chunks of this many bytes (default: whole).")
@click.argument("remote")
@click.argument("local", required=False)
@click.pass_obj
def push(session, plain_http, hosts_dir, user, docker_config, platform, chunk_size, remote, local):
    """Push the image LOCAL (default: REMOTE) to the registry as REMOTE."""
    reference = parse_reference(remote)
    registry = registry_for(reference.host, plain_http, hosts_dir, user, docker_config)
    click.echo(f"The push refers to repository [{reference.name}]")
    client = session.client
    desc = push_image(client.backend, client.namespace, registry, reference, local or str(reference),
                      manifests.parse_platform(platform) if platform else None, chunk_size,
                      display(frozenset({"layer", "config", "manifest", "index"})))
    click.echo(f"{reference.object}: digest: {desc.digest} size: {desc.size}")


@click.command(name="import")
@click.option("--platform", help="Platform to unpack (default linux/amd64).")
@click.option("--snapshotter", default="overlayfs", show_default=True, help="Snapshotter to unpack into.")
@click.option("--no-unpack", is_flag=True, help="Only store the content.")
@click.argument("file", type=click.File("rb"))
@click.pass_obj
def import_(session, platform, snapshotter, no_unpack, file):
    """Import images from an OCI layout tar or a docker-archive (docker save) tar; '-' reads stdin."""
    client = session.client
    images = archive.import_archive(client.backend, client.namespace, file, _platform(platform, False),
                                    None if no_unpack else snapshotter)
    for image in images:
        click.echo(f"{image.name} {image.target.digest}")


@click.command()
@click.option("--format", "fmt", type=click.Choice(["oci", "docker"]), default="oci", show_default=True,
              help="OCI image layout, or docker save's layout.")
@click.option("--platform", help="Export only this platform (default: every platform present).")
@click.argument("file", type=click.File("wb"))
@click.argument("refs", nargs=-1, required=True)
@click.pass_obj
def export(session, fmt, platform, file, refs):
    """Write the images REFS into the tar FILE ('-' for stdout)."""
    client = session.client
    archive.export_archive(client.backend, client.namespace, file, list(refs), fmt,
                           manifests.parse_platform(platform) if platform else None)


@click.group()
def images():
    """Images in the namespace."""


@images.command(name="ls")
@click.option("--quiet", "-q", is_flag=True, help="Print only the image names.")
@click.argument("filters", nargs=-1)
@click.pass_obj
def images_ls(session, quiet, filters):
    """List images (FILTERS: containerd's filter syntax, e.g. name~=busybox)."""
    client = session.client

    def row(image):
        size, platforms = archive.image_summary(client.backend.content, client.namespace, image.target)
        return (image.name, image.target.media_type, image.target.digest, human(size),
                ",".join(manifests.format_platform(p) for p in platforms) or "-")
    listing(client.images.list(list(filters)), quiet, lambda i: i.name, ("REF", "TYPE", "DIGEST", "SIZE", "PLATFORMS"),
            row)


@images.command(name="rm")
@click.option("--sync", is_flag=True, help="Wait until the garbage collector has removed what the image held.")
@click.argument("refs", nargs=-1, required=True)
@click.pass_obj
def images_rm(session, sync, refs):
    """Remove images by name."""
    for ref in refs:
        session.client.images.delete(ref, sync=sync)
        click.echo(ref)


@click.group()
def content():
    """Blobs in the namespace."""


@content.command(name="ls")
@click.option("--quiet", "-q", is_flag=True, help="Print only the digests.")
@click.argument("filters", nargs=-1)
@click.pass_obj
def content_ls(session, quiet, filters):
    """List blobs with their sizes and labels."""
    listing(session.client.content.list(list(filters)), quiet, lambda i: i.digest, ("DIGEST", "SIZE", "LABELS"),
            lambda i: (i.digest, human(i.size), labels_text(i.labels) or "-"))


@click.group()
def snapshots():
    """Snapshots in the namespace."""


@snapshots.command(name="ls")
@click.option("--snapshotter", default="overlayfs", show_default=True, help="Snapshotter to list.")
@click.pass_obj
def snapshots_ls(session, snapshotter):
    """List snapshots with their parents and kinds."""
    infos = session.client.snapshots(snapshotter).walk()
    table([("KEY", "PARENT", "KIND")] + [(i.name, i.parent, i.kind.name.capitalize()) for i in infos])


COMMANDS = [pull, push, import_, export, images, content, snapshots]
