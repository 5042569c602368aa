"""Container logs in docker's json-file format, written by a small C program
beside each container (logger.c) and read back here (jsonfile.py); see
DESIGN.md for why the engine itself never copies a container's output."""
import os
import re
from urllib.parse import quote, urlencode

BINARY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "engine-py-logger")

JSON_FILE_OPTS = ("max-file", "max-size", "compress", "labels", "labels-regex", "env", "env-regex", "tag")
_HUMAN_SIZE = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_DECIMAL = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}


def log_path(containers_dir: str, container_id: str) -> str:
    """Where dockerd keeps a container's json-file log."""
    return os.path.join(containers_dir, container_id, f"{container_id}-json.log")


def _human_size(text: str) -> int:
    """docker/go-units FromHumanSize: decimal multiples, as json-file's max-size."""
    m = _HUMAN_SIZE.match(text)
    if not m:
        raise ValueError(f"invalid size: '{text}'")
    return int(float(m.group(1)) * _DECIMAL[(m.group(2) or "").lower()])


def rotation(opts: dict[str, str]) -> tuple[int, int]:
    """(max size in bytes, 0 for none; max files) from json-file's log-opts,
    refused with dockerd's messages."""
    for key in opts:
        if key not in JSON_FILE_OPTS:
            raise ValueError(f"unknown log opt '{key}' for json-file log driver")
    max_size, max_file = 0, 1
    if "max-size" in opts:
        max_size = _human_size(opts["max-size"])
        if max_size <= 0:
            raise ValueError("max-size must be a positive number")
    if "max-file" in opts:
        try:
            max_file = int(opts["max-file"])
        except ValueError:
            raise ValueError(f'strconv.Atoi: parsing "{opts["max-file"]}": invalid syntax') from None
        if max_file < 1:
            raise ValueError("max-file cannot be less than 1")
    return max_size, max_file


def logger_options(path: str, max_size: int = 0, max_file: int = 1, flush_partial: bool = False) -> dict[str, str]:
    """The logger's key/value arguments. ``flush_partial`` (interactive
    containers): what comes is written at once, an unfinished line as a
    partial entry."""
    options = {"path": path, "max-size": str(max_size), "max-file": str(max_file)}
    if flush_partial:
        options["flush-partial"] = "1"
    return options


def log_uri(path: str, max_size: int = 0, max_file: int = 1, flush_partial: bool = False) -> str:
    """The task IO's `binary://` URI: containerd's shim starts the logger with
    the container's stdout and stderr, and the query as its arguments."""
    return f"binary://{quote(BINARY)}?{urlencode(logger_options(path, max_size, max_file, flush_partial))}"
