"""What every command gets: the client (connected on first use, so `--help`
needs no daemon) and the listings ctr prints."""
from collections.abc import Callable, Iterable

import click

from ..client import Client


class Session:
    def __init__(self, address: str, namespace: str, timeout: float):
        self.address, self.namespace, self.timeout = address, namespace, timeout
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(self.address, self.namespace, self.timeout)
        return self._client


def table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def listing(items: Iterable, quiet: bool, key: Callable, header: tuple[str, ...], row: Callable) -> None:
    """The items' keys alone, one a line, with --quiet; a table otherwise."""
    if quiet:
        for item in items:
            click.echo(key(item))
    else:
        table([header] + [row(item) for item in items])


def labels_text(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
