"""Handing freed heap memory back to the kernel after moving a big blob.

A layer going through the daemon (as gRPC Write messages into an ingest,
then decompressed and unpacked) allocates and frees many large buffers in
several threads. glibc keeps freed memory in its per-thread arenas instead
of returning it, so without a trim the daemon's RSS stays tens of MiB above
what it uses after a pull. malloc_trim(0) releases the free pages of every
arena; it takes well under a millisecond here. Where the C library has no
malloc_trim (not glibc), this does nothing.
"""
import threading

_lock = threading.Lock()
_trim = None  # malloc_trim, once looked up; False when the C library lacks it
_M_ARENA_MAX = -8  # mallopt's parameter number in glibc's malloc.h


def limit_arenas(count: int) -> None:
    """Caps glibc's malloc arenas (by default up to 8 per core, one per busy
    thread): the daemon's gRPC threads then share a few heaps instead of each
    keeping its own freed memory. Called before any thread starts."""
    try:
        import ctypes
        ctypes.CDLL(None).mallopt(_M_ARENA_MAX, count)
    except (OSError, AttributeError):
        pass  # not glibc


def release_freed_memory() -> None:
    global _trim
    if _trim is None:
        with _lock:
            if _trim is None:
                try:
                    import ctypes
                    fn = ctypes.CDLL(None).malloc_trim
                    fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
                    _trim = fn
                except (OSError, AttributeError, ImportError):
                    _trim = False
    if _trim:
        _trim(0)
