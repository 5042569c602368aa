"""`containerd-py-ctl`: a ctr-like command line over the client library, for
containerd-py or containerd. Each command module holds one area; this one the
global options and the exit statuses."""
import os
import sys

import click

from ... import __version__, errors
from . import images, leases, namespaces, run
from .session import Session

DEFAULT_ADDRESS = "/run/containerd-py/containerd.sock"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--address", "-a", envvar="CONTAINERD_ADDRESS", default=DEFAULT_ADDRESS, show_default=True,
              help="The daemon's socket.")
@click.option("--namespace", "-n", envvar="CONTAINERD_NAMESPACE", default="default", show_default=True,
              help="The namespace of images, containers and the rest.")
@click.option("--connect-timeout", type=float, default=10, show_default=True, help="Seconds to wait for the daemon.")
@click.version_option(__version__, "--version", "-v", prog_name="containerd-py-ctl", message="%(prog)s %(version)s",
                      help="Print the version.")
@click.pass_context
def cli(ctx, address, namespace, connect_timeout):
    """Images (pull, push, import, export) and containers (run, exec, ps, kill, rm) through a containerd(-py)
    daemon."""
    ctx.obj = Session(address, namespace, connect_timeout)


for _command in images.COMMANDS + run.COMMANDS + namespaces.COMMANDS + leases.COMMANDS:
    cli.add_command(_command)


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
