"""Decompression of layer streams, detected by magic bytes as containerd does.

zstandard (~1 MiB resident) is imported by the first zstd stream: most
layers are gzip, and the engine imports this module at start."""
import gzip
import io
import sys
import zlib
from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def decompress(stream: BinaryIO) -> BinaryIO:
    """A reader of the uncompressed bytes of a gzip, zstd or plain stream."""
    buffered = io.BufferedReader(stream) if not hasattr(stream, "peek") else stream
    head = buffered.peek(4)[:4]
    if head.startswith(GZIP_MAGIC):
        return gzip.GzipFile(fileobj=buffered, mode="rb")
    if head.startswith(ZSTD_MAGIC):
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(buffered, read_across_frames=True)
    return buffered


def stream_errors() -> tuple[type[Exception], ...]:
    """What reading a corrupt stream from decompress() raises (zstandard's
    error only once a zstd stream loaded it: no other stream raises it)."""
    zstandard = sys.modules.get("zstandard")
    return (EOFError, zlib.error) + ((zstandard.ZstdError,) if zstandard else ())
