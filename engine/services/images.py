"""The image backend the API's image routes call: pull (as a stream of
dockerd's progress messages; every tag when none is named; Docker Hub's
images from the registry-mirrors first), list, inspect, tag, remove,
history, in dockerd 20.10's shapes and words. Push, save/load/import, prune
and login/search have modules of their own beside this one.

Images live in containerd's image store under their normalised names
(`docker.io/library/busybox:latest`, and after a pull by tag also
`docker.io/library/busybox@sha256:...`, as dockerd records the digest
reference); an image is what dockerd calls one: its config digest is its ID
and every name resolving to that config is one of its references. An image
that loses its last name while a container still uses it, or because the
name moved to another image (tag, pull, load, import), keeps a
`moby-dangling@<digest>` name (moby's own convention with containerd) so
containerd does not collect it; it lists as `<none>:<none>`.
"""
from __future__ import annotations

import base64
import binascii
import datetime
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from containerd_py import errors as cerrors
from containerd_py.reference import DOCKER_HUB
from containerd_py.remotes.hosts import host_config
from containerd_py.remotes.registry import Registry
from containerd_py.transfer.progress import DOWNLOADED, EXISTS, Progress
from containerd_py.types import Descriptor
from engine.containerd.images import ContainerdImages, Resolved
from engine.errors import Conflict, EngineError, InvalidParameter, NotFound, System, Unauthorized, Unavailable
from engine.filters import IMAGE_FILTERS, Filters
from engine.reference import Named, familiar_match, parse_any, parse_normalized
from engine.services.pull_progress import PullProgress
from engine.services.registries import is_insecure, mirror_host, ping, repository_tags
from engine.services.streaming import error_message, in_thread

DANGLING = "moby-dangling@"
LAST_TAG_LABEL = "io.engine-py.last-tag-time"
PARENT_LABEL = "org.mobyproject.image.parent"  # a build step's image: the image it was made on
ZERO_TIME = "0001-01-01T00:00:00Z"
ZERO_UNIX = -62135596800
NO_CREDENTIALS = "no basic auth credentials"  # dockerd's error when a registry wants some and none were sent
_DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}

# (container id, running) of each container whose image is the given image ID
InUse = Callable[[str], list[tuple[str, bool]]]
# (action, id, name) of an image event, as dockerd's LogImageEvent logs it: pull, tag, untag, delete
Publish = Callable[[str, str, str], None]

_CONFIG_KEYS = ("Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "ExposedPorts", "Tty",
                "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck", "ArgsEscaped", "Image", "Volumes",
                "WorkingDir", "Entrypoint", "NetworkDisabled", "MacAddress", "OnBuild", "Labels", "StopSignal",
                "StopTimeout", "Shell")
_CONFIG_OMITEMPTY = frozenset(("ExposedPorts", "Healthcheck", "ArgsEscaped", "NetworkDisabled", "MacAddress",
                               "StopSignal", "StopTimeout", "Shell"))
_CONFIG_ZERO = {"Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
                "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Image": "",
                "WorkingDir": ""}


def short_id(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def go_config(obj: dict | None) -> dict:
    """A container config as Go's container.Config marshals it: every key, zero values filled in."""
    obj = obj or {}
    return {k: obj.get(k, _CONFIG_ZERO.get(k)) for k in _CONFIG_KEYS if k not in _CONFIG_OMITEMPTY or obj.get(k)}


def go_time(text: str) -> str:
    """An RFC 3339 time as Go's RFC3339Nano writes it back (no trailing zeros in the fraction)."""
    if not text:
        return ZERO_TIME
    head, dot, rest = text.partition(".")
    if not dot:
        return text
    digits = len(rest) - len(rest.lstrip("0123456789"))
    fraction = rest[:digits].rstrip("0")
    return head + (f".{fraction}" if fraction else "") + rest[digits:]


def unix_time(text: str) -> int:
    if not text:
        return ZERO_UNIX
    head, dot, rest = text.partition(".")
    zone = rest.lstrip("0123456789") if dot else ""
    try:
        moment = datetime.datetime.fromisoformat((head + zone if dot else text).replace("Z", "+00:00"))
    except ValueError:
        return ZERO_UNIX
    return int(moment.timestamp())


def decode_auth(header: str | None) -> tuple[str, str] | None:
    """X-Registry-Auth (base64url JSON); dockerd goes on without credentials when it does not decode."""
    if not header:
        return None
    try:
        config = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(config, dict) or not config.get("username"):
        return None
    return str(config["username"]), str(config.get("password") or "")


@dataclass
class ImageView:
    """One image (one config digest) and the names in containerd that lead to it."""

    id: str
    resolved: Resolved
    target: Descriptor  # what its (first) name points at
    names: list[str] = field(default_factory=list)  # containerd image names
    labels: dict[str, str] = field(default_factory=dict)  # of all its names, merged

    @property
    def refs(self) -> list[Named]:
        """Its references, sorted as dockerd lists them (names not in docker's form are not shown)."""
        refs = []
        for name in self.names:
            if name.startswith(DANGLING):
                continue
            try:
                refs.append(parse_normalized(name))
            except InvalidParameter:
                continue
        return sorted(refs, key=lambda r: r.familiar())

    @property
    def config(self) -> dict:
        return self.resolved.config

    @property
    def created(self) -> str:
        return self.config.get("created") or ""

    @property
    def parent(self) -> str:
        return self.labels.get(PARENT_LABEL, "")


class Catalog:
    """A snapshot of the namespace's images, grouped by ID, for one request."""

    def __init__(self, door: ContainerdImages):
        self.by_id: dict[str, ImageView] = {}
        self.by_name: dict[str, ImageView] = {}
        for image in door.list():
            try:
                resolved = door.resolve(image.target)
            except cerrors.Error:
                continue  # content missing or not for this platform: not an image the engine can show
            view = self.by_id.setdefault(resolved.config_digest,
                                         ImageView(resolved.config_digest, resolved, image.target))
            view.names.append(image.name)
            view.labels.update(image.labels)
            self.by_name[image.name] = view
        self.children: dict[str, list[str]] = {}
        for view in self.by_id.values():
            if view.parent:
                self.children.setdefault(view.parent, []).append(view.id)

    def find(self, ref_or_id: str) -> ImageView:
        """dockerd's GetImage: a reference, then an ID or ID prefix; NotFound in its words."""
        ref = parse_any(ref_or_id)
        if isinstance(ref, str):
            if ref in self.by_id:
                return self.by_id[ref]
            raise NotFound(f"No such image: {ref}")
        named = ref if not ref.digest else Named(ref.host, ref.repository, "", ref.digest)
        view = self.by_name.get(str(named.tag_name_only()))
        if view is not None:
            return view
        found = self.by_prefix(ref_or_id)
        if found is None:
            raise NotFound(f"No such image: {ref.tag_name_only().familiar()}")
        return found

    def by_prefix(self, text: str) -> ImageView | None:
        prefix = text.removeprefix("sha256:")
        if not prefix or any(c not in "0123456789abcdef" for c in prefix):
            return None
        found = [v for i, v in self.by_id.items() if i[7:].startswith(prefix)]
        return found[0] if len(found) == 1 else None


def is_single_reference(refs: list[Named]) -> bool:
    """moby's isSingleReference: at most one tag, and digests of that repository only."""
    if len(refs) <= 1:
        return len(refs) == 1
    single, canonical = None, set()
    for ref in refs:
        if ref.digest:
            canonical.add(ref.name)
        elif single is None:
            single = ref
        else:
            return False
    single = single or refs[0]
    return len(canonical) == 1 and single.name in canonical


class ImageService:
    def __init__(self, door: ContainerdImages, in_use: InUse = lambda image_id: [],
                 publish: Publish = lambda action, id_, name: None, insecure_registries: tuple[str, ...] = (),
                 hosts_dir: str | None = None, mirrors: tuple[str, ...] = ()):
        """mirrors: registry-mirrors URLs, asked before Docker Hub for its images, as dockerd does."""
        self.door, self.in_use, self.publish = door, in_use, publish
        self.insecure_registries, self.hosts_dir = frozenset(insecure_registries), hosts_dir
        self.mirrors = [mirror_host(url) for url in mirrors]

    def catalog(self) -> Catalog:
        """The namespace's images now."""
        return Catalog(self.door)

    def get(self, ref_or_id: str) -> ImageView:
        """The image a container would be made from (NotFound, InvalidParameter in dockerd's words)."""
        return Catalog(self.door).find(ref_or_id)

    # -- pull ------------------------------------------------------------------

    def pull(self, from_image: str, tag: str = "", registry_auth: str | None = None,
             platform: str = "") -> Iterator[dict]:
        """Checks the reference and reaches the registry (failures raise, for an HTTP error), then
        returns the progress messages of the pull; its later failure is the last message.

        A name without a tag pulls every tag of the repository (`docker pull -a`), as dockerd does;
        insecure_registries are host[:port] names or CIDRs, as dockerd's."""
        check_platform(platform)
        ref = parse_normalized(from_image.removesuffix(":"))  # "pull -a" may send "name:", dockerd says
        if tag:
            ref = ref.trimmed().with_tag(tag) if not _is_digest(tag) else Named(ref.host, ref.repository, "", tag)
        credentials = decode_auth(registry_auth)
        if ref.tag or ref.digest:
            return self._pull_stream([self._pull_of(ref, *self._resolve(ref, credentials))], ref)
        registry, tags = self._first_answer(ref, credentials, lambda r: repository_tags(
            r.config, credentials, ref.repository), f"repository {ref.familiar_name} not found")
        try:
            pulls = [self._pull_of(t, registry, self.door.resolve_remote(registry, t))
                     for t in (ref.with_tag(name) for name in tags)]  # in the registry's order, as dockerd
        except (cerrors.Error, OSError) as e:
            raise registry_error(e) from None
        return self._pull_stream(pulls, ref)

    def _pull_of(self, ref: Named, registry: Registry, target: Descriptor) -> tuple[Named, Registry, bool]:
        """(ref, where from, whether it is here already); the image the name leaves is kept."""
        existing = self.door.get(str(ref))
        self.keep_when_unnamed(str(ref), target)
        return ref, registry, existing is not None and existing.target.digest == target.digest

    def _resolve(self, ref: Named, credentials: tuple[str, str] | None) -> tuple[Registry, Descriptor]:
        def ask(registry: Registry) -> Descriptor:
            try:
                return self.door.resolve_remote(registry, ref)
            except cerrors.Unauthenticated:
                if credentials:
                    raise
                raise System(f'Head "{registry.base_url}/v2/{ref.repository}/manifests/{ref.object}": '
                             f"{NO_CREDENTIALS}") from None  # dockerd's words (a 500: the CLI asks no login)

        return self._first_answer(ref, credentials, ask,
                                  f"manifest for {ref.familiar()} not found: manifest unknown: manifest unknown")

    def _first_answer(self, ref: Named, credentials, ask: Callable[[Registry], object], not_found: str):
        """(registry, its answer) from the first registry that answers: for Docker Hub's images its
        mirrors first, then the Hub. NotFound (not_found) when one that answered has nothing."""
        hosts = [*self.mirrors, (ref.host, False)] if ref.host == DOCKER_HUB else [(ref.host, False)]
        missing = False  # a registry that answered said it has no such thing
        for i, (host, plain_http) in enumerate(hosts):
            registry = self.registry(host, credentials, plain_http)
            try:
                ping(registry.config)
                return registry, ask(registry)
            except (cerrors.Error, OSError, Unavailable) as e:
                missing = missing or isinstance(e, cerrors.NotFound)
                if i < len(hosts) - 1:
                    continue
                if missing and isinstance(e, (cerrors.NotFound, cerrors.Unavailable, OSError, Unavailable)):
                    raise NotFound(not_found) from None
                raise registry_error(e) from None
        raise AssertionError("unreachable")

    def registry(self, host: str, credentials: tuple[str, str] | None, plain_http: bool = False) -> Registry:
        """A client of the registry at host, over plain HTTP where dockerd would speak it."""
        try:
            config = host_config(host, plain_http or is_insecure(host, self.insecure_registries), self.hosts_dir)
        except cerrors.Error as e:
            raise System(str(e)) from None
        return Registry(config, credentials)

    def _pull_stream(self, pulls: list[tuple[Named, Registry, bool]], shown: Named) -> Iterator[dict]:
        """Each tag's pull in turn; the status line names what was asked for (a tag, or a repository)."""
        newer = False
        for ref, registry, up_to_date in pulls:
            yield {"status": f"Pulling from {ref.repository}", "id": ref.tag or ref.familiar()}
            try:
                target = yield from in_thread(partial(self._pull_one, ref, registry), f"pull {ref}")
            except Exception as e:  # noqa: BLE001 - the stream's last message
                yield error_message(str(registry_error(e)))
                return
            yield {"status": f"Digest: {target.digest}"}
            newer = newer or not up_to_date
        verb = "Downloaded newer image for" if newer else "Image is up to date for"
        yield {"status": f"Status: {verb} {shown.familiar()}"}

    def _pull_one(self, ref: Named, registry: Registry, emit) -> Descriptor:
        """The whole pull, names included, even when the client has gone meanwhile. Layers of the
        images here now (an earlier tag's included) show as there already."""
        local = Catalog(self.door).by_id.values()
        progress = PullProgress(emit, frozenset(v.id for v in local),
                                frozenset(layer.digest for v in local for layer in v.resolved.layers))
        with ThreadPoolExecutor(1, thread_name_prefix="size") as sizing:
            target = self.door.pull(registry, ref, _Sizing(progress, self.door, sizing)).target
        if ref.tag:
            self.door.put(f"{ref.name}@{target.digest}", target)  # dockerd's digest reference
        self.drop_dangling(target)
        self.publish("pull", ref.familiar(), ref.familiar_name)  # dockerd: ID busybox:latest, name busybox
        return target

    def keep_when_unnamed(self, name: str, new_target: Descriptor) -> None:
        """name is about to lead to new_target: the image it leaves keeps a dangling name when nothing
        else names it, as dockerd keeps such an image, as <none>."""
        previous = self.door.get(name)
        if previous is None or previous.target.digest == new_target.digest:
            return
        if not any(i.name != name and i.target.digest == previous.target.digest for i in self.door.list()):
            self.door.put(DANGLING + previous.target.digest, previous.target, _parent_labels(previous.labels))

    def drop_dangling(self, target) -> None:
        """The image has a name now: its stand-in name goes."""
        try:
            self.door.delete(DANGLING + target.digest)
        except cerrors.NotFound:
            pass

    # -- list, inspect, history -------------------------------------------------

    def list(self, filters: Filters = Filters(), all: bool = False) -> list[dict]:
        """GET /images/json, newest first; a build's intermediate images (untagged, with children) with `all`."""
        filters.validate(IMAGE_FILTERS)
        catalog = Catalog(self.door)
        dangling_only = False
        if filters.contains("dangling"):
            if filters.exact_match("dangling", "true") and filters.get("dangling"):
                dangling_only = True
            elif not filters.exact_match("dangling", "false"):
                raise InvalidParameter(f"Invalid filter 'dangling=[{' '.join(filters.get('dangling'))}]'")
        before = [unix_time(catalog.find(r).created) for r in filters.get("before")]
        since = [unix_time(catalog.find(r).created) for r in filters.get("since")]
        summaries = []
        for view in catalog.by_id.values():
            created = unix_time(view.created)
            if any(created >= b for b in before) or any(created <= s for s in since):
                continue
            labels = (view.config.get("config") or {}).get("Labels")
            if filters.contains("label") and not filters.match_kv_list("label", labels or {}):
                continue
            refs = [r for r in view.refs if not filters.contains("reference") or
                    any(familiar_match(p, r) for p in filters.get("reference"))]
            tags = [r.familiar() for r in refs if not r.digest] or None
            digests = [r.familiar() for r in refs if r.digest] or None
            if not view.refs and view.id in catalog.children and not all:
                continue
            if not refs:
                if filters.contains("reference") or (filters.contains("dangling") and not dangling_only):
                    continue
                tags, digests = ["<none>:<none>"], ["<none>@<none>"]
            elif dangling_only and tags:
                continue
            size = self._size(view)
            summaries.append({"Containers": -1, "Created": created, "Id": view.id, "Labels": labels,
                              "ParentId": view.parent, "RepoDigests": digests, "RepoTags": tags, "SharedSize": -1,
                              "Size": size, "VirtualSize": size})
        summaries.sort(key=lambda s: s["Created"], reverse=True)
        return summaries

    def _size(self, view: ImageView) -> int:
        return sum(self.door.layer_size(layer) for layer in view.resolved.layers)

    def inspect(self, ref_or_id: str) -> dict:
        """GET /images/{name}/json; its lookup errors say which name, as dockerd's do."""
        try:
            view = self.get(ref_or_id)
        except (NotFound, InvalidParameter) as e:
            raise type(e)(f"no such image: {ref_or_id}: {e}") from None
        config, size = view.config, self._size(view)
        last_tag = max((v for k, v in view.labels.items() if k == LAST_TAG_LABEL), default=ZERO_TIME)
        result = {
            "Id": view.id, "RepoTags": [r.familiar() for r in view.refs if not r.digest],
            "RepoDigests": [r.familiar() for r in view.refs if r.digest], "Parent": view.parent,
            "Comment": config.get("comment", ""), "Created": go_time(view.created),
            "Container": config.get("container", ""), "ContainerConfig": go_config(config.get("container_config")),
            "DockerVersion": config.get("docker_version", ""), "Author": config.get("author", ""),
            "Config": go_config(config["config"]) if config.get("config") is not None else None,
            "Architecture": config.get("architecture", ""), "Variant": config.get("variant", ""),
            "Os": config.get("os", ""), "OsVersion": config.get("os.version", ""), "Size": size, "VirtualSize": size,
            "GraphDriver": {"Data": None, "Name": self.door.snapshotter},
            "RootFS": {"Type": "layers", "Layers": list((config.get("rootfs") or {}).get("diff_ids") or [])},
            "Metadata": {"LastTagTime": last_tag},
        }
        for omitempty in ("Variant", "OsVersion"):
            if not result[omitempty]:
                del result[omitempty]
        return result

    def history(self, ref_or_id: str) -> list[dict]:
        """GET /images/{name}/history: newest first, the image's ID and tags on the top entry only."""
        view = self.get(ref_or_id)
        entries, layer = [], 0
        for h in view.config.get("history") or []:
            size = 0
            if not h.get("empty_layer"):
                if layer < len(view.resolved.layers):
                    size = self.door.layer_size(view.resolved.layers[layer])
                layer += 1
            entries.insert(0, {"Comment": h.get("comment", ""), "Created": unix_time(h.get("created", "")),
                               "CreatedBy": h.get("created_by", ""), "Id": "<missing>", "Size": size, "Tags": None})
        catalog, image = Catalog(self.door), view
        for entry in entries:  # dockerd's: the image, then each parent in turn, top down
            entry["Id"] = image.id
            entry["Tags"] = [r.familiar() for r in image.refs if not r.digest] or None
            image = catalog.by_id.get(image.parent)
            if image is None:
                break
        return entries

    # -- tag, remove ------------------------------------------------------------

    def tag(self, source: str, repo: str, tag: str = "") -> Named:
        """POST /images/{name}/tag; returns the new reference (201)."""
        ref = parse_normalized(repo)
        if ref.digest:
            raise InvalidParameter("refusing to create a tag with a digest reference")
        if tag:
            ref = ref.trimmed().with_tag(tag)
        ref = ref.tag_name_only()
        view = self.get(source)
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self.keep_when_unnamed(str(ref), view.target)
        self.door.put(str(ref), view.target, {LAST_TAG_LABEL: go_time(stamp), **_parent_labels(view.labels)})
        self.publish("tag", view.id, ref.familiar())
        self.drop_dangling(view.target)
        return ref

    def remove(self, ref_or_id: str, force: bool = False) -> list[dict]:
        """DELETE /images/{name}: dockerd's ImageDelete, its Untagged/Deleted records and conflicts."""
        catalog = Catalog(self.door)
        view = catalog.find(ref_or_id)
        refs, records = view.refs, []
        by_id = view.id.startswith(ref_or_id) or view.id.startswith("sha256:" + ref_or_id)
        if not by_id:
            if not force and is_single_reference(refs):
                users = self.in_use(view.id)
                if users:
                    raise Conflict(f'conflict: unable to remove repository reference "{ref_or_id}" (must force) - '
                                   f"container {users[0][0][:12]} is using its referenced image {short_id(view.id)}")
            parsed = parse_normalized(ref_or_id)  # as the reference store keys it: a digest drops the tag
            parsed = Named(parsed.host, parsed.repository, "", parsed.digest) if parsed.digest else \
                parsed.tag_name_only()
            remaining = [r for r in refs if r != parsed]
            untag = [parsed]
            if not parsed.digest and not any(not r.digest and r.name == parsed.name for r in remaining):
                untag += [r for r in remaining if r.digest and r.name == parsed.name]
                remaining = [r for r in remaining if r not in untag]
            silent = untag[1:]  # dockerd cleans up the repository's digests without an event
            if remaining:
                self._untag(view, untag, records, silent=silent)
                return records
            return self._delete(view, untag, records, force, quiet=True, silent=silent)
        if catalog.children.get(view.id):
            raise Conflict(f"conflict: unable to delete {short_id(view.id)} (cannot be forced) - "
                           "image has dependent child images")
        if is_single_reference(refs):
            self._check_conflict(view, force, active_references=False)
            return self._delete(view, refs, records, force, quiet=False)
        return self._delete(view, refs, records, force, quiet=False, active_references=not force)

    def _untag(self, view: ImageView, refs: list[Named], records: list[dict], keep: bool = False,
               collect: bool = False, silent: list[Named] = ()) -> None:
        """Removes refs' names. keep: the image stays under its dangling name (a container uses
        it); collect: the last removal waits until containerd has collected what it held;
        silent: those removed without an "untag" event."""
        if keep:
            self.door.put(DANGLING + view.target.digest, view.target, _parent_labels(view.labels))
        for i, ref in enumerate(refs):
            if ref not in silent:
                self.publish("untag", view.id, view.id)  # before the name goes: with the image's labels, as dockerd's
            try:
                self.door.delete(str(ref), sync=collect and i == len(refs) - 1)
            except cerrors.NotFound:
                pass
            records.append({"Untagged": ref.familiar()})

    def _check_conflict(self, view: ImageView, force: bool, active_references: bool) -> None:
        """moby's checkImageDeleteConflict: a running user always; references and stopped users unless forced."""
        users = self.in_use(view.id)
        running = next((u for u in users if u[1]), None)
        if running:
            raise DeleteConflict(view.id, True, f"image is being used by running container {running[0][:12]}")
        if not force and active_references and view.refs:
            raise DeleteConflict(view.id, False, "image is referenced in multiple repositories")
        stopped = next((u for u in users if not u[1]), None)
        if stopped and not force:
            raise DeleteConflict(view.id, False, f"image is being used by stopped container {stopped[0][:12]}")

    def _delete(self, view: ImageView, refs: list[Named], records: list[dict], force: bool, quiet: bool,
                active_references: bool = False, silent: list[Named] = ()) -> list[dict]:
        """Untags refs, then removes the image and reports the layers no other image holds, unless
        a container holds it: quiet (after removing a name) leaves it dangling, else that is the error."""
        try:
            self._check_conflict(view, force, active_references)
        except DeleteConflict:
            if not quiet:
                raise
            self._untag(view, refs, records, keep=True, silent=silent)
            return records
        for name in view.names:
            if name.startswith(DANGLING):
                self.door.delete(name, sync=not view.refs)
        self._untag(view, refs + [r for r in view.refs if r not in refs], records, collect=True, silent=silent)
        records.append({"Deleted": view.id})
        self.publish("delete", view.id, view.id)
        # Collected by now: a layer another image or a container's snapshot still holds is there.
        gone = [c for c in reversed(view.resolved.chain_ids) if not self.door.has_snapshot(c)]
        records += [{"Deleted": c} for c in gone]
        self._delete_unused_parent(view.parent, view.id, records)
        return records

    def _delete_unused_parent(self, parent_id: str, child_id: str, records: list[dict]) -> None:
        """dockerd's prune of parents: a build's intermediate image goes with its last child,
        unless it has a name or a container uses it."""
        catalog = Catalog(self.door)
        parent = catalog.by_id.get(parent_id)
        if parent is None or parent.refs or self.in_use(parent.id) \
                or [c for c in catalog.children.get(parent.id, []) if c != child_id]:
            return
        self._delete(parent, [], records, force=False, quiet=True)


def _parent_labels(labels: dict[str, str]) -> dict[str, str]:
    """What a new name of an image carries over from its old ones."""
    return {PARENT_LABEL: labels[PARENT_LABEL]} if labels.get(PARENT_LABEL) else {}


class _Sizing(Progress):
    """Passes updates on, and has each layer sized as soon as its content is in, beside the rest
    of the pull, so that the list that follows a pull finds the sizes known."""

    def __init__(self, inner: Progress, door: ContainerdImages, pool: ThreadPoolExecutor):
        self.inner, self.door, self.pool = inner, door, pool

    def update(self, kind, desc, status, current=0):
        self.inner.update(kind, desc, status, current)
        if kind == "layer" and status in (DOWNLOADED, EXISTS):
            self.pool.submit(self.door.layer_size, desc)  # a failure here is measured again when asked


class DeleteConflict(Conflict):
    """moby's imageDeleteConflict: hard ones (a running container) cannot be forced."""

    def __init__(self, image_id: str, hard: bool, message: str):
        super().__init__(f"conflict: unable to delete {short_id(image_id)} "
                         f"({'cannot be forced' if hard else 'must be forced'}) - {message}")


def check_platform(text: str) -> None:
    """The engine pulls and runs linux/amd64 images: another platform asked for is refused rather
    than swapped for that one; a malformed one in containerd's platforms.Parse words."""
    if not text:
        return
    parts = text.lower().split("/")
    if len(parts) > 3 or not all(parts):
        raise InvalidParameter(f'"{text}": unknown operating system or architecture: invalid argument')
    if parts[0] != "linux" or parts[1:2] not in ([], ["amd64"], ["x86_64"], ["x86-64"]):
        raise InvalidParameter(f"image platform {text} is not supported: engine-py pulls linux/amd64 images")


def _is_digest(text: str) -> bool:
    """go-digest's Parse: a known algorithm and its length of lowercase hex."""
    algorithm, _, hex_ = text.partition(":")
    return _DIGEST_LENGTHS.get(algorithm) == len(hex_) and all(c in "0123456789abcdef" for c in hex_)


def registry_error(error: BaseException) -> EngineError:
    """A registry operation's failure in the class dockerd gives it, worded by the layer that found it."""
    if isinstance(error, EngineError):
        return error
    text = str(error.args[0]) if isinstance(error, cerrors.Error) and error.args else str(error)
    for cls, engine_cls in ((cerrors.Unauthenticated, Unauthorized), (cerrors.PermissionDenied, Unauthorized),
                            (cerrors.NotFound, NotFound), (cerrors.Unavailable, Unavailable), (OSError, Unavailable)):
        if isinstance(error, cls):
            return engine_cls(text)
    return System(text)
