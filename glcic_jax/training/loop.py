"""Helpers every training loop here shares: a stop flag for signals, and a run folder that can be written.

The GLCIC trainer (`training.train`) and the mask segmenter's
(`segmenter.train`) both stop cleanly between steps on SIGTERM/SIGINT,
saving first, and both refuse a --workdir they cannot write in one line.
"""

import os
import pathlib
import signal
import threading

from glcic_jax.training import configs


class StopRequested:
    """Turns SIGTERM/SIGINT into a flag the loop polls between steps."""

    def __init__(self):
        self.signal = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.signal = signal.Signals(signum).name
        # A second signal acts as usual (Ctrl-C twice kills at once).
        signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def __bool__(self):
        return self.signal is not None


def make_workdir(workdir: pathlib.Path) -> None:
    """Create the run folder, or stop in one line when it cannot be written to."""
    if workdir.exists() and not workdir.is_dir():
        raise configs.ConfigError(f"--workdir {workdir} is a file, not a folder")
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        probe = workdir / f".write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as e:
        raise configs.ConfigError(f"cannot write to --workdir {workdir}: {e.strerror}") from None
