"""JAX's persistent compilation cache in the run's workdir: a resumed chunk does not compile again.

A chunked run (the study's 80k-step chunks, a scheduler's preemptions) starts
a fresh process for every chunk, and each used to compile its training steps
again: 74-110 s a phase on a GPU (docs/gpu.md), a third of a short GPU
chunk. With the cache, the first chunk writes each compiled step to
`WORKDIR/compile_cache/` and every later one loads it (keyed by the
computation, the JAX version and the device, so a change of any of them
compiles afresh). A `JAX_COMPILATION_CACHE_DIR` set by the user wins.

`CacheCount` listens to JAX's monitoring events, so the launcher can say how
many compilations came from the cache.
"""

import dataclasses
import os
import pathlib

FOLDER = "compile_cache"
# Compilations quicker than this are not written (JAX's own default is 1 s;
# the training steps take several seconds even on a CPU, the small helpers
# far less).
MIN_COMPILE_SECONDS = 0.5


def enable(workdir, folder: str | None = None) -> pathlib.Path:
    """Turns the persistent cache on, in `folder` or `WORKDIR/compile_cache`; returns its path.

    `JAX_COMPILATION_CACHE_DIR` in the environment takes precedence over both.
    """
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    chosen = os.environ.get("JAX_COMPILATION_CACHE_DIR") or folder
    path = pathlib.Path(chosen) if chosen else pathlib.Path(workdir) / FOLDER
    if jax.config.jax_compilation_cache_dir != str(path):
        compilation_cache.reset_cache()  # JAX opens its cache once, at the first compile
        jax.config.update("jax_compilation_cache_dir", str(path))
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    return path


@dataclasses.dataclass
class CacheCount:
    """Compilations loaded from the cache (`hits`) and compiled afresh (`misses`) since `listen`."""

    hits: int = 0
    misses: int = 0
    seconds_saved: float = 0.0

    def listen(self) -> "CacheCount":
        from jax import monitoring

        def on_event(event: str, **kwargs) -> None:
            if event == "/jax/compilation_cache/cache_hits":
                self.hits += 1
            elif event == "/jax/compilation_cache/cache_misses":
                self.misses += 1

        def on_duration(event: str, seconds: float, **kwargs) -> None:
            if event == "/jax/compilation_cache/compile_time_saved_sec":
                self.seconds_saved += seconds

        monitoring.register_event_listener(on_event)
        monitoring.register_event_duration_secs_listener(on_duration)
        return self

    def line(self, path) -> str:
        """What the launcher prints at the end of a run."""
        return (
            f"compile cache: {self.hits} compilations loaded, {self.misses} compiled afresh"
            f" ({self.seconds_saved:.0f} s of compiling saved) in {path}"
        )
