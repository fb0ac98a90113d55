"""Fills judged at the photo's own resolution: held-out sharp faces, the true mask, fine detail.

The protocol of issue 30's yardstick. Each face is one of CelebA-HQ's
held-out test faces at 512 px (`locations.find("celebahq")`, folder
test/images: aligned, the face box about 330 px wide; no model of the
project trained on them), found by plain MTCNN (its dominant face at 0.9).
A face-mask template is pasted by the face's own landmarks at 512 px
(`overlay.photo_points` + `overlay.paste`: a frontal style turned to the
head's yaw, jittered with a held-out seed per face). The true mask is every
pixel the template covers at all (alpha > `MASK_ALPHA`), so a fill given it
leaves no tint of the template to copy. The masked photo is then completed
by:

  pipeline            the whole photo pipeline with its defaults
                      (`photo.PhotoCompleter`, region "mask": its detector,
                      the shipped segmenter's region, the shipped photo
                      model, blending, paste-back at 512 px): the region it
                      finds itself
  pipeline_true_mask  the same pipeline given the true mask (region "file"
                      with a photo-size mask), so its fill is compared with
                      Telea's on the same region
  telea_true_mask     OpenCV's Telea inpainting (radius 5) given the true mask
  masked_input        nothing filled: the floor every fill should beat
  pipeline_detail, pipeline_true_mask_detail
                      the two pipeline fills with a donor bank's fine detail
                      laid on them (`donor_bank.DonorBank.add_detail`), when
                      `score` is given a bank
  pipeline_refined, pipeline_true_mask_refined
                      the two pipeline fills with the fine stage
                      (`PhotoCompleter(refiner=...)`), when `score` is given
                      a refining pipeline; with a bank too,
                      pipeline_true_mask_refined_detail: the donor's detail
                      laid on the refined fill

and scored against the face without the mask:

  psnr, ssim, l1      over the true mask at 512 px: PSNR (data range 1) and
                      mean absolute error on [0, 1] over its pixels, SSIM of
                      the crops to its bounding box (`metrics.ssim_hole`)
  lpips               LPIPS (AlexNet) of the mask's bounding box resized to
                      `LPIPS_SIDE` (about its own size at 512 px)
  detail              the fine-detail ratio (`detail_ratio`): the variance of
                      the Laplacian of the luminance inside the mask eroded by
                      `DETAIL_ERODE` px, the fill's over the truth's (1.0: as
                      much fine detail as the real face; a blur is near 0)
  psnr256, ssim256    whole-image PSNR and SSIM after both photos are resized
                      to `LITERATURE_SIDE` (256) px, the numbers the
                      face-unmasking papers report (below)
  remnant             the share of the true mask outside the pixels the method
                      changed (the pipeline's own region may miss some)

Pairs of methods are compared per face (`paired.paired_difference`: mean
difference, 95% bootstrap interval, how many faces each wins).

What differs from the face-unmasking papers' protocol (e.g. GANMasker 2023,
M2UNet 2026, whose whole-image PSNR / SSIM at 256 px issue 30 quotes): they
synthesize MaskTheFace masks on CelebA(-HQ) faces already at 256 px and
complete at 256; here the mask is pasted and the face completed at 512 px,
and both the completion and the truth are then shrunk to 256 (INTER_AREA),
which averages away part of any blur. The faces (these test faces, the
first n by file name), the templates and their jitter are this project's
own, and their models were trained on the same synthetic masks they are
tested on. The whole-image numbers also count the three quarters of the
photo every method leaves untouched, so they say more about the mask's area
than about the fill; SSIM here is scikit-image's with Wang et al.'s settings
(11x11 Gaussian window, sigma 1.5, `metrics.SSIM_MMAGIC`), which the papers'
implementations need not match. They are not comparable in absolute terms.
"""

from __future__ import annotations

import collections
import dataclasses
import pathlib

import cv2
import numpy as np

from glcic_jax import locations
from glcic_jax.completion import photo, photo_views
from glcic_jax.evaluation import baselines, fine_detail, metrics, paired, pasted_masks, perceptual
from glcic_jax.face_masks import overlay
from glcic_jax.faces import detection

FACES_FOLDER = "celebahq"  # under locations.find: test/images holds the held-out faces
HOLD_SEED = 7_000  # the templates' jitter (as pasted_masks): apart from the training banks'
MASK_ALPHA = 0.0  # the true mask: template alpha above this
LPIPS_SIDE = 160
DETAIL_ERODE = fine_detail.ERODE
LITERATURE_SIDE = 256
SHEET_SIDE = 200  # a tile of the typical / worst sheets, px
FOUND = "net"  # the default pipeline's status of a face it found and found a mask on
METHODS = ("pipeline", "pipeline_true_mask", "telea_true_mask", "masked_input")
DETAIL_METHODS = ("pipeline_detail", "pipeline_true_mask_detail")
REFINED_METHODS = ("pipeline_refined", "pipeline_true_mask_refined")
REFINED_DETAIL_METHODS = ("pipeline_true_mask_refined_detail",)
METHOD_NAMES = {
    "pipeline": "pipeline (the region it finds)",
    "pipeline_true_mask": "pipeline, given the true mask",
    "telea_true_mask": "Telea, given the true mask",
    "masked_input": "masked input, nothing filled",
    "pipeline_detail": "pipeline + donor detail",
    "pipeline_true_mask_detail": "pipeline + donor detail, given the true mask",
    "pipeline_refined": "pipeline + fine stage",
    "pipeline_true_mask_refined": "pipeline + fine stage, given the true mask",
    "pipeline_true_mask_refined_detail": "pipeline + fine stage + donor detail, given the true mask",
}
METRICS = ("psnr", "ssim", "l1", "lpips", "detail", "psnr256", "ssim256")
HIGHER_IS_BETTER = {"psnr", "ssim", "psnr256", "ssim256", "detail"}
# The pairs compared per face: (a, b) gives a - b.
PAIRS = (
    ("pipeline", "telea_true_mask"),
    ("pipeline_true_mask", "telea_true_mask"),
    ("pipeline", "pipeline_true_mask"),
    ("pipeline_detail", "pipeline"),
    ("pipeline_true_mask_detail", "pipeline_true_mask"),
    ("pipeline_refined", "pipeline"),
    ("pipeline_true_mask_refined", "pipeline_true_mask"),
    ("pipeline_true_mask_refined", "pipeline_true_mask_detail"),
    ("pipeline_true_mask_refined_detail", "pipeline_true_mask_detail"),
)
SHEET_COLUMNS = ("masked", "region found", "pipeline", "pipeline, true mask", "Telea", "truth")
DETAIL_COLUMNS = ("pipeline + detail", "true mask + detail")
REFINED_COLUMNS = ("pipeline + fine stage", "true mask + fine stage")
REFINED_DETAIL_COLUMNS = ("true mask + fine + detail",)


def methods_of(bank, refining_completer) -> tuple:
    """The methods `score` runs with a bank and a refining pipeline (each may be None)."""
    methods = METHODS + (DETAIL_METHODS if bank is not None else ())
    if refining_completer is not None:
        methods += REFINED_METHODS + (REFINED_DETAIL_METHODS if bank is not None else ())
    return methods


# ---------------------------------------------------------------------------
# Metrics: pure functions of arrays
# ---------------------------------------------------------------------------


def whole_image_scores(truth, completed, side: int = LITERATURE_SIDE) -> tuple[float, float]:
    """(PSNR, SSIM) of the whole images after both are resized to side x side (INTER_AREA).

    SSIM with Wang et al.'s settings (`metrics.SSIM_MMAGIC`).
    """

    def small(x):
        return cv2.resize(np.asarray(x, np.uint8), (side, side), interpolation=cv2.INTER_AREA)

    a, b = small(truth), small(completed)
    return metrics.psnr(a, b), metrics.ssim(a, b, **metrics.SSIM_MMAGIC)


def mask_scores(truth, completed, mask, erode: int = DETAIL_ERODE) -> dict:
    """PSNR, SSIM, L1 and the detail ratio over the mask; whole-image PSNR / SSIM at 256.

    LPIPS is left out: it runs batched (`lpips_over_masks`).
    """
    a, b = metrics.to_float01(truth), metrics.to_float01(completed)
    psnr256, ssim256 = whole_image_scores(truth, completed)
    return dict(
        psnr=metrics.psnr(a, b, mask),
        ssim=metrics.ssim_hole(a, b, mask),
        l1=metrics.l1(a, b, mask),
        detail=fine_detail.detail_ratio(truth, completed, mask, erode),
        psnr256=psnr256,
        ssim256=ssim256,
    )


def lpips_over_masks(truths, completions, masks, side: int = LPIPS_SIDE) -> np.ndarray:
    """Per-image LPIPS (AlexNet) of each mask's bounding box, resized to side x side."""
    crop = metrics.hole_crop
    a = np.stack([crop(t, m, side) for t, m in zip(truths, masks)])
    b = np.stack([crop(c, m, side) for c, m in zip(completions, masks)])
    return perceptual.lpips(a, b)


# ---------------------------------------------------------------------------
# Held-out faces with pasted masks
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class PastedPhoto:
    """One held-out photo and the template pasted on it, at the photo's resolution."""

    name: str
    truth: np.ndarray  # the photo without the mask, uint8 (H, W, 3)
    masked: np.ndarray  # with the template, uint8 (H, W, 3)
    mask: np.ndarray  # bool (H, W): the true mask
    face: detection.Face  # plain MTCNN's dominant face on `truth`
    template: str


def held_out_paths(root=None) -> list[pathlib.Path]:
    """The held-out faces' files, sorted: `root`, else celebahq/test/images (`locations.find`).

    Returns [] when the folder is absent.
    """
    if root is None:
        found = locations.find(FACES_FOLDER)
        if found is None:
            return []
        root = found / "test" / "images"
    root = pathlib.Path(root)
    if not root.is_dir():
        return []
    suffixes = (".jpg", ".jpeg", ".png")
    return sorted(p for p in root.iterdir() if p.suffix.lower() in suffixes)


def pasted_photos(paths, seed: int = HOLD_SEED, detector=None, templates_dir=None):
    """(photos, skipped names): a template pasted on the dominant face of each photo.

    The i-th path's template and jitter come from `default_rng([seed, i])`, so
    a face's mask does not depend on how many faces are taken. A photo that
    does not decode, or has no dominant face at 0.9, is skipped.
    """
    found, skipped = pasted_masks.dominant_faces(paths, detector)
    out = []
    for i, path, rgb, face in found:
        points, template = overlay.photo_points(face, np.random.default_rng([seed, i]))
        masked, alpha = overlay.paste(rgb, points, template, templates_dir)
        mask = alpha > MASK_ALPHA
        if not mask.any():
            skipped.append(str(path))
            continue
        out.append(PastedPhoto(pathlib.Path(path).name, rgb, masked, mask, face, template))
    return out, skipped


# ---------------------------------------------------------------------------
# Completing and scoring
# ---------------------------------------------------------------------------


def with_detail(result: photo.PhotoResult, bank) -> np.ndarray:
    """A completed photo with the bank's detail laid on each filled face (a copy)."""
    out = result.completed.copy()
    for info in result.faces:
        if info.filled:
            face = detection.Face(info.box, info.confidence, info.landmarks)
            bank.add_detail(out, result.region, face)
    return out


def complete_all(
    completer: photo.PhotoCompleter, pasted: PastedPhoto, bank=None, refining_completer=None
):
    """The completions of one masked photo: `methods_of(bank, refining_completer)`.

    Returns:
      ({method: completed RGB uint8 (H, W, 3)}, {method: bool (H, W) pixels
      it changed or was allowed to change}, the default pipeline's
      `photo.PhotoResult`).
    """
    found = completer.complete(pasted.masked, "mask")
    given = completer.complete(pasted.masked, "file", user_mask=pasted.mask)
    telea = cv2.inpaint(
        pasted.masked,
        pasted.mask.astype(np.uint8),
        baselines.DEFAULT_INPAINT_RADIUS,
        cv2.INPAINT_TELEA,
    )
    results = {"pipeline": found, "pipeline_true_mask": given}
    if refining_completer is not None:
        results["pipeline_refined"] = refining_completer.complete(pasted.masked, "mask")
        results["pipeline_true_mask_refined"] = refining_completer.complete(
            pasted.masked, "file", user_mask=pasted.mask
        )
    done = {m: r.completed for m, r in results.items()}
    regions = {m: r.region for m, r in results.items()}
    done.update(telea_true_mask=telea, masked_input=pasted.masked)
    regions.update(telea_true_mask=pasted.mask, masked_input=np.zeros_like(pasted.mask))
    if bank is not None:
        detailed = [m for m in methods_of(bank, refining_completer) if m.endswith("_detail")]
        for method in detailed:
            base = method.removesuffix("_detail")
            done[method] = with_detail(results[base], bank)
            regions[method] = results[base].region
    return done, regions, found


def _status(result: photo.PhotoResult) -> str:
    """What the default pipeline did with a photo: "no_face", or its largest face's method."""
    if result.status != "ok" or not result.faces:
        return result.status
    return result.faces[0].method


def view_box(pasted: PastedPhoto, margin: float = 0.08) -> tuple[int, int, int, int]:
    """A square (y0, y1, x0, x1) around the face box and the mask, clipped to the photo."""
    height, width = pasted.truth.shape[:2]
    y0, y1, x0, x1 = metrics.hole_bbox(pasted.mask)
    fx0, fy0, fx1, fy1 = pasted.face.box
    x0, x1 = min(x0, fx0), max(x1, fx1)
    y0, y1 = min(y0, fy0), max(y1, fy1)
    side = min(max(x1 - x0, y1 - y0) * (1 + 2 * margin), height, width)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = int(round(min(max(cx - side / 2, 0), width - side)))
    top = int(round(min(max(cy - side / 2, 0), height - side)))
    side = int(round(side))
    return top, top + side, left, left + side


def tiles_of(pasted, done, found, side: int = SHEET_SIDE) -> list[np.ndarray]:
    """One face's sheet tiles (`SHEET_COLUMNS`), cut by `view_box` and resized to side px."""
    y0, y1, x0, x1 = view_box(pasted)
    panels = [
        pasted.masked,
        photo_views.region_view(pasted.masked, found),
        done["pipeline"],
        done["pipeline_true_mask"],
        done["telea_true_mask"],
        pasted.truth,
    ]
    panels += [
        done[m] for m in DETAIL_METHODS + REFINED_METHODS + REFINED_DETAIL_METHODS if m in done
    ]
    return [
        cv2.resize(
            np.ascontiguousarray(p[y0:y1, x0:x1]), (side, side), interpolation=cv2.INTER_AREA
        )
        for p in panels
    ]


def score(
    completer: photo.PhotoCompleter,
    photos,
    progress=iter,
    side: int = SHEET_SIDE,
    bank=None,
    refining_completer=None,
):
    """Per-face rows of every method, and each face's sheet tiles.

    Args:
      completer: the photo pipeline, e.g. `photo.PhotoCompleter` with its defaults.
      photos: `PastedPhoto`s (`pasted_photos`).
      progress: wraps the list of photos (e.g. tqdm).
      side: tile size of the sheets.
      bank: a `donor_bank.DonorBank` for the `DETAIL_METHODS` (None: left out).
      refining_completer: the same pipeline with a refiner, for the `REFINED_METHODS`
        (None: left out).

    Returns:
      (rows: one dict per photo and method, `METRICS` plus face, template,
      method, status (the default pipeline's, `_status`), remnant,
      region_pixels, mask_pixels, truth_detail (the truth's Laplacian
      variance inside the eroded mask); tiles: one list of `SHEET_COLUMNS`
      tiles per photo, then `DETAIL_COLUMNS` with a bank, `REFINED_COLUMNS`
      with a refiner, `REFINED_DETAIL_COLUMNS` with both).
    """
    rows, tiles = [], []
    lpips_inputs = collections.defaultdict(list)
    methods = methods_of(bank, refining_completer)
    for pasted in progress(list(photos)):
        done, regions, found = complete_all(completer, pasted, bank, refining_completer)
        status = _status(found)
        mask = pasted.mask
        truth_detail = fine_detail.laplacian_variance(pasted.truth, fine_detail.inner_mask(mask))
        for method in methods:
            region = regions[method]
            row = dict(face=pasted.name, template=pasted.template, method=method, status=status)
            row.update(mask_scores(pasted.truth, done[method], mask))
            row.update(
                remnant=float(np.mean(~region[mask])),
                region_pixels=int(region.sum()),
                mask_pixels=int(mask.sum()),
                truth_detail=truth_detail,
            )
            rows.append(row)
            lpips_inputs[method].append(metrics.hole_crop(done[method], mask, LPIPS_SIDE))
        lpips_inputs["truth"].append(metrics.hole_crop(pasted.truth, mask, LPIPS_SIDE))
        tiles.append(tiles_of(pasted, done, found, side))
    if rows:
        truth = np.stack(lpips_inputs["truth"])
        for method in methods:
            values = perceptual.lpips(truth, np.stack(lpips_inputs[method]))
            for row, value in zip((r for r in rows if r["method"] == method), values):
                row["lpips"] = float(value)
    return rows, tiles


# ---------------------------------------------------------------------------
# Tables and sheets
# ---------------------------------------------------------------------------


def _values(rows, method, metric) -> dict:
    return {r["face"]: r[metric] for r in rows if r["method"] == method}


def _finite(values) -> np.ndarray:
    x = np.asarray(list(values), np.float64)
    return x[np.isfinite(x)]


def _mean(values) -> float:
    x = _finite(values)
    return float(x.mean()) if x.size else float("nan")


def _median(values) -> float:
    x = _finite(values)
    return float(np.median(x)) if x.size else float("nan")


def paired_difference(rows, a: str, b: str, metric: str) -> dict:
    """`paired.paired_difference` of method a - method b over the faces both have.

    For the detail ratio "better" counts the higher one, which is the one
    nearer the truth's detail while both are below 1.
    """
    va, vb = _values(rows, a, metric), _values(rows, b, metric)
    names = sorted(set(va) & set(vb))
    # paired reads a metric's direction from its name in `metrics`.
    direction = "psnr_hole" if metric in HIGHER_IS_BETTER else "l1_hole"
    return paired.paired_difference(
        np.array([va[n] for n in names]), np.array([vb[n] for n in names]), direction
    )


def report(rows) -> str:
    """The markdown summary of `score`'s rows: means and medians, the paired differences."""
    every = METHODS + DETAIL_METHODS + REFINED_METHODS + REFINED_DETAIL_METHODS
    methods = [m for m in every if any(r["method"] == m for r in rows)]
    n = len({r["face"] for r in rows})
    lines = [
        f"{n} held-out faces, scored over the true mask at the photo's resolution"
        f" (LPIPS: the mask's box at {LPIPS_SIDE} px; detail: Laplacian variance fill / truth,"
        f" mask eroded by {DETAIL_ERODE} px) and over the whole photo at {LITERATURE_SIDE} px.",
        "",
        "| fill | n | PSNR | SSIM | L1 | LPIPS mean / median | detail median / mean"
        f" | PSNR@{LITERATURE_SIDE} | SSIM@{LITERATURE_SIDE} |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    found = {r["face"] for r in rows if r["method"] == "pipeline" and r["status"] == FOUND}
    table = [(METHOD_NAMES[m], [r for r in rows if r["method"] == m]) for m in methods]
    if "pipeline" in methods and len(found) < n:
        subset = [r for r in rows if r["method"] == "pipeline" and r["face"] in found]
        table.insert(1, ("pipeline, only the faces it found masked", subset))
    for name, chosen in table:
        col = {k: [r[k] for r in chosen] for k in METRICS}
        lines.append(
            f"| {name} | {len(chosen)} | {_mean(col['psnr']):.2f} | {_mean(col['ssim']):.3f}"
            f" | {_mean(col['l1']):.4f} | {_mean(col['lpips']):.3f} / {_median(col['lpips']):.3f}"
            f" | {_median(col['detail']):.3f} / {_mean(col['detail']):.3f}"
            f" | {_mean(col['psnr256']):.2f} | {_mean(col['ssim256']):.4f} |"
        )
    pipe = [r for r in rows if r["method"] == "pipeline"]
    if pipe:
        statuses = collections.Counter(r["status"] for r in pipe)
        said = ", ".join(f"{k} {v}" for k, v in statuses.most_common())
        lines += [
            "",
            f"The pipeline's own region (status of its largest face: {said}):"
            f" it leaves {_mean(r['remnant'] for r in pipe):.1%} of the true mask unfilled"
            f" on average (median {_median(r['remnant'] for r in pipe):.1%});"
            f" given the true mask, {_mean(_values(rows, 'pipeline_true_mask', 'remnant').values()):.1%}.",
        ]  # fmt: skip
    lines += [
        "",
        "Paired per face, a - b (mean, 95% bootstrap interval; faces where a is better):",
        "",
        "| a | b | metric | difference | a better |",
        "|---|---|---|---|---|",
    ]
    for a, b in PAIRS:
        if a not in methods or b not in methods:
            continue
        for metric in METRICS:
            d = paired_difference(rows, a, b, metric)
            lines.append(
                f"| {a} | {b} | {metric} | {d['mean_diff']:+.3f} [{d['ci_low']:+.3f},"
                f" {d['ci_high']:+.3f}] | {d['a_better']} / {d['n']} |"
            )
    return "\n".join(lines) + "\n"


def picks(values, k: int) -> dict[str, list[int]]:
    """Indices of the typical (around the median) and worst (highest value) k faces.

    For LPIPS, where higher is worse; NaN counts as worst. Each list is in
    increasing order of value (the worst list: the worst last).
    """
    values = np.asarray(values, np.float64)
    order = sorted(range(len(values)), key=lambda i: np.inf if np.isnan(values[i]) else values[i])
    k = min(k, len(order))
    middle = max(0, len(order) // 2 - k // 2)
    return {"typical": order[middle : middle + k], "worst": order[len(order) - k :]}
