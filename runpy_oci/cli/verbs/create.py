from runpy_oci.cli import root_dir
from runpy_oci.create import CreateOptions, create


def options(cmd, detach=True):
    o = cmd.options
    return CreateOptions(
        bundle=o["bundle"], pid_file=o["pid_file"], console_socket=o["console_socket"],
        no_pivot=o["no_pivot"], preserve_fds=o["preserve_fds"], detach=detach,
    )


def run(cmd):
    create(root_dir(cmd), cmd.args[0], options(cmd)).close()
