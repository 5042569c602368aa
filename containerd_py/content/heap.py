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
_M_ARENA_MAX = -8  # mallopt's parameter numbers in glibc's malloc.h
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 128 * 1024  # glibc's initial threshold


def limit_arenas(count: int, fixed_mmap_threshold: bool = False) -> None:
    """Caps glibc's malloc arenas (by default up to 8 per core, one per busy
    thread): the daemon's threads then share a few heaps instead of each
    keeping its own freed memory. Called before any thread starts.

    fixed_mmap_threshold: every buffer of 128 KiB or more gets a mapping of
    its own, returned to the kernel when freed. Otherwise glibc raises the
    threshold (up to 32 MiB) each time such a buffer is freed, and from then
    on big transient buffers (the chunks of a `docker load`) come from the
    heaps and stay resident after use: ~9 MiB of an idle engine."""
    try:
        import ctypes
        mallopt = ctypes.CDLL(None).mallopt
        mallopt(_M_ARENA_MAX, count)
        if fixed_mmap_threshold:
            mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
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
