"""A training run on disk: where its checkpoints are, which steps exist, the config each holds.

Training writes runs (`glcic_jax.training.checkpoint`); completion,
evaluation and the survey read them through here, without importing
training. Each checkpoint is one Orbax step folder `WORKDIR/checkpoints/<step>`
with the items below. A reader can take part of the `state` item alone (the
completion network without the discriminators and optimizers), so it need
not know how the whole train state is built.
"""

import pathlib

import jax
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

    def read_state(self, target: dict, step: int | None = None) -> dict:
        """The entries of the `state` item that `target` names, read alone; nothing else is read.

        Args:
          target: a dict whose keys are fields of the saved train state (e.g.
            "gen", "mean_pixel") and whose leaves are `jax.ShapeDtypeStruct`s
            of the saved shapes; leaves without a sharding land on the first
            local device.
          step: the checkpoint (default: the latest).

        Returns:
          `target` with the saved arrays in place of its leaves.
        """
        step = self.existing(step)
        target = jax.tree.map(_with_sharding, target)
        args = ocp.args.PyTreeRestore(
            item=target,
            restore_args=ocp.checkpoint_utils.construct_restore_args(target),
            partial_restore=True,
        )
        # A checkpointer of its own: a manager restores each item with one kind
        # of handler, and the trainer's restores the whole state with another.
        path = ocp.step.find_step_path(self.directory, ocp.step.standard_name_format(), step=step)
        with ocp.PyTreeCheckpointer() as checkpointer:
            return checkpointer.restore(path / "state", args=args)

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


def _with_sharding(leaf: jax.ShapeDtypeStruct) -> jax.ShapeDtypeStruct:
    if leaf.sharding is not None:
        return leaf
    sharding = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding)
