"""The ``local`` driver's volumes as dockerd 20.10 keeps them: create (a
generated 64-hex name when none is given; its name and option checks, in
its words), list with its filters, inspect, remove (never one a container
references), prune of the unused ones; and, for the containers, a volume's
path by name, made on first reference as dockerd makes it.

A volume with DriverOpts (``type``/``device``/``o``: a tmpfs, a bind, any
filesystem mount(8) knows) is mounted on its ``_data`` at its first user's
start and unmounted after its last one stops, as the local driver's
Mount/Unmount do.
"""
import json
import logging
import os
import re
import subprocess
import threading
from collections.abc import Callable, Iterable
from datetime import datetime

from engine import filters
from engine.disk import files_size
from engine.errors import Conflict, EngineError, InvalidParameter, NotFound, System
from engine.store.record import new_id
from engine.store.volumes import VolumeRecord, VolumeStore

log = logging.getLogger(__name__)

LOCAL = "local"
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_VALID_OPTIONS = ("type", "o", "device")
# local driver's mandatoryOpts: an option given needs these too, checked in this order.
_REQUIRED_WITH = (("device", ("type",)), ("type", ("device",)), ("o", ("device", "type")))
_BODY_KINDS = {"Name": str, "Driver": str, "DriverOpts": dict, "Labels": dict}


def _check_name(name: str) -> None:
    if len(name) == 1:
        raise InvalidParameter(f"create {name}: volume name is too short, names should be at least two "
                               "alphanumeric characters")
    if not _NAME.match(name):
        raise InvalidParameter(f"create {name}: {json.dumps(name)} includes invalid characters for a local volume "
                               'name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
                               "directory, use absolute path")


def _check_options(name: str, options: dict) -> None:
    for key in options:
        if key not in _VALID_OPTIONS:
            raise InvalidParameter(f"create {name}: invalid option: {json.dumps(key)}")
    for given, needed in _REQUIRED_WITH:
        if given in options:
            for key in needed:
                if key not in options:
                    raise InvalidParameter(f"create {name}: missing required option: {json.dumps(key)}")


def _created_at(path: str) -> str:
    """The data directory's change time as Go's time.RFC3339 in local time (the local driver's CreatedAt)."""
    try:
        stamp = datetime.fromtimestamp(os.stat(path).st_ctime).astimezone()
    except OSError:
        return ""
    return stamp.isoformat(timespec="seconds").replace("+00:00", "Z")


def _mounted_on(path: str) -> bool:
    """Whether something is mounted on ``path`` (a bind from the same filesystem too, unlike os.path.ismount)."""
    escaped = path.replace("\\", "\\134").replace(" ", "\\040").replace("\t", "\\011").replace("\n", "\\012")
    try:
        with open("/proc/self/mountinfo") as f:
            return any(line.split(" ", 5)[4] == escaped for line in f)
    except OSError:
        return False


class VolumeService:
    """Volumes over their store; ``users(name)`` is the IDs of the containers
    that reference the volume (the container store's mount points)."""

    def __init__(self, store: VolumeStore, users: Callable[[str], list[str]],
                 publish: Callable[[str, str, dict], None] = lambda action, name, attributes: None):
        self.store = store
        self.users = users
        self.publish = publish
        self.lock = threading.RLock()

    def create(self, body) -> dict:
        """``POST /volumes/create``; an existing name answers that volume, as dockerd."""
        if not isinstance(body, dict):
            raise InvalidParameter("invalid volume create request: not a JSON object")
        for key, kind in _BODY_KINDS.items():
            value = body.get(key)
            if value is not None and (not isinstance(value, kind) or (
                    kind is dict and not all(isinstance(v, str) for v in value.values()))):
                raise InvalidParameter(f"invalid volume create request: {key} has the wrong type")
        name, driver = body.get("Name") or "", body.get("Driver") or LOCAL
        record = self._create(name, driver, body.get("DriverOpts"), body.get("Labels"))
        return self._view(record)

    def _create(self, name: str, driver: str, options: dict | None, labels: dict | None,
                anonymous: bool = False) -> VolumeRecord:
        name = name or new_id()
        if driver != LOCAL:
            raise NotFound(f"create {name}: error looking up volume plugin {driver}: plugin {json.dumps(driver)} "
                           "not found")
        with self.lock:
            record = self.store.get(name)
            if record is None:
                _check_name(name)
                _check_options(name, options or {})
                record = VolumeRecord(name, LOCAL, labels, options, anonymous)
                try:
                    self.store.add(record)
                except OSError as e:
                    self.store.delete(name)
                    raise System(f"create {name}: {e.strerror or e}") from None
        self.publish("create", name, {"driver": LOCAL})  # for an existing one too, as dockerd
        return record

    def inspect(self, name: str) -> dict:
        """``GET /volumes/{name}``."""
        return self._view(self._find(name))

    def _find(self, name: str) -> VolumeRecord:
        record = self.store.get(name)
        if record is None:
            raise NotFound(f"get {name}: no such volume")
        return record

    def usage(self) -> list[dict]:
        """``system df``'s volumes: each one's view with the bytes of its files
        and how many containers reference it (dockerd's UsageData)."""
        with self.lock:
            records = sorted(self.store.all(), key=lambda r: r.name)
        return [{**self._view(r), "UsageData": {"RefCount": len(self.users(r.name)),
                                                "Size": files_size(self.store.data_path(r.name))}}
                for r in records]

    def list(self, filters_param: str | None = None) -> dict:
        """``GET /volumes`` with dockerd's filters: dangling (no container
        references it), driver, label, name (a pattern, as dockerd's Match)."""
        wanted = filters.Filters.parse(filters_param).validate(filters.VOLUME_FILTERS)
        dangling = None
        if wanted.contains("dangling"):
            values = wanted.fields["dangling"]
            if values & {"true", "1"}:
                dangling = True
            elif values & {"false", "0"}:
                dangling = False
            else:
                shown = " ".join(wanted.get("dangling"))
                raise InvalidParameter(f"Invalid filter 'dangling=[{shown}]'")
        with self.lock:
            records = sorted(self.store.all(), key=lambda r: r.name)
        shown = [self._view(r) for r in records
                 if wanted.match("name", r.name) and wanted.exact_match("driver", r.driver)
                 and wanted.match_kv_list("label", r.labels or {})
                 and (dangling is None or dangling == (not self.users(r.name)))]
        return {"Volumes": shown, "Warnings": None}

    def remove(self, name: str, force: bool = False) -> None:
        """``DELETE /volumes/{name}``: ``force`` forgives a missing volume only."""
        record = self._remove(name, force)
        if record is not None:
            self.publish("destroy", name, {"driver": record.driver})

    def _remove(self, name: str, force: bool = False) -> VolumeRecord | None:
        """The volume removed without an event (a prune logs one of its own); None when missing and forced."""
        with self.lock:
            record = self.store.get(name)
            if record is None:
                if force:
                    return None
                raise NotFound(f"get {name}: no such volume")
            if users := self.users(name):
                raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
            self._unmount(name)
            self.store.delete(name)
        return record

    def prune(self, filters_param: str | None = None) -> dict:
        """``POST /volumes/prune``: every unused volume the filters keep (named
        ones too: API 1.41's dockerd prunes all unused local volumes), with
        dockerd's one "prune" event instead of each one's "destroy"."""
        wanted = filters.Filters.parse(filters_param).validate(filters.VOLUME_PRUNE_FILTERS)
        deleted, reclaimed = [], 0
        for record in self.store.all():
            if self.users(record.name) or not wanted.match_labels(record.labels or {}):
                continue
            size = files_size(self.store.data_path(record.name))
            try:
                self._remove(record.name)
            except EngineError:
                continue
            deleted.append(record.name)
            reclaimed += size
        self.publish("prune", "", {"reclaimed": str(reclaimed)})
        return {"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed}

    def _view(self, record: VolumeRecord) -> dict:
        path = self.store.data_path(record.name)
        return {"CreatedAt": _created_at(path), "Driver": record.driver, "Labels": record.labels,
                "Mountpoint": path, "Name": record.name, "Options": record.options, "Scope": "local"}

    # -- the containers'

    def for_container(self, name: str, labels: dict | None = None, options: dict | None = None) -> tuple[str, str]:
        """(name, mountpoint) of the volume a container names, made when
        missing as dockerd makes it ("": a new anonymous one), with the
        labels and driver options of a --mount's volume-label/volume-opt."""
        record = self._create(name, LOCAL, options, labels, anonymous=not name)
        return record.name, self.store.data_path(record.name)

    def remove_anonymous(self, names: Iterable[str]) -> None:
        """Those of ``names`` that are anonymous and no container uses (``rm -v``)."""
        for name in names:
            record = self.store.get(name)
            if record is not None and record.anonymous and not self.users(name):
                self.remove(name)

    def mount(self, name: str, container_id: str, destination: str, writable: bool) -> None:
        """A volume with driver options mounted on its mountpoint (mount(8)
        reads ``o`` as the local driver does), unless it is mounted."""
        with self.lock:
            self._mount(name)
        self.publish("mount", name, {"container": container_id, "destination": destination, "driver": LOCAL,
                                     "propagation": "", "read/write": str(writable).lower()})

    def unmount(self, name: str, container_id: str, last_user: bool) -> None:
        if last_user:
            with self.lock:
                self._unmount(name)
        self.publish("unmount", name, {"container": container_id, "driver": LOCAL})

    def _mount(self, name: str) -> None:
        record, path = self.store.get(name), self.store.data_path(name)
        if record is None or not record.options or _mounted_on(path):
            return
        options = record.options
        argv = ["mount", "-t", options["type"], *(["-o", options["o"]] if options.get("o") else []),
                options["device"], path]
        mounted = subprocess.run(argv, capture_output=True, text=True, check=False)
        if mounted.returncode != 0:
            raise System(f"error while mounting volume '{path}': failed to mount local volume: "
                         f"{mounted.stderr.strip() or mounted.returncode}")

    def _unmount(self, name: str) -> None:
        path = self.store.data_path(name)
        if _mounted_on(path):
            unmounted = subprocess.run(["umount", path], capture_output=True, text=True, check=False)
            if unmounted.returncode != 0:
                log.error("unmounting volume %s: %s", name, unmounted.stderr.strip())
