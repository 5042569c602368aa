"""Times as docker's clients give them (moby api/types/time.GetTimestamp):
for `events --since/--until`, `logs --since/--until` and prune's `until`
filter — a Go duration before now ("10m", "1h30m"), an RFC 3339 date or
date-time (local time when it has no zone), or Unix seconds with an optional
fraction."""
import datetime
import re
import time

from engine.errors import InvalidParameter

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_UNIX = re.compile(r"^(\d+)(?:\.(\d{1,9}))?$")
_NS_UNITS = (("h", 3600 * 10**9), ("m", 60 * 10**9))


def parse_duration(text: str) -> int | None:
    """Go's time.ParseDuration in nanoseconds, or None when ``text`` is not one."""
    sign, body = (-1, text[1:]) if text.startswith("-") else (1, text.lstrip("+"))
    if body == "0":
        return 0
    pos, total = 0, 0
    for m in _DURATION_PART.finditer(body):
        if m.start() != pos:
            return None
        total += int(float(m[1]) * _UNIT_NS[m[2]])
        pos = m.end()
    return sign * total if pos == len(body) and body else None


def go_duration(ns: int) -> str:
    """Go's time.Duration.String(): 0s, 1.5s, 100ms, 5m0s, 1h0m0s."""
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < 10**9:
        for unit, size in (("ms", 10**6), ("µs", 10**3), ("ns", 1)):
            if ns >= size:
                return sign + _decimal(ns, size) + unit
    text = ""
    for unit, size in _NS_UNITS:
        if ns >= size or text:
            text += f"{ns // size}{unit}"
            ns %= size
    return sign + text + _decimal(ns, 10**9) + "s"


def _decimal(value: int, unit: int) -> str:
    whole, fraction = divmod(value, unit)
    digits = str(fraction).rjust(len(str(unit)) - 1, "0").rstrip("0") if fraction else ""
    return f"{whole}.{digits}" if digits else str(whole)


def timestamp_ns(value: str, now_ns: int | None = None) -> int:
    """The time ``value`` names, in nanoseconds since the epoch."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    duration = parse_duration(value)
    if duration is not None:
        return now_ns - duration
    m = _UNIX.match(value)
    if m:
        return int(m[1]) * 10**9 + int((m[2] or "0").ljust(9, "0"))
    text = value.replace("Z", "+00:00").replace("z", "+00:00")
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidParameter(f'failed to parse value as time or duration: "{value}"') from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # local time, as docker takes a date without a zone
    return int(moment.timestamp()) * 10**9 + moment.microsecond * 1000
