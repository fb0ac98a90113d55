"""Allocator set-up: jemalloc by one re-exec, glibc's settings without it, nothing leaks to children."""

import ctypes.util
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and ld.so only")


def _python(script, **env):
    """Run SCRIPT in a fresh interpreter with no preload; its output lines."""
    unset = ("LD_PRELOAD", "MALLOC_CONF", "GLCIC_ALLOCATOR_REEXEC")
    base = {k: v for k, v in os.environ.items() if k not in unset}
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True, text=True, cwd=ROOT, env={**base, **env}, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.splitlines()


needs_jemalloc = pytest.mark.skipif(
    not ctypes.util.find_library("jemalloc"), reason="libjemalloc2 is not installed"
)


_SETUP = """
import ctypes.util, os, subprocess, sys
from glcic_jax.perf import allocator
if {fake_library!r}:
    real = ctypes.util.find_library
    ctypes.util.find_library = lambda name: {fake_library!r} if name == "jemalloc" else real(name)
print("started", flush=True)
print(allocator.setup({kind!r}))
print(allocator.jemalloc_loaded(), os.environ.get("LD_PRELOAD"), os.environ.get("MALLOC_CONF"))
child = "from glcic_jax.perf import allocator; print(allocator.jemalloc_loaded())"
print(subprocess.run([sys.executable, "-c", child], capture_output=True, text=True).stdout.strip())
"""


@linux_only
@needs_jemalloc
def test_jemalloc_by_one_reexec_and_children_start_without_it():
    lines = _python(_SETUP.format(kind="jemalloc", fake_library=""))
    assert lines[:2] == ["started", "started"]  # the script ran again, once
    assert lines[2].startswith("jemalloc (narenas:1,")
    assert lines[3:] == ["True None None", "False"]  # the environment as it was


@linux_only
def test_a_preload_that_fails_falls_back_to_glibc_without_looping():
    lines = _python(_SETUP.format(kind="jemalloc", fake_library="libnot-a-real-malloc.so.2"))
    assert lines[:2] == ["started", "started"]
    assert lines[2] == "glibc (large buffers kept in the heap)"
    assert lines[3:] == ["False None None", "False"]


@linux_only
@needs_jemalloc
def test_the_users_malloc_conf_wins_and_comes_back():
    lines = _python(_SETUP.format(kind="jemalloc", fake_library=""), MALLOC_CONF="narenas:2")
    assert lines[:2] == ["started", "started"]
    assert lines[2].startswith("jemalloc (narenas:1,") and lines[2].endswith(",narenas:2)")
    assert lines[3:] == ["True None narenas:2", "False"]


@linux_only
def test_a_preload_of_the_users_is_left_alone():
    lines = _python(_SETUP.format(kind="jemalloc", fake_library=""), LD_PRELOAD="libm.so.6")
    assert lines == [
        "started",
        "glibc (large buffers kept in the heap)",
        "False libm.so.6 None",
        "False",
    ]


def test_the_scripts_offer_every_allocator():
    import launch
    from glcic_jax.perf import allocator

    assert tuple(launch.FLAGS["allocator"].parser.enum_values) == allocator.KINDS
    helpfull = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "bench_ablation.py"), "--helpfull"],
        capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    assert f"--allocator: <{'|'.join(allocator.KINDS)}>" in helpfull


@linux_only
def test_glibc_and_none_do_not_reexec():
    for kind, in_effect in [("glibc", "glibc (large buffers kept in the heap)"), ("none", "None")]:
        lines = _python(_SETUP.format(kind=kind, fake_library=""))
        assert lines[:2] == ["started", in_effect]
    with pytest.raises(ValueError, match="choose from"):
        from glcic_jax.perf import allocator

        allocator.setup("tcmalloc")


def test_the_reference_gets_perf_md_allocator_environment():
    from glcic_jax.perf import allocator

    assert allocator.environment() == {
        "MALLOC_ARENA_MAX": "1",
        "MALLOC_MMAP_MAX_": "0",
        "MALLOC_TRIM_THRESHOLD_": "68719476736",
        "MALLOC_TOP_PAD_": "1073741824",
    }


_HEAP_AFTER_FREE = """
import ctypes, ctypes.util, sys
from glcic_jax.perf import allocator
assert allocator.setup("glibc")
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = libc.sbrk.restype = ctypes.c_void_p
libc.malloc.argtypes, libc.free.argtypes = (ctypes.c_size_t,), (ctypes.c_void_p,)
libc.sbrk.argtypes = (ctypes.c_ssize_t,)
start = libc.sbrk(0)
block = libc.malloc(512 << 20)  # address space only: no page is touched
grown = libc.sbrk(0)
libc.free(block)
print((grown - start) >> 20, (grown - libc.sbrk(0)) >> 20)
"""


@linux_only
def test_a_freed_large_buffer_stays_in_the_heap():
    """512 MiB comes from the heap (not its own mapping) and stays there when freed."""
    grown_mib, returned_mib = map(int, _python(_HEAP_AFTER_FREE)[0].split())
    assert grown_mib >= 512 and returned_mib == 0
