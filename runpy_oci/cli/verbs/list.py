import sys

from runpy_oci import fastjson
from runpy_oci.cli import root_dir
from runpy_oci.errors import RuntimeFailure
from runpy_oci.lifecycle import list_containers

_COLUMNS = ("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")


def run(cmd):
    states = list_containers(root_dir(cmd))
    fmt = cmd.options["format"]
    if cmd.options["quiet"]:
        sys.stdout.write("".join(s["id"] + "\n" for s in states))
    elif fmt == "json":
        sys.stdout.write(fastjson.dumps(states) + "\n" if states else "null\n")
    elif fmt == "table":
        rows = [_COLUMNS] + [
            (s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"], s["owner"]) for s in states
        ]
        sys.stdout.write(_tabulate(rows))
    else:
        raise RuntimeFailure(f"invalid format option {fmt!r}")


def _tabulate(rows):
    """Go's tabwriter as runc sets it up: min width 12, padding 3."""
    widths = [max(12, max(len(r[i]) for r in rows) + 3) for i in range(len(rows[0]) - 1)]
    out = []
    for r in rows:
        out.append("".join(cell.ljust(w) for cell, w in zip(r, widths)) + r[-1] + "\n")
    return "".join(out)
