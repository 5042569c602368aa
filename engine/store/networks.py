"""The network records under ``<data-root>/network/<id>.json``: one JSON
file per network holding what inspect shows, its addresses in use and its
endpoints, written atomically (temp file, fsync, rename), so a network and
its allocations survive a crash and an address is never handed out twice.

All records are held in memory from load on; every change reaches the disk
before memory. A temp file left by a killed writer is swept at load; a record
that cannot be read is skipped with a log line and left for the user.
"""
import json
import logging
import os
from dataclasses import asdict, dataclass, field, fields

from engine.store.record import go_time
from engine.textfiles import TEMP_PREFIX, write_atomically

log = logging.getLogger(__name__)


@dataclass
class NetworkRecord:
    """One network: inspect's fields, and the IPAM state behind them."""
    id: str
    name: str
    driver: str
    created: str = field(default_factory=go_time)
    scope: str = "local"
    enable_ipv6: bool = False
    ipam_driver: str = "default"
    ipam_options: dict | None = None
    ipam_config: list = field(default_factory=list)     # IPAM.Config as inspect shows it
    internal: bool = False
    attachable: bool = False
    ingress: bool = False
    config_only: bool = False
    config_from: str = ""
    options: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    bridge: str = ""                                     # the kernel link ("" for host/none)
    subnet: str = ""                                     # the pool, e.g. "172.18.0.0/16"
    gateway: str = ""
    ip_range: str = ""
    allocated: list = field(default_factory=list)        # addresses in use: gateway, aux, endpoints
    endpoints: dict = field(default_factory=dict)        # container id -> endpoint (see services/networks.py)

    def to_disk(self) -> dict:
        return asdict(self)

    @classmethod
    def from_disk(cls, data: dict) -> "NetworkRecord":
        """TypeError/KeyError when ``data`` is not a network's record."""
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
        known = {f.name for f in fields(cls)}
        record = cls(**{key: value for key, value in data.items() if key in known})
        for name in ("id", "name", "driver"):
            if not isinstance(getattr(record, name), str):
                raise TypeError(f"{name} is not a string")
        for name in ("allocated", "ipam_config"):
            if not isinstance(getattr(record, name), list):
                raise TypeError(f"{name} is not a list")
        for name in ("endpoints", "options", "labels"):
            if not isinstance(getattr(record, name), dict):
                raise TypeError(f"{name} is not an object")
        return record


class NetworkStore:
    """The records, in memory and on disk; callers serialise changes."""

    def __init__(self, root: str):
        self.root = root
        self.records: dict[str, NetworkRecord] = {}

    def load(self) -> None:
        os.makedirs(self.root, exist_ok=True)
        for entry in sorted(os.listdir(self.root)):
            path = os.path.join(self.root, entry)
            if entry.startswith(TEMP_PREFIX):
                os.unlink(path)
                continue
            if not entry.endswith(".json"):
                continue
            try:
                with open(path) as f:
                    record = NetworkRecord.from_disk(json.load(f))
            except (OSError, ValueError, TypeError, KeyError) as e:
                log.error("failed to load network %s: %s", path, e)
                continue
            self.records[record.id] = record

    def all(self) -> list[NetworkRecord]:
        return list(self.records.values())

    def save(self, record: NetworkRecord) -> None:
        """Adds or replaces the record, on disk first."""
        write_atomically(self._path(record.id),
                         lambda f: json.dump(record.to_disk(), f, separators=(",", ":")))
        self.records[record.id] = record

    def delete(self, network_id: str) -> None:
        try:
            os.unlink(self._path(network_id))
        except FileNotFoundError:
            pass
        self.records.pop(network_id, None)

    def _path(self, network_id: str) -> str:
        return os.path.join(self.root, f"{network_id}.json")
