import sys
import time

from runpy_oci import fastjson
from runpy_oci.cli import root_dir
from runpy_oci.errors import RuntimeFailure, WrongState
from runpy_oci.manage import stats


def run(cmd):
    root, cid = root_dir(cmd), cmd.args[0]
    if cmd.options["stats"]:
        sys.stdout.write(fastjson.dumps(stats(root, cid)) + "\n")
        return
    interval = parse_duration(cmd.options["interval"])
    while True:  # runc: a stats event every interval until the container stops
        try:
            event = stats(root, cid)
        except WrongState:
            return
        sys.stdout.write(fastjson.dumps(event) + "\n")
        sys.stdout.flush()
        time.sleep(interval)


def parse_duration(text):
    """Go durations as runc's --interval takes them: "5s", "500ms", "1m"."""
    for unit, scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if text.endswith(unit) and text[:-len(unit)].replace(".", "", 1).isdigit():
            value = float(text[:-len(unit)]) * scale
            if value > 0:
                return value
    raise RuntimeFailure(f"invalid value {text!r} for flag -interval: parse error")
