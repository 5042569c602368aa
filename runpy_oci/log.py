"""runc's (logrus) log lines: ``time="..." level=error msg="..."`` or JSON,
to ``--log`` or stderr. Errors also go to stderr as a plain line when a log
file is set, so a person always sees them. The CLI configures it from its
global flags; core modules (hooks, lsm) log through it too."""
import os
import sys
import time

from runpy_oci import fastjson

_settings = {"log": "", "format": "text", "debug": False}


def configure(globals_):
    _settings["log"] = globals_["log"]
    _settings["format"] = globals_["log_format"]
    _settings["debug"] = globals_["debug"]


def _line(level, msg):
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if _settings["format"] == "json":
        return fastjson.dumps({"level": level, "msg": msg, "time": stamp}) + "\n"
    return f'time="{stamp}" level={level} msg={fastjson.dumps(msg)}\n'


def _emit(level, msg):
    line = _line(level, msg)
    path = _settings["log"]
    if path:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
            return True
        except OSError:
            pass
    sys.stderr.write(line)
    return False


def debug(msg):
    if _settings["debug"]:
        _emit("debug", msg)


def warning(msg):
    _emit("warning", msg)


def fatal(msg):
    if _emit("error", msg):
        sys.stderr.write(msg + "\n")
