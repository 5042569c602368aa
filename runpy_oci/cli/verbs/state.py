import sys

from runpy_oci import fastjson
from runpy_oci.cli import root_dir
from runpy_oci.lifecycle import state


def run(cmd):
    # runc prints the state without a trailing newline; so do we.
    sys.stdout.write(fastjson.dumps(state(root_dir(cmd), cmd.args[0]), indent=2))
