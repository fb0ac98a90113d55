"""Complete the faces in an ordinary photo: detect, align, fill, paste back.

    completer = PhotoCompleter(inference.Completer.from_workdir(W, batch_size=1))
    result = completer.complete(load_photo("me.jpg"), region="mask")
    result.status, result.completed, result.region, result.faces

For every face the detector finds (`detection.Detector`, run on a copy shrunk to
1024 px for large photos):

1. frame it as the model was trained (`framing.photo_affine` at 256 px: the
   study's aligned canvas, or the mask crop for models trained on worn
   masks' shapes; `align.warp`, which only reads the face's own
   neighbourhood);
2. choose the region to fill (`region`):
   mask  the worn face mask, found by the trained segmenter (`segmenter.mask_net`,
         the default `segmenter="net"`) in the face's mask crop and mapped
         into the photo at its own resolution, so it is not cut at the
         aligned canvas (a mask under the chin is found whole). A face the
         segmenter finds no mask on is left untouched (method "no_mask").
         `segmenter="grabcut"` uses `segment.segment_mask` on the canvas
         instead, for comparison (it falls back to the box when the segment
         is implausible, see `FaceResult.method`);
   box   the study's mouth box (`align.MOUTH_BOX`);
   file  a user mask (`load_user_mask`): white = fill. Its size decides its
         frame: the photo's size means photo pixels (then warped onto each
         face's frame), 256x256 means the aligned canvas (the same region
         for every face). A 256x256 photo takes a 256x256 mask as photo pixels;
3. shrink the aligned face to the model's size, complete it
   (`inference.Completer`) and scale the completion back up to 256 (the
   coarse fill, `refiner.coarse.coarse_fills`); with a `refiner` (the fine
   stage, `refine_net.RefineNet`), frame the face again at the refiner's
   side nearest the face's own resolution (256, 384 or 512 for the shipped
   one) and let it redraw the fill there; then apply the paper's
   post-processing (`postprocess.blend`: Telea, then seamlessClone) when
   `postprocess` is on;
4. warp the completed frame back into the photo at its own resolution,
   over the region's bounding box only, and copy it into the pixels the
   region maps to (bilinear-warped region > 0.5); a photo-pixel region
   (the segmenter's, a user's) bounds it exactly;
5. region pixels the frame does not reach (with the study's canvas, a mask's
   lowest part, below its bottom edge 24 canvas pixels under the chin) are
   filled by OpenCV's Telea inpainting from the completed pixels around them;
6. with a donor bank (`detail_bank`, `detail.donor_bank.DonorBank`), the
   fine detail of the donor face that best matches the fill's shading is
   laid on the filled pixels at the photo's resolution (`add_detail`: luma
   only, scaled to the grain of the visible face around the fill); the
   face's `detail` says which donor.

A grey photo stays grey: when a face's frame has no colour (`is_grey`: the
channels within `GREY_TOLERANCE` on 99% of its pixels), its fill is replaced
by the fill's own luminance.

Only those pixels change: every other pixel of the result is the input's,
bit for bit, and `result.region` says which ones changed (or may have).
Faces are handled one after the other from the original photo, so
overlapping faces do not see each other's fills. A photo with no face at
`min_confidence` comes back unchanged with status "no_face", unless the
region is a user mask in photo pixels: that is completed all the same, framed
on the canvas as a mouth would be (`paste.region_framing`, method "file_no_face").

Resolution: without a refiner the fill has the model's resolution (64 px
for cpu64 models, 256 px for paper-size ones) scaled to the face's size in
the photo, so a large face gets a soft fill; the pixels around it keep full
resolution. The refiner redraws it at up to 512 px a frame (a face about
240 px wide), and the donor's detail (step 6) adds a real face's grain at
the photo's own resolution.
"""

import dataclasses
import math
import pathlib

import cv2
import numpy as np

from glcic_jax import images
from glcic_jax.completion import paste, postprocess
from glcic_jax.faces import align, detection
from glcic_jax.faces import framing as framing_lib
from glcic_jax.refiner import coarse, refine_net
from glcic_jax.segmenter import grabcut as segment
from glcic_jax.segmenter import mask_net

REGIONS = ("box", "mask", "file")
MASK_SEGMENTERS = ("net", "grabcut")
# The face detector's threshold (complete.py's default).
MIN_CONFIDENCE = 0.9
# Detections from this score up count as faces when the segmenter finds a mask on them.
MASKED_MIN_CONFIDENCE = 0.7
# The shipped mask segmenter (its card: pretrained/MASK_SEGMENTER_CARD.md).
SEGMENTER_FILE = pathlib.Path(__file__).resolve().parent / "pretrained" / "mask_segmenter96.npz"
# The shipped fine stage, used only when asked for (its card: pretrained/REFINER_CARD.md).
REFINER_FILE = SEGMENTER_FILE.parent / "refiner.npz"
MAX_PIXELS = 100_000_000  # larger photos are refused (decompression bombs)
# A frame whose channels differ by at most this (of 255) everywhere is a grey photo.
GREY_TOLERANCE = 3
# FaceResult.method -> what drew the region (the summary's "segmenter").
SEGMENTERS = {
    "box": "box",
    "mask": "grabcut",
    "mask_fallback_box": "box",
    "file": "file",
    "file_no_face": "file",
    "net": "net",
    "no_mask": "net",
}


class PhotoError(Exception):
    """A photo or mask file that cannot be used; the message is one line for the user."""


@dataclasses.dataclass
class FaceResult:
    """One completed face.

    Attributes:
      box: detector's (x0, y0, x1, y1) in photo pixels.
      confidence: detector's score.
      landmarks: float (5, 2) in photo pixels (`detection.LANDMARKS` order).
      affine: 2x3, photo pixels -> the model's 256 px frame (`framing`).
      method: how the region was chosen: "box", "mask" (GrabCut),
        "mask_fallback_box", "file", "net" (the segmenter), "no_mask" (the
        segmenter found no mask: the face is left alone), or "file_no_face"
        (a photo-pixel user mask in a photo without a detected face, framed
        by `region_framing`: the box is the mask's bounding box, the
        confidence 0 and the landmarks NaN).
      region: bool (256, 256), the filled region in that frame.
      mask_share: the segmenter's share of the mask crop that is mask (None
        when it did not run).
      filled: photo pixels this face's fill wrote (0: its region fell off the
        photo or outside a user mask, so the face was not completed).
      detail: what the donor bank added ({"donor", "distance", "gain"}), or
        None (no bank, or no donor texture reached the region).
    """

    box: tuple[float, float, float, float]
    confidence: float
    landmarks: np.ndarray
    affine: np.ndarray
    method: str
    region: np.ndarray
    filled: int = 0
    mask_share: float | None = None
    detail: dict | None = None

    @property
    def masked(self) -> bool:
        """Whether the segmenter found a mask on this face (False when it did not run)."""
        return self.method == "net"

    @property
    def segmenter(self) -> str:
        """What produced the region: "box", "grabcut", "net" or "file" (a mask fallback is "box")."""
        return SEGMENTERS.get(self.method, self.method)


@dataclasses.dataclass
class PhotoResult:
    """A completed photo.

    Attributes:
      status: "ok", or "no_face" (nothing detected; `completed` is the input).
      completed: RGB uint8 (H, W, 3), the input's size.
      region: bool (H, W), the pixels that were filled.
      faces: one `FaceResult` per completed face, largest first.
    """

    status: str
    completed: np.ndarray
    region: np.ndarray
    faces: list[FaceResult]


def load_photo(path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A photo as upright RGB uint8 (EXIF orientation applied; `images.read_rgb`).

    Any size up to `max_pixels` is decoded: Pillow's lower warning threshold
    (about 89 million pixels) does not refuse first. Pillow's hard refusal
    (twice that) still holds, so the limit named in the message is the
    smaller of the two (`images.pixel_limit`).

    Raises:
      PhotoError: missing, not a regular file, unreadable, or over the limit.
    """
    try:
        rgb = images.read_rgb(path, max_pixels, check_damage=False)
    except images.ImageError as e:
        raise PhotoError(str(e)) from None
    return np.ascontiguousarray(rgb)


def load_user_mask(path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A user's region picture as bool (H, W): white (luminance > 127) means fill.

    An image with a non-trivial alpha channel uses the alpha instead (opaque
    = fill), so a mask painted on a transparent layer works too
    (`images.read_mask`). Its EXIF orientation is applied, as the photo's is.

    Raises:
      PhotoError: the file is missing, not an image, or over the photo's limit.
    """
    try:
        return images.read_mask(path, max_pixels) > 127
    except images.ImageError as e:
        raise PhotoError(f"mask file {e}") from None


def _framed_region(mask, affine, mirrored: bool = True, side: int = align.CANVAS) -> np.ndarray:
    """A photo-pixel region on the face's frame, with its mirror past the photo's edge where it
    meets the edge.

    The frame is mirrored past the photo's edge as the face is (`align.warp`), so a
    mask that meets the edge continues as its mirror image there; left as context, its
    colour is what the network and the blending carry into the fill. A mirror image
    not joined to the region (a mask that stops short of the edge) stays context.
    """
    size = (side, side)
    mask = mask.astype(np.float32)
    inside = cv2.warpAffine(mask, affine, size, flags=cv2.INTER_LINEAR) > 0.5
    if not mirrored:
        return inside
    mirror = (
        cv2.warpAffine(
            mask, affine, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
        )
        > 0.5
    )
    _, parts = cv2.connectedComponents(mirror.astype(np.uint8), connectivity=8)
    joined = np.unique(parts[inside & mirror])
    return inside | np.isin(parts, joined[joined > 0])


def user_region(user_mask, affine, photo_shape, mirrored: bool = True) -> np.ndarray:
    """A user mask on a face's 256 frame: from photo pixels, or as given (256x256).

    Args:
      user_mask: bool (H, W) the photo's size, or (256, 256).
      affine: 2x3 photo -> the 256 frame.
      photo_shape: (H, W) of the photo.
      mirrored: carry the region's mirror image past the photo's edge, where
        joined to it, onto the frame too (`_framed_region`), as for faces.

    Returns:
      bool (256, 256).

    Raises:
      PhotoError: the mask is neither the photo's size nor 256x256.
    """
    shape = tuple(user_mask.shape)
    if shape == tuple(photo_shape[:2]):
        return _framed_region(user_mask, affine, mirrored)
    if shape == (align.CANVAS, align.CANVAS):
        return user_mask.astype(bool)
    raise PhotoError(
        f"mask file is {shape[1]}x{shape[0]}; it must be the photo's size "
        f"({photo_shape[1]}x{photo_shape[0]}) or {align.CANVAS}x{align.CANVAS} (aligned face)"
    )


class PhotoCompleter:
    """A completion model plus a face detector: fills faces in whole photos.

    Args:
      completer: an `inference.Completer` (batch_size=1 suits photos: one
        compilation, no padding work for one face).
      detector: a `detection.Detector` (default: a new one).
      min_confidence: detections below this score are ignored, except:
      masked_min_confidence: for region "mask" with the "net" segmenter, a
        detection scoring from this up to `min_confidence` is kept when the
        segmenter finds a mask on it (masks hide half the cues a face
        detector scores; a doubtful detection without a mask is dropped).
      postprocess: apply the paper's Telea + seamlessClone blending.
      segmenter: for region "mask": "net" (the trained segmenter) or "grabcut".
      mask_segmenter: a `mask_net.MaskNet` (default: the shipped one, loaded
        when first needed).
      detail_bank: a `donor_bank.DonorBank` whose best donor lends the fill
        its fine detail (step 6), or None for the network's smooth fill.
      refiner: a `refine_net.RefineNet` that redraws the model's fill in the
        frame nearest the face's own resolution before blending (step 3), or
        None (`load_refiner` gives the shipped one).
    """

    def __init__(
        self,
        completer,
        detector=None,
        min_confidence=MIN_CONFIDENCE,
        postprocess=True,
        segmenter="net",
        mask_segmenter=None,
        masked_min_confidence=MASKED_MIN_CONFIDENCE,
        detail_bank=None,
        refiner=None,
    ):
        if segmenter not in MASK_SEGMENTERS:
            raise PhotoError(
                f"unknown segmenter {segmenter!r}; choose one of {', '.join(MASK_SEGMENTERS)}"
            )
        self.completer = completer
        if refiner is not None and self.framing != refine_net.FRAMING:
            raise PhotoError(
                f"the fine stage refines faces framed as {refine_net.FRAMING!r}; this model"
                f" frames them as {self.framing!r} (use no refiner)"
            )
        self.detector = detector or detection.Detector()
        self.min_confidence = min_confidence
        self.postprocess = postprocess
        self.segmenter = segmenter
        self.masked_min_confidence = min(masked_min_confidence, min_confidence)
        self._mask_net = mask_segmenter
        self.detail_bank = detail_bank
        self.refiner = refiner

    @property
    def mask_net(self) -> mask_net.MaskNet:
        if self._mask_net is None:
            try:
                self._mask_net = mask_net.MaskNet.from_file(SEGMENTER_FILE)
            except mask_net.MaskNetError as e:
                raise PhotoError(str(e)) from None
        return self._mask_net

    def complete(self, rgb, region: str = "mask", user_mask=None) -> PhotoResult:
        """Fills the chosen region of every face of a photo.

        Args:
          rgb: RGB uint8 (H, W, 3), any size.
          region: "mask", "box" or "file" (module docstring).
          user_mask: bool (H, W) or (256, 256) from `load_user_mask`, for "file".

        Returns:
          The `PhotoResult`.

        Raises:
          PhotoError: bad `region`, or a user mask of the wrong size.
        """
        if region not in REGIONS:
            raise PhotoError(f"unknown region {region!r}; choose one of {', '.join(REGIONS)}")
        if region == "file" and user_mask is None:
            raise PhotoError("region 'file' needs a mask file")
        rgb = np.ascontiguousarray(np.asarray(rgb, np.uint8))
        detections = self.detector.detect(rgb)
        found = [f for f in detections if f.confidence >= self.min_confidence]
        prepared = [self._prepare(rgb, face, region, user_mask) for face in found]
        if region == "mask" and self.segmenter == "net":
            # A doubtful detection counts as a face when the segmenter finds a mask on it.
            doubtful = [
                f
                for f in detections
                if self.masked_min_confidence <= f.confidence < self.min_confidence
            ]
            candidates = [self._prepare(rgb, face, region, user_mask) for face in doubtful]
            prepared += [c for c in candidates if c[1].method == "net"]
            prepared.sort(key=lambda p: -_box_area(p[1].box))  # largest first, as detected
        out = rgb.copy()
        changed = np.zeros(rgb.shape[:2], bool)
        if not prepared:
            if region == "file" and user_mask.shape == rgb.shape[:2] and user_mask.any():
                return self._complete_without_face(rgb, user_mask)
            return PhotoResult("no_face", out, changed, [])
        todo = [p for p in prepared if p[1].region.any()]
        # A region in photo pixels bounds the fill exactly, despite the two resamplings.
        for (_, info, allowed), (fill, hole, affine) in zip(todo, self._fill(rgb, todo)):
            written = paste.paste_back(out, fill, hole, affine, allowed)
            if allowed is not None:
                written |= paste.inpaint_rest(out, allowed & ~written & ~changed)
            info.filled = int(written.sum())
            if self.detail_bank is not None:
                face = detection.Face(info.box, info.confidence, info.landmarks)
                info.detail = self.detail_bank.add_detail(out, written, face)
            changed |= written
        return PhotoResult("ok", out, changed, [info for _, info, _ in prepared])

    @property
    def framing(self) -> str:
        """How the model frames a face (`framing.FRAMINGS`)."""
        return getattr(self.completer, "framing", "canvas")

    def _prepare(self, rgb, face, region, user_mask):
        """(framed face, FaceResult, photo-pixel region or None) of one face."""
        affine = framing_lib.photo_affine(face, self.framing, align.CANVAS)
        framed = np.asarray(align.warp(rgb, affine, align.CANVAS))
        allowed, share = None, None
        if region == "box":
            chosen, method = self._from_canvas(segment.box_region(align.CANVAS)), "box"
        elif region == "mask" and self.segmenter == "net":
            found = self.mask_net.segment(rgb, face)
            share = found.mask_share
            if found.masked:
                allowed, method = found.region, "net"
                chosen = user_region(allowed, affine, rgb.shape)
            else:
                chosen, method = np.zeros((align.CANVAS, align.CANVAS), bool), "no_mask"
        elif region == "mask":  # GrabCut works on the study's canvas
            canvas_affine = align.alignment(face, align.CANVAS)
            aligned = np.asarray(align.warp(rgb, canvas_affine, align.CANVAS))
            landmarks = align.apply_affine(canvas_affine, face.landmarks)
            chosen, method = segment.segment_mask(aligned, landmarks)
            chosen = self._from_canvas(chosen)
        else:
            chosen, method = user_region(user_mask, affine, rgb.shape), "file"
            if user_mask.shape == rgb.shape[:2]:
                allowed = user_mask
            else:
                chosen = self._from_canvas(chosen)
        info = FaceResult(
            face.box, face.confidence, face.landmarks, affine, method, chosen, mask_share=share
        )
        return framed, info, allowed

    def _from_canvas(self, region) -> np.ndarray:
        """A region on the aligned canvas -> the model's frame."""
        return framing_lib.canvas_region(region, self.framing, align.CANVAS)

    def _complete_without_face(self, rgb, user_mask) -> PhotoResult:
        """Completes a user's photo-pixel region where no face was detected.

        The region is framed onto the canvas where the model expects its hole
        (`region_framing`), then filled and pasted back like a face's region.
        Its canvas version is grown by a little over one photo pixel first, so
        the two resamplings cannot lose an edge pixel: with the user mask as
        the paste's bound, exactly the mask's pixels change.
        """
        affine = framing_lib.reframe(paste.region_framing(user_mask), self.framing, align.CANVAS)
        aligned = np.asarray(align.warp(rgb, affine, align.CANVAS))
        # Not mirrored: the region stays in the box where the model expects its hole.
        chosen = user_region(user_mask, affine, rgb.shape, mirrored=False)
        grow = 2 * math.ceil(math.sqrt(abs(np.linalg.det(affine[:, :2])))) + 1
        chosen = cv2.dilate(chosen.astype(np.uint8), np.ones((grow, grow), np.uint8)) > 0
        ys, xs = np.nonzero(user_mask)
        box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
        landmarks = np.full((len(detection.LANDMARKS), 2), np.nan)
        info = FaceResult(box, 0.0, landmarks, affine, "file_no_face", chosen)
        out = rgb.copy()
        ((fill, hole, affine),) = self._fill(rgb, [(aligned, info, user_mask)])
        written = paste.paste_back(out, fill, hole, affine, user_mask)
        info.filled = int(written.sum())
        return PhotoResult("ok", out, written, [info])

    def _fill(self, rgb, faces: list) -> list:
        """Completes framed faces: one (fill uint8 (S, S, 3), region (S, S), affine) per face.

        `faces`: (framed face at 256, its `FaceResult`, photo-pixel region or
        None). The model fills each at its own size (`coarse.coarse_fills`); with a
        refiner, the fill is sharpened in the frame nearest the face's own
        resolution (`_refine`), which then replaces the 256 frame.
        """
        if not faces:
            return []
        ups = coarse.coarse_fills(
            self.completer, [f for f, _, _ in faces], [i.region for _, i, _ in faces]
        )
        fills = []
        for (face, info, allowed), up in zip(faces, ups):
            hole, affine = info.region, info.affine
            if self.refiner is not None:
                face, hole, affine, up = self._refine(
                    rgb, face, hole, affine, allowed, up, info.method
                )
            if self.postprocess:
                fill = postprocess.blend(face, up, hole)
            else:
                fill = face.copy()
                fill[hole] = np.round(up[hole] * 255.0).astype(np.uint8)
            if is_grey(face):
                fill[hole] = cv2.cvtColor(fill, cv2.COLOR_RGB2GRAY)[hole][:, None]
            fills.append((fill, hole, affine))
        return fills

    def _refine(self, rgb, face, hole, affine, allowed, up, method):
        """(frame, region, affine, sharpened fill) in the refiner's frame nearest the face's resolution.

        The face is framed again at that side from the photo (not scaled up
        from the 256 frame, whose detail is already lost), its region with it
        (from photo pixels when it has them, mirrored past the photo's edge
        as at 256 except for a face-less user region), and the coarse fill
        made again from that frame, as the refiner was trained.
        """
        side = refine_side(affine, len(face), self.refiner.frame_sizes)
        if side != len(face):
            affine = rescaled(affine, side / len(face))
            face = np.asarray(align.warp(rgb, affine, side))
            scaled = coarse.resize(hole.astype(np.float32), side, cv2.INTER_LINEAR) > 0.5
            if allowed is not None:
                mirrored = method != "file_no_face"
                scaled |= _framed_region(allowed, affine, mirrored, side=side)
            hole = scaled
            (up,) = coarse.coarse_fills(self.completer, [face], [hole])
        sharp = self.refiner.refine(face[None], hole[None], up[None])[0]
        return face, hole, affine, sharp


def refine_side(affine, side: int, sides) -> int:
    """The side among `sides` nearest a face's own resolution: `side` x photo pixels per frame pixel.

    `affine` takes photo pixels onto a frame `side` pixels wide.
    """
    photo_per_frame = 1.0 / math.sqrt(abs(np.linalg.det(affine[:, :2])))
    want = side * photo_per_frame
    return min(sides, key=lambda s: abs(s - want))


def rescaled(affine, k: float) -> np.ndarray:
    """`affine` onto a frame k times the side: pixel centres map to centres (i + 0.5) k - 0.5."""
    out = np.asarray(affine, np.float64) * k
    out[:, 2] += 0.5 * k - 0.5
    return out


REFINER_CHOICES = ("none", "shipped")


def refiner_from_flag(value: str):
    """A `--refiner` value: "none" (None), "shipped" (`REFINER_FILE`) or a refiner file's path.

    Raises:
      PhotoError: the file is missing or not a usable refiner file.
    """
    if value == "none":
        return None
    return load_refiner(REFINER_FILE if value == "shipped" else value)


def load_refiner(path=None):
    """The refiner file at `path`, or the shipped one (None where it is not installed).

    Raises:
      PhotoError: `path` is not a usable refiner file.
    """
    if path is None:
        if not REFINER_FILE.is_file():
            return None
        path = REFINER_FILE
    if not pathlib.Path(path).is_file():
        raise PhotoError(f"refiner file not found: {path}")
    try:
        return refine_net.RefineNet.from_file(path)
    except refine_net.RefinerError as e:
        raise PhotoError(str(e)) from None


def is_grey(rgb, tolerance: int = GREY_TOLERANCE, coloured_share: float = 0.01) -> bool:
    """Whether an RGB uint8 image is a grey photo: channels within `tolerance` almost everywhere.

    Under `coloured_share` of its pixels may differ more (a coloured date stamp,
    a logo, chroma noise of a re-encoded scan).
    """
    rgb = np.asarray(rgb, np.int16)
    spread = rgb.max(axis=-1) - rgb.min(axis=-1)
    return bool(np.mean(spread > tolerance) < coloured_share)


def _box_area(box) -> float:
    return max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0)
