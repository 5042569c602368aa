"""A pull's progress as dockerd's JSON messages, per layer (`id` = the first
12 hex digits of its digest): Pulling fs layer, Downloading with
progressDetail and the bar text dockerd formats, Verifying Checksum,
Download complete, Extracting, Pull complete; or Already exists.

containerd_py's transfer code reports from several fetch threads; every
message goes to `emit` in the order of its layer's states.
"""
import threading
from collections.abc import Callable

from containerd_py.transfer import progress as p

_UPDATE_EVERY = 512 * 1024  # bytes
_BAR = 50


def human_size(size: float) -> str:
    """go-units' HumanSize: decimal units, four significant digits."""
    units = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
    i = 0
    while size >= 1000 and i < len(units) - 1:
        size /= 1000
        i += 1
    return f"{size:.4g}{units[i]}"


def progress_text(current: int, total: int) -> str:
    """jsonmessage.JSONProgress.String on dockerd's side (no terminal: 200 columns, no time left)."""
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        return f"{human_size(current):>8}"
    filled = min(int(current / total * 100) // 2, _BAR)
    bar = f"[{'=' * filled}>{' ' * (_BAR - filled)}] "
    numbers = f"{human_size(current):>8}" if current > total else f"{human_size(current):>8}/{human_size(total)}"
    return bar + numbers


def due(last_reported: int, current: int, total: int) -> bool:
    """dockerd's progress reader reports every 512 KiB or 1 %, whichever is larger, and at the end."""
    return current - last_reported > max(_UPDATE_EVERY, total // 100) or current == total


def layer_message(status: str, layer_id: str, current: int | None = None, total: int = 0) -> dict:
    if current is None:
        return {"status": status, "progressDetail": {}, "id": layer_id}
    return {"status": status, "progressDetail": {"current": current, "total": total},
            "progress": progress_text(current, total), "id": layer_id}


class PullProgress(p.Progress):
    """local_configs, local_layers: digests of the images already here. As dockerd, a pull
    whose config is here shows no layer at all, and a layer already here shows as Already exists."""

    def __init__(self, emit: Callable[[dict], None], local_configs: frozenset[str] = frozenset(),
                 local_layers: frozenset[str] = frozenset()):
        self._emit, self._local_configs, self._local_layers = emit, local_configs, local_layers
        self._quiet = False
        self._said: dict[str, str] = {}  # digest -> last status reported
        self._reported_at: dict[str, int] = {}
        self._lock = threading.Lock()

    def update(self, kind, desc, status, current=0):
        with self._lock:
            if kind == "config" and status == p.WAITING and desc.digest in self._local_configs:
                self._quiet = True  # announced before any layer: the transfer lists a manifest's children first
            if kind != "layer" or self._quiet:
                return
            for message in self._messages(desc, desc.digest.split(":")[-1][:12], status, current):
                self._emit(message)

    def _messages(self, desc, layer_id: str, status: str, current: int) -> list[dict]:
        said = self._said.get(desc.digest)
        out = []
        if status == p.WAITING:
            known = desc.digest in self._local_layers
            out.append(layer_message("Already exists" if known else "Pulling fs layer", layer_id))
            self._said[desc.digest] = p.EXISTS if known else p.WAITING
        elif status == p.EXISTS:
            if said in (None, p.WAITING):
                out.append(layer_message("Already exists", layer_id))
                self._said[desc.digest] = p.EXISTS
            elif said == p.DOWNLOADED:  # unpacked meanwhile by another pull
                out.append(layer_message("Pull complete", layer_id))
                self._said[desc.digest] = p.UNPACKED
        elif status == p.DOWNLOADING:
            if said is None:
                out.append(layer_message("Pulling fs layer", layer_id))
            if due(self._reported_at.get(desc.digest, 0), current, desc.size):
                self._reported_at[desc.digest] = current
                out.append(layer_message("Downloading", layer_id, current, desc.size))
            self._said[desc.digest] = status
        elif status == p.DOWNLOADED:
            if said is None:
                out.append(layer_message("Pulling fs layer", layer_id))
            out += [layer_message("Verifying Checksum", layer_id), layer_message("Download complete", layer_id)]
            self._said[desc.digest] = status
        elif status == p.EXTRACTING:
            out.append(layer_message("Extracting", layer_id, 0, desc.size))
            self._said[desc.digest] = status
        elif status == p.UNPACKED:
            out += [layer_message("Extracting", layer_id, desc.size, desc.size),
                    layer_message("Pull complete", layer_id)]
            self._said[desc.digest] = status
        return out
