"""The blind A/B survey's definition: questions, rendered images and the hidden top/bottom order.

The study showed people an original face and the completions of two models
(trained on random holes and on the fixed mouth hole), one above the other,
and asked which is more similar on a 5-point scale. A survey folder holds

    survey.json      the definition: training points, questions, image names, secret
    images/*.png     original and both completions per question, upscaled for display

Image files have opaque names (an HMAC of question and role), so nothing a
participant's browser sees tells the models apart. Which model is on top is
decided per participant and question by :func:`mouth_on_top`, an HMAC of the
survey's secret: deterministic (a returning participant sees the same page)
yet unpredictable, and recorded in the database when a question is shown.
:func:`mouth_score` undoes it: a score above 3 favours the mouth model.
"""

import dataclasses
import datetime
import hashlib
import hmac
import json
import logging
import os
import pathlib
import re
import secrets
import uuid

import numpy as np
from PIL import Image

FORMAT = "glcic-survey/1"
SURVEY_FILE = "survey.json"
IMAGE_DIR = "images"
MODELS = ("random", "mouth")
ROLES = ("original",) + MODELS

# What a participant, a question or an image may be called: checked on every request.
PARTICIPANT_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
QUESTION_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
IMAGE_NAME = re.compile(r"[0-9a-f]{32}\.png")

# The study's 5-point scale (Japanese, English). Top/bottom, not model names.
CHOICES = {
    1: ("上の方が似ている", "top is more similar"),
    2: ("上の方がやや似ている", "top is somewhat more similar"),
    3: ("同じくらい", "about the same"),
    4: ("下の方がやや似ている", "bottom is somewhat more similar"),
    5: ("下の方が似ている", "bottom is more similar"),
}
# Optional age band of a participant: stored value -> (Japanese, English).
AGE_BANDS = {
    "": ("回答しない", "prefer not to say"),
    "-19": ("19歳以下", "19 or younger"),
    "20-29": ("20代", "20s"),
    "30-39": ("30代", "30s"),
    "40-49": ("40代", "40s"),
    "50-59": ("50代", "50s"),
    "60-": ("60歳以上", "60 or older"),
}
RESAMPLING = {"nearest": Image.Resampling.NEAREST, "lanczos": Image.Resampling.LANCZOS}


class SurveyError(ValueError):
    """A survey folder or build request that cannot be used; one line for the user."""


def mouth_on_top(secret: str, participant: str, question: str) -> bool:
    """Whether the mouth model's completion is shown on top, for this participant and question."""
    digest = hmac.new(secret.encode(), f"order|{participant}|{question}".encode(), "sha256")
    return bool(digest.digest()[0] & 1)


def mouth_score(choice: int, mouth_top: bool) -> int:
    """The answer on the mouth-model scale: 5 strongly favours the mouth model, 1 the random one.

    The page's scale runs from 1 (top more similar) to 5 (bottom more
    similar), so it already is the mouth scale when the mouth model is at the
    bottom, and is mirrored when it is on top.
    """
    if choice not in CHOICES:
        raise ValueError(f"choice must be 1..5, not {choice!r}")
    return 6 - choice if mouth_top else choice


def image_name(secret: str, question: str, role: str) -> str:
    """The opaque file name of one image of a question."""
    return (
        hmac.new(secret.encode(), f"image|{question}|{role}".encode(), "sha256").hexdigest()[:32]
        + ".png"
    )


@dataclasses.dataclass(frozen=True)
class Question:
    id: str
    point: int  # training step of both models
    index: int  # which test image (same index = same face at every point)
    source: str  # the test image, relative to the data folder
    images: dict  # role ("original", "random", "mouth") -> file name in images/


@dataclasses.dataclass(frozen=True)
class Survey:
    """A loaded, validated survey folder."""

    folder: pathlib.Path
    survey_id: str
    secret: str
    points: tuple
    questions: tuple
    info: dict  # the rest of survey.json: models, sizes, hole, seed

    @classmethod
    def load(cls, folder) -> "Survey":
        folder = pathlib.Path(folder).resolve()
        try:
            spec = json.loads((folder / SURVEY_FILE).read_text())
        except (OSError, ValueError) as e:
            raise SurveyError(f"cannot read {folder / SURVEY_FILE}: {e}") from None
        if spec.get("format") != FORMAT:
            raise SurveyError(f"{folder / SURVEY_FILE} is not a {FORMAT} survey")
        questions = tuple(Question(**q) for q in spec["questions"])
        ids = [q.id for q in questions]
        if not questions or len(set(ids)) != len(ids):
            raise SurveyError("a survey needs questions with unique ids")
        for q in questions:
            if not QUESTION_ID.fullmatch(q.id):
                raise SurveyError(f"bad question id {q.id!r}")
            if set(q.images) != set(ROLES):
                raise SurveyError(f"question {q.id} needs images {ROLES}")
            for name in q.images.values():
                if not IMAGE_NAME.fullmatch(name) or not (folder / IMAGE_DIR / name).is_file():
                    raise SurveyError(f"question {q.id}: missing or badly named image {name!r}")
        info = {k: v for k, v in spec.items() if k not in ("survey_id", "secret", "questions")}
        return cls(
            folder, spec["survey_id"], spec["secret"], tuple(spec["points"]), questions, info
        )

    def question(self, question_id: str) -> Question | None:
        return next((q for q in self.questions if q.id == question_id), None)

    def mouth_on_top(self, participant: str, question_id: str) -> bool:
        return mouth_on_top(self.secret, participant, question_id)

    def image_path(self, name: str) -> pathlib.Path | None:
        """The file behind an image URL name, or None: only this survey's listed PNGs.

        Three independent guards against path traversal: the name's shape, the
        list of names in the definition, and the resolved path staying inside
        images/.
        """
        if not IMAGE_NAME.fullmatch(name or ""):
            return None
        if not any(name in q.images.values() for q in self.questions):
            return None
        root = (self.folder / IMAGE_DIR).resolve()
        path = (root / name).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return None
        return path


def default_points(random_steps, mouth_steps, count: int = 2) -> list[int]:
    """The `count` latest checkpoint steps both runs have."""
    common = sorted(set(random_steps) & set(mouth_steps))
    if not common:
        raise SurveyError(
            f"the two runs share no checkpoint step (random: {sorted(random_steps)}, "
            f"mouth: {sorted(mouth_steps)}); pass --steps"
        )
    return common[-count:]


def pick_images(files: list[str], n: int, seed: int) -> list[str]:
    """`n` distinct test images, fixed for a seed, in the order they will be asked."""
    if n < 1 or n > len(files):
        raise SurveyError(f"cannot pick {n} of {len(files)} test images")
    order = np.random.default_rng(seed).permutation(len(files))[:n]
    return [files[i] for i in order]


def render(image: np.ndarray, display_size: int, resample: str) -> Image.Image:
    """A [0, 1] float or uint8 (S, S, 3) image as a PIL image upscaled to `display_size`."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.clip(np.round(image.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    im = Image.fromarray(image, "RGB")
    if display_size and im.size[0] != display_size:
        im = im.resize((display_size, display_size), RESAMPLING[resample])
    return im


def write_survey(
    out,
    originals: np.ndarray,
    completions: dict,
    sources: list[str],
    *,
    display_size: int = 256,
    resample: str = "lanczos",
    info: dict | None = None,
) -> Survey:
    """Render the images and write survey.json into `out`.

    Args:
      out: the survey folder (created; must not already hold a survey).
      originals: (N, S, S, 3) test images, uint8 or [0, 1].
      completions: training step -> {"random": (N, S, S, 3), "mouth": (N, S, S, 3)}.
      sources: N names of the test images (for the record only).
      display_size: side of the rendered PNGs.
      resample: "lanczos" or "nearest" for the upscaling.
      info: more fields for survey.json (models, hole, seed).

    Returns:
      The loaded survey.
    """
    out = pathlib.Path(out)
    if (out / SURVEY_FILE).exists():
        raise SurveyError(f"{out} already holds a survey; choose a new --out")
    if resample not in RESAMPLING:
        raise SurveyError(f"resample must be one of {sorted(RESAMPLING)}, not {resample!r}")
    if display_size < 1:
        raise SurveyError(f"display_size must be positive, not {display_size}")
    n = len(originals)
    if len(sources) != n:
        raise ValueError(f"{len(sources)} sources for {n} images")
    (out / IMAGE_DIR).mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32)
    questions = []
    for step in sorted(completions):
        for i in range(n):
            qid = f"s{int(step)}-{i:02d}"
            pictures = {"original": originals[i]}
            pictures.update({m: completions[step][m][i] for m in MODELS})
            names = {}
            for role, picture in pictures.items():
                names[role] = image_name(secret, qid, role)
                render(picture, display_size, resample).save(out / IMAGE_DIR / names[role])
            questions.append(
                {"id": qid, "point": int(step), "index": i, "source": sources[i], "images": names}
            )
    spec = {
        "format": FORMAT,
        "survey_id": uuid.uuid4().hex,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "points": sorted(int(s) for s in completions),
        "image_size": int(originals.shape[1]),
        "display_size": display_size,
        "resample": resample,
        **(info or {}),
        "secret": secret,
        "questions": questions,
    }
    tmp = out / (SURVEY_FILE + ".tmp")
    tmp.write_text(json.dumps(spec, indent=1, ensure_ascii=False))
    os.replace(tmp, out / SURVEY_FILE)  # a survey folder either has a whole definition or none
    return Survey.load(out)


def build(
    out,
    random_workdir,
    mouth_workdir,
    data_dir,
    n: int = 10,
    steps: list[int] | None = None,
    seed: int = 0,
    display_size: int = 256,
    resample: str = "lanczos",
) -> Survey:
    """Complete `n` test images in the mouth box with both runs at each training point.

    Args:
      out: the new survey folder.
      random_workdir: the run trained on random holes.
      mouth_workdir: the run trained on the mouth hole.
      data_dir: the data folder whose test split supplies the faces.
      n: questions per training point.
      steps: training points (checkpoint steps both runs have); default the two latest common.
      seed: picks the test images.
      display_size: side of the rendered PNGs.
      resample: "lanczos" or "nearest".

    Returns:
      The loaded survey.
    """
    # Imported here so loading or serving a survey never starts JAX.
    import jax

    from glcic_jax import holes, images
    from glcic_jax.completion.inference import Completer, run_steps
    from glcic_jax.dataset import folders
    from glcic_jax.runs import CheckpointError

    if (pathlib.Path(out) / SURVEY_FILE).exists():
        raise SurveyError(f"{out} already holds a survey; choose a new --out")
    runs = {"random": random_workdir, "mouth": mouth_workdir}
    try:
        files = pick_images(folders.list_images(data_dir, "test"), n, seed)
        available = {}
        for model, workdir in runs.items():
            available[model] = run_steps(workdir)
    except (CheckpointError, folders.DataError) as e:
        raise SurveyError(str(e)) from None
    if steps:
        missing = {
            m: sorted(set(steps) - set(s)) for m, s in available.items() if set(steps) - set(s)
        }
        if missing:
            raise SurveyError(f"checkpoint steps missing: {missing}")
        points = sorted(set(int(s) for s in steps))
    else:
        points = default_points(available["random"], available["mouth"])

    completers = {
        (step, model): Completer.load(workdir, step, batch_size=min(16, n))
        for step in points
        for model, workdir in runs.items()
    }
    sizes = {c.image_size for c in completers.values()}
    if len(sizes) != 1:
        raise SurveyError(f"the two runs have different image sizes: {sorted(sizes)}")
    size = sizes.pop()
    trained_on = {model: completers[(points[0], model)].config.mask for model in runs}
    for model, mask in trained_on.items():
        if mask != model:
            logging.warning("the --%s run was trained on %s holes", model, mask)

    try:
        originals = np.stack([folders.load_image(f, size) for f in files])
    except images.ImageError as e:
        raise SurveyError(f"a chosen test image cannot be used: {e}") from None
    boxes = holes.sample_boxes(jax.random.key(0), "mouth", n, size)
    hole_masks = np.asarray(holes.boxes_to_masks(boxes, size))
    completions = {
        step: {m: completers[(step, m)].complete(originals, hole_masks) for m in runs}
        for step in points
    }
    root = pathlib.Path(data_dir).resolve()
    sources = [str(pathlib.Path(f).resolve().relative_to(root)) for f in files]
    info = {
        "seed": seed,
        "hole": [int(v) for v in np.asarray(boxes)[0]],  # (top, left, height, width) at image_size
        "models": {
            m: {"workdir": str(pathlib.Path(w).resolve()), "trained_on": trained_on[m]}
            for m, w in runs.items()
        },
        "data_dir": str(root),
    }
    return write_survey(
        out, originals, completions, sources, display_size=display_size, resample=resample,
        info=info,
    )  # fmt: skip


def fingerprint(survey: Survey) -> str:
    """Identifies the questions of a survey, so a database cannot be reused for another."""
    text = survey.survey_id + "\n" + "\n".join(f"{q.id}:{q.point}" for q in survey.questions)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
