"""The training loop: data, sharding, phase schedule, logging, checkpoints, resume.

`train_and_evaluate(config, workdir, data_dir, resume)` runs one chunk of a
run: from scratch, or from the workdir's latest checkpoint with `resume`, for
`config.steps_per_run` steps (or to `config.total_steps`). A SIGTERM or
SIGINT finishes the current step, saves and returns.
"""

import json
import logging
import os
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm import tqdm

from glcic_jax import holes
from glcic_jax.dataset import folders, prepare
from glcic_jax.nets import hole_filling
from glcic_jax.training import checkpoint, configs, data, steps
from glcic_jax.training.loop import StopRequested, make_workdir
from glcic_jax.training.writer import MetricWriter, image_grid, prepare_log

DATA_FILES = "data_files.json"


def _write_json_atomic(path: pathlib.Path, obj) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def _prepare_data(config, workdir: pathlib.Path, data_dir, resuming: bool):
    """Training files, mean pixel and the sample-grid images for this run.

    A fresh run decodes every training image once (mean pixel, unreadable
    files) and records the result in WORKDIR/data_files.json; a resumed run
    reads it back, so its data order is the original run's.
    """
    listing = folders.list_images(data_dir, "train")
    if not listing:
        raise folders.DataError(
            f"no training images in {data_dir} (expected train/ and test/ subfolders of images,"
            " or a flat folder of images)"
        )
    record_path = workdir / DATA_FILES
    if resuming:
        if not record_path.exists():
            raise checkpoint.CheckpointError(
                f"{record_path} is missing: this workdir cannot resume"
            )
        record = json.loads(record_path.read_text())
        if record["listing"] != data.fingerprint(listing):
            raise checkpoint.CheckpointError(
                f"the training images in {data_dir} are not the ones this run started with"
                f" ({record['data_dir']})"
            )
    else:
        good, bad, mean_pixel = data.scan_images(
            listing, config.image_size, config.decode_threads, progress=jax.process_index() == 0
        )
        if not good:
            raise folders.DataError(
                f"none of the {len(listing)} training images in {data_dir} is readable"
            )
        record = dict(
            data_dir=str(pathlib.Path(data_dir).absolute()),
            listing=data.fingerprint(listing),
            files=good,
            unreadable=bad,
            mean_pixel=mean_pixel.tolist(),
        )
        if jax.process_index() == 0:
            _write_json_atomic(record_path, record)
    if record["unreadable"]:
        logging.warning(
            "skipping %d unreadable training images (listed in %s)",
            len(record["unreadable"]),
            record_path,
        )
    test_files = folders.list_images(data_dir, "test") or record["files"]
    samples = folders.fixed_batch(test_files, config.image_size, config.num_samples)
    return record, samples


def check_framing(config, data_dir) -> None:
    """Refuse, in one line, data prepared in another framing than the config's."""
    found = prepare.read_framing(data_dir)
    if found is not None and found != config.framing:
        raise configs.ConfigError(
            f"{data_dir} holds faces in the {found!r} framing but the config trains on"
            f" {config.framing!r} (prepare_data.py --framing={config.framing}, or"
            f" --config.framing={found})"
        )


def _sample_holes(config, n: int, bank):
    key = jax.random.key(config.seed + 1)
    return holes.sample_holes(key, config.mask, n, config.image_size, bank)[0]


def _check_finite(fetched, step: int) -> None:
    """Stop a diverged run before it logs or saves; `fetched` are host metric dicts."""
    if not all(np.all(np.isfinite(v)) for m in fetched for v in m.values()):
        raise FloatingPointError(f"non-finite loss by step {step}; last checkpoints are intact")


def _any_process(flag: bool) -> bool:
    """Whether `flag` is set in any process of the run (one small all-gather when there are several)."""
    if jax.process_count() == 1:
        return flag
    return bool(multihost_utils.process_allgather(np.int32(flag)).max())


def _mean_metrics(fetched):
    """Average a window of per-step metric dicts, already on the host."""
    keys = sorted({k for m in fetched for k in m})
    return {k: float(np.mean([m[k] for m in fetched if k in m])) for k in keys}


def train_and_evaluate(
    config, workdir, data_dir, resume: bool = False, branch_from=None, branch_step=None
) -> int:
    """Train one chunk; returns the step reached (and checkpointed).

    `branch_from`: start a new run from another run's checkpoint at
    `branch_step` (default: its latest), with a different phase schedule or
    adversarial settings (`configs.BRANCH_FREE_FIELDS`); then it resumes.
    """
    configs.validate(config)
    workdir = pathlib.Path(workdir)
    make_workdir(workdir)
    if branch_from is not None:
        if resume:
            raise configs.ConfigError("--branch_from starts a new run: drop --resume")
        step = checkpoint.start_branch(branch_from, branch_step, workdir, DATA_FILES, config)
        logging.warning("branching from %s at step %d", branch_from, step)
        if jax.process_index() == 0:
            (workdir / "config.json").write_text(config.to_json_best_effort(indent=1))
        resume = True
    check = checkpoint.branch_check(workdir)
    if config.batch_size % jax.device_count():
        raise configs.ConfigError(
            f"batch_size {config.batch_size} is not divisible by the {jax.device_count()} devices"
        )
    ckpts = checkpoint.Checkpoints(workdir, max_to_keep=config.max_checkpoints)
    try:
        return _train(config, workdir, data_dir, resume, ckpts, check)
    finally:
        ckpts.close()


def _train(config, workdir, data_dir, resume, ckpts, check=None) -> int:
    n_dev, n_proc = jax.device_count(), jax.process_count()
    ckpts.check_start(workdir, resume)
    check = check or checkpoint.check_compatible
    if resume and (meta := ckpts.newest_readable_meta()) is not None:
        check(meta["config"], config)  # before the data scan

    check_framing(config, data_dir)
    # Before the data scan, so a missing template folder is reported at once.
    bank = holes.hole_bank(
        config.mask,
        config.image_size,
        config.overlay_bank,
        config.seed,
        config.framing,
        config.overlay_dilation,
    )
    record, sample_images = _prepare_data(config, workdir, data_dir, resuming=resume)
    nets = steps.build_networks(config)
    # Auto axes: XLA propagates the batch sharding through the convolutions.
    mesh = jax.make_mesh((n_dev,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    replicated = NamedSharding(mesh, P())
    batch_sharding = NamedSharding(mesh, P("data"))
    mean_pixel = np.asarray(record["mean_pixel"], np.float32)

    data_iter = data.training_batches(
        record["files"],
        size=config.image_size,
        batch_size=config.batch_size // n_proc,
        seed=config.seed,
        threads=config.decode_threads,
        shard_index=jax.process_index(),
        shard_count=n_proc,
    )
    init = jax.jit(lambda: steps.init_state(config, nets, mean_pixel), out_shardings=replicated)
    if resume:
        abstract = checkpoint.abstract_like(jax.eval_shape(init), replicated)
        start, state, _ = ckpts.restore_latest_intact(abstract, data_iter, config, check)
    else:
        state = init()
        start = 0

    if bank is not None:
        bank = jax.device_put(bank, replicated)
    train_steps = steps.jit_steps(nets, replicated, batch_sharding)
    jitted_complete = hole_filling.jit_complete(nets.gen_def, nets.compute_dtype, config.image_size)

    def complete(s, x, m):
        return jitted_complete(s.gen, s.gen_stats, s.mean_pixel, x, m)

    sample_x = jnp.asarray(sample_images, jnp.float32) / 255.0
    sample_m = _sample_holes(config, len(sample_images), bank)

    stop_at = config.total_steps
    if config.steps_per_run:
        stop_at = min(stop_at, start + config.steps_per_run)
    if start >= stop_at:
        logging.warning("already at step %d of %d: nothing to do", start, config.total_steps)
        return start
    if jax.process_index() == 0:
        prepare_log(workdir, start if resume else None)
    writer = MetricWriter(workdir, enabled=jax.process_index() == 0)
    if start == 0 and jax.process_index() == 0:
        (workdir / "config.json").write_text(config.to_json_best_effort(indent=1))

    def meta(step):
        return dict(
            config=config.to_dict(),
            mean_pixel=record["mean_pixel"],
            data_dir=record["data_dir"],
            data_files=record["listing"],
            step=step,
            devices=n_dev,
        )

    def save_samples(step):
        out = complete(state, sample_x, sample_m)
        masked = hole_filling.composite(sample_x, jnp.ones_like(sample_x) * 0.5, sample_m)
        grid = image_grid([np.asarray(masked), np.asarray(out), np.asarray(sample_x)])
        writer.write_image(step, "samples", grid)

    step = start
    last_saved = start
    window, t_window = [], time.perf_counter()
    bar = tqdm(
        total=stop_at,
        initial=start,
        unit="step",
        disable=jax.process_index() != 0,
        dynamic_ncols=True,
    )
    with StopRequested() as stop:
        stopping = False
        while step < stop_at:
            local = next(data_iter)
            batch = jax.make_array_from_process_local_data(batch_sharding, local)
            phase = configs.phase_of(step, config)
            state, metrics = train_steps[phase](state, batch, bank)
            step += 1
            window.append(metrics)
            bar.update(1)
            stopping = _any_process(bool(stop))  # every process stops at the same step
            if step % config.log_every == 0 or step == stop_at or stopping:
                fetched = jax.device_get(window)  # the window's one host sync
                _check_finite(fetched, step)
                scalars = _mean_metrics(fetched)
                elapsed = time.perf_counter() - t_window
                scalars["images_per_sec"] = len(window) * config.batch_size / elapsed
                scalars["phase"] = phase
                writer.write_scalars(step, scalars)
                bar.set_postfix(
                    phase=phase, **{k: f"{v:.4g}" for k, v in scalars.items() if k != "phase"}
                )
                window, t_window = [], time.perf_counter()
            if step % config.sample_every == 0:
                save_samples(step)
            if step % config.checkpoint_every == 0:
                _check_finite(jax.device_get(window), step)  # never save a diverged state
                ckpts.save(step, state, data_iter, meta(step))
                last_saved = step
            if stopping:
                why = f"{stop.signal} received" if stop else "another process was asked to stop"
                logging.warning("%s: saving step %d and stopping", why, step)
                break
        if last_saved != step:
            _check_finite(jax.device_get(window), step)
            ckpts.save(step, state, data_iter, meta(step))
        if step % config.sample_every:
            save_samples(step)
    bar.close()
    writer.close()
    return step
