"""Mark and sweep over everything a namespace holds, with containerd's labels.

Roots: images (their targets), containers (their snapshot and labels), leases that have not expired (their
content, ingests and snapshots), and objects labelled `containerd.io/gc.root`.
References: content labels `containerd.io/gc.ref.content[.*]` name content,
`containerd.io/gc.ref.snapshot.<snapshotter>[.*]` name snapshots; a
snapshot holds its parent and may name content the same way. A lease
labelled `containerd.io/gc.flat` keeps only what it lists. Whatever is not
reached is removed; expired leases (`containerd.io/gc.expire`) end first.

It runs inside one metadata transaction: no store can create or reference
anything meanwhile (the leased snapshotter takes the same transaction).
"""
import datetime
import logging
from dataclasses import dataclass, field

from .. import errors
from ..containers import ContainerStore
from ..content.local import LocalContentStore
from ..metadata.db import Database
from ..metadata.store import ImageStore, LeaseStore, NamespaceStore
from ..snapshots.snapshotter import Snapshotter

log = logging.getLogger(__name__)

ROOT = "containerd.io/gc.root"
EXPIRE = "containerd.io/gc.expire"
FLAT = "containerd.io/gc.flat"
REF_CONTENT = "containerd.io/gc.ref.content"
REF_SNAPSHOT = "containerd.io/gc.ref.snapshot."


@dataclass
class Stats:
    content: int = 0
    snapshots: int = 0
    leases: int = 0
    ingests: int = 0
    removed: list[str] = field(default_factory=list)


def _refs(labels: dict[str, str], snapshotters) -> tuple[set[str], set[tuple[str, str]]]:
    """The content and (snapshotter, key) pairs a label map references."""
    content, snaps = set(), set()
    for key, value in labels.items():
        if key == REF_CONTENT or key.startswith(REF_CONTENT + "."):
            content.add(value)
        elif key.startswith(REF_SNAPSHOT):
            name = key[len(REF_SNAPSHOT):].split(".", 1)[0]
            if name in snapshotters:
                snaps.add((name, value))
    return content, snaps


def expired(labels: dict[str, str], now: datetime.datetime) -> bool:
    value = labels.get(EXPIRE)
    if not value:
        return False
    try:
        when = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False  # containerd ignores an unparsable expiry too
    return when.astimezone(datetime.timezone.utc) <= now


class Collector:
    def __init__(self, db: Database, namespaces: NamespaceStore, content: LocalContentStore, images: ImageStore,
                 leases: LeaseStore, snapshotters: dict[str, Snapshotter], containers: ContainerStore):
        self._db, self._namespaces, self._content, self._containers = db, namespaces, content, containers
        self._images, self._leases, self._snapshotters = images, leases, snapshotters

    def collect(self) -> Stats:
        stats = Stats()
        with self._db.transaction():
            now = datetime.datetime.now(datetime.timezone.utc)
            for ns in [n.name for n in self._namespaces.list()]:
                for lease in self._leases.list(ns, []):
                    if expired(lease.labels, now):
                        self.end_lease(ns, lease.id, stats)
                self._collect_namespace(ns, stats)
        if stats.removed:
            log.debug("garbage collected: %d blobs, %d snapshots, %d leases, %d ingests", stats.content,
                     stats.snapshots, stats.leases, stats.ingests)
        return stats

    def end_lease(self, ns: str, lease_id: str, stats: Stats | None = None) -> None:
        """Deletes a lease and aborts the ingests it held (no one resumes them now)."""
        with self._db.transaction():
            ingests = [r.id for r in self._leases.list_resources(ns, lease_id) if r.type == "ingests"]
            self._leases.delete(ns, lease_id)
            held = {r.id for other in self._leases.list(ns, []) for r in self._leases.list_resources(ns, other.id)
                    if r.type == "ingests"}
            for ref in set(ingests) - held:
                try:
                    self._content.abort(ns, ref)
                except errors.NotFound:
                    continue
                if stats:
                    stats.ingests += 1
        if stats:
            stats.leases += 1
            stats.removed.append(f"lease {ns}/{lease_id}")

    def _collect_namespace(self, ns: str, stats: Stats) -> None:
        infos = {i.digest: i for i in self._content.list(ns, [])}
        snaps = {(name, i.name): i for name, sn in self._snapshotters.items() for i in sn.walk(ns)}
        content_todo = {i.target.digest for i in self._images.list(ns, [])}
        content_todo |= {d for d, i in infos.items() if ROOT in i.labels}
        snap_todo = {k for k, i in snaps.items() if ROOT in i.labels}
        for c in self._containers.list(ns, []):
            more_content, more_snaps = _refs(c.labels, self._snapshotters)
            content_todo |= more_content
            snap_todo |= more_snaps | ({(c.snapshotter, c.snapshot_key)} if c.snapshot_key else set())
        flat_content, flat_snaps = set(), set()
        for lease in self._leases.list(ns, []):
            for r in self._leases.list_resources(ns, lease.id):
                if r.type == "content":
                    (flat_content if FLAT in lease.labels else content_todo).add(r.id)
                elif r.type.startswith("snapshots/"):
                    (flat_snaps if FLAT in lease.labels else snap_todo).add((r.type.split("/", 1)[1], r.id))
        marked_content, marked_snaps = set(flat_content), set(flat_snaps)
        while content_todo or snap_todo:
            if content_todo:
                digest = content_todo.pop()
                if digest in marked_content or digest not in infos:
                    continue
                marked_content.add(digest)
                more_content, more_snaps = _refs(infos[digest].labels, self._snapshotters)
            else:
                key = snap_todo.pop()
                if key in marked_snaps or key not in snaps:
                    continue
                marked_snaps.add(key)
                info = snaps[key]
                more_content, more_snaps = _refs(info.labels, self._snapshotters)
                if info.parent:
                    more_snaps.add((key[0], info.parent))
            content_todo |= more_content - marked_content
            snap_todo |= more_snaps - marked_snaps
        for digest in sorted(set(infos) - marked_content):
            self._content.delete(ns, digest)
            stats.content += 1
            stats.removed.append(f"content {ns}/{digest}")
        self._sweep_snapshots(ns, {k: i for k, i in snaps.items() if k not in marked_snaps}, stats)

    def _sweep_snapshots(self, ns: str, doomed: dict, stats: Stats) -> None:
        """Removes children before parents (a snapshotter refuses a parent with children)."""
        while doomed:
            parents = {(k[0], i.parent) for k, i in doomed.items() if i.parent}
            leaves = [k for k in doomed if k not in parents]
            for name, key in leaves:
                del doomed[(name, key)]
                try:
                    self._snapshotters[name].remove(ns, key)
                except errors.NotFound:
                    continue  # removed meanwhile by its owner (an engine's rm): nothing left to collect
                stats.snapshots += 1
                stats.removed.append(f"snapshot {ns}/{name}/{key}")
