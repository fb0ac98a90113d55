"""glibc malloc settings that keep XLA:CPU's large buffers mapped between steps.

By default glibc returns every buffer over 32 MB to the OS and faults it in
again each step; ../shared/PERF.md measured 20-25% slower steps at 256px
batch 4 for both this project and the PyTorch reference. These are the
MALLOC_ARENA_MAX=1 MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=64GiB
MALLOC_TOP_PAD_=1GiB environment settings, applied with mallopt(3) to the
running process, so a launcher needs no re-exec.

mallopt takes an int: the trim threshold it gets is 2 GiB - 1, not 64 GiB,
and this is kept on purpose. A step that frees more than that at the heap's
top gives it back and faults it in again next step (phase 3 at 256px batch
4: about 380k page faults per step). Trimming off (-1) removed those but let
the heap grow, since a fresh multi-GB temporary block does not always fit
the space freed: peak RSS 8.9 GB instead of 4.3 GB and, in one measurement,
8.5 s per step instead of 6.7 s without any setting (README, Performance).
"""

import ctypes
import ctypes.util
import logging

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


def environment() -> dict:
    """The same settings as environment variables, for a child process that is not ours."""
    return {_ENV_NAMES[param]: str(value) for param, value in SETTINGS.items()}


def keep_buffers_mapped() -> bool:
    """Apply the settings; False (and a log line) where there is no glibc."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        logging.info("no glibc mallopt here: allocator settings not applied")
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    ok = all(mallopt(param, min(value, _MALLOPT_MAX)) == 1 for param, value in SETTINGS.items())
    logging.info("allocator: glibc keeps large buffers mapped between steps (PERF.md)")
    return ok
