"""A record as one entry of ``GET /containers/json``: dockerd's keys and
its human Status ("Up 5 minutes", "Exited (0) 3 seconds ago"), which
``docker ps`` prints as it comes.

A list is encoded from each record's entry kept as JSON around its Status
(the one part that changes with the clock): docker-compose polls the list
many times a second, and encoding every entry anew was most of its cost.
An entry is encoded again when the record was saved since, as dockerd's ps
reads the snapshot each checkpoint leaves in its in-memory view."""
import time

from engine import gojson
from engine.store.record import Container, State, endpoints, parse_go_time


def human_duration(seconds: float) -> str:
    """go-units' HumanDuration, the words of ``docker ps``'s STATUS column."""
    whole = int(seconds)
    if whole < 1:
        return "Less than a second"
    if whole == 1:
        return "1 second"
    if whole < 60:
        return f"{whole} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def status_text(state: State, now_ns: int) -> str:
    """dockerd's State.String()."""
    def since(stamp):
        return human_duration((now_ns - parse_go_time(stamp)) / 1e9)

    if state.running:
        if state.paused:
            return f"Up {since(state.started_at)} (Paused)"
        if state.restarting:
            return f"Restarting ({state.exit_code}) {since(state.finished_at)} ago"
        if state.health:
            health = state.health_status
            return f"Up {since(state.started_at)} ({'health: starting' if health == 'starting' else health})"
        return f"Up {since(state.started_at)}"
    if state.removal_in_progress:
        return "Removal In Progress"
    if state.dead:
        return "Dead"
    if state.status == "created":
        return "Created"
    return f"Exited ({state.exit_code}) {since(state.finished_at)} ago"


def command_text(record: Container) -> str:
    """Path and Args as ps shows them: an argument with a space in quotes."""
    args = " ".join(f"'{arg}'" if " " in arg else arg for arg in record.args)
    return f"{record.path} {args}" if record.args else record.path


def _ports(network_settings: dict) -> list:
    ports = []
    for key, bindings in (network_settings.get("Ports") or {}).items():
        port, _, proto = key.partition("/")
        if not bindings:
            ports.append({"PrivatePort": int(port), "Type": proto})
        for binding in bindings or ():
            shown = {"IP": binding["HostIp"]} if binding.get("HostIp") else {}
            shown.update(PrivatePort=int(port), PublicPort=int(binding.get("HostPort") or 0), Type=proto)
            ports.append(shown)
    return ports


def mounts_shown(mount_points: dict) -> list:
    shown = []
    for destination, point in mount_points.items():
        entry = {"Type": point.get("Type", "")}
        if point.get("Name"):
            entry["Name"] = point["Name"]
        entry.update(Source=point.get("Source", ""), Destination=point.get("Destination") or destination)
        if point.get("Driver"):
            entry["Driver"] = point["Driver"]
        entry.update(Mode=point.get("Mode", ""), RW=point.get("RW", True), Propagation=point.get("Propagation", ""))
        shown.append(entry)
    return shown


def summary(record: Container, image: str | None = None, sizes: tuple[int, int] | None = None,
            now_ns: int | None = None) -> dict:
    """``image`` is what the Image column shows (dockerd shows the ID once
    the name no longer leads to the container's image); ``sizes`` is
    (SizeRw, SizeRootFs) when the client asked for them, each shown when
    not 0 (types.Container's omitempty)."""
    entry = {
        "Id": record.id, "Names": [record.name], "Image": image or record.config.get("Image") or record.image,
        "ImageID": record.image, "Command": command_text(record), "Created": record.created_ns // 1_000_000_000,
        "Ports": _ports(record.network_settings),
    }
    if sizes is not None:
        entry.update((key, size) for key, size in zip(("SizeRw", "SizeRootFs"), sizes) if size)
    entry.update({
        "Labels": record.labels, "State": record.state.status, "Status": status_text(record.state, now_ns or time.time_ns()),
        "HostConfig": {"NetworkMode": record.host_config.get("NetworkMode") or "default"},
        "NetworkSettings": {"Networks": endpoints(record.network_settings)},
        "Mounts": mounts_shown(record.mount_points),
    })
    return entry


_STATUS_MARK = "\0status\0"  # where the Status goes, found again in the encoded entry
_ENCODED_MARK = gojson.encode(_STATUS_MARK)


def encoded_list(records: list[Container], now_ns: int | None = None) -> bytes:
    """The JSON array of the records' entries (no sizes), each from its
    record's kept encoding while the record is unchanged."""
    now_ns = now_ns or time.time_ns()
    parts = []
    for record in records:
        key = (record.revision, record.name, record.state.status)
        kept = record.encoded_summary
        if kept is None or kept[0] != key:
            entry = summary(record, now_ns=now_ns)
            entry["Status"] = _STATUS_MARK
            before, _, after = gojson.encode(entry).partition(_ENCODED_MARK)
            kept = record.encoded_summary = (key, before, after)
        parts.append(kept[1] + gojson.encode(status_text(record.state, now_ns)) + kept[2])
    return b"[" + b",".join(parts) + b"]"
