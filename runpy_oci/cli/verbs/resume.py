from runpy_oci.cli import root_dir
from runpy_oci.manage import resume


def run(cmd):
    resume(root_dir(cmd), cmd.args[0])
