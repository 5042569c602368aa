"""The ``filters`` query parameter as dockerd 20.10 reads it, and the
container list's filters as its ``ps`` applies them.

The parameter is a JSON map of filter name to ``{value: true}`` (or, from
clients older than API 1.22, to ``[value, ...]``). Each endpoint accepts its
own names; any other is ``Invalid filter 'x'``. Messages are dockerd 20.10's,
measured against it; where 20.10 answers a client's mistake with a 500 (Go's
decoder or strconv error passed through) we answer 400 or 404 as later moby
does, and an undecodable parameter is 400 ``invalid filter`` (Go's decoder
messages are not worth imitating word for word).
"""
import json
import logging
import re

from engine.errors import InvalidParameter, NotFound
from engine.store.record import HEALTH_STATES, STATES, ZERO_TIME

log = logging.getLogger(__name__)

CONTAINER_FILTERS = frozenset(("ancestor", "before", "exited", "id", "isolation", "label", "name", "status",
                               "health", "since", "volume", "network", "is-task", "publish", "expose"))
IMAGE_FILTERS = frozenset(("dangling", "label", "before", "since", "reference"))
VOLUME_FILTERS = frozenset(("dangling", "name", "driver", "label"))
NETWORK_FILTERS = frozenset(("dangling", "driver", "id", "label", "name", "scope", "type"))
CONTAINER_PRUNE_FILTERS = frozenset(("until", "label", "label!"))
IMAGE_PRUNE_FILTERS = frozenset(("dangling", "until", "label", "label!"))
VOLUME_PRUNE_FILTERS = frozenset(("label", "label!"))
NETWORK_PRUNE_FILTERS = frozenset(("until", "label", "label!"))
# (events take any name: dockerd does not check them)

_GO_INT = re.compile(r"^[+-]?[0-9]+$")


class Filters:
    """Filter name -> set of values, with moby's filters.Args matchers."""

    def __init__(self, fields: dict[str, set[str]] | None = None):
        self.fields = fields or {}

    @classmethod
    def parse(cls, raw: str | None) -> "Filters":
        """The query parameter's value (absent or empty: no filters)."""
        if not raw:
            return cls()
        try:
            decoded = json.loads(raw)
        except ValueError:
            raise InvalidParameter("invalid filter") from None
        if not isinstance(decoded, dict):
            raise InvalidParameter("invalid filter")
        values = [v for v in decoded.values() if v is not None]
        if all(isinstance(v, dict) and all(isinstance(b, bool) for b in v.values()) for v in values):
            return cls({name: {value for value, on in (given or {}).items() if on} for name, given in decoded.items()})
        if all(isinstance(v, list) and all(isinstance(s, str) for s in v) for v in values):
            return cls({name: set(given or ()) for name, given in decoded.items()})
        raise InvalidParameter("invalid filter")

    def validate(self, accepted: frozenset) -> "Filters":
        for name in self.fields:
            if name not in accepted:
                raise InvalidParameter(f"Invalid filter '{name}'")
        return self

    def contains(self, name: str) -> bool:
        return name in self.fields

    def get(self, name: str) -> list[str]:
        return sorted(self.fields.get(name, ()))

    def exact_match(self, name: str, source: str) -> bool:
        """No values for ``name`` match everything; else ``source`` is one of them."""
        values = self.fields.get(name)
        return not values or source in values

    def match(self, name: str, source: str) -> bool:
        """An exact value, or a value that as a regular expression is found in
        ``source`` (an invalid expression matches nothing), as moby's Match."""
        if self.exact_match(name, source):
            return True
        for pattern in self.fields[name]:
            try:
                if re.search(pattern, source):
                    return True
            except re.error:
                continue
        return False

    def match_kv_list(self, name: str, sources: dict) -> bool:
        """Every ``key`` or ``key=value`` of ``name`` is in ``sources`` (labels)."""
        values = self.fields.get(name)
        if not values:
            return True
        if not sources:
            return False
        for value in values:
            key, has_value, wanted = value.partition("=")
            if key not in sources or (has_value and sources[key] != wanted):
                return False
        return True


    def match_labels(self, labels: dict) -> bool:
        """The prune endpoints' labels: all of ``label`` and none of ``label!``."""
        return self.match_kv_list("label", labels) and not (
            self.contains("label!") and self.match_kv_list("label!", labels))


def _ports(kind: str, values: list[str]) -> set[str]:
    """``port[/proto]`` or ``start-end[/proto]`` values as "port/proto" keys."""
    ports = set()
    for value in values:
        if ":" in value:
            raise InvalidParameter(f"filter for '{kind}' should not contain ':': {value}")
        port, _, proto = value.partition("/")
        start, _, end = port.partition("-")
        for text in (start, end) if end else (start,):
            if not text.isdigit() or int(text) > 65535:
                raise InvalidParameter(f'error while looking up for {kind} {value}: strconv.ParseUint: parsing '
                                       f'{json.dumps(text)}: invalid syntax')
        first, last = int(start), int(end or start)
        if last < first:
            raise InvalidParameter(f"error while looking up for {kind} {value}: Invalid range specified for the "
                                   f"Port: {port}")
        ports.update(f"{n}/{(proto or 'tcp').lower()}" for n in range(first, last + 1))
    return ports


def _record_ports(record) -> tuple[set[str], set[str]]:
    """The container's (published "hostport/proto", exposed "port/proto") as
    ``ps`` lists them from NetworkSettings.Ports."""
    published, exposed = set(), set()
    for key, bindings in (record.network_settings.get("Ports") or {}).items():
        port, _, proto = key.partition("/")
        exposed.add(f"{port}/{proto}")
        for binding in bindings or [{"HostPort": "0"}]:
            published.add(f"{binding.get('HostPort') or 0}/{proto}")
    return published, exposed


class ContainerFilter:
    """The list's filters folded once (values checked, before/since and
    ancestors resolved), then applied to records newest first: the order in
    which dockerd's ``before``, ``since`` and ``limit`` make sense."""

    def __init__(self, filters: Filters, all: bool = False, limit: int = -1, find_exact=None,
                 resolve_ancestors=None):
        """``find_exact(ref)`` is the record with that full ID or name, or None;
        ``resolve_ancestors(ref)`` the IDs of that image and its children, or
        None when there is no such image."""
        self.filters = filters.validate(CONTAINER_FILTERS)
        self.all, self.limit = all, limit
        self.exited = {self._go_int(v) for v in filters.get("exited")}
        for status in filters.get("status"):
            if status not in STATES:
                raise InvalidParameter(f"Invalid filter 'status={status}'")
            self.all = True
        self.is_task = None
        if filters.contains("is-task"):
            if filters.fields["is-task"] & {"true", "false"}:
                self.is_task = "true" in filters.fields["is-task"]
            else:
                raise InvalidParameter(f"Invalid filter 'is-task=[{' '.join(filters.get('is-task'))}]'")
        for health in filters.get("health"):
            if health not in HEALTH_STATES:
                raise InvalidParameter(f"Unrecognised filter value for health: {health}")
        self.before = self._find(find_exact, filters.get("before"))
        self.since = self._find(find_exact, filters.get("since"))
        self.images = None
        if filters.contains("ancestor"):
            self.images = set()
            for ref in filters.get("ancestor"):
                found = resolve_ancestors(ref) if resolve_ancestors else None
                if found is None:
                    log.warning("Error while looking up for image %s", ref)
                else:
                    self.images |= set(found)
        self.publish = _ports("publish", filters.get("publish"))
        self.expose = _ports("expose", filters.get("expose"))

    @staticmethod
    def _go_int(value: str) -> int:
        if not _GO_INT.match(value):
            raise InvalidParameter(f"strconv.Atoi: parsing {json.dumps(value)}: invalid syntax")
        return int(value)

    @staticmethod
    def _find(find_exact, refs):
        """before/since take a full ID or a name (not a prefix), as 20.10."""
        record = None
        for ref in refs:
            record = find_exact(ref) if find_exact else None
            if record is None:
                raise NotFound(f"no such container {ref}")
        return record

    def select(self, records_newest_first) -> list:
        """The records ``ps`` shows, in its order."""
        shown = []
        before = self.before
        for record in records_newest_first:
            if before is not None:
                if record.id == before.id:
                    before = None
                continue
            if self.since is not None and record.id == self.since.id:
                break
            if not self._first_checks(record):
                continue
            if 0 < self.limit == len(shown):
                break
            if self._last_checks(record):
                shown.append(record)
        return shown

    def _first_checks(self, record) -> bool:
        f = self.filters
        if not record.state.running and not self.all and self.limit <= 0:
            return False
        if not (f.match("name", record.name) or f.match("name", record.name.lstrip("/"))):
            return False
        if not f.match("id", record.id):
            return False
        if self.is_task is not None and self.is_task != record.managed:
            return False
        return f.match_kv_list("label", record.labels)

    def _last_checks(self, record) -> bool:
        f, state = self.filters, record.state
        if self.exited and (state.exit_code not in self.exited or state.running or state.started_at == ZERO_TIME):
            return False
        if not f.match("status", state.status) or not f.exact_match("health", state.health_status):
            return False
        if f.contains("volume") and not self._has_volume(record):
            return False
        if self.images is not None and record.image not in self.images:
            return False
        if f.contains("network") and not self._on_network(record):
            return False
        if self.publish or self.expose:
            published, exposed = _record_ports(record)
            if not (published & self.publish or exposed & self.expose):
                return False
        return True

    def _has_volume(self, record) -> bool:
        wanted = self.filters.fields["volume"]
        for destination, mount in record.mount_points.items():
            if destination in wanted or (mount.get("Name") or mount.get("Source")) in wanted:
                return True
        return False

    def _on_network(self, record) -> bool:
        networks = record.network_settings.get("Networks") or {}
        for value in self.filters.fields["network"]:
            if value in networks:
                return True
            if any(nw and (nw.get("NetworkID") or "").startswith(value) for nw in networks.values()):
                return True
        return False

