"""What both ends of our gRPC (server.py, client_channel.py) share: gRPC's
message framing in HTTP/2 DATA, and the settings made on h2 and hyperframe
when first imported (quieter loggers, a cheaper frame repr)."""
import logging
import struct

import h2.settings
import hyperframe.frame

from .status import Abort, StatusCode

PREFIX = struct.Struct(">BI")  # gRPC message: compressed flag, length
# The largest frame either end of ours takes: as large as HTTP/2 allows (its
# default is 16 KiB), so a message goes in one DATA frame as the window lets
# it (a 1 MiB content chunk is one pass through h2, not 65).
MAX_FRAME_SIZE = (1 << 24) - 1

# hpack and h2 log every header they code at debug level: not what `-l debug` is for.
for _name in ("hpack", "h2"):
    logging.getLogger(_name).setLevel(logging.INFO)


def _data_frame_body_repr(self) -> str:
    return hyperframe.frame._raw_data_repr(self.data[:11])


# h2 formats every frame it receives for its trace log (`repr(frame)`, whether
# or not anything logs it), and hyperframe's DataFrame repr hexlifies the
# whole body to show its first 20 hex digits: ~18 us of each 16 KiB frame,
# 60 ms of a 50 MB layer upload. The same text, from the first 11 bytes:
hyperframe.frame.DataFrame._body_repr = _data_frame_body_repr


def advertise(conn, stream_window: int) -> None:
    """Our settings to the peer: its window on each stream, and MAX_FRAME_SIZE,
    which we take at once (h2 would from the peer's ACK only, and check a
    frame that came in the same read as the ACK against the old limit: a
    FRAME_SIZE_ERROR that ends the connection)."""
    conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: stream_window,
                          h2.settings.SettingCodes.MAX_FRAME_SIZE: MAX_FRAME_SIZE})
    conn.max_inbound_frame_size = MAX_FRAME_SIZE


def framed(payload: bytes) -> bytes:
    """One message as it goes in DATA: its prefix, then its bytes."""
    return PREFIX.pack(0, len(payload)) + payload


class MessageBuffer:
    """A stream's DATA as it comes, cut into its messages.

    The frames' data is kept as it came and joined once per message (a
    growing buffer would copy a 1 MiB message many times over)."""

    def __init__(self, limit: int):
        self.limit = limit
        self._chunks: list = []  # the DATA of a message not yet complete
        self._partial = 0         # ... its bytes so far
        self._need: int | None = None  # ... and its length with the prefix, once known

    @property
    def partial(self) -> int:
        """Bytes of a message not yet complete."""
        return self._partial

    def feed(self, data: bytes) -> list[memoryview]:
        """The messages `data` completes; Abort for one over the limit or compressed."""
        self._chunks.append(data)
        self._partial += len(data)
        messages = []
        while True:
            if self._need is None:
                if self._partial < 5:
                    break
                head = self._chunks[0] if len(self._chunks[0]) >= 5 else b"".join(self._chunks)
                compressed, length = PREFIX.unpack_from(head)
                if length > self.limit:
                    raise Abort(StatusCode.RESOURCE_EXHAUSTED,
                                f"grpc: received message larger than max ({length} vs. {self.limit})")
                if compressed:
                    raise Abort(StatusCode.UNIMPLEMENTED, "compressed messages are not supported")
                self._need = 5 + length
            if self._partial < self._need:
                break
            whole = memoryview(self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks))
            messages.append(whole[5:self._need])
            rest = whole[self._need:]
            self._chunks = [rest] if rest else []
            self._partial -= self._need
            self._need = None
        return messages
