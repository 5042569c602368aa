import subprocess
import sys

from runpy_oci import fastjson
from runpy_oci.cli import root_dir
from runpy_oci.errors import RuntimeFailure
from runpy_oci.manage import pids


def run(cmd):
    found = pids(root_dir(cmd), cmd.args[0])
    fmt = cmd.options["format"]
    if fmt == "json":
        sys.stdout.write(fastjson.dumps(found) + "\n")
        return
    if fmt != "table":
        raise RuntimeFailure(f"invalid format option {fmt!r}")
    sys.stdout.write(ps_table(cmd.args[1:] or ["-ef"], found))


def ps_table(ps_args, wanted):
    """``ps ARGS`` filtered to the container's pids, header kept (as runc does)."""
    out = subprocess.run(["ps", *ps_args], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeFailure(f"ps: {out.stderr.strip()}")
    lines = out.stdout.splitlines()
    if not lines:
        return ""
    header = lines[0].split()
    if "PID" not in header:
        raise RuntimeFailure("couldn't find PID field in ps output")
    column = header.index("PID")
    keep = [lines[0]] + [line for line in lines[1:]
                         if len(line.split()) > column and line.split()[column].isdigit()
                         and int(line.split()[column]) in wanted]
    return "".join(line + "\n" for line in keep)
