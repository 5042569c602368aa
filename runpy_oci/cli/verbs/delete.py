from runpy_oci.cli import root_dir
from runpy_oci.lifecycle import delete


def run(cmd):
    delete(root_dir(cmd), cmd.args[0], force=cmd.options["force"])
