from runpy_oci.cli import root_dir
from runpy_oci.lifecycle import kill, parse_signal


def run(cmd):
    sig = parse_signal(cmd.args[1] if len(cmd.args) > 1 else "SIGTERM")
    kill(root_dir(cmd), cmd.args[0], sig, all_processes=cmd.options["all"])
