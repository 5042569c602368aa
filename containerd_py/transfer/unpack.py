"""Unpacking: each layer applied onto a snapshot of the layers below, committed
under its chain ID, as containerd's unpacker does.

The diff ID the applier computes must be the one the image config lists;
a layer that is not what the config promises is refused and its snapshot
removed. Layers already unpacked (by chain ID) are not applied again.
"""
import base64
import os
import time

from .. import errors
from ..content.store import Info
from ..plugins import Platform
from ..types import Descriptor
from .backend import Backend
from .manifests import chain_ids, resolve_manifest
from .progress import EXISTS, EXTRACTING, UNPACKED, Progress

UNCOMPRESSED_LABEL = "containerd.io/uncompressed"


def _unpack_key(chain_id: str) -> str:
    """containerd's format for the key of a snapshot being extracted."""
    unique = f"{time.time_ns() % 1_000_000_000}-{base64.urlsafe_b64encode(os.urandom(9)).decode()}"
    return f"extract-{unique} {chain_id}"


def unpack(backend: Backend, ns: str, target: Descriptor, platform: Platform, snapshotter: str,
           progress: Progress = Progress()) -> str:
    """Unpacks the image's layers for platform; returns the chain ID of the top layer."""
    image = resolve_manifest(backend.content, ns, target, platform)
    sn = backend.snapshotter(snapshotter)
    parent = ""
    chain = chain_ids(image.diff_ids)
    for layer, diff_id, chain_id in zip(image.layers, image.diff_ids, chain):
        try:
            sn.stat(ns, chain_id)
        except errors.NotFound:
            progress.update("layer", layer, EXTRACTING)
            _apply(backend, ns, sn, layer, diff_id, chain_id, parent)
            backend.content.update(ns, Info(layer.digest, 0, labels={UNCOMPRESSED_LABEL: diff_id}),
                                   [f"labels.{UNCOMPRESSED_LABEL}"])
            progress.update("layer", layer, UNPACKED, layer.size)
        else:
            progress.update("layer", layer, EXISTS, layer.size)
        parent = chain_id
    if chain:
        label = f"containerd.io/gc.ref.snapshot.{snapshotter}"
        backend.content.update(ns, Info(image.config.digest, 0, labels={label: chain[-1]}), [f"labels.{label}"])
    return chain[-1] if chain else ""


def _apply(backend: Backend, ns: str, sn, layer: Descriptor, diff_id: str, chain_id: str, parent: str) -> None:
    key = _unpack_key(chain_id)
    mounts = sn.prepare(ns, key, parent)
    try:
        applied = backend.applier.apply(ns, layer, mounts)
        if applied.digest != diff_id:
            raise errors.FailedPrecondition(f"layer {layer.digest}: wrong diff id calculated on extraction "
                                            f"{applied.digest}, the config says {diff_id}")
        sn.commit(ns, chain_id, key)
    except errors.AlreadyExists:
        sn.remove(ns, key)  # unpacked meanwhile by someone else: theirs stands
    except BaseException:
        sn.remove(ns, key)
        raise
