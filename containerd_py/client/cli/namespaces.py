"""Namespaces of the daemon."""
import click

from .session import labels_text, listing


@click.group()
def namespaces():
    """Namespaces of the daemon."""


@namespaces.command(name="ls")
@click.option("--quiet", "-q", is_flag=True, help="Print only the names.")
@click.pass_obj
def namespaces_ls(session, quiet):
    """List namespaces with their labels."""
    listing(session.client.namespaces.list(), quiet, lambda n: n.name, ("NAME", "LABELS"),
            lambda n: (n.name, labels_text(n.labels)))


@namespaces.command(name="create")
@click.argument("name")
@click.argument("labels", nargs=-1)
@click.pass_obj
def namespaces_create(session, name, labels):
    """Create the namespace NAME with LABELS (KEY=VALUE ...)."""
    session.client.namespaces.create(name, dict(label.partition("=")[::2] for label in labels))


@namespaces.command(name="rm")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def namespaces_rm(session, names):
    """Remove empty namespaces."""
    for name in names:
        session.client.namespaces.delete(name)
        click.echo(name)


COMMANDS = [namespaces]
