"""What every command gets: the client (connected on first use, so `--help`
needs no daemon) and the table output ctr prints."""
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
