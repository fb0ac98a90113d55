"""The workloads the speed benchmarks time: one compiled training phase or inference, random data.

Shared by experiments/bench_train.py (each phase beside the PyTorch
reference) and experiments/bench_ablation.py (one phase under each layer
formulation), so both time exactly the step that training runs; both run
their timings in worker processes (glcic_jax/perf/step_protocol.py).
"""

import dataclasses
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from glcic_jax import holes
from glcic_jax.nets import hole_filling
from glcic_jax.nets.formulations import Formulations
from glcic_jax.training import configs, steps

PHASES = ("1", "2", "3", "infer")
# The reference's local patch, half the image side (the paper's 128 on the
# 256 canvas); training's default is 160, for the mouth box.
REFERENCE_LOCAL_PATCH = 128


def bench_config(
    preset: str,
    image_size: int,
    batch_size: int,
    compute_dtype="float32",
    optimizer="adam",
    local_patch=REFERENCE_LOCAL_PATCH,
):
    """The preset's networks at this size, by default set up as the reference:
    Adam for both nets, its local patch, the random holes that patch holds."""
    config = configs.get_config(preset)
    config.image_size, config.batch_size = image_size, batch_size
    config.optimizer, config.g_lr, config.d_lr = optimizer, 1e-3, 1e-3
    config.compute_dtype = compute_dtype
    config.local_patch, config.mask = local_patch, "random"
    configs.validate(config)  # ConfigError: a message for the user, before any compiling
    return config


@dataclasses.dataclass
class Workload:
    run: Callable[[], Any]  # one step (or inference batch); returns something to block on
    compiled: Any  # the XLA executable, for its cost analysis
    compile_s: float  # tracing and compiling the step


def with_formulations(nets: steps.Networks, state, formulations: Formulations) -> steps.Networks:
    """`nets` whose every layer computes with `formulations`; the parameters are unchanged.

    The formulations are static attributes of the layers, so they live in the
    graph definitions: set on the merged networks, then split off again.
    """
    gen = nnx.merge(nets.gen_def, state.gen, state.gen_stats)
    disc = nnx.merge(nets.disc_def, state.disc, state.disc_stats)
    for net in (gen, disc):
        net.set_attributes(formulations=formulations)
    return dataclasses.replace(nets, gen_def=nnx.graphdef(gen), disc_def=nnx.graphdef(disc))


def compile_phase(
    config,
    phase: str,
    inference_options: dict | None = None,
    formulations: Formulations | None = None,
) -> Workload:
    """Fresh networks and a random batch, the phase's step traced and compiled.

    Args:
      config: the networks and batch (`bench_config`).
      phase: one of `PHASES`.
      inference_options: XLA options for inference instead of
        `formulations.inference_compiler_options`'s (the
        users' completion path, `nets.hole_filling`).
      formulations: how the layers compute; None: as in training, the
        backend's default.
    """
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
    nets = steps.build_networks(config)
    state = jax.jit(lambda: steps.init_state(config, nets, np.full(3, 0.5)))()
    if formulations is not None:
        nets = with_formulations(nets, state, formulations)
    rng = np.random.default_rng(0)
    shape = (config.batch_size, config.image_size, config.image_size, 3)
    batch = jnp.asarray(rng.integers(0, 256, shape, np.uint8))
    if phase == "infer":
        boxes = holes.sample_boxes(jax.random.key(0), "mouth", config.batch_size, config.image_size)
        hole = holes.boxes_to_masks(boxes, config.image_size)
        images = batch.astype(jnp.float32) / 255

        weights = (state.gen, state.gen_stats, state.mean_pixel)
        t = time.perf_counter()
        compiled = (
            hole_filling.jit_complete(
                nets.gen_def, nets.compute_dtype, config.image_size, inference_options
            )
            .lower(*weights, images, hole)
            .compile()
        )
        return Workload(lambda: compiled(*weights, images, hole), compiled, time.perf_counter() - t)

    t = time.perf_counter()
    compiled = steps.jit_steps(nets)[int(phase)].lower(state, batch).compile()
    compile_s = time.perf_counter() - t
    holder = [state]  # the state is donated: each step consumes the last one's

    def run():
        holder[0], metrics = compiled(holder[0], batch)
        return metrics

    return Workload(run, compiled, compile_s)


def flops_per_run(compiled) -> float:
    """FLOPs of one run from XLA's cost analysis (0 where the backend gives none)."""
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", 0.0)) if cost else 0.0
