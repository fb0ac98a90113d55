"""Helpers every training loop here shares: a stop flag for signals, a run folder that can be written,
and a checkpointable stream of batches drawn from (seed, step).

The GLCIC trainer (`training.train`), the mask segmenter's
(`segmenter.train`) and the refiner's (`refiner.train`) all stop cleanly
between steps on SIGTERM/SIGINT, saving first, and refuse a --workdir they
cannot write in one line; the last two draw their batches from a
`SeededStream` and train it in `train_chunk`.
"""

import concurrent.futures
import json
import logging
import os
import pathlib
import signal
import threading
import time

import jax
import numpy as np
from tqdm import tqdm

from glcic_jax.training import configs
from glcic_jax.training.writer import MetricWriter, prepare_log


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


def train_chunk(
    config, workdir, start, resume, state, stream, train_step, ckpts, meta, save_samples,
    postfix, extra_scalars=None,
) -> int:  # fmt: skip
    """One chunk of a small trainer's run, from step `start`: returns the step reached (checkpointed).

    The segmenter's and the refiner's loop: it stops at `config.total_steps`
    or after `config.steps_per_run`, logs the window's mean metrics (plus
    images_per_sec and `extra_scalars(step)`) every `log_every` steps,
    `save_samples(writer, step, state)` every `sample_every`, saves a
    checkpoint (`ckpts.save(step, state, stream, meta(step))`) every
    `checkpoint_every` and, on SIGTERM/SIGINT, at the current step; a
    non-finite loss raises. `train_step(state, *batch)` -> (state, metrics
    with "loss"); `postfix`: {metric: format} shown on the progress bar.
    Closes `stream` in any case.
    """
    stop_at = config.total_steps
    if config.steps_per_run:
        stop_at = min(stop_at, start + config.steps_per_run)
    if start >= stop_at:
        logging.warning("already at step %d of %d: nothing to do", start, config.total_steps)
        stream.close()
        return start
    prepare_log(workdir, start if resume else None)
    writer = MetricWriter(workdir)
    if start == 0:
        (workdir / "config.json").write_text(config.to_json_best_effort(indent=1))
    step, last_saved = start, start
    window, t_window = [], time.perf_counter()
    bar = tqdm(total=stop_at, initial=start, unit="step", dynamic_ncols=True)
    try:
        with StopRequested() as stop:
            while step < stop_at:
                state, metrics = train_step(state, *next(stream))
                step += 1
                window.append(metrics)
                bar.update(1)
                if step % config.log_every == 0 or step == stop_at or stop:
                    fetched = jax.device_get(window)
                    scalars = {k: float(np.mean([m[k] for m in fetched])) for k in fetched[0]}
                    if not np.isfinite(scalars["loss"]):
                        raise FloatingPointError(f"loss is {scalars['loss']} at step {step}")
                    scalars["images_per_sec"] = (
                        len(window) * config.batch_size / (time.perf_counter() - t_window)
                    )
                    scalars.update(extra_scalars(step) if extra_scalars else {})
                    writer.write_scalars(step, scalars)
                    bar.set_postfix({k: format(scalars[k], f) for k, f in postfix.items()})
                    window, t_window = [], time.perf_counter()
                if step % config.sample_every == 0:
                    save_samples(writer, step, state)
                if step % config.checkpoint_every == 0:
                    ckpts.save(step, state, stream, meta(step))
                    last_saved = step
                if stop:
                    logging.warning("%s received: saving step %d and stopping", stop.signal, step)
                    break
            if last_saved != step:
                ckpts.save(step, state, stream, meta(step))
            if step % config.sample_every:
                save_samples(writer, step, state)
    finally:
        bar.close()
        writer.close()
        stream.close()
    return step
