"""Helpers every training loop here shares: a stop flag for signals, a run folder that can be written,
and a checkpointable stream of batches drawn from (seed, step).

The GLCIC trainer (`training.train`), the mask segmenter's
(`segmenter.train`) and the refiner's (`refiner.train`) all stop cleanly
between steps on SIGTERM/SIGINT, saving first, and refuse a --workdir they
cannot write in one line; the last two draw their batches from a
`SeededStream`.
"""

import concurrent.futures
import json
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


class SeededStream:
    """Batch t is `render(t)`, drawn from a generator seeded by (seed, t); checkpointable like a grain iterator.

    Subclasses implement `render(step)`; the next batch is rendered on a
    thread while the current step runs. The checkpointed state is the step,
    so a resumed run sees exactly the batches a run without the break would.
    """

    def __init__(self):
        self.step = 0
        self._pool = concurrent.futures.ThreadPoolExecutor(1)
        self._pending = None

    def render(self, step):
        raise NotImplementedError

    def __next__(self):
        if self._pending is None or self._pending[0] != self.step:
            self._pending = (self.step, self._pool.submit(self.render, self.step))
        batch = self._pending[1].result()
        self.step += 1
        self._pending = (self.step, self._pool.submit(self.render, self.step))
        return batch

    # The grain checkpoint handler's interface.
    def get_state(self) -> bytes:
        return json.dumps({"step": self.step}).encode()

    def set_state(self, state: bytes) -> None:
        self.step = int(json.loads(state.decode())["step"])

    def start_prefetch(self) -> None:
        pass

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
