"""dockerd's merge of a config under another (daemon/commit.go), shared by
``docker commit`` (the instructions over the container's config) and
``docker create`` (the request over the image's)."""


def merge(user: dict, container: dict) -> dict:
    """dockerd's merge(userConf, imageConf): what ``user`` left unset comes
    from ``container`` (a commit's instructions over the container's config,
    a create's request over the image's)."""
    merged = dict(user)
    for key in ("User", "WorkingDir", "StopSignal"):
        if not merged.get(key) and container.get(key):
            merged[key] = container[key]
    ports = dict(container.get("ExposedPorts") or {})
    ports.update(merged.get("ExposedPorts") or {})
    if ports:
        merged["ExposedPorts"] = ports
    user_env = merged.get("Env") or []
    keys = {e.partition("=")[0] for e in user_env}
    merged["Env"] = (list(user_env) + [e for e in container.get("Env") or [] if e.partition("=")[0] not in keys]) \
        or None
    merged["Labels"] = {**(container.get("Labels") or {}), **(merged.get("Labels") or {})}
    if not merged.get("Entrypoint"):
        if not merged.get("Cmd"):
            merged["Cmd"] = container.get("Cmd")
        if merged.get("Entrypoint") is None:
            merged["Entrypoint"] = container.get("Entrypoint")
    merged["Volumes"] = {**(merged.get("Volumes") or {}), **(container.get("Volumes") or {})} or None
    if container.get("Healthcheck") and not merged.get("Healthcheck"):
        merged["Healthcheck"] = container["Healthcheck"]
    return merged


def image_metadata(config: dict, image_config: dict | None) -> dict:
    """What a create takes from the image beside the process's own fields
    (engine/oci merges those): ExposedPorts, Labels, StopSignal, Volumes."""
    merged = merge(config, image_config or {})
    return {key: merged[key] for key in ("ExposedPorts", "Labels", "StopSignal", "Volumes") if key in merged}
