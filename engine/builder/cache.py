"""dockerd's legacy build cache (image/cache/compare.go and
daemon/images/cache.go): a step hits when an image made on the same parent
has the same ContainerConfig, compared field by field as moby compares
them (Cmd, which names the step, Env, Labels, ExposedPorts, Entrypoint,
Volumes, User, Tty, the attach flags; an OpenStdin config never hits).
The newest such image wins."""


def same_step(a: dict | None, b: dict | None) -> bool:
    if a is None or b is None or a.get("OpenStdin") or b.get("OpenStdin"):
        return False
    for key in ("AttachStdout", "AttachStderr", "Tty"):
        if bool(a.get(key)) != bool(b.get(key)):
            return False
    if (a.get("User") or "") != (b.get("User") or ""):
        return False
    for key in ("Cmd", "Env", "Entrypoint"):
        if list(a.get(key) or []) != list(b.get(key) or []):
            return False
    for key in ("Labels", "ExposedPorts", "Volumes"):
        mine, theirs = a.get(key) or {}, b.get(key) or {}
        if len(mine) != len(theirs):
            return False
        if key == "Labels" and any(theirs.get(k) != v for k, v in mine.items()):
            return False
        if any(k not in theirs for k in mine):
            return False
    return True


def newest_match(candidates, probe: dict) -> str | None:
    """The ID of the newest of (id, created, container_config) whose config matches ``probe``."""
    matches = [(created, image_id) for image_id, created, config in candidates if same_step(config, probe)]
    return max(matches)[1] if matches else None
