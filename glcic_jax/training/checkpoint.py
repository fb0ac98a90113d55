"""Writing a run's Orbax checkpoints (layout in `glcic_jax.runs`), restoring the whole train state.

Each checkpoint holds the train state, the data iterator's position (the next
batch) and the run's metadata. Orbax writes into a temporary
directory and renames it when complete, so a process killed mid-save leaves
the previous checkpoint as the latest usable one; leftovers are cleaned up on
the next start. Saves are synchronous: a checkpoint that was reported saved
is on disk.
"""

import fcntl
import gc
import hashlib
import json
import logging
import os
import pathlib
import shutil
import sys
import time
import warnings

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from glcic_jax import config_upgrade
from glcic_jax.runs import (
    ITEMS,
    TMP_DIR_SUFFIX,
    CheckpointError,
    RunReader,
    checkpoint_dir,
    manager_options,
)
from glcic_jax.training import configs


class Checkpoints(RunReader):
    """The checkpoints of one workdir, for the run that trains in it."""

    def __init__(self, workdir, max_to_keep: int = 0, read_only: bool = False):
        options = manager_options(max_to_keep, read_only)
        self.directory = checkpoint_dir(workdir)
        if read_only and not self.directory.is_dir():
            raise CheckpointError(f"no checkpoints in {workdir} (expected {self.directory})")
        self._lock = None
        if not read_only:
            self._lock = _lock_workdir(self.directory)
            if jax.process_index() == 0:
                remove_partial_saves(self.directory)
            if jax.process_count() > 1:  # nobody lists steps while process 0 cleans up
                multihost_utils.sync_global_devices("glcic_jax: partial saves removed")
        self.manager = ocp.CheckpointManager(self.directory, options=options, item_names=ITEMS)

    def check_start(self, workdir, resume: bool) -> None:
        """Refuse, in one line, --resume without a checkpoint and a fresh start over one."""
        latest = self.latest_step()
        if resume and latest is None:
            raise CheckpointError(f"--resume: no checkpoint in {workdir}; start without --resume")
        if not resume and latest is not None:
            raise CheckpointError(
                f"{workdir} already has a checkpoint at step {latest}: pass --resume to continue"
                " it, or choose a new --workdir"
            )

    def save(self, step: int, state, data_iterator, meta: dict) -> None:
        meta = {**meta, "state_digest": state_digest(state)}
        self.manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state),
                data=grain.checkpoint.CheckpointSave(data_iterator),
                meta=ocp.args.JsonSave(meta),
            ),
            force=True,
        )
        self.manager.wait_until_finished()

    def restore(self, abstract_state, step: int | None = None, data_iterator=None):
        """The state at `step` (default latest); the data iterator is restored in place."""
        step = self.existing(step)
        items = dict(state=ocp.args.StandardRestore(abstract_state))
        if data_iterator is not None:
            items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
        return self.manager.restore(step, args=ocp.args.Composite(**items))["state"]

    def newest_readable_meta(self) -> dict | None:
        """The metadata of the newest checkpoint whose metadata reads (None: none does)."""
        for step in reversed(self.steps()):
            try:
                return self.read_meta(step)
            except Exception:  # a damaged checkpoint: restore_latest_intact sets it aside
                continue
        return None

    def restore_latest_intact(self, abstract_state, data_iterator, config, check=None):
        """(step, state, meta) of the newest checkpoint that restores and matches its checksum.

        A newest checkpoint that cannot be read (a truncated or missing file,
        missing metadata or iterator state, an empty step folder) or whose
        arrays do not match the checksum saved with them is moved aside to
        `checkpoints/unusable-<step>-<time>` with a one-line warning naming
        what was wrong, and the one before it is tried. The config check
        (`check_compatible`) runs on the first readable one: a config mismatch
        is the user's to fix and stops the run. `check(saved_config, config)`
        replaces it for runs with other identity fields (the mask segmenter's)
        and for branches (`branch_check`).
        """
        check = check_compatible if check is None else check
        _drop_abandoned_read_reports()  # before a read fails: its callbacks come at once
        for step in reversed(self.steps()):
            try:
                meta = self.read_meta(step)
                check(meta["config"], config)
                state = self.restore(abstract_state, step, data_iterator)
                digest = meta.get("state_digest")
                if digest is not None and digest != state_digest(state):
                    raise CheckpointError("its arrays do not match the checksum saved with them")
                return step, state, meta
            except ConfigMismatch:
                raise
            except CheckpointError as e:
                reason = str(e)
            except Exception as e:  # Orbax and grain raise many kinds for damaged files
                first_line = str(e).splitlines()[0] if str(e) else ""
                reason = f"{type(e).__name__}: {first_line.split('. See full')[0]}"
            _collect_abandoned_reads()
            moved = self._set_aside(step)
            logging.warning(
                "checkpoint at step %d is unusable (%s); moved to %s, trying the one before",
                step, reason[:300], moved.name,
            )  # fmt: skip
        raise CheckpointError(f"no intact checkpoint in {self.directory}")

    def _set_aside(self, step: int) -> pathlib.Path:
        """Move a damaged step folder out of Orbax's sight (kept for inspection).

        Process 0 moves it; the others of a multi-host run wait for that.
        """
        source = self.directory / str(step)
        target = self.directory / f"unusable-{step}-{int(time.time())}"
        if jax.process_index() == 0 and source.exists():
            source.rename(target)
        if jax.process_count() > 1:
            multihost_utils.sync_global_devices(f"glcic_jax: checkpoint {step} set aside")
        self.manager.reload()
        return target

    def close(self) -> None:
        super().close()
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None


def _collect_abandoned_reads() -> None:
    """Free, silently, the reads a failed Orbax restore left behind.

    When one array of a damaged checkpoint cannot be read, Orbax abandons the
    other reads: their coroutines are never awaited, and their completion
    callbacks, arriving from I/O threads after the restore's event loop has
    closed, raise "Event loop is closed", and each failed read's error is
    reported when its coroutine is collected. Python would print a traceback
    for each (hundreds); the one-line warning of `restore_latest_intact` says
    what matters (`_drop_abandoned_read_reports`, installed before the restore).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "coroutine .* was never awaited", RuntimeWarning)
        gc.collect()


def _drop_abandoned_read_reports() -> None:
    """From here on, drop the reports of the reads a failed Orbax restore abandons.

    Installed before the first restore is tried: an abandoned read's callback
    can arrive from an I/O thread as soon as a read fails, before the failure
    reaches `restore_latest_intact`. Only these kinds are dropped; anything
    else still reaches the previous hook.
    """
    if getattr(sys.unraisablehook, "drops_abandoned_reads", False):
        return
    previous = sys.unraisablehook

    def hook(unraisable):
        closed_loop = isinstance(unraisable.exc_value, RuntimeError) and (
            str(unraisable.exc_value) == "Event loop is closed"
        )
        code = getattr(unraisable.object, "cr_code", None)  # an abandoned Orbax coroutine
        orbax_read = code is not None and "orbax" in code.co_filename
        if not (closed_loop or orbax_read):
            previous(unraisable)

    hook.drops_abandoned_reads = True
    sys.unraisablehook = hook
    # Abandoned read tasks that failed too: asyncio logs each when collected.
    logging.getLogger("asyncio").addFilter(_NotAnAbandonedRead())


class _NotAnAbandonedRead(logging.Filter):
    """Drops asyncio's "Task exception was never retrieved" for Orbax's abandoned array reads."""

    def filter(self, record: logging.LogRecord) -> bool:
        task = getattr(record, "msg", "")
        exc = record.exc_info[1] if record.exc_info else None
        abandoned = str(task).startswith("Task exception was never retrieved") and (
            "Encountered error while reading array index" in str(exc)
        )
        return not abandoned


def state_digest(state) -> str:
    """A checksum of every array of a train state: saved with it, checked when it is restored.

    Orbax verifies the structure of what it restores, not the bytes; a bit
    flipped on disk would otherwise surface steps later as a non-finite loss.
    """
    h = hashlib.blake2b(digest_size=16)
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        if isinstance(leaf, jax.Array):
            leaf = leaf.addressable_data(0)  # replicated: every shard holds the whole array
        array = np.ascontiguousarray(np.asarray(leaf))
        h.update(f"{jax.tree_util.keystr(path)}:{array.dtype}:{array.shape}".encode())
        h.update(array.tobytes())
    return h.hexdigest()


def _lock_workdir(directory: pathlib.Path):
    """An exclusive lock per process index, so a second run started on the same workdir stops.

    The processes of one multi-host run share the workdir (Orbax writes one
    checkpoint folder together): each holds the lock of its own index, which
    the same index of a second run then cannot take.
    """
    path = directory / f".lock-{jax.process_index()}"
    while True:
        directory.mkdir(parents=True, exist_ok=True)  # again: a refused run may remove it
        handle = open(path, "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise CheckpointError(f"another run is using {directory.parent}") from None
        if _is_current(handle, path):
            return handle
        # A refused run removed the file after we opened it (`remove_own_lock`):
        # the lock that counts is the file now at `path`.
        handle.close()


def _is_current(handle, path: pathlib.Path) -> bool:
    """Whether the open file `handle` is still the file at `path` (not removed or replaced)."""
    try:
        here, there = os.fstat(handle.fileno()), os.stat(path)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def remove_own_lock(workdir) -> bool:
    """Delete this process's lock file of `workdir` when no run holds it; True if deleted.

    For a run refused before its first step, so that it leaves no
    `checkpoints/.lock-N` behind. The file is deleted while locked, and
    `_lock_workdir` checks that the file it locked is still there, so a run
    starting meanwhile locks the new file instead of the deleted one.
    """
    path = checkpoint_dir(workdir) / f".lock-{jax.process_index()}"
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    with os.fdopen(fd, "r+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # another run holds it: its lock, not ours to delete
            return False
        if not _is_current(handle, path):
            return False
        path.unlink()
        return True


def remove_partial_saves(directory: pathlib.Path) -> list[str]:
    """Delete what a save killed half-way left behind (Orbax never lists it as a step).

    Done here, synchronously, rather than by Orbax's background clean-up,
    which can outlive a process that exits early.
    """
    removed = []
    for partial in directory.glob(f"*{TMP_DIR_SUFFIX}*"):
        shutil.rmtree(partial, ignore_errors=True)
        removed.append(partial.name)
    return removed


class ConfigMismatch(CheckpointError):
    """The run's config differs from the checkpoint's: the user's to fix, never a damaged file."""


def check_compatible(saved_config: dict, config, fields=None, defaults=None) -> None:
    """Raise ConfigMismatch naming every identity field that differs.

    `fields` default to the completion runs' (`configs`), whose saved config
    is upgraded (`config_upgrade`): a field newer than the checkpoint has the
    value that run trained with. Other runs pass the `defaults` of fields
    their checkpoints may lack.
    """
    if fields is None:
        fields = configs.IDENTITY_FIELDS
        saved_config = config_upgrade.upgrade(saved_config)
    defaults = {} if defaults is None else defaults
    saved = {f: saved_config[f] if f in saved_config else defaults[f] for f in fields}
    diffs = [
        f"{f}={saved[f]!r} in the checkpoint but {config[f]!r} now"
        for f in fields
        if _as_saved(saved[f]) != _as_saved(config[f])
    ]
    if diffs:
        raise ConfigMismatch("config does not match the checkpoint: " + "; ".join(diffs))


def _as_saved(value):
    """A config value as its checkpoint's JSON holds it: a tuple reads back as a list."""
    return [_as_saved(v) for v in value] if isinstance(value, tuple | list) else value


def abstract_like(tree, sharding=None):
    """ShapeDtypeStructs to restore `tree`'s structure into.

    Without a sharding the arrays land on the first local device, whatever
    device layout the checkpoint was saved from.
    """
    if sharding is None:
        sharding = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree
    )


BRANCH_RECORD = "branch.json"


def start_branch(source_workdir, step: int | None, workdir, data_record: str, config) -> int:
    """Copies one checkpoint of another run (and its data record) into a new workdir.

    The new run then resumes from it (`branch_check`): the same networks,
    optimizers, data order and hole stream, with its own phase schedule or
    adversarial settings. The config is checked before anything is copied;
    the data record is copied first and the checkpoint renamed into place
    last, and `BRANCH_RECORD` says where it came from, so a branch killed
    before its first save continues with `--resume`. Only process 0 copies.

    Args:
      source_workdir: the run to branch from (read only).
      step: its checkpoint (None: the latest).
      workdir: the new run's folder: no checkpoints yet.
      data_record: the runs' data record file name (`train.DATA_FILES`).
      config: the new run's config.

    Returns:
      The step copied.

    Raises:
      CheckpointError: the source has no such checkpoint or data record, the
        new workdir already has checkpoints, or (ConfigMismatch) the config
        changes more than a branch may.
    """
    source_workdir, workdir = pathlib.Path(source_workdir), pathlib.Path(workdir)
    if source_workdir.resolve() == workdir.resolve():
        raise CheckpointError("--branch_from must be another run than --workdir")
    target = checkpoint_dir(workdir)
    if target.is_dir() and any(p.name.isdigit() for p in target.iterdir()):
        raise CheckpointError(
            f"{workdir} already has checkpoints: continue it with --resume, or branch into a"
            " new --workdir"
        )
    with RunReader(source_workdir) as reader:
        step = reader.existing(step)
        source_config = reader.read_meta(step)["config"]
    check_branch(source_config, config)
    record = source_workdir / data_record
    if not record.is_file():
        raise CheckpointError(f"--branch_from: {record} is missing")
    if jax.process_index() == 0:
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(record, workdir / data_record)
        branch = dict(source=str(source_workdir.absolute()), step=step, config=source_config)
        tmp_record = workdir / (BRANCH_RECORD + ".tmp")
        tmp_record.write_text(json.dumps(branch, indent=1))
        tmp_record.replace(workdir / BRANCH_RECORD)
        tmp = target / f".branch-{step}"
        shutil.rmtree(tmp, ignore_errors=True)
        path = ocp.step.find_step_path(
            checkpoint_dir(source_workdir), ocp.step.standard_name_format(), step=step
        )
        shutil.copytree(path, tmp)
        tmp.rename(target / path.name)  # the commit point
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices("glcic_jax: branch copied")
    return step


def check_branch(saved_config: dict, config) -> None:
    """`check_compatible` on the fields a branch must keep (`configs.BRANCH_FIELDS`)."""
    check_compatible(saved_config, config, fields=configs.BRANCH_FIELDS)


def branch_check(workdir):
    """The config check of a workdir's restores: a branch's copied checkpoint gets `check_branch`.

    None for a run that is not a branch (the default `check_compatible`).
    """
    path = pathlib.Path(workdir) / BRANCH_RECORD
    if not path.is_file():
        return None
    source_config = json.loads(path.read_text())["config"]

    def check(saved_config: dict, config) -> None:
        if saved_config == source_config:  # the copied checkpoint, saved by the source run
            check_branch(saved_config, config)
        else:
            check_compatible(saved_config, config)

    return check
