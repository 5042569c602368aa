from runpy_oci.cli import root_dir
from runpy_oci.manage import pause


def run(cmd):
    pause(root_dir(cmd), cmd.args[0])
