"""Leases: what they hold survives garbage collection until they end."""
import datetime
import re

import click

from ...transfer.backend import expiry_label
from .session import labels_text, listing

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?)(h|m|s|ms|us|ns)")
_UNIT_SECONDS = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def _duration(text: str) -> datetime.timedelta:
    """A Go duration, as ctr's flags take it: 24h, 1h30m, 90s; 0 for none."""
    if text == "0":
        return datetime.timedelta(0)
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise click.BadParameter(f"invalid duration {text!r}")
    return datetime.timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u] for n, u in parts))


@click.group()
def leases():
    """Leases in the namespace."""


@leases.command(name="create")
@click.option("--id", "lease_id", default="", help="The lease's id (default: one the daemon makes up).")
@click.option("--expires", "-x", default="24h", show_default=True,
              help="When the lease ends by itself, as a duration (0: never).")
@click.argument("labels", nargs=-1)
@click.pass_obj
def leases_create(session, lease_id, expires, labels):
    """Create a lease with LABELS (KEY=VALUE ...); prints its id."""
    pairs = dict(label.partition("=")[::2] for label in labels)
    after = _duration(expires)
    if after:
        pairs.update(expiry_label(after))
    click.echo(session.client.leases.create(lease_id, pairs).id)


@leases.command(name="ls")
@click.option("--quiet", "-q", is_flag=True, help="Print only the ids.")
@click.argument("filters", nargs=-1)
@click.pass_obj
def leases_ls(session, quiet, filters):
    """List leases with their creation times and labels."""
    def row(lease):
        created = datetime.datetime.fromtimestamp(lease.created_at // 1_000_000_000, datetime.timezone.utc)
        return lease.id, created.strftime("%Y-%m-%dT%H:%M:%SZ"), labels_text(lease.labels) or "-"
    listing(session.client.leases.list(list(filters)), quiet, lambda lease: lease.id, ("ID", "CREATED AT", "LABELS"),
            row)


@leases.command(name="rm")
@click.option("--sync", is_flag=True, help="Wait until the garbage collector has removed what the lease held.")
@click.argument("lease_ids", nargs=-1, required=True)
@click.pass_obj
def leases_rm(session, sync, lease_ids):
    """End leases."""
    for lease_id in lease_ids:
        session.client.leases.delete(lease_id, sync=sync)
        click.echo(lease_id)


COMMANDS = [leases]
