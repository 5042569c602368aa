"""docker's per-layer progress display: redrawn in place on a terminal, one
line per change of state otherwise (logs, pipes)."""
import threading
from typing import TextIO

from ...transfer import progress as p
from ...types import Descriptor

_WORDS = {p.WAITING: "Waiting", p.EXISTS: "Already exists", p.DOWNLOADING: "Downloading",
          p.DOWNLOADED: "Download complete", p.EXTRACTING: "Extracting", p.UNPACKED: "Pull complete",
          p.UPLOADING: "Pushing", p.PUSHED: "Pushed", p.MOUNTED: "Mounted from another repository",
          p.ALREADY_PUSHED: "Layer already exists"}
_BAR = 40


def human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1000
    raise AssertionError("unreachable")


class Display(p.Progress):
    """Shows layers (and on push every object), the way docker pull and push do."""

    def __init__(self, out: TextIO, tty: bool, kinds: frozenset[str] = frozenset({"layer"})):
        self._out, self._tty, self._kinds = out, tty, kinds
        self._rows: dict[str, list] = {}  # digest -> [desc, status, current]
        self._drawn = 0
        self._lock = threading.Lock()

    @staticmethod
    def _line(desc: Descriptor, status: str, current: int) -> str:
        line = f"{desc.digest.split(':')[-1][:12]}: {_WORDS[status]}"
        if status in (p.DOWNLOADING, p.UPLOADING) and desc.size:
            filled = min(_BAR, _BAR * current // desc.size)
            arrow = ">" if filled < _BAR else ""
            line += f" [{'=' * max(filled - len(arrow), 0)}{arrow}{' ' * (_BAR - filled)}] " \
                    f"{human(current)}/{human(desc.size)}"
        return line

    def update(self, kind, desc, status, current=0):
        if kind not in self._kinds:
            return
        with self._lock:
            row = self._rows.get(desc.digest)
            if row and row[1] == status and not self._tty:
                return
            self._rows[desc.digest] = [desc, status, current]
            if self._tty:
                self._redraw()
            else:
                self._out.write(self._line(desc, status, current) + "\n")
            self._out.flush()

    def _redraw(self) -> None:
        if self._drawn:
            self._out.write(f"\x1b[{self._drawn}A")
        for desc, status, current in self._rows.values():
            self._out.write("\x1b[2K" + self._line(desc, status, current) + "\n")
        self._drawn = len(self._rows)
