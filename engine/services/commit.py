"""``docker commit``: a container's changes as a new image.

The changes become a layer through containerd's diff service (the image's
tree below the container compared with the container's own); the new image
is its base image's layers and that one, with a config made as dockerd
makes it — the container's Config merged under the ``--change``
instructions, a history entry, the new diff ID — under a manifest in the
content store, named in containerd's image store and unpacked so a
container can run from it at once. A running container is paused meanwhile
unless asked not to be, as dockerd does.
"""
import datetime
import json
import shlex

from containerd_py.transfer.manifests import gc_labels, to_json
from containerd_py.types import Descriptor

from engine.containerd.images import ContainerdImages
from engine.containerd.layers import ContainerdLayers
from engine.errors import Conflict, InvalidParameter, NotFound
from engine.reference import parse_normalized
from engine.services.containers import ContainerService
from engine.services.images import DANGLING, Catalog, go_config

EMPTY_LAYER_DIFF_ID = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"  # a tar of nothing
_DOCKER_TYPES = ("application/vnd.docker.distribution.manifest.v2+json",
                 "application/vnd.docker.container.image.v1+json",
                 "application/vnd.docker.image.rootfs.diff.tar.gzip")
_OCI_TYPES = ("application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.config.v1+json",
              "application/vnd.oci.image.layer.v1.tar+gzip")
COMMIT_INSTRUCTIONS = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "STOPSIGNAL", "USER", "VOLUME",
                       "WORKDIR")


def _json_or_shell(text: str) -> list[str]:
    """An exec-form (JSON array) argument, or the shell form run by /bin/sh -c."""
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            parsed = json.loads(stripped)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(a, str) for a in parsed):
            return parsed
    return ["/bin/sh", "-c", stripped]


def _pairs(instruction: str, text: str) -> list[tuple[str, str]]:
    """ENV and LABEL arguments: key=value words, or the old form "key value"."""
    words = shlex.split(text)
    if words and "=" not in words[0]:
        key, _, value = text.strip().partition(" ")
        return [(key, value.strip())]
    pairs = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or not key:
            raise InvalidParameter(f"{instruction} names can not be blank" if not key
                                   else f"Syntax error - can't find = in {word!r}. Must be of the form: name=value")
        pairs.append((key, value))
    return pairs


def apply_changes(config: dict, changes: list[str]) -> dict:
    """The Dockerfile-like ``--change`` instructions applied to an image config
    (dockerd's BuildFromConfig with the instructions a commit allows)."""
    config, cmd_set = dict(config), False
    for line in changes:
        instruction, _, rest = line.strip().partition(" ")
        instruction = instruction.upper()
        if not instruction:
            continue
        if instruction not in COMMIT_INSTRUCTIONS:
            raise InvalidParameter(f"{instruction.lower()} is not a valid change command")
        rest = rest.strip()
        if instruction == "CMD":
            config["Cmd"], cmd_set = _json_or_shell(rest), True
        elif instruction == "ENTRYPOINT":
            config["Entrypoint"] = _json_or_shell(rest)
            if not cmd_set:
                config["Cmd"] = None  # a new entrypoint drops the inherited command, as in a Dockerfile
        elif instruction == "ENV":
            env = [e for e in config.get("Env") or []]
            for key, value in _pairs("ENV", rest):
                env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={value}"]
            config["Env"] = env
        elif instruction == "LABEL":
            config["Labels"] = {**(config.get("Labels") or {}), **dict(_pairs("LABEL", rest))}
        elif instruction == "EXPOSE":
            ports = dict(config.get("ExposedPorts") or {})
            for port in rest.split():
                ports[port if "/" in port else f"{port}/tcp"] = {}
            config["ExposedPorts"] = ports
        elif instruction == "VOLUME":
            paths = _json_or_shell(rest) if rest.startswith("[") else rest.split()
            config["Volumes"] = {**(config.get("Volumes") or {}), **{p: {} for p in paths}}
        elif instruction == "WORKDIR":
            config["WorkingDir"] = rest if rest.startswith("/") else \
                "/" + "/".join(filter(None, [(config.get("WorkingDir") or "").strip("/"), rest]))
        elif instruction == "USER":
            config["User"] = rest
        elif instruction == "STOPSIGNAL":
            config["StopSignal"] = rest
        elif instruction == "ONBUILD":
            config["OnBuild"] = (config.get("OnBuild") or []) + [rest]
    return config


def merge(user: dict, container: dict) -> dict:
    """dockerd's merge(userConf, imageConf): what the instructions left unset comes from the container."""
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
    if not merged.get("Volumes"):
        merged["Volumes"] = container.get("Volumes")
    if container.get("Healthcheck") and not merged.get("Healthcheck"):
        merged["Healthcheck"] = container["Healthcheck"]
    return merged


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


class CommitService:
    def __init__(self, containers: ContainerService, layers: ContainerdLayers, images: ContainerdImages):
        self.containers, self.layers, self.images = containers, layers, images

    def commit(self, ref: str, repo: str = "", tag: str = "", comment: str = "", author: str = "",
               pause: bool = True, changes: list[str] = (), config: dict | None = None) -> str:
        """``POST /commit``; the new image's ID."""
        name = self._name(repo, tag)
        record = self.containers.store.get(ref)
        if record.state.removal_in_progress or record.state.dead:
            raise Conflict(f"You cannot commit container {record.id} which is being removed")
        new_config = merge(apply_changes(config or {}, list(changes)), record.config)
        base = Catalog(self.images).by_id.get(record.image)
        if base is None:
            raise NotFound(f"No such image: {record.image}")
        paused_here = pause and record.state.running and not record.state.paused
        if paused_here:
            self.containers.pause(record.id)
        try:
            with self.layers.leased():
                manifest_types = _OCI_TYPES if any(".oci." in layer.media_type for layer in base.resolved.layers) \
                    else _DOCKER_TYPES
                layer, diff_id = self.layers.diff(record.id, manifest_types[2])
        finally:
            if paused_here:
                self.containers.unpause(record.id)
        return self._store(record, base.resolved, new_config, layer, diff_id, manifest_types, name, comment, author)

    @staticmethod
    def _name(repo: str, tag: str) -> str | None:
        """The image's name (docker.io/library/x:latest) or None for a dangling one; dockerd's 400s."""
        if not repo:
            if tag:
                raise InvalidParameter("invalid reference format: repository name must have at least one component")
            return None
        named = parse_normalized(repo)
        if named.digest or named.tag and tag:
            raise InvalidParameter("invalid reference format")
        return str(named.with_tag(tag) if tag else named.tag_name_only())

    def _store(self, record, base, new_config: dict, layer: Descriptor, diff_id: str, types, name: str | None,
               comment: str, author: str) -> str:
        base_config = base.config
        created = _now()
        empty = diff_id == EMPTY_LAYER_DIFF_ID
        history = list(base_config.get("history") or [])
        entry = {"created": created, "created_by": " ".join(record.config.get("Cmd") or []),
                 "author": author or None, "comment": comment or None, "empty_layer": empty or None}
        history.append({k: v for k, v in entry.items() if v is not None})
        image_config = {
            "architecture": base_config.get("architecture", "amd64"), "author": author or base_config.get("author"),
            "comment": comment or None, "config": go_config(new_config), "container": record.id,
            "container_config": go_config(record.config), "created": created, "history": history,
            "os": base_config.get("os", "linux"),
            "rootfs": {"type": "layers",
                       "diff_ids": list((base_config.get("rootfs") or {}).get("diff_ids") or []) + ([] if empty
                                                                                                   else [diff_id])}}
        image_config = {k: v for k, v in image_config.items() if v is not None}
        layers = list(base.layers) + ([] if empty else [layer])
        with self.layers.leased():
            config_desc = self.layers.store_json(image_config, types[1], {})
            manifest = {"schemaVersion": 2, "mediaType": types[0], "config": to_json(config_desc),
                        "layers": [to_json(desc) for desc in layers]}
            manifest_desc = Descriptor(types[0], "", 0)
            manifest_desc = self.layers.store_json(manifest, types[0], gc_labels(manifest_desc, [config_desc] + layers))
            self.layers.unpack(manifest_desc)
            self.images.put(name or DANGLING + manifest_desc.digest, manifest_desc)
        return config_desc.digest
