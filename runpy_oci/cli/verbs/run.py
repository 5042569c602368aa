from runpy_oci.cli import root_dir
from runpy_oci.cli.verbs.create import options
from runpy_oci.run import run as run_container


def run(cmd):
    return run_container(root_dir(cmd), cmd.args[0], options(cmd, detach=cmd.options["detach"]))
