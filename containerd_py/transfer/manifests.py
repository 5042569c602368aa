"""Reading image objects: children of indexes and manifests, platform choice,
layer chain IDs, and the gc reference labels containerd puts on them."""
import json
from dataclasses import dataclass

from .. import digest as digests, errors
from .. import mediatypes as mt
from ..content.store import ContentStore
from ..plugins import Platform
from ..types import Descriptor

DEFAULT_PLATFORM = Platform("linux", "amd64")
_MAX_OBJECT = 4 << 20


def parse_platform(text: str) -> Platform:
    """`os/arch[/variant]`, e.g. linux/arm64/v8."""
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise errors.InvalidArgument(f"invalid platform {text!r}: expected os/arch[/variant]")
    return Platform(parts[0], parts[1], parts[2] if len(parts) == 3 else "")


def format_platform(p: Platform) -> str:
    return "/".join(x for x in (p.os, p.architecture, p.variant) if x)


def _normalized(p: Platform) -> Platform:
    """Variants that mean the same thing compare equal, as containerd's platforms package has it."""
    variant = p.variant
    if p.architecture == "arm64" and variant in ("", "v8"):
        variant = ""
    if p.architecture == "amd64" and variant in ("", "v1"):
        variant = ""
    return Platform(p.os, p.architecture, variant)


def platform_matches(want: Platform, have: dict | None) -> bool:
    """Whether a descriptor's `platform` object runs on want (no platform runs anywhere)."""
    if not have:
        return True
    other = Platform(have.get("os", ""), have.get("architecture", ""), have.get("variant", ""))
    a, b = _normalized(want), _normalized(other)
    return a.os == b.os and a.architecture == b.architecture and (not a.variant or a.variant == b.variant)


def descriptor(obj: dict) -> Descriptor:
    try:
        return Descriptor(obj["mediaType"], obj["digest"], int(obj["size"]), dict(obj.get("annotations") or {}))
    except (KeyError, TypeError, ValueError):
        raise errors.InvalidArgument(f"invalid descriptor {json.dumps(obj)[:200]}") from None


def to_json(d: Descriptor) -> dict:
    obj = {"mediaType": d.media_type, "digest": d.digest, "size": d.size}
    if d.annotations:
        obj["annotations"] = d.annotations
    return obj


def read_json(content: ContentStore, ns: str, desc: Descriptor) -> dict:
    if desc.size > _MAX_OBJECT:
        raise errors.InvalidArgument(f"{desc.media_type} {desc.digest} is too large ({desc.size} bytes)")
    with content.open(ns, desc.digest) as f:
        data = f.read(_MAX_OBJECT + 1)
    try:
        obj = json.loads(data)
    except ValueError:
        raise errors.InvalidArgument(f"{desc.media_type} {desc.digest} is not JSON") from None
    if not isinstance(obj, dict):
        raise errors.InvalidArgument(f"{desc.media_type} {desc.digest} is not a JSON object")
    return obj


def children(desc: Descriptor, obj: dict) -> list[Descriptor]:
    """What an index or manifest points at (configs and layers before nothing else)."""
    if desc.media_type in mt.INDEXES:
        return [descriptor(m) for m in obj.get("manifests") or []]
    if desc.media_type in mt.MANIFESTS:
        if "config" not in obj:
            raise errors.InvalidArgument(f"manifest {desc.digest} has no config")
        return [descriptor(obj["config"])] + [descriptor(l) for l in obj.get("layers") or []]
    return []


def platform_children(desc: Descriptor, obj: dict, platform: Platform | None) -> list[Descriptor]:
    """The children to follow: of an index, the first manifest for platform (all when None)."""
    kids = children(desc, obj)
    if desc.media_type not in mt.INDEXES or platform is None:
        return kids
    manifests = obj.get("manifests") or []
    for kid, raw in zip(kids, manifests):
        if platform_matches(platform, raw.get("platform")):
            return [kid]
    raise errors.NotFound(f"no match for platform {format_platform(platform)} in manifest {desc.digest}")


def gc_labels(desc: Descriptor, kids: list[Descriptor]) -> dict[str, str]:
    """containerd's labels that make an object keep its children from garbage collection."""
    if desc.media_type in mt.INDEXES:
        return {f"containerd.io/gc.ref.content.m.{i}": k.digest for i, k in enumerate(kids)}
    if desc.media_type in mt.MANIFESTS and kids:
        labels = {"containerd.io/gc.ref.content.config": kids[0].digest}
        labels.update({f"containerd.io/gc.ref.content.l.{i}": k.digest for i, k in enumerate(kids[1:])})
        return labels
    return {}


@dataclass
class ImageManifest:
    """One platform's manifest of an image, with what unpacking needs of it."""

    desc: Descriptor
    config: Descriptor
    layers: list[Descriptor]
    diff_ids: list[str]
    platform: Platform


def resolve_manifest(content: ContentStore, ns: str, target: Descriptor,
                     platform: Platform = DEFAULT_PLATFORM) -> ImageManifest:
    """Follows an image's target through indexes to the manifest for platform."""
    desc = target
    for _ in range(8):  # indexes may nest, but not forever
        obj = read_json(content, ns, desc)
        if desc.media_type in mt.MANIFESTS:
            kids = children(desc, obj)
            config = read_json(content, ns, kids[0])
            diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
            if len(diff_ids) != len(kids) - 1:
                raise errors.InvalidArgument(f"config {kids[0].digest} lists {len(diff_ids)} diff IDs for "
                                             f"{len(kids) - 1} layers")
            found = Platform(config.get("os", ""), config.get("architecture", ""), config.get("variant", ""))
            return ImageManifest(desc, kids[0], kids[1:], diff_ids, found)
        if desc.media_type not in mt.INDEXES:
            raise errors.InvalidArgument(f"unexpected media type {desc.media_type} for {desc.digest}")
        (desc,) = platform_children(desc, obj, platform)
    raise errors.InvalidArgument(f"indexes nested too deep under {target.digest}")


def chain_ids(diff_ids: list[str]) -> list[str]:
    """The chain ID of each layer prefix, which names its committed snapshot."""
    result = []
    for diff_id in diff_ids:
        result.append(diff_id if not result else
                      digests.of_small(f"{result[-1]} {diff_id}".encode()))
    return result
