"""runpy-oci's entry point: parse with the fast table-driven parser, run the
verb, turn RuntimeFailure into runc's error output and exit status 1."""
import os
import sys

from runpy_oci import log
from runpy_oci.cli.table import NeedsHelp, ShowVersion, UsageError, parse
from runpy_oci.errors import RuntimeFailure


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        cmd = parse(argv)
    except NeedsHelp:
        from runpy_oci.cli.human import run_click

        return run_click(argv)
    except ShowVersion:
        from runpy_oci.state import OCI_VERSION

        v = sys.version_info
        sys.stdout.write(f"runpy-oci version 0.1.0\nspec: {OCI_VERSION}\npython: {v[0]}.{v[1]}.{v[2]}\n")
        return 0
    except UsageError as e:
        sys.stderr.write(f"runpy-oci: {e}\n")
        return 1
    log.configure(cmd.globals)
    module = __import__(f"runpy_oci.cli.verbs.{cmd.verb.name}", fromlist=["run"])
    try:
        return module.run(cmd) or 0
    except RuntimeFailure as e:
        log.fatal(str(e))
        return 1
    except OSError as e:
        log.fatal(f"{e.strerror}: {e.filename}" if e.filename else str(e))
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        sys.stdout.flush()


def root_dir(cmd):
    return os.path.abspath(cmd.globals["root"])
