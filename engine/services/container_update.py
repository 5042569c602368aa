"""``docker update``: new resource limits and restart policy for a
container, recorded in its HostConfig and, when it runs, applied to its
cgroups through containerd (the task's Update), as dockerd does."""
from engine import oci
from engine.errors import Conflict, InvalidParameter

# The HostConfig fields `POST /containers/<id>/update` takes (moby's container.UpdateConfig).
UPDATABLE = ("Memory", "MemorySwap", "MemoryReservation", "KernelMemory", "NanoCpus", "CpuShares", "CpuQuota",
             "CpuPeriod", "CpuRealtimePeriod", "CpuRealtimeRuntime", "CpusetCpus", "CpusetMems", "PidsLimit",
             "BlkioWeight", "RestartPolicy")


def update_container(containers, ref: str, body: dict | None) -> dict:
    """``containers`` is the container service; the reply's body. Zero (or
    absent) values leave a limit as it was, as in dockerd."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise InvalidParameter("invalid JSON: the body is not a JSON object")
    record = containers.store.get(ref)
    with containers.locked(record.id):
        changed = dict(record.host_config)
        for key in UPDATABLE:
            value = body.get(key)
            if key == "RestartPolicy":
                if value and value.get("Name") is not None:
                    if record.host_config.get("AutoRemove") and value["Name"] not in ("", "no"):
                        raise Conflict(f"Cannot update container {record.id}: Restart policy cannot be updated "
                                       "because AutoRemove is enabled for the container")
                    changed[key] = value
            elif value not in (None, 0, ""):
                changed[key] = value
        swap = record.host_config.get("MemorySwap") or 0
        if body.get("Memory") and not body.get("MemorySwap") and 0 < swap < body["Memory"]:
            raise InvalidParameter("Cannot update container {}: Memory limit should be smaller than already set "
                                   "memoryswap limit, update the memoryswap at the same time".format(record.id))
        parsed = oci.parse_host_config(changed)
        if record.state.running:
            limits = oci.spec.resources(parsed, [])
            del limits["devices"]
            containers.tasks.update_resources(record.id, limits)
        record.host_config = changed
        containers.store.save(record)
    containers.publish(record, "update")
    return {"Warnings": []}
