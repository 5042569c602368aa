"""The click face of runpy-oci, for people: help texts and the list of verbs,
generated from the same table the fast parser uses, so the two cannot drift.
A verb run through here is handed back to the fast path."""
import click

from runpy_oci.cli.table import GLOBAL_FLAGS, VERBS


def _option(flag):
    """As runc shows it: ``--memory value``, not click's type names."""
    decls = [f"--{flag.name}"] + ([f"-{flag.short}"] if flag.short else [])
    if flag.kind == "bool":
        return click.Option(decls, is_flag=True, default=False, help=flag.help)
    if flag.kind == "list":
        return click.Option(decls, multiple=True, metavar="value", help=flag.help)
    return click.Option(decls, type=int if flag.kind == "int" else str, default=flag.default, metavar="value",
                        show_default=flag.default not in (None, ""), help=flag.help)


def _show_version(ctx, _param, value):
    if value:
        from runpy_oci.cli import version_text

        click.echo(version_text(), nl=False)
        ctx.exit()


def _verb_command(verb, argv):
    def callback(**_):
        # Only reached when click accepted what the fast parser did not
        # (e.g. `help VERB`-like spellings); hand the words back to it.
        from runpy_oci.cli import main

        raise SystemExit(main([a for a in argv if a != "help"]))

    params = [_option(f) for f in verb.flags]
    params += [click.Argument([a.strip("<>[]").replace("-", "_")], required=not a.startswith("["))
               for a in verb.args]
    return click.Command(verb.name, params=params, callback=callback, help=verb.help)


def build(argv):
    version = click.Option(["--version", "-v"], is_flag=True, expose_value=False, is_eager=True,
                           callback=_show_version, help="print the version")
    group = click.Group(
        "runpy-oci",
        params=[_option(f) for f in GLOBAL_FLAGS] + [version],
        help="runpy-oci is an OCI runtime with runc's command line: it runs containers "
             "from bundles (a rootfs plus config.json).",
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    for verb in VERBS.values():
        group.add_command(_verb_command(verb, argv))
    return group


def run_click(argv):
    """Show help, or click's own message for an unknown verb."""
    if argv[:1] == ["help"]:
        argv = argv[1:] + ["--help"]
    app = build(argv)
    try:
        app.main(args=argv, prog_name="runpy-oci", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as e:
        click.echo(e.ctx.get_help())
        return 0
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.exceptions.Exit as e:
        return e.exit_code
    except SystemExit as e:
        return e.code
    return 0
