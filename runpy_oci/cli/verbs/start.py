from runpy_oci.cli import root_dir
from runpy_oci.lifecycle import start


def run(cmd):
    start(root_dir(cmd), cmd.args[0])
