"""`docker image prune` (POST /images/prune): the images no container uses
that the filters keep (`dangling`, default true: only untagged ones;
`until`, `label`, `label!`), untagged and deleted, in dockerd's reply with
the bytes of the layers that went."""
from engine import timestamps
from engine.errors import Conflict, InvalidParameter, NotFound
from engine.filters import IMAGE_PRUNE_FILTERS, Filters
from engine.services.images import ImageService, unix_time


def _dangling_only(wanted: Filters) -> bool:
    if not wanted.contains("dangling"):
        return True
    values = wanted.fields["dangling"]
    if values & {"false", "0"}:
        return False
    if values & {"true", "1"}:
        return True
    raise InvalidParameter(f"Invalid filter 'dangling=[{' '.join(wanted.get('dangling'))}]'")


def prune_images(images: ImageService, filters_param: str | None, pruned=lambda event_type, reclaimed: None) -> dict:
    """``pruned(type, reclaimed)`` logs the prune's own event, after those of what went."""
    wanted = Filters.parse(filters_param).validate(IMAGE_PRUNE_FILTERS)
    dangling_only = _dangling_only(wanted)
    until = min((timestamps.timestamp_ns(value) for value in wanted.get("until")), default=None)
    deleted, reclaimed = [], 0
    catalog = images.catalog()
    for view in catalog.by_id.values():
        if view.id in catalog.children:
            continue  # dockerd prunes heads only: a build's intermediate image goes with its child
        refs = view.refs
        if dangling_only and refs:
            continue
        if images.in_use(view.id):
            continue
        if until is not None and unix_time(view.created) * 1_000_000_000 > until:
            continue
        if not wanted.match_labels((view.config.get("config") or {}).get("Labels") or {}):
            continue
        sizes = {chain: images.door.layer_size(layer)
                 for chain, layer in zip(view.resolved.chain_ids, view.resolved.layers)}
        records = []
        try:
            for ref in refs:
                records += images.remove(str(ref))
            if not refs:
                records += images.remove(view.id)
        except (Conflict, NotFound):
            continue  # used or removed meanwhile: left, as dockerd leaves it
        deleted += records
        reclaimed += sum(sizes.get(r.get("Deleted", ""), 0) for r in records)
    pruned("image", reclaimed)
    return {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed}
