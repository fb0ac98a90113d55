"""Held-out faces wearing pasted face masks: how well a model fills a worn mask's region.

The protocol of the real-mask regime. Each face is a photo no model trained
on (LFW test faces; the test split of a prepared folder), found by plain
MTCNN (its dominant face at 0.9). A face-mask template is pasted by the
face's own landmarks (`overlay.paste_on_photo`: a frontal style turned to
the head's yaw, jittered with a held-out seed), so hole shapes follow real
head poses, which the training bank (templates on one canonical face) does
not. Each model then sees the face framed as it was trained
(`framing.photo_affine` at its own size) with the pasted mask's pixels in
that frame as the hole, and is scored over those pixels against the face
without the mask:

  psnr, ssim, lpips     PSNR and SSIM over the hole; LPIPS (AlexNet) of the
                        hole's bounding box, resized to `LPIPS_SIDE`
  feature_distance      the study's ORB feature-matching distance, whole frame
  delta_e               mean CIELAB colour difference (CIE76) per hole pixel
  colour_cast           CIELAB distance between the mean colours of the fill
                        and of the true face over the hole: a tint, whatever
                        the detail
  skin_lightness        median L* of the visible skin (`SKIN_BAND`, outside
                        the hole): the face's skin bin (`skin_bin`)

Telea's inpainting of the same frame and hole is scored beside each model.
A model framed by the study's canvas sees only the part of the mask inside
its canvas (the canvas ends under the chin): its scores are over that part.
"""

import collections
import dataclasses

import cv2
import numpy as np

from glcic_jax import images
from glcic_jax.completion import postprocess
from glcic_jax.evaluation import baselines, metrics, paired, perceptual
from glcic_jax.face_masks import overlay
from glcic_jax.faces import align, detection
from glcic_jax.faces import framing as framing_lib
from glcic_jax.segmenter import evaluation as mask_segmentation

METRICS = ("psnr", "ssim", "lpips", "feature_distance", "delta_e", "colour_cast")
# metrics.direction's names of the metrics where higher is better.
PAIRED_NAMES = {"psnr": "psnr_hole", "ssim": "ssim_hole"}
HOLD_SEED = 7_000  # the templates' jitter: apart from the training banks' seeds
LPIPS_SIDE = mask_segmentation.LPIPS_SIDE
# Visible skin: under the eyes, above the nose tip, cheek to cheek (canvas box x0, y0, x1, y1).
SKIN_BAND = (60.0, 104.0, 196.0, 136.0)
# L* bin edges of the visible skin: dark | medium | light.
SKIN_BINS = (45.0, 62.0)
SKIN_LABELS = ("dark", "medium", "light")


@dataclasses.dataclass
class PastedFace:
    """One held-out face and the template pasted on it (photo pixels)."""

    name: str
    rgb: np.ndarray  # the photo without the mask, uint8 (H, W, 3)
    face: detection.Face
    alpha: np.ndarray  # the template's coverage, float32 (H, W) in [0, 1]
    template: str


def held_out_faces(paths, seed: int = HOLD_SEED, detector=None, templates_dir=None):
    """(faces, skipped names): a template pasted on the dominant face of each photo.

    A photo that does not decode, or has no face at 0.9, is skipped.
    """
    found, skipped = dominant_faces(paths, detector)
    faces = []
    for i, path, rgb, face in found:
        rng = np.random.default_rng([seed, i])
        _, alpha, template = overlay.paste_on_photo(rgb, face, rng, templates_dir=templates_dir)
        faces.append(PastedFace(str(path), rgb, face, alpha.astype(np.float32), template))
    return faces, skipped


def dominant_faces(paths, detector=None):
    """([(index, path, RGB, face)], skipped paths): each photo's dominant face at 0.9.

    A photo that does not decode, or has no dominant face, is skipped; the
    index is the photo's place in `paths`, so what a caller draws per face
    (a seeded mask) does not depend on which photos were skipped.
    """
    detector = detector or detection.plain_mtcnn()
    found, skipped = [], []
    for i, path in enumerate(paths):
        try:
            rgb = images.read_rgb(path, refuse_degenerate=True)
        except images.ImageError:
            skipped.append(str(path))
            continue
        face, _ = detection.dominant_face(detector.detect(rgb), 0.9, 0.5)
        if face is None:
            skipped.append(str(path))
            continue
        found.append((i, path, rgb, face))
    return found, skipped


def framed(pasted: PastedFace, framing: str, size: int):
    """(face without the mask uint8 (S, S, 3), hole bool (S, S)) in a model's frame."""
    affine = framing_lib.photo_affine(pasted.face, framing, size)
    truth = np.asarray(align.warp(pasted.rgb, affine, size))
    alpha = cv2.warpAffine(pasted.alpha, affine, (size, size), flags=cv2.INTER_LINEAR)
    return truth, alpha > 0.5


def skin_lightness(truth: np.ndarray, hole: np.ndarray, framing: str) -> float:
    """Median CIELAB L* of the visible skin band (outside the hole); NaN when none is visible."""
    size = truth.shape[0]
    corners = np.reshape(np.asarray(SKIN_BAND), (2, 2))
    (x0, y0), (x1, y1) = framing_lib.canvas_points(corners, framing, size)
    band = np.zeros(hole.shape, bool)
    band[max(0, round(y0)) : round(y1), max(0, round(x0)) : round(x1)] = True
    band &= ~hole
    if not band.any():
        return float("nan")
    return float(np.median(lab(truth)[band][:, 0]))


def skin_bin(lightness: float) -> str:
    """The `SKIN_LABELS` bin of a visible-skin L* ("unknown" for NaN)."""
    if not np.isfinite(lightness):
        return "unknown"
    return SKIN_LABELS[int(np.searchsorted(SKIN_BINS, lightness))]


def lab(rgb) -> np.ndarray:
    """RGB (uint8 or float in [0, 1]) -> float32 CIELAB (L* 0..100)."""
    return cv2.cvtColor(metrics.to_float01(rgb).astype(np.float32), cv2.COLOR_RGB2LAB)


def colour_errors(truth, fill, hole) -> tuple[float, float]:
    """(mean per-pixel CIE76 difference, distance of the mean colours) over the hole."""
    a, b = lab(truth)[hole], lab(fill)[hole]
    return float(np.linalg.norm(a - b, axis=-1).mean()), float(
        np.linalg.norm(a.mean(0) - b.mean(0))
    )


def score(completers: dict, faces: list[PastedFace], blend: bool = False, slow_metrics=True):
    """Per-face rows for every model and Telea, and the completed frames for pictures.

    Args:
      completers: {label: inference.Completer}.
      faces: from `held_out_faces`.
      blend: apply the paper's post-processing (Telea + seamlessClone) to
        every model's fill, as the photo pipeline does.
      slow_metrics: also LPIPS and the feature distance (else NaN: a quick check).

    Returns:
      (rows: one dict per face and method, frames: {label: (truth (N, S, S, 3)
      uint8, holes (N, S, S), completed (N, S, S, 3) uint8)}).
    """
    rows, frames = [], {}
    for label, completer in completers.items():
        size, framing = completer.image_size, completer.framing
        pairs = [framed(f, framing, size) for f in faces]
        truth = np.stack([t for t, _ in pairs])
        hole = np.stack([h for _, h in pairs])
        done = completer.complete(truth, hole)
        if blend:
            done = np.stack(
                [postprocess.blend(t, d, h) / 255.0 for t, d, h in zip(truth, done, hole)]
            )
        methods = {label: metrics.to_uint8(done)}
        telea = f"telea@{size}/{framing}"
        if telea not in frames:
            methods[telea] = metrics.to_uint8(baselines.complete_baseline("telea", truth, hole))
        for name, completed in methods.items():
            frames[name] = (truth, hole, completed)
            dists = np.full(len(faces), np.nan)
            if slow_metrics:
                dists = perceptual.lpips(
                    np.stack([metrics.hole_crop(t, h, LPIPS_SIDE) for t, h in zip(truth, hole)]),
                    np.stack(
                        [metrics.hole_crop(c, h, LPIPS_SIDE) for c, h in zip(completed, hole)]
                    ),
                )
            for i, f in enumerate(faces):
                t, h, c = truth[i], hole[i], completed[i]
                if not h.any():
                    continue
                light = skin_lightness(t, h, framing)
                delta_e, cast = colour_errors(t, c, h)
                a, b = metrics.to_float01(t), metrics.to_float01(c)
                rows.append(
                    dict(
                        face=f.name,
                        template=f.template,
                        method=name,
                        baseline="" if name.startswith("telea@") else telea,
                        psnr=metrics.psnr(a, b, h),
                        ssim=metrics.ssim_hole(a, b, h),
                        lpips=float(dists[i]),
                        feature_distance=metrics.feature_distance(t, c)
                        if slow_metrics
                        else float("nan"),
                        delta_e=delta_e,
                        colour_cast=cast,
                        skin_lightness=light,
                        skin_bin=skin_bin(light),
                        hole_pixels=int(h.sum()),
                    )
                )
    return rows, frames


def sheet(frames: dict, labels: list[str], indices, side: int = 128) -> np.ndarray:
    """One row per face: the masked input, then each method's completion, then the truth."""
    first = frames[labels[0]]
    rows = []
    for i in indices:
        truth, hole = first[0][i], first[1][i]
        masked = truth.copy()
        masked[hole] = (128, 128, 128)
        tiles = [masked] + [frames[label][2][i] for label in labels] + [truth]
        tiles = [cv2.resize(t, (side, side), interpolation=cv2.INTER_CUBIC) for t in tiles]
        gap = np.full((side, 3, 3), 255, np.uint8)
        rows.append(np.concatenate([x for t in tiles for x in (t, gap)][:-1], axis=1))
        rows.append(np.full((3, rows[-1].shape[1], 3), 255, np.uint8))
    return np.concatenate(rows[:-1], axis=0)


def _mean(values) -> float:
    values = [v for v in values if np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def _paired_lines(method, ours: dict, theirs: dict, metrics_: tuple) -> list[str]:
    """Table rows: `ours` - `theirs` per face ({face: row}), one per metric."""
    names = sorted(set(ours) & set(theirs))
    lines = []
    for metric in metrics_:
        a = np.array([ours[n][metric] for n in names])
        b = np.array([theirs[n][metric] for n in names])
        d = paired.paired_difference(a, b, PAIRED_NAMES.get(metric, metric))
        lines.append(
            f"| {method} | {metric} | {d['mean_diff']:+.3f} [{d['ci_low']:+.3f},"
            f" {d['ci_high']:+.3f}] | {d['a_better']} / {d['n']} |"
        )
    return lines


def report(rows, labels) -> str:
    """The markdown tables of `score`'s rows: means, paired differences, colour by skin bin.

    Each model is paired per face with Telea in its own frame, and with the
    first of `labels` when both see the faces in the same frame at the same
    size (a canvas-framed model is scored on the part of the mask inside its
    canvas, so it is not paired with a mask-crop one).
    """
    by = collections.defaultdict(dict)
    for r in rows:
        by[r["method"]][r["face"]] = r
    frame = {m: next(iter(f.values()))["baseline"] for m, f in by.items()}
    lines = ["| method | n | " + " | ".join(METRICS) + " |", "|---|---|" + "---|" * len(METRICS)]
    for method, faces in by.items():
        cells = " | ".join(f"{_mean(r[m] for r in faces.values()):.3f}" for m in METRICS)
        lines.append(f"| {method} | {len(faces)} | {cells} |")
    lines += ["", "Against Telea in the same frame, paired per face (95% bootstrap interval):", ""]
    lines += ["| model | metric | difference | better than Telea |", "|---|---|---|---|"]
    for method, faces in by.items():
        if frame[method]:
            lines += _paired_lines(method, faces, by[frame[method]], ("psnr", "lpips", "delta_e"))
    first = labels[0]
    same = [m for m in by if m != first and frame[m] and frame[m] == frame[first]]
    if same:
        lines += ["", f"Against {first}, paired per face (95% bootstrap interval):", ""]
        lines += [f"| model | metric | difference | better than {first} |", "|---|---|---|---|"]
        for method in same:
            lines += _paired_lines(
                method, by[method], by[first], ("psnr", "ssim", "lpips", "feature_distance")
            )
    lines += ["", f"Colour error by the visible skin's lightness (L* bins {SKIN_BINS}):", ""]
    lines += ["| method | bin | n | delta_e | colour_cast | psnr |", "|---|---|---|---|---|---|"]
    for method, faces in by.items():
        bins = collections.defaultdict(list)
        for r in faces.values():
            bins[r["skin_bin"]].append(r)
        for name in (*SKIN_LABELS, "unknown"):
            rs = bins.get(name, [])
            if rs:
                lines.append(
                    f"| {method} | {name} | {len(rs)} | {_mean(r['delta_e'] for r in rs):.2f} |"
                    f" {_mean(r['colour_cast'] for r in rs):.2f} |"
                    f" {_mean(r['psnr'] for r in rs):.2f} |"
                )
        dark = _mean(r["delta_e"] for r in bins.get("dark", []))
        light = _mean(r["delta_e"] for r in bins.get("light", []))
        lines.append(f"| {method} | dark / light delta_e | | {dark / light:.2f} | | |")
    return "\n".join(lines) + "\n"
