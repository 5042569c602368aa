"""``docker container prune``: every stopped container the filters keep
(``until``, ``label``, ``label!``), removed, in dockerd's reply with the
bytes their writable layers held."""
from engine import filters, timestamps
from engine.errors import EngineError


def prune_containers(containers, filters_param: str | None, pruned=lambda event_type, reclaimed: None) -> dict:
    """``containers`` is the container service; a container that cannot be
    removed now (it started meanwhile) is left, as dockerd leaves it.
    ``pruned(type, reclaimed)`` logs the prune's own event."""
    wanted = filters.Filters.parse(filters_param).validate(filters.CONTAINER_PRUNE_FILTERS)
    until = min((timestamps.timestamp_ns(value) for value in wanted.get("until")), default=None)
    deleted, reclaimed = [], 0
    for record in containers.store.all():
        state = record.state
        if state.running or state.paused or state.restarting:
            continue
        if (until is not None and record.created_ns >= until) or not wanted.match_labels(record.labels):
            continue
        size = containers.tasks.snapshot_usage(record.id)  # its SizeRw, as dockerd counts what a prune frees
        try:
            containers.remove(record.id)
        except EngineError:
            continue
        deleted.append(record.id)
        reclaimed += size
    pruned("container", reclaimed)
    return {"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed}
