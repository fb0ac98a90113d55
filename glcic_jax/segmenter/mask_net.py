"""The trained mask segmenter at work: its model file, and the worn mask of a face in a photo.

    net = MaskNet.from_file(path)
    found = net.segment(rgb, face)      # a `FaceMask`, in the photo's own pixels
    found.masked, found.region, found.mask_share

For each detected face the photo is warped into the face's mask crop
(`mask_crop.crop_affine`, rendered by `align.warp` like the aligned
canvas), the network gives a probability per crop pixel, and that map is
warped back into the photo (bilinear) over the crop's bounding box only, so
the region has the photo's resolution and is not limited to the aligned
256 canvas: a mask under the chin or on a turned cheek is found whole.

A face counts as masked when at least `min_share` of its crop is mask;
the region is then the pixels with probability > 0.5, grown by up to
`grow` canvas pixels where the photo's colours say the mask goes on
(`edge_growth`), and dilated by `margin` canvas pixels (both scaled to the
face's size in the photo) so the fill also covers the mask's edge and its
shadow. The values are measured (`experiments/eval_segmenter.py`; the
model file stores the defaults of `min_share` and `margin`).

Model file: one .npz with the parameters (bfloat16 bit patterns or
float32) and a JSON header (format, config, step, thresholds), like the
completion model files.
"""

import dataclasses
import math
import pathlib

import cv2
import jax
import jax.numpy as jnp
import numpy as np

from glcic_jax import npz_files
from glcic_jax.faces import align, detection, mask_crop
from glcic_jax.segmenter import edge_growth
from glcic_jax.segmenter import network as segmentation

FORMAT = "glcic-jax-mask-segmenter-1"
STORAGE_DTYPES = npz_files.STORAGE_DTYPES
MIN_SHARE = 0.04  # of the crop: a smaller "mask" is a face without one
MARGIN = 4.0  # canvas pixels (256 frame) of dilation
GROW = 24.0  # canvas pixels the region may grow by along the mask's colours (`edge_growth`)


class MaskNetError(Exception):
    """A segmenter file that cannot be loaded; the message is one line for the user."""


def save(path, params, config: dict, step: int, storage="bfloat16", thresholds=None) -> int:
    """Writes a segmenter file atomically; returns its size in bytes.

    Args:
      path: the .npz to write.
      params: the network's parameters (nnx.State).
      config: the training config as a dict (needs image_size and width).
      step: training steps behind these weights.
      storage: "bfloat16" (half the bytes) or "float32".
      thresholds: {"min_share": .., "margin": ..} measured for these weights.
    """
    arrays = npz_files.params_to_arrays(params, storage)
    header = dict(
        format=FORMAT,
        step=int(step),
        storage=storage,
        config=dict(config),
        thresholds=dict(thresholds or {"min_share": MIN_SHARE, "margin": MARGIN}),
    )
    return npz_files.write(path, arrays, header)


def load(path):
    """(header, graphdef, params float32) of a segmenter file.

    Raises:
      MaskNetError: missing, truncated, foreign, or not matching its config.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise MaskNetError(f"mask segmenter file {path} does not exist")
    try:
        arrays, header = npz_files.read(path)
    except (OSError, ValueError, KeyError) as e:
        raise MaskNetError(f"{path} is not a readable mask segmenter file ({e})") from None
    if header.get("format") != FORMAT:
        raise MaskNetError(f"{path} is not a glcic-jax mask segmenter file")
    graphdef, abstract = segmentation.abstract(header["config"]["width"])
    try:
        params = npz_files.params_from_arrays(arrays, abstract)
    except KeyError as e:
        raise MaskNetError(f"{path} does not match its config (at {e.args[0]})") from None
    return header, graphdef, params


@dataclasses.dataclass
class FaceMask:
    """The worn mask of one face.

    Attributes:
      masked: whether the face wears a mask (`mask_share` >= the threshold).
      mask_share: share of the mask crop the network calls mask.
      region: bool (H, W) in photo pixels, dilated; all False when not masked.
      crop_probability: float32 (S, S), the network's output on the crop.
      affine: 2x3, photo pixels -> the mask crop.
    """

    masked: bool
    mask_share: float
    region: np.ndarray
    crop_probability: np.ndarray
    affine: np.ndarray


class MaskNet:
    """A trained mask segmenter, ready to run on faces (jit-compiled once per batch shape)."""

    def __init__(
        self, graphdef, params, config: dict, min_share=MIN_SHARE, margin=MARGIN, grow=GROW
    ):
        self.size = int(config["image_size"])
        self.config = dict(config)
        self.min_share = float(min_share)
        self.margin = float(margin)
        self.grow = float(grow)
        self._params = jax.device_put(params)
        self._forward = jax.jit(lambda p, x: jax.nn.sigmoid(segmentation.logits(graphdef, p, x)))

    @classmethod
    def from_file(cls, path, min_share=None, margin=None, grow=GROW) -> "MaskNet":
        header, graphdef, params = load(path)
        thresholds = header.get("thresholds", {})
        return cls(
            graphdef,
            params,
            header["config"],
            thresholds.get("min_share", MIN_SHARE) if min_share is None else min_share,
            thresholds.get("margin", MARGIN) if margin is None else margin,
            grow,
        )

    def probabilities(self, crops) -> np.ndarray:
        """float32 (N, S, S) mask probabilities of uint8 (N, S, S, 3) mask crops."""
        x = jnp.asarray(np.asarray(crops), jnp.float32) / 255.0
        return np.asarray(self._forward(self._params, x))

    def crop(self, rgb, face: detection.Face):
        """(uint8 (S, S, 3) mask crop of the face, its 2x3 affine from photo pixels)."""
        affine = mask_crop.crop_affine(face, self.size)
        return np.asarray(align.warp(rgb, affine, self.size)), affine

    def segment(self, rgb, face: detection.Face) -> FaceMask:
        """The worn mask of `face` in photo `rgb` (module docstring)."""
        crop, affine = self.crop(rgb, face)
        prob = self.probabilities(crop[None])[0]
        share = float((prob > 0.5).mean())
        masked = share >= self.min_share
        region = np.zeros(rgb.shape[:2], bool)
        if masked:
            region = to_photo(prob, affine, rgb.shape[:2], 0.0)
            per_canvas = photo_per_canvas(affine, self.size)
            region = edge_growth.grow(rgb, region, round(self.grow * per_canvas))
            region = _dilated(region, round(self.margin * per_canvas))
        return FaceMask(masked, share, region, prob, affine)


def photo_per_canvas(affine, size: int) -> float:
    """Photo pixels per canvas pixel of a mask crop of side `size` with this 2x3 affine."""
    # (crop pixels per canvas pixel) / (crop pixels per photo pixel)
    return size / mask_crop.CANVAS_BOX[2] / math.sqrt(abs(np.linalg.det(affine[:, :2])))


def _dilated(region, radius: int) -> np.ndarray:
    """`region` dilated by a disk of `radius` pixels (worked on its bounding box only)."""
    if radius <= 0 or not region.any():
        return region
    ys, xs = np.nonzero(region)
    y0, x0 = max(0, ys.min() - radius), max(0, xs.min() - radius)
    y1, x1 = ys.max() + radius + 1, xs.max() + radius + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    out = region.copy()
    out[y0:y1, x0:x1] = cv2.dilate(region[y0:y1, x0:x1].astype(np.uint8), kernel) > 0
    return out


def to_photo(crop_probability, affine, photo_shape, margin: float) -> np.ndarray:
    """A crop's probability map as a bool photo region: > 0.5, dilated by `margin` canvas px.

    Only the crop's bounding box in the photo is rendered.
    """
    size = crop_probability.shape[0]
    height, width = photo_shape[:2]
    inverse = cv2.invertAffineTransform(affine)
    corners = align.apply_affine(inverse, [[-0.5, -0.5], [size, -0.5], [size, size], [-0.5, size]])
    x0, y0 = (max(0, int(math.floor(v))) for v in corners.min(0))
    x1 = min(width, int(math.ceil(corners[:, 0].max())) + 1)
    y1 = min(height, int(math.ceil(corners[:, 1].max())) + 1)
    region = np.zeros((height, width), bool)
    if x1 <= x0 or y1 <= y0:
        return region
    shifted = affine.copy()
    shifted[:, 2] += affine[:, :2] @ np.array([x0, y0], np.float64)
    prob = cv2.warpAffine(
        np.asarray(crop_probability, np.float32),
        shifted,
        (x1 - x0, y1 - y0),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0.0,
    )
    region[y0:y1, x0:x1] = prob > 0.5
    return _dilated(region, round(margin * photo_per_canvas(affine, size)))
