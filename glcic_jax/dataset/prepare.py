"""Raw photos -> the aligned 256x256 train/test set, with a manifest and a drop summary.

`build(source, out, settings)` reads every image under `source` (sorted, so
runs are reproducible; or a fixed sample of `max_images` of them), drops what the study removed by hand, aligns the rest
with `align.alignment`, removes near-duplicates and splits the survivors
train/test by a seeded hash of their source path. Each drop has a reason, a
count in `OUT/summary.json` and a flag in `Settings`:

  corrupt              unreadable or truncated file
  decompression_bomb   more than `max_pixels` pixels
  no_face              no detection at `min_confidence`
  multiple_faces       a second face at least `dominance` x the largest's area
  small_face           detector box's shorter side under `min_face` source px
  mouth_not_visible    landmarks implausible (`filters.mouth_visible`)
  mouth_occluded       under `min_mouth_skin` of the aligned lower face has
                       skin chroma (`filters.mouth_skin_fraction`): a face mask
  outside_frame        more than `max_outside` of the canvas falls off the photo
  near_duplicate       aligned image's 256-bit perceptual hash within
                       `dup_distance` bits of an earlier kept image's

`framing` chooses the frame the faces are written in (`framing.FRAMINGS`):
the study's aligned canvas (default), or the mask crop, zoomed out so that
a worn mask's whole region (cheeks, under the chin) is in frame, for models
trained on face-mask-shaped holes. The review's filters look at the aligned
canvas (`outside` in the manifest is the canvas's), except the near-duplicate
hash, which is of the written image; the manifest's affine and landmarks are
in the written frame.

`min_face` defaults to the study's 128 px. Pre-cropped small sets (LFW's
150 px crops with ~100 px faces, CelebA's 89x109) need `min_face=0`; they are
then upscaled to 256 by the alignment.

Outputs: `OUT/train/`, `OUT/test/` (PNG by default), `OUT/manifest.csv`,
`OUT/summary.json`, `OUT/contact_sheet.png`. A non-empty OUT is refused
unless `overwrite=True`, which removes only what this module writes (and
refuses if anything else is there). Same inputs and settings give
byte-identical outputs.
"""

import concurrent.futures
import csv
import dataclasses
import hashlib
import io
import json
import multiprocessing
import os
import pathlib
import re
import shutil

import numpy as np
from PIL import Image

from glcic_jax import images
from glcic_jax.dataset import filters, review
from glcic_jax.dataset.prepare_settings import PrepareError, Settings, check_settings
from glcic_jax.faces import align, detection, framing

SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")
REASONS = (
    "corrupt",
    "decompression_bomb",
    "no_face",
    "multiple_faces",
    "small_face",
    "mouth_not_visible",
    "mouth_occluded",
    "outside_frame",
    "near_duplicate",
)
OUTPUTS = ("train", "test", ".staging", "manifest.csv", "summary.json", "contact_sheet.png")
MANIFEST_FIELDS = (
    "source",
    "file",
    "split",
    "face_box",
    "confidence",
    "affine",
    *detection.LANDMARKS,
    "outside",
    "phash",
)


@dataclasses.dataclass
class Result:
    """What happened to one source image."""

    source: str
    reason: str = ""  # Empty when kept.
    face: detection.Face | None = None
    affine: np.ndarray | None = None
    outside: float = 0.0
    encoded: bytes = b""  # The aligned image, encoded in the output format, when kept.
    phash: bytes = b""  # 256-bit perceptual hash of the aligned image.


def list_sources(source_dir: pathlib.Path) -> list[pathlib.Path]:
    """All image files under `source_dir`, recursively, in sorted order."""
    return sorted(p for p in source_dir.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)


def sample_sources(sources: list, n: int) -> list:
    """`n` of `sources` spread evenly over the sorted list (all when n <= 0 or n >= len).

    Evenly spaced rather than the first n, so a sample of a numbered set
    (CelebA's test/ sorts before train/) draws from all of it.
    """
    if n <= 0 or n >= len(sources):
        return list(sources)
    return [sources[i * len(sources) // n] for i in range(n)]


def load_image(path: pathlib.Path, max_pixels: int) -> tuple[np.ndarray | None, str]:
    """Decodes a photo safely, upright (EXIF orientation applied), as RGB (`images.read_rgb`).

    Args:
      path: the file.
      max_pixels: larger images count as decompression bombs and are not decoded.

    Returns:
      (RGB uint8 array, "") or (None, "corrupt" | "decompression_bomb").
    """
    try:
        # Degenerate sizes are left to the face detector (they end as no_face).
        return images.read_rgb(path, max_pixels), ""
    except images.ImageError as e:
        return None, "decompression_bomb" if e.reason == "too_large" else "corrupt"


def phash(image: np.ndarray) -> bytes:
    """256-bit perceptual hash (imagehash.phash, hash_size=16) as 32 bytes.

    The common 64-bit hash is too coarse for aligned faces: at 4 bits it
    called 8 of 10,000 CelebA faces duplicates of other people.
    """
    import imagehash  # Imported here: only builds need it.

    return np.packbits(imagehash.phash(Image.fromarray(image), hash_size=16).hash).tobytes()


def hamming(hashes: np.ndarray, h: bytes) -> np.ndarray:
    """Bit distances between (N, 32) uint8 hashes and one 32-byte hash."""
    return np.bitwise_count(hashes ^ np.frombuffer(h, np.uint8)).sum(axis=1)


def process(
    path: pathlib.Path, rel: str, settings: Settings, detector: detection.Detector
) -> Result:
    """Runs every per-image filter and, if the photo survives, aligns it.

    Args:
      path: source file.
      rel: its name relative to the source folder (recorded in the manifest).
      settings: filters.
      detector: a `detection.Detector`.

    Returns:
      A `Result`: kept (reason "") with the aligned image, or dropped with a reason.
    """
    rgb, reason = load_image(path, settings.max_pixels)
    if rgb is None:
        return Result(rel, reason)
    face, reason = detection.dominant_face(
        detector.detect(rgb), settings.min_confidence, settings.dominance
    )
    if face is None:
        return Result(rel, reason)
    if min(face.width, face.height) < settings.min_face:
        return Result(rel, "small_face", face)
    image_size = (rgb.shape[1], rgb.shape[0])
    if settings.require_mouth and not filters.mouth_visible(face, image_size):
        return Result(rel, "mouth_not_visible", face)
    affine = align.alignment(face, settings.size)
    outside = align.outside_fraction(affine, image_size, settings.size)
    if outside > settings.max_outside:
        return Result(rel, "outside_frame", face, affine, outside)
    aligned = align.warp(rgb, affine, settings.size)
    if filters.mouth_skin_fraction(np.asarray(aligned)) < settings.min_mouth_skin:
        return Result(rel, "mouth_occluded", face, affine, outside)
    if settings.framing != "canvas":
        affine = framing.photo_affine(face, settings.framing, settings.size)
        aligned = align.warp(rgb, affine, settings.size)
    buffer = io.BytesIO()
    if settings.image_format == "jpg":
        aligned.save(buffer, "JPEG", quality=95)
    else:
        aligned.save(buffer, "PNG")
    return Result(rel, "", face, affine, outside, buffer.getvalue(), phash(np.asarray(aligned)))


_WORKER = {}


def _init_worker(settings: Settings, detector_factory) -> None:
    import cv2

    cv2.setNumThreads(1)  # One process per core already.
    _WORKER["detector"] = detector_factory(max_side=settings.detect_max_side)
    _WORKER["settings"] = settings


def _process_in_worker(job: tuple[str, str]) -> Result:
    return process(pathlib.Path(job[0]), job[1], _WORKER["settings"], _WORKER["detector"])


def _results(jobs, settings: Settings, workers: int, detector_factory):
    if workers <= 1:
        detector = detector_factory(max_side=settings.detect_max_side)
        for path, rel in jobs:
            yield process(pathlib.Path(path), rel, settings, detector)
        return
    # "spawn": a forked child deadlocks in OpenCV when the parent has already
    # used cv2's thread pool (e.g. an earlier detection in the same process).
    with concurrent.futures.ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(settings, detector_factory),
    ) as pool:
        # In windows, so finished images cannot pile up in memory faster than
        # they are written.
        window = 64 * workers
        for start in range(0, len(jobs), window):
            yield from pool.map(_process_in_worker, jobs[start : start + window], chunksize=8)


def _output_name(rel: str, taken: set[str], suffix: str) -> str:
    stem = pathlib.PurePosixPath(rel).with_suffix("").as_posix().replace("/", "__")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem)
    name = f"{stem}.{suffix}"
    if name in taken:  # a.jpg and a.png, say: disambiguate by the full path.
        name = f"{stem}-{hashlib.sha1(rel.encode()).hexdigest()[:8]}.{suffix}"
    taken.add(name)
    return name


def _split_key(rel: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{rel}".encode()).hexdigest()


def prepare_out_dir(out_dir: pathlib.Path, overwrite: bool) -> None:
    """Makes `out_dir` ready: refuses non-empty unless `overwrite`, and then
    removes only this module's outputs.

    Raises:
      PrepareError: OUT is a file, cannot be written to, is not empty (no
        overwrite), or holds foreign files; nothing is removed then.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise PrepareError(f"--out {out_dir} is a file, not a folder")
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise PrepareError(f"{out_dir} is not empty; pass --overwrite to rebuild it")
        foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in OUTPUTS)
        if foreign:
            raise PrepareError(
                f"{out_dir} holds files prepare_data did not write ({', '.join(foreign[:3])}); "
                "refusing to overwrite"
            )
        _check_writable(out_dir)
        for name in OUTPUTS:
            p = out_dir / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    _check_writable(out_dir)


def _check_writable(out_dir: pathlib.Path) -> None:
    """Create `out_dir` if needed and write a probe file in it, or raise PrepareError in one line.

    Root writes anywhere, whatever the permission bits say; a read-only file
    system still refuses it, as it refuses everyone.
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as e:
        raise PrepareError(f"cannot write to --out {out_dir}: {e.strerror or e}") from None


def _fmt(values, digits: int) -> str:
    return " ".join(f"{v:.{digits}f}" for v in np.ravel(values))


def build(
    source_dir,
    out_dir,
    settings: Settings = Settings(),
    overwrite: bool = False,
    workers: int = 1,
    progress=lambda it, total: it,
    detector_factory=detection.plain_mtcnn,
) -> dict:
    """Builds OUT/train, OUT/test, the manifest, the summary and a contact sheet.

    Args:
      source_dir: folder of raw photos (searched recursively).
      out_dir: output folder; must be empty or absent unless `overwrite`.
      settings: filters and output options.
      overwrite: rebuild a previous output folder.
      workers: processes for detection and alignment (1: in this process).
      progress: wraps the result iterator, e.g. `lambda it, total: tqdm(it, total=total)`.
      detector_factory: builds the detector from `max_side=`; tests pass a fake.

    Returns:
      The summary written to OUT/summary.json.

    Raises:
      PrepareError: a setting out of its range (`check_settings`), no images,
        an output folder that is not empty, is a file or cannot be written to.
    """
    check_settings(settings, workers)
    source_dir, out_dir = pathlib.Path(source_dir).resolve(), pathlib.Path(out_dir).resolve()
    if not source_dir.is_dir():
        raise PrepareError(f"source folder {source_dir} does not exist")
    if out_dir == source_dir or source_dir in out_dir.parents:
        raise PrepareError(f"output {out_dir} must not be inside the source {source_dir}")
    found = list_sources(source_dir)
    if not found:
        raise PrepareError(f"no images ({', '.join(SUFFIXES)}) under {source_dir}")
    sources = sample_sources(found, settings.max_images)
    prepare_out_dir(out_dir, overwrite)
    staging = out_dir / ".staging"
    staging.mkdir()

    jobs = [(str(p), p.relative_to(source_dir).as_posix()) for p in sources]
    dropped = {r: [] for r in REASONS}
    kept, taken = [], set()
    hashes = np.zeros((64, 32), np.uint8)  # Kept images' hashes, grown by doubling.
    for res in progress(_results(jobs, settings, workers, detector_factory), len(jobs)):
        if not res.reason and kept:
            dist = hamming(hashes[: len(kept)], res.phash)
            if int(dist.min()) <= settings.dup_distance:
                res.reason = "near_duplicate"
                dropped["near_duplicate"].append(
                    {"source": res.source, "same_as": kept[int(dist.argmin())]["source"]}
                )
                continue
        if res.reason:
            dropped[res.reason].append({"source": res.source})
            continue
        name = _output_name(res.source, taken, settings.image_format)
        (staging / name).write_bytes(res.encoded)
        if len(kept) == len(hashes):
            hashes = np.concatenate([hashes, np.zeros_like(hashes)])
        hashes[len(kept)] = np.frombuffer(res.phash, np.uint8)
        points = align.apply_affine(res.affine, res.face.landmarks)
        row = {
            "source": res.source,
            "file": name,
            "face_box": _fmt(res.face.box, 1),
            "confidence": f"{res.face.confidence:.4f}",
            "affine": _fmt(res.affine, 6),
            "outside": f"{res.outside:.4f}",
            "phash": res.phash.hex(),
        }
        row.update({k: _fmt(p, 2) for k, p in zip(detection.LANDMARKS, points)})
        kept.append(row)

    n_test = round(len(kept) * settings.test_fraction)
    ranked = sorted(kept, key=lambda r: _split_key(r["source"], settings.split_seed))
    test_sources = {r["source"] for r in ranked[:n_test]}
    for split in ("train", "test"):
        (out_dir / split).mkdir()
    for row in kept:
        row["split"] = "test" if row["source"] in test_sources else "train"
        os.replace(staging / row["file"], out_dir / row["split"] / row["file"])
        row["file"] = f"{row['split']}/{row['file']}"
    staging.rmdir()

    with open(out_dir / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, MANIFEST_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(kept)

    in_box = sum(
        filters.in_box(
            np.array([[float(v) for v in r[k].split()] for k in ("mouth_left", "mouth_right")]),
            size=settings.size,
        )
        for r in kept
        if settings.framing == "canvas"  # the mouth box is a canvas box
    )
    summary = {
        "source": str(source_dir),
        "settings": dataclasses.asdict(settings),
        "found": len(found),
        "inputs": len(sources),
        "kept": len(kept),
        "train": len(kept) - n_test,
        "test": n_test,
        "dropped_counts": {r: len(v) for r, v in dropped.items()},
        "mouth_landmarks_in_box": in_box / max(len(kept), 1)
        if settings.framing == "canvas"
        else None,
        "dropped": dropped,
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False))
    if kept:
        sheet = review.contact_sheet(out_dir, kept, settings.size, framing=settings.framing)
        sheet.save(out_dir / "contact_sheet.png")
    return summary


def read_framing(out_dir) -> str | None:
    """The framing a prepared folder was written in (None: no summary, not prepared here)."""
    try:
        summary = json.loads((pathlib.Path(out_dir) / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    return summary.get("settings", {}).get("framing", "canvas")


def read_manifest(out_dir) -> list[dict]:
    """Rows of OUT/manifest.csv as dicts of strings."""
    with open(pathlib.Path(out_dir) / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))
