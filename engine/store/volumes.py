"""The local driver's volumes under ``<data-root>/volumes/<name>/``, as
dockerd lays them out: the data in ``_data``, beside it the volume's record
(``volume.json``: driver, labels, options, whether it is anonymous), written
atomically before the volume is listed, so a volume and its metadata survive
engine restarts and crashes.

A directory without a readable record (made by hand, or by a writer killed
before its record) is still a volume, as dockerd's local driver lists every
directory it finds: named, unlabelled, without options.
"""
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, fields

from engine.textfiles import TEMP_PREFIX, write_atomically

log = logging.getLogger(__name__)

DATA_DIR = "_data"
RECORD_FILE = "volume.json"


@dataclass
class VolumeRecord:
    """One volume as inspect shows it; labels and options None when not given."""
    name: str
    driver: str = "local"
    labels: dict | None = None
    options: dict | None = None
    anonymous: bool = False

    @classmethod
    def from_disk(cls, data) -> "VolumeRecord":
        """TypeError when ``data`` is not a volume's record."""
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
        known = {f.name for f in fields(cls)}
        record = cls(**{key: value for key, value in data.items() if key in known})
        if not isinstance(record.name, str) or not isinstance(record.driver, str):
            raise TypeError("name or driver is not a string")
        for name in ("labels", "options"):
            if getattr(record, name) is not None and not isinstance(getattr(record, name), dict):
                raise TypeError(f"{name} is not an object")
        return record


class VolumeStore:
    """The records, in memory and on disk; callers serialise changes."""

    def __init__(self, root: str):
        self.root = root
        self.records: dict[str, VolumeRecord] = {}

    def load(self) -> None:
        os.makedirs(self.root, mode=0o701, exist_ok=True)
        for name in sorted(os.listdir(self.root)):
            if not os.path.isdir(self.data_path(name)):
                continue
            for entry in os.listdir(os.path.join(self.root, name)):
                if entry.startswith(TEMP_PREFIX):
                    os.unlink(os.path.join(self.root, name, entry))
            try:
                with open(os.path.join(self.root, name, RECORD_FILE)) as f:
                    record = VolumeRecord.from_disk(json.load(f))
            except FileNotFoundError:
                record = VolumeRecord(name)
            except (OSError, ValueError, TypeError) as e:
                log.error("failed to load volume %s's record: %s", name, e)
                record = VolumeRecord(name)
            record.name = name
            self.records[name] = record

    def all(self) -> list[VolumeRecord]:
        return list(self.records.values())

    def get(self, name: str) -> VolumeRecord | None:
        return self.records.get(name)

    def data_path(self, name: str) -> str:
        return os.path.join(self.root, name, DATA_DIR)

    def add(self, record: VolumeRecord) -> None:
        """Makes the volume's directories and its record, then lists it."""
        os.makedirs(self.data_path(record.name), mode=0o755, exist_ok=True)
        write_atomically(os.path.join(self.root, record.name, RECORD_FILE),
                         lambda f: json.dump(asdict(record), f, separators=(",", ":")))
        self.records[record.name] = record

    def delete(self, name: str) -> None:
        """Unlists the volume, then removes its directory with the data."""
        self.records.pop(name, None)
        shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)
