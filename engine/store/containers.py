"""The container records under ``<data-root>/containers``, laid out as
dockerd lays them out (``<id>/config.v2.json`` and ``<id>/hostconfig.json``),
all held in memory from start on: lookups and ``ps`` never touch the disk.

Every change reaches the disk before memory, and atomically: a file is
written to a temp file, fsynced and renamed over the old one; a new record is
assembled in ``.creating-<id>`` and renamed into place; a removed one is
renamed to ``.removing-<id>`` before it is deleted. So a writer killed at any
point leaves the old record or the new one, and the dot-directories and temp
files it leaves are swept at the next load. A record that still cannot be
read is skipped with a log line, as dockerd skips it, and left for the user.

Names live in memory only: the records on disk are their source, so a name
reserved for a create that never finished cannot outlive the engine.
"""
import bisect
import json
import logging
import os
import shutil
import threading

from engine import filters, names
from engine.errors import Conflict, InvalidParameter, NotFound, System
from engine.store.record import Container
from engine.textfiles import TEMP_PREFIX, fsync_dir, write_atomically

log = logging.getLogger(__name__)

CONFIG_FILE = "config.v2.json"
HOST_CONFIG_FILE = "hostconfig.json"
CREATING_PREFIX = ".creating-"
REMOVING_PREFIX = ".removing-"


def write_json_atomically(path: str, value) -> None:
    """``path`` holds the old content or all of the new, whatever happens."""
    write_atomically(path, lambda f: json.dump(value, f, separators=(",", ":")))


def _conflict(name: str, holder: str) -> Conflict:
    return Conflict(f'Conflict. The container name "{name}" is already in use by container "{holder}". '
                    "You have to remove (or rename) that container to be able to reuse that name.")


class ContainerStore:
    """The records, their names, and lookups by reference; thread-safe."""

    def __init__(self, root: str):
        self.root = root  # <data-root>/containers
        self._lock = threading.RLock()
        self._by_id: dict[str, Container] = {}
        self._names: dict[str, str] = {}  # "/name" -> ID, reserved or in use
        self._newest_first: list[Container] = []
        self._order: list[int] = []  # -created (ns) of each of _newest_first, for bisect

    # -- loading -----------------------------------------------------------

    def load(self) -> list[str]:
        """Reads every record; returns the one-line reports of those skipped."""
        os.makedirs(self.root, mode=0o710, exist_ok=True)
        skipped = []
        with self._lock:
            for entry in sorted(os.listdir(self.root)):
                path = os.path.join(self.root, entry)
                if entry.startswith((CREATING_PREFIX, REMOVING_PREFIX)):
                    shutil.rmtree(path, ignore_errors=True)  # an unfinished create or remove
                    continue
                if not os.path.isdir(path):
                    continue
                try:
                    record = self._read(entry)
                except (OSError, ValueError, KeyError, TypeError) as err:
                    report = f"failed to load container {entry}: {self._reason(err)}"
                    log.error(report)
                    skipped.append(report)
                    continue
                self._index(record)
        return skipped

    @staticmethod
    def _reason(err: BaseException) -> str:
        if isinstance(err, KeyError):
            return f"missing or invalid field {err.args[0]}"
        if isinstance(err, OSError) and err.filename:
            return f"{err.strerror}: {os.path.basename(err.filename)}"
        return str(err)

    def _read(self, container_id: str) -> Container:
        directory = os.path.join(self.root, container_id)
        for entry in os.listdir(directory):
            if entry.startswith(TEMP_PREFIX):  # a write that never reached its rename
                os.unlink(os.path.join(directory, entry))
        with open(os.path.join(directory, CONFIG_FILE)) as f:
            body = json.load(f)
        try:
            with open(os.path.join(directory, HOST_CONFIG_FILE)) as f:
                host_config = json.load(f)
        except FileNotFoundError:
            host_config = {}  # dockerd reads a missing hostconfig.json as empty
        record = Container.from_disk(body, host_config)
        if record.id != container_id:
            raise ValueError(f"its {CONFIG_FILE} names container {record.id}")
        if record.name in self._names:
            raise ValueError(f'name "{record.name}" is already used by {self._names[record.name]}')
        return record

    # -- the index (callers hold the lock) -----------------------------------

    def _index(self, record: Container) -> None:
        self._by_id[record.id] = record
        self._names[record.name] = record.id
        position = bisect.bisect_right(self._order, -record.created_ns)
        self._order.insert(position, -record.created_ns)
        self._newest_first.insert(position, record)

    def _unindex(self, record: Container) -> None:
        self._by_id.pop(record.id, None)
        if self._names.get(record.name) == record.id:
            del self._names[record.name]
        position = next(i for i, held in enumerate(self._newest_first) if held is record)
        del self._newest_first[position], self._order[position]

    # -- names ---------------------------------------------------------------

    def reserve_name(self, container_id: str, name: str | None = None) -> str:
        """Holds ``name`` (checked as dockerd checks it; None: a generated one)
        for ``container_id`` until its record is added or the name released;
        returns it with dockerd's leading slash."""
        with self._lock:
            if name is None:
                name = names.generate_name(container_id, lambda n: "/" + n in self._names)
            slashed = "/" + names.validate_name(name)
            holder = self._names.get(slashed)
            if holder is not None and holder != container_id:
                raise _conflict(slashed, holder)
            self._names[slashed] = container_id
            return slashed

    def release_name(self, name: str, container_id: str) -> None:
        """Gives back a name reserved for a create that failed."""
        slashed = "/" + name.lstrip("/")
        with self._lock:
            record = self._by_id.get(container_id)
            if self._names.get(slashed) == container_id and (record is None or record.name != slashed):
                del self._names[slashed]

    def rename(self, container_id: str, new_name: str) -> str:
        """Gives the container ``new_name``, on disk and in memory, and frees
        its old name (returned); dockerd's errors otherwise."""
        if not new_name:
            raise InvalidParameter("Neither old nor new names may be empty")
        slashed = new_name if new_name.startswith("/") else "/" + new_name
        with self._lock:
            record = self.get_by_id(container_id)
            old = record.name
            if old == slashed:
                raise InvalidParameter("Renaming a container with the same name as its current name")
            try:
                self.reserve_name(record.id, slashed)
            except (Conflict, InvalidParameter) as err:
                raise type(err)(f"Error when allocating new name: {err}") from None
            record.name = slashed
            try:
                self.save(record)
            except BaseException:
                record.name = old
                del self._names[slashed]
                raise
            del self._names[old]
            return old

    # -- records -------------------------------------------------------------

    def container_dir(self, container_id: str) -> str:
        return os.path.join(self.root, container_id)

    def add(self, record: Container) -> None:
        """Writes a new record (its name reserved by :meth:`reserve_name`, or
        free) and makes it visible; on failure nothing is left, not even the
        name. The disk is written outside the lock, so lists go on meanwhile."""
        with self._lock:
            if record.id in self._by_id:
                raise Conflict(f"container {record.id} already exists")
            self.reserve_name(record.id, record.name)
        staging = os.path.join(self.root, CREATING_PREFIX + record.id)
        try:
            os.makedirs(staging, mode=0o710)
            self._write(staging, record)
            os.rename(staging, self.container_dir(record.id))
            fsync_dir(self.root)
        except OSError as err:
            shutil.rmtree(staging, ignore_errors=True)
            self.release_name(record.name, record.id)
            raise System(f"Error saving container {record.id} to disk: {err}") from None
        with self._lock:
            self._index(record)

    @staticmethod
    def _write(directory: str, record: Container) -> None:
        write_json_atomically(os.path.join(directory, HOST_CONFIG_FILE), record.host_config)
        write_json_atomically(os.path.join(directory, CONFIG_FILE), record.to_disk())

    def save(self, record: Container) -> None:
        """Writes a changed record (its State after start or exit, a new
        HostConfig after update...) over the old one."""
        record.revision += 1
        try:
            self._write(self.container_dir(record.id), record)
        except OSError as err:
            raise System(f"Error saving container {record.id} to disk: {err}") from None

    def remove(self, container_id: str) -> Container:
        """Deletes the record and its directory (logs and all) and frees its name."""
        with self._lock:
            record = self.get_by_id(container_id)
            doomed = os.path.join(self.root, REMOVING_PREFIX + record.id)
            try:
                os.rename(self.container_dir(record.id), doomed)
                fsync_dir(self.root)
            except FileNotFoundError:
                doomed = None
            except OSError as err:
                raise System(f"unable to remove filesystem for {record.id}: {err}") from None
            self._unindex(record)
        if doomed:
            shutil.rmtree(doomed, ignore_errors=True)
        return record

    # -- lookups -------------------------------------------------------------

    def get_by_id(self, container_id: str) -> Container:
        record = self._by_id.get(container_id)
        if record is None:
            raise NotFound(f"No such container: {container_id}")
        return record

    def find_exact(self, ref: str) -> Container | None:
        """The record with this full ID or name (with or without its slash)."""
        record = self._by_id.get(ref)
        if record is None:
            record = self._by_id.get(self._names.get(ref if ref.startswith("/") else "/" + ref, ""))
        return record

    def get(self, ref: str) -> Container:
        """A reference resolved as dockerd's GetContainer: full ID, exact
        name, then a prefix of exactly one ID."""
        if not ref:
            raise InvalidParameter('invalid name or ID supplied: ""')
        record = self.find_exact(ref)
        if record is not None:
            return record
        matches = self._prefixed(ref)
        if not matches:
            raise NotFound(f"No such container: {ref}")
        if len(matches) > 1:
            raise System(f"Multiple IDs found with provided prefix: {ref}")
        return matches[0]

    def all(self) -> list[Container]:
        """Every record, newest first."""
        with self._lock:
            return list(self._newest_first)

    def list_containers(self, all: bool = False, limit: int = -1, filters_param: str | None = None,
                        since: str = "", before: str = "", resolve_ancestors=None) -> list[Container]:
        """``GET /containers/json``'s records, newest first, from memory. The
        legacy ``since``/``before`` parameters act as the filters of that name."""
        parsed = filters.Filters.parse(filters_param)
        for name, value in (("since", since), ("before", before)):
            if value and not parsed.contains(name):
                parsed.fields[name] = {value}
        candidates = self.all()
        if parsed.contains("id"):
            wanted = {record.id for record in map(self._unique_prefix, parsed.fields["id"]) if record}
            candidates = [record for record in candidates if record.id in wanted]
        chosen = filters.ContainerFilter(parsed, all=all, limit=limit, find_exact=self.find_exact,
                                         resolve_ancestors=resolve_ancestors)
        return chosen.select(candidates)

    def _prefixed(self, prefix: str) -> list[Container]:
        return [record for container_id, record in list(self._by_id.items()) if container_id.startswith(prefix)]

    def _unique_prefix(self, prefix: str) -> Container | None:
        """The id filter only looks at the container an ID prefix names unambiguously."""
        matches = self._prefixed(prefix) if prefix else []
        return matches[0] if len(matches) == 1 else None
