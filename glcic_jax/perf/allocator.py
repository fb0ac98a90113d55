"""Allocator settings that keep XLA:CPU's large buffers mapped between steps.

By default glibc returns every buffer over 32 MB to the OS and faults it in
again each step: 20-25% slower steps at 256px batch 4 for both this project
and the PyTorch reference (docs/performance.md). The glibc fix is one arena,
no mmap for large blocks, and a trim threshold and top pad that keep freed
memory in the heap (`SETTINGS`; `environment()` gives them to the reference).

Our own processes prefer jemalloc where it is installed (Debian/Ubuntu:
libjemalloc2): the process re-executes itself once with it preloaded, with one
arena that never gives freed memory back and no separate path for large
blocks. That is the glibc settings' intent (one arena, nothing given back) without
glibc's limit here: mallopt cannot set the 64 GiB trim threshold (below).
Phase 3 at 256px batch 4: 6.2-6.6 s per step under glibc with the settings,
5.0-5.6 s under jemalloc, with less CPU time too (docs/performance.md).

Without jemalloc, the same glibc settings are applied with mallopt(3) to the
running process. mallopt takes an int: the trim threshold it gets is
2 GiB - 1, not 64 GiB, and this is kept on purpose. A step that frees more
than that at the heap's top gives it back and faults it in again next step
(phase 3 at 256px batch 4: about 380k page faults per step). Trimming off (-1)
removed those but let the heap grow: peak RSS 8.9 GB instead of 4.3 GB and,
in one measurement, 8.5 s per step instead of 6.7 s without any setting.
"""

import ctypes
import ctypes.util
import json
import logging
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
SETTINGS = {
    _M_ARENA_MAX: 1,
    _M_MMAP_MAX: 0,
    _M_TRIM_THRESHOLD: 64 << 30,
    _M_TOP_PAD: 1 << 30,
}
# mallopt's value is an int: larger settings reach it as this (see above).
_MALLOPT_MAX = 2**31 - 1
_ENV_NAMES = {
    _M_ARENA_MAX: "MALLOC_ARENA_MAX",
    _M_MMAP_MAX: "MALLOC_MMAP_MAX_",
    _M_TRIM_THRESHOLD: "MALLOC_TRIM_THRESHOLD_",
    _M_TOP_PAD: "MALLOC_TOP_PAD_",
}
JEMALLOC_CONF = "narenas:1,oversize_threshold:0,dirty_decay_ms:-1,muzzy_decay_ms:-1"
KINDS = ("jemalloc", "glibc", "none")
# Set for the re-executed process only: the environment it started from, so
# that it can put that back for its children and never re-execute twice.
_REEXEC_MARK = "GLCIC_ALLOCATOR_REEXEC"
PRELOAD_VARIABLES = ("LD_PRELOAD", "MALLOC_CONF")


def environment() -> dict:
    """The glibc settings as environment variables, for a process that is not ours."""
    return {_ENV_NAMES[param]: str(value) for param, value in SETTINGS.items()}


def name(in_effect: str | None) -> str:
    """The KINDS entry for setup()'s answer, for a JSON record."""
    return in_effect.split()[0] if in_effect else "none"


def jemalloc_loaded() -> bool:
    try:
        with open("/proc/self/maps") as maps:
            return any("libjemalloc" in line for line in maps)
    except OSError:
        return False


def setup(kind: str = "jemalloc") -> str | None:
    """Apply an allocator to this process; returns what is in effect, for one log line.

    "jemalloc" may replace the process (os.execve, same arguments) and falls
    back to "glibc" where jemalloc 5 is not installed or the process cannot be
    re-executed (a preload of the user's own, a script read from stdin); call
    it first thing in a script's main. "none" leaves the C library's defaults.
    """
    if kind not in KINDS:
        raise ValueError(f"allocator {kind!r}: choose from {KINDS}")
    if jemalloc_loaded():
        conf = os.environ.get("MALLOC_CONF") or "its defaults"
        _restore_environment()
        return f"jemalloc ({conf})"
    if kind == "jemalloc" and _can_reexec():
        library = ctypes.util.find_library("jemalloc")
        if library and library.endswith(".so.2"):  # jemalloc 5: JEMALLOC_CONF's options
            _reexec_with(library)
    _restore_environment()  # after a preload that failed: children start as we did
    if kind == "none":
        return None
    return "glibc (large buffers kept in the heap)" if _mallopt() else None


def _can_reexec() -> bool:
    return (
        sys.platform == "linux"
        and _REEXEC_MARK not in os.environ
        and not os.environ.get("LD_PRELOAD")  # the user's own choice: leave it
        and sys.argv[0] not in ("", "-")  # stdin is read: it cannot be read again
        and not sys.flags.interactive
    )


def _reexec_with(library: str) -> None:
    saved = {name: os.environ.get(name) for name in PRELOAD_VARIABLES}
    env = {
        **os.environ,
        "LD_PRELOAD": library,
        # jemalloc reads its options left to right: the user's own win.
        "MALLOC_CONF": ",".join(filter(None, [JEMALLOC_CONF, saved["MALLOC_CONF"]])),
        _REEXEC_MARK: json.dumps(saved),
    }
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    os.execve(sys.executable, sys.orig_argv, env)


def _restore_environment() -> None:
    try:
        saved = json.loads(os.environ.pop(_REEXEC_MARK, "{}"))
    except ValueError:
        saved = {}
    if not isinstance(saved, dict):
        return
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _mallopt() -> bool:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        logging.info("no glibc mallopt here: allocator settings not applied")
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return all(mallopt(param, min(value, _MALLOPT_MAX)) == 1 for param, value in SETTINGS.items())
