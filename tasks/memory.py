"""Process-wide memory tuning: glibc's malloc arenas, and where page-sized blocks come from.

glibc gives threads that allocate at once arenas of their own, up to eight per core, and each keeps the
memory freed in it. The flow's process runs dozens of threads (fetch parts, cleaning waiters, Prefect's
own) through pages of ~110 KB: with arenas capped at 2 its peak was 100-120 MB lower on 5,000 pages, at
the same speed. `NEWSFLOW_MALLOC_ARENA_MAX` sets the cap (0: glibc's default).

A page's body (~110 KB, and its bytes, its pickle, its gzip) is below glibc's starting mmap threshold
(128 KB), which also rises to the largest block freed so far: so pages came from the arenas' heaps, which
give memory back only from their top. At 2,000 pages the heaps ended holding 276 MB free against 87 MB
in use. With blocks of `NEWSFLOW_MALLOC_MMAP_THRESHOLD` bytes (64 KiB) or more mapped on their own, each
page's memory goes back to the system when the page goes (0: glibc's dynamic threshold).

Applied when the flows are imported, before their threads start; elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_ARENA_MAX = -8  # glibc's mallopt parameters
M_MMAP_THRESHOLD = -3


def _setting(name: str) -> int:
    """A setting from the environment, else its default. (Read before the settings are built: this runs at
    import.)"""
    from tasks.settings import Settings

    default = int(Settings.model_fields[name].default)
    try:
        return int(os.environ.get(f"NEWSFLOW_{name.upper()}", "").strip() or default)
    except ValueError:  # not a number: the default here; the settings report it when they are built
        return default


def malloc_arena_max() -> int:
    return _setting("malloc_arena_max")


def _mallopt(parameter: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(parameter, value))
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False


def tune_malloc() -> None:
    """Both settings, as the environment gives them."""
    limit_malloc_arenas()
    threshold = _setting("malloc_mmap_threshold")
    if threshold > 0:
        _mallopt(M_MMAP_THRESHOLD, threshold)


def limit_malloc_arenas(arenas: int | None = None) -> bool:
    """Cap glibc's malloc arenas; whether it took effect (False: not glibc, or 0 asks for no cap)."""
    arenas = malloc_arena_max() if arenas is None else arenas
    if arenas <= 0:
        return False
    return _mallopt(M_ARENA_MAX, arenas)
