"""A training run on disk: where its checkpoints are, which steps exist, the config each holds.

Training writes runs (`glcic_jax.training.checkpoint`); completion,
evaluation and the survey read them through here, without importing
training. Each checkpoint is one Orbax step folder `WORKDIR/checkpoints/<step>`
with the items below.
"""

import pathlib

import orbax.checkpoint as ocp

CHECKPOINTS = "checkpoints"
# state: networks, BatchNorm statistics, optimizers, step, mean pixel;
# data: the grain iterator's position; meta: config, mean pixel, data fingerprint.
ITEMS = ("state", "data", "meta")
# Orbax's suffix for a step folder still being written (atomicity_types.py).
TMP_DIR_SUFFIX = ".orbax-checkpoint-tmp"


class CheckpointError(Exception):
    """A checkpoint problem the user can fix; the message is one line."""


def checkpoint_dir(workdir) -> pathlib.Path:
    return pathlib.Path(workdir).absolute() / CHECKPOINTS


def manager_options(max_to_keep: int = 0, read_only: bool = False):
    """Synchronous saves: a checkpoint reported saved is on disk."""
    return ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep or None,
        create=not read_only,
        read_only=read_only,
        enable_async_checkpointing=False,
    )


class RunReader:
    """The checkpoints of one run, read-only."""

    def __init__(self, workdir):
        self.directory = checkpoint_dir(workdir)
        if not self.directory.is_dir():
            raise CheckpointError(f"no checkpoints in {workdir} (expected {self.directory})")
        self.manager = ocp.CheckpointManager(
            self.directory, options=manager_options(read_only=True), item_names=ITEMS
        )

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def read_meta(self, step: int | None = None) -> dict:
        """The `meta` item (config, mean pixel, ...) of `step` (default: the latest)."""
        step = self.existing(step)
        args = ocp.args.Composite(meta=ocp.args.JsonRestore())
        return self.manager.restore(step, args=args)["meta"]

    def existing(self, step: int | None) -> int:
        """`step`, or the latest when None; CheckpointError when there is no such checkpoint."""
        if step is None:
            step = self.latest_step()
            if step is None:
                raise CheckpointError(f"no checkpoint in {self.directory}")
        elif step not in self.manager.all_steps():
            raise CheckpointError(
                f"no checkpoint at step {step} in {self.directory}: have {self.steps()}"
            )
        return step

    def close(self) -> None:
        self.manager.close()
