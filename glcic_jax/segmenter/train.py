"""Training the mask segmentation network on synthetic masked faces, in resumable chunks.

`train_segmenter(config, workdir, face_dirs, resume)` follows the completion
runs' conventions: a preset config (`segmenter.configs`), Orbax checkpoints
with checksums and a fallback to the last intact one, metrics.jsonl and
TensorBoard, sample grids, a progress bar, SIGTERM/SIGINT saving and
stopping at the current step.

Data: the training split of each face folder in `face_dirs` (`folders.list_images`;
their landmarks found once by MTCNN and kept
in WORKDIR/sources.json), each drawn with a random template and the
training augmentations of `segmenter.synthetic`. Batch t is drawn from a
generator seeded by (seed, t), so a resumed run sees exactly the batches a
run without the break would have; the stream's checkpointed state is the
step. The next batch is rendered on a thread while the current step runs.

Loss: binary cross-entropy plus soft Dice (the Dice term keeps the small
masks of distant faces from being lost to the many background pixels).

For experiments/train_segmenter.py, which only reads flags: the default face
folders (`default_face_dirs`), the export thresholds a flag leaves out
(`export_thresholds`) and the errors it reports in one line (`USER_ERRORS`).
"""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx, struct

from glcic_jax import locations
from glcic_jax.dataset import folders
from glcic_jax.face_masks import overlay
from glcic_jax.segmenter import configs as segmenter_configs
from glcic_jax.segmenter import mask_net
from glcic_jax.segmenter import network as segmentation
from glcic_jax.segmenter.synthetic import face_sources
from glcic_jax.segmenter.synthetic import generator as synthetic
from glcic_jax.training import checkpoint
from glcic_jax.training.loop import SeededStream, make_workdir, train_chunk
from glcic_jax.training.writer import image_grid

SOURCES_FILE = "sources.json"
# The face folders a run trains on when none are named, in data/ or the lab's
# mirror (`locations.find`): CelebA's first 10,000 and 600 LFW crops.
DEFAULT_FACES = ("celeba10k", "faces")
# What a user can fix, reported as one line: a config field or face folder,
# a checkpoint, the mask templates, a --workdir that is a file or not writable.
USER_ERRORS = (
    segmenter_configs.ConfigError,
    checkpoint.CheckpointError,
    overlay.OverlayError,
    FileExistsError,
    NotADirectoryError,
    PermissionError,
)


@struct.dataclass
class SegmenterState:
    step: jax.Array
    params: object
    opt: object


def schedule(config) -> optax.Schedule:
    warmup = max(1, min(100, config.total_steps // 10))
    return optax.warmup_cosine_decay_schedule(
        0.0, config.lr, warmup, config.total_steps, end_value=0.05 * config.lr
    )


def optimizer(config) -> optax.GradientTransformation:
    return optax.adam(schedule(config))


def init_state(config):
    """(graphdef, fresh state): the network's structure and its seeded weights with Adam's state."""
    model = segmentation.build(config.width, config.seed)
    graphdef, params = nnx.split(model, nnx.Param)
    return graphdef, SegmenterState(
        jnp.zeros((), jnp.int32), params, optimizer(config).init(params)
    )


def losses(logits, labels):
    """(BCE + soft Dice, metrics) over a batch; labels float {0, 1}."""
    bce = optax.sigmoid_binary_cross_entropy(logits, labels).mean()
    prob = jax.nn.sigmoid(logits)
    inter = (prob * labels).sum((1, 2))
    dice = 1.0 - (2.0 * inter + 1.0) / (prob.sum((1, 2)) + labels.sum((1, 2)) + 1.0)
    pred = logits > 0
    truth = labels > 0.5
    inter_hard = (pred & truth).sum()
    union = (pred | truth).sum()
    iou = jnp.where(union > 0, inter_hard / jnp.maximum(union, 1), 1.0)
    loss = bce + dice.mean()
    return loss, dict(loss=loss, bce=bce, dice=dice.mean(), iou=iou)


def make_train_step(graphdef, tx):
    """The pure jit-compiled step (state, images uint8, labels bool) -> (state, metrics)."""

    @jax.jit
    def step(state, images, labels):
        x = images.astype(jnp.float32) / 255.0
        y = labels.astype(jnp.float32)

        def loss_fn(params):
            return losses(segmentation.logits(graphdef, params, x), y)

        (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt = tx.update(grads, state.opt, state.params)
        params = optax.apply_updates(state.params, updates)
        return SegmenterState(state.step + 1, params, opt), metrics

    return step


class SyntheticStream(SeededStream):
    """Batch t of synthetic masked faces, drawn from a generator seeded by (seed, t)."""

    def __init__(self, sources, config, split="train"):
        super().__init__()
        self.sources = sources
        self.config = config
        self.split = split

    def render(self, step):
        rng = np.random.default_rng([self.config.seed, step])
        return synthetic.batch(
            self.sources,
            rng,
            self.config.image_size,
            self.config.batch_size,
            split=self.split,
            unmasked=self.config.unmasked,
        )


def prepare_sources(workdir: pathlib.Path, face_dirs, resuming: bool):
    """The training faces and their landmarks: found once, then read from WORKDIR/sources.json."""
    path = workdir / SOURCES_FILE
    if path.exists():
        return face_sources.load_sources(path)
    if resuming:
        raise checkpoint.CheckpointError(f"--resume: {path} is missing; the run cannot continue")
    paths = []
    for d in face_dirs:
        try:
            found = folders.list_images(d, "train")
        except folders.DataError as e:
            raise segmenter_configs.ConfigError(str(e)) from None
        if not found:
            raise segmenter_configs.ConfigError(f"no training images in face folder {d}")
        paths.extend(found)
    sources = face_sources.find_sources(paths)
    if not sources:
        raise segmenter_configs.ConfigError("no face was found in the face folders")
    face_sources.save_sources(sources, path)
    return sources


def default_face_dirs() -> list[pathlib.Path]:
    """The folders of DEFAULT_FACES, where `locations.find` finds them.

    Raises:
      segmenter_configs.ConfigError: one is in none of the places looked in.
    """
    found = [locations.find(name) for name in DEFAULT_FACES]
    for name, path in zip(DEFAULT_FACES, found):
        if path is None:
            raise segmenter_configs.ConfigError(
                f"face folder {name} not found ({locations.candidates(name)}): pass --faces"
            )
    return found


def _check_compatible(saved, config):
    checkpoint.check_compatible(
        saved,
        config,
        segmenter_configs.IDENTITY_FIELDS,
        segmenter_configs.base_config(),
    )


def train_segmenter(config, workdir, face_dirs, resume: bool = False) -> int:
    """Train one chunk; returns the step reached (and checkpointed).

    Raises:
      USER_ERRORS: a bad config, no faces, a checkpoint that cannot resume,
        missing mask templates (checked at once, before minutes of face finding).
    """
    segmenter_configs.validate(config)
    overlay.load_templates()
    workdir = pathlib.Path(workdir)
    make_workdir(workdir)
    ckpts = checkpoint.Checkpoints(workdir, max_to_keep=config.max_checkpoints)
    try:
        return _train(config, workdir, face_dirs, resume, ckpts)
    finally:
        ckpts.close()


def _train(config, workdir, face_dirs, resume, ckpts) -> int:
    ckpts.check_start(workdir, resume)
    if resume and (meta := ckpts.newest_readable_meta()) is not None:
        _check_compatible(meta["config"], config)
    sources = prepare_sources(workdir, face_dirs, resume)
    stream = SyntheticStream(sources, config)
    graphdef, state = init_state(config)
    start = 0
    if resume:
        abstract = checkpoint.abstract_like(state)
        start, state, _ = ckpts.restore_latest_intact(abstract, stream, config, _check_compatible)
    train_step = make_train_step(graphdef, optimizer(config))
    forward = jax.jit(lambda p, x: jax.nn.sigmoid(segmentation.logits(graphdef, p, x)))
    sample_x, sample_y = synthetic.batch(
        sources, np.random.default_rng([config.seed, 2**31 - 1]), config.image_size,
        config.num_samples,
    )  # fmt: skip

    def meta(step):
        return dict(config=config.to_dict(), step=step, faces=len(sources), kind="mask_segmenter")

    def save_samples(writer, step, state):
        prob = np.asarray(forward(state.params, jnp.asarray(sample_x, jnp.float32) / 255.0))
        rows = [sample_x, overlay_view(sample_x, sample_y), overlay_view(sample_x, prob > 0.5)]
        writer.write_image(step, "segmentation", image_grid([r / 255.0 for r in rows]))

    return train_chunk(
        config, workdir, start, resume, state, stream, train_step, ckpts, meta, save_samples,
        dict(loss=".4f", iou=".3f"),
        extra_scalars=lambda step: {"lr": float(schedule(config)(step))},
    )  # fmt: skip


def overlay_view(images, masks) -> np.ndarray:
    """uint8 images with `masks` tinted red: the sample grid's rows."""
    out = np.asarray(images, np.float32).copy()
    m = np.asarray(masks, bool)
    out[m] = 0.5 * out[m] + 0.5 * np.array([255.0, 0.0, 0.0])
    return np.round(out).astype(np.uint8)


def export_thresholds(min_share: float | None = None, margin: float | None = None) -> dict:
    """The thresholds an exported segmenter file carries: those given, else mask_net's defaults."""
    return {
        "min_share": mask_net.MIN_SHARE if min_share is None else min_share,
        "margin": mask_net.MARGIN if margin is None else margin,
    }


def export(workdir, out, step: int | None = None, storage="bfloat16", thresholds=None) -> int:
    """Writes the segmenter file of a checkpoint (the latest by default); returns its size."""
    with checkpoint.Checkpoints(workdir, read_only=True) as ckpts:
        meta = ckpts.read_meta(step)
        config = segmenter_configs.base_config()
        config.update(meta["config"])
        _, state = init_state(config)
        restored = ckpts.restore(checkpoint.abstract_like(state), meta["step"])
    return mask_net.save(out, restored.params, config.to_dict(), meta["step"], storage, thresholds)
