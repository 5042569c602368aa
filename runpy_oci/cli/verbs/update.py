import sys

from runpy_oci.cli import root_dir
from runpy_oci.cli.table import UPDATE_FIELDS
from runpy_oci.manage import update, update_resources


def run(cmd):
    document = None
    path = cmd.options["resources"]
    if path:
        if path == "-":
            document = sys.stdin.read()
        else:
            with open(path) as f:
                document = f.read()
    settings = [(flag, section, key, cmd.options[flag.replace("-", "_")])
                for flag, (section, key, _) in UPDATE_FIELDS.items() if cmd.options[flag.replace("-", "_")]]
    update(root_dir(cmd), cmd.args[0], update_resources(settings, document))
