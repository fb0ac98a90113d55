"""The fine stage's training data: sharp faces framed, degraded, cut into crops around holes.

`RefinerStream` draws batch t from a generator seeded by (seed, t), so a
resumed run sees the batches an unbroken one would have (module
`refiner.train` says what a batch holds).
"""

import cv2
import numpy as np
from tqdm import tqdm

from glcic_jax.faces import align, mask_crop
from glcic_jax.refiner import coarse as coarse_stage
from glcic_jax.segmenter.synthetic import face_sources
from glcic_jax.training.loop import SeededStream


def frame_faces(sources, size: int) -> np.ndarray:
    """uint8 (N, size, size, 3): each source framed as the photo pipeline frames its face."""
    frames = np.empty((len(sources), size, size, 3), np.uint8)
    for i, source in enumerate(tqdm(sources, desc="framing", unit="face", leave=False)):
        affine = mask_crop.landmarks_affine(source.landmarks, size)
        frames[i] = np.asarray(align.warp(face_sources.read_source(source), affine, size))
    return frames


def crop_origins(holes, rng, crop: int) -> np.ndarray:
    """(top, left) of a `crop` window per hole, its centre drawn inside the hole's box."""
    size = holes.shape[1]
    origins = np.zeros((len(holes), 2), np.int64)
    for i, hole in enumerate(holes):
        ys, xs = np.nonzero(hole)
        if len(ys) == 0:
            cy = cx = size // 2
        else:
            cy = rng.integers(ys.min(), ys.max() + 1)
            cx = rng.integers(xs.min(), xs.max() + 1)
        origins[i] = (
            np.clip(cy - crop // 2, 0, size - crop),
            np.clip(cx - crop // 2, 0, size - crop),
        )
    return origins


# A degraded frame: shrunk by a factor drawn from this range and scaled back
# up (a face that small in the photo), then half the time JPEG-compressed at a
# quality drawn from JPEG_QUALITY.
DEGRADE_FACTOR = (1.0, 3.0)
JPEG_QUALITY = (35, 95)


def degrade(frame, rng) -> np.ndarray:
    """`frame` made as soft as a smaller, compressed photo's face (uint8, same size)."""
    side = frame.shape[0]
    small = max(8, round(side / rng.uniform(*DEGRADE_FACTOR)))
    out = cv2.resize(frame, (small, small), interpolation=cv2.INTER_AREA)
    out = cv2.resize(out, (side, side), interpolation=cv2.INTER_CUBIC)
    if rng.random() < 0.5:
        quality = int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))
        ok, data = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        out = cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1]
    return np.ascontiguousarray(out)


def scaled_holes(holes, size: int) -> np.ndarray:
    """bool holes shrunk (area) to `size`: a pixel is hole when half of it was."""
    if holes.shape[1] == size:
        return holes
    return np.stack(
        [
            cv2.resize(h.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA) >= 0.5
            for h in holes
        ]
    )


class RefinerStream(SeededStream):
    """Batch t (truth uint8, hole bool, coarse float16 crops, frame side int32) from a generator seeded by (seed, t).

    `frames` and `holes`: one array per frame size; `coarse_model`: the
    coarse stage (an `inference.Completer`).
    """

    def __init__(self, frames, holes, coarse_model, config):
        super().__init__()
        self.frames = frames
        self.holes = holes
        self.coarse_model = coarse_model
        self.config = config

    def render(self, step, n=None):
        c = self.config
        n = c.batch_size if n is None else n
        rng = np.random.default_rng([c.seed, step])
        scale = rng.integers(len(self.frames), size=n)
        face = rng.integers(len(self.frames[0]), size=n)
        hole = rng.integers(len(self.holes[0]), size=n)
        flip = rng.random(n) < 0.5
        soft = rng.random(n) < c.degrade
        k = c.crop_size
        faces, holes = [], []
        for i in range(n):
            f, h = self.frames[scale[i]][face[i]], self.holes[scale[i]][hole[i]]
            f = degrade(f, rng) if soft[i] else f
            faces.append(f[:, ::-1] if flip[i] else f)
            holes.append(h[:, ::-1] if flip[i] else h)
        coarse = coarse_stage.coarse_fills(self.coarse_model, faces, holes)
        origins = [crop_origins(h[None], rng, k)[0] for h in holes]
        cut = lambda a: np.stack([x[t : t + k, s : s + k] for x, (t, s) in zip(a, origins)])  # noqa: E731
        truth, holes, coarse = cut(faces), cut(holes), cut(coarse)
        sides = np.asarray(c.frame_sizes, np.int32)[scale]
        return truth, holes, coarse.astype(np.float16), sides
