import gc
import sys
import time

from runpy_oci import fastjson
from runpy_oci.cli import root_dir
from runpy_oci.errors import RuntimeFailure, WrongState
from runpy_oci.manage import oom_watch, stats


def run(cmd):
    root, cid = root_dir(cmd), cmd.args[0]
    if cmd.options["stats"]:
        sys.stdout.write(fastjson.dumps(stats(root, cid)) + "\n")
        return
    interval = parse_duration(cmd.options["interval"])
    gc.enable()  # open-ended: collect cycles again (the launcher turned the collector off)
    watch = oom_watch(root, cid)
    try:
        while True:  # runc: a stats event every interval, an oom event when one happens, until it stops
            try:
                _emit(stats(root, cid))
            except WrongState:
                return
            deadline = time.monotonic() + interval
            while (left := deadline - time.monotonic()) > 0:
                if watch is None:
                    time.sleep(left)
                elif watch.wait(min(left, 1.0)):
                    _emit({"type": "oom", "id": cid})
    finally:
        if watch is not None:
            watch.close()


def _emit(event):
    sys.stdout.write(fastjson.dumps(event) + "\n")
    sys.stdout.flush()


def parse_duration(text):
    """Go durations as runc's --interval takes them: "5s", "500ms", "1m"."""
    for unit, scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if text.endswith(unit) and text[:-len(unit)].replace(".", "", 1).isdigit():
            value = float(text[:-len(unit)]) * scale
            if value > 0:
                return value
    raise RuntimeFailure(f"invalid value {text!r} for flag -interval: parse error")
