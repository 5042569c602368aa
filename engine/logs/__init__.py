"""Container logs in docker's json-file format (or its local driver's,
local.py), written by a small C program beside each container (logger.c)
and read back here (jsonfile.py); see DESIGN.md for why the engine itself
never copies a container's output."""
import os
import re
from typing import NamedTuple
from urllib.parse import quote, urlencode

BINARY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "engine-py-logger")

JSON_FILE, LOCAL = "json-file", "local"
JSON_FILE_OPTS = ("max-file", "max-size", "compress", "labels", "labels-regex", "env", "env-regex", "tag")
LOCAL_OPTS = ("max-file", "max-size", "compress")
_HUMAN_SIZE = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_DECIMAL = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}
_GO_BOOLS = {**dict.fromkeys(("1", "t", "T", "true", "TRUE", "True"), True),
             **dict.fromkeys(("0", "f", "F", "false", "FALSE", "False"), False)}


class FileConfig(NamedTuple):
    """How the logger rotates a log: max_size in bytes (0: never), max_file
    files in all, the rotated ones gzipped with compress."""
    max_size: int = 0
    max_file: int = 1
    compress: bool = False


def log_path(containers_dir: str, container_id: str) -> str:
    """Where dockerd keeps a container's json-file log."""
    return os.path.join(containers_dir, container_id, f"{container_id}-json.log")


def local_log_path(containers_dir: str, container_id: str) -> str:
    """Where dockerd's local driver keeps a container's log (not shown as LogPath)."""
    return os.path.join(containers_dir, container_id, "local-logs", "container.log")


def _human_size(text: str) -> int:
    """docker/go-units FromHumanSize: decimal multiples, as json-file's max-size."""
    m = _HUMAN_SIZE.match(text)
    if not m:
        raise ValueError(f"invalid size: '{text}'")
    return int(float(m.group(1)) * _DECIMAL[(m.group(2) or "").lower()])


def _atoi(text: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", text):
        raise ValueError(f'strconv.Atoi: parsing "{text}": invalid syntax')
    return int(text)


def _parse_bool(text: str) -> bool:
    if text not in _GO_BOOLS:
        raise ValueError(f'strconv.ParseBool: parsing "{text}": invalid syntax')
    return _GO_BOOLS[text]


def validate_opts(driver: str, opts: dict[str, str]) -> None:
    """The drivers' ValidateLogOpt (at create, and for the daemon's default
    at its start): only the keys; their values are the start's business."""
    known, words = (JSON_FILE_OPTS, "for json-file log driver") if driver == JSON_FILE else \
        (LOCAL_OPTS, "for log driver local")
    for key in opts:
        if key not in known:
            raise ValueError(f"unknown log opt '{key}' {words}")


def file_config(driver: str, opts: dict[str, str]) -> FileConfig:
    """The rotation a driver's options ask for, read as dockerd's json-file or
    local driver reads them when the container starts; ValueError with
    dockerd 20.10's message otherwise."""
    return _json_file_config(opts) if driver == JSON_FILE else _local_config(opts)


def _local_value(opts: dict[str, str], key: str, parse, default, wording: str):
    """The local driver's option ``key`` parsed (``default`` when absent); its
    error worded as dockerd's local driver words it."""
    if key not in opts:
        return default
    try:
        return parse(opts[key])
    except ValueError as err:
        raise ValueError(wording.format(value=opts[key], err=err)) from None


def _json_file_config(opts: dict[str, str]) -> FileConfig:
    max_size, max_file, compress = 0, 1, False
    if "max-size" in opts:
        max_size = _human_size(opts["max-size"])
        if max_size <= 0:
            raise ValueError("max-size must be a positive number")
    if "max-file" in opts:
        max_file = _atoi(opts["max-file"])
        if max_file < 1:
            raise ValueError("max-file cannot be less than 1")
    if "compress" in opts:
        compress = _parse_bool(opts["compress"])
        if compress and (max_file == 1 or "max-size" not in opts):
            raise ValueError("compress cannot be true when max-file is less than 2 or max-size is not set")
    return FileConfig(max_size, max_file, compress)


def _local_config(opts: dict[str, str]) -> FileConfig:
    """The local driver's: 20 MiB, 5 files, compressed unless said otherwise.
    A max-size of 0 rotates before every entry, as dockerd's does (1 byte
    here: the logger's 0 never rotates); max-file 0 is one file."""
    max_size = _local_value(opts, "max-size", _human_size, 20 << 20, "invalid value for max-size: {value}: {err}")
    max_file = _local_value(opts, "max-file", _atoi, 5, "invalid value for max-file: {value}: {err}")
    compress = _local_value(opts, "compress", _parse_bool, True, "error reading compress log option: {err}")
    if max_file < 0:
        raise ValueError("max file count cannot be less than 0")
    if compress and max_file <= 1:
        raise ValueError("compression cannot be enabled when max file count is 1")
    return FileConfig(max(max_size, 1), max(max_file, 1), compress)


def logger_options(path: str, rotation: FileConfig = FileConfig(), driver: str = JSON_FILE,
                   flush_partial: bool = False) -> dict[str, str]:
    """The logger's key/value arguments. ``flush_partial`` (interactive
    containers): what comes is written at once, an unfinished line as a
    partial entry."""
    options = {"path": path, "max-size": str(rotation.max_size), "max-file": str(rotation.max_file)}
    if rotation.compress:
        options["compress"] = "1"
    if driver == LOCAL:
        options["format"] = LOCAL
    if flush_partial:
        options["flush-partial"] = "1"
    return options


def log_uri(path: str, rotation: FileConfig = FileConfig(), driver: str = JSON_FILE,
            flush_partial: bool = False) -> str:
    """The task IO's `binary://` URI: containerd's shim starts the logger with
    the container's stdout and stderr, and the query as its arguments."""
    return f"binary://{quote(BINARY)}?{urlencode(logger_options(path, rotation, driver, flush_partial))}"
