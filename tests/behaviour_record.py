"""The outputs that a restructuring of the package must leave bit-identical.

`compute()` runs the shipped study model, the study's three rerun models
(docs/results/models), the shipped photo model, the shipped mask segmenter
and the shipped refiner on fixed inputs made here (no data needed), and, where ../shared is present,
the whole photo pipeline on LFW test faces wearing pasted masks.
`python tests/behaviour_record.py` writes the record that
tests/test_behaviour_unchanged.py compares against; run it only when an
output is meant to change, and say why in the commit. With `--outputs=PATH`
it writes this run's outputs there instead (the test's subprocess).
"""

import hashlib
import pathlib
import platform
import sys

import numpy as np

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
RECORD = REPO_ROOT / "tests" / "data" / "behaviour_record.npz"
STUDY_MODELS = ("mouth", "random", "random_mouthsize")
PHOTO_FACES = (
    "Ahmet_Necdet_Sezer_0001.jpg",
    "Ain_Seppik_0001.jpg",
    "Alvaro_Silva_Calderon_0002.jpg",
)


def fixed_images(n: int, size: int, seed: int) -> np.ndarray:
    """Smooth deterministic colour fields in [0, 1], a face-free stand-in for photos."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((n, 8, 8, 3)).astype(np.float32)
    reps = size // 8
    return np.repeat(np.repeat(coarse, reps, axis=1), reps, axis=2)


def machine() -> str:
    """Where a record was made: XLA's CPU kernels may round differently on another processor."""
    import jax

    cpu = platform.processor() or platform.machine()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu} | jax {jax.__version__}"


def compute(shared_data: pathlib.Path | None = None) -> dict[str, np.ndarray]:
    from glcic_jax.completion.inference import Completer

    out = {}
    completers = {"mouth64": Completer.pretrained(batch_size=4)}
    for name in STUDY_MODELS:
        path = REPO_ROOT / "docs" / "results" / "models" / f"{name}.npz"
        completers[f"study_{name}"] = Completer.from_model_file(path, batch_size=4)
    completers["worn_mask64"] = Completer.photo_model(batch_size=4)
    for name, completer in completers.items():
        images = fixed_images(4, completer.image_size, seed=0)
        holes = completer.regime_holes(4, seed=1)
        out[f"{name}/holes"] = holes
        out[f"{name}/completed"] = completer.complete(images, holes)

    from glcic_jax.completion import photo

    photo_completer = photo.PhotoCompleter(Completer.photo_model(batch_size=1))
    net = photo_completer.mask_net
    crops = (fixed_images(2, net.size, seed=2) * 255).astype(np.uint8)
    out["segmenter/probabilities"] = net.probabilities(crops)
    refiner = photo.load_refiner()
    frames = (fixed_images(2, 64, seed=3) * 255).astype(np.uint8)
    coarse = fixed_images(2, 64, seed=4)
    refine_holes = np.zeros((2, 64, 64), bool)
    refine_holes[:, 24:56, 8:56] = True
    out["refiner/refined"] = refiner.refine(frames, refine_holes, coarse)

    faces = (shared_data / "faces" / "test") if shared_data else None
    if faces is not None and faces.is_dir():
        from glcic_jax.face_masks import overlay

        for i, name in enumerate(PHOTO_FACES):
            rgb = photo.load_photo(faces / name)
            face = photo_completer.detector.detect(rgb)[0]
            masked, _, _ = overlay.paste_on_photo(rgb, face, np.random.default_rng(i))
            result = photo_completer.complete(masked)
            out[f"photo/{i}/completed"] = result.completed
            out[f"photo/{i}/region"] = result.region
    return out


def digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def main(argv: list[str]) -> None:
    from glcic_jax import locations

    shared = locations.mirror()
    arrays = compute(shared if (shared / "faces" / "test").is_dir() else None)
    if argv[1:2] and argv[1].startswith("--outputs="):
        # The test's own run (XLA's default optimisation level, whatever the suite's): raw outputs.
        np.savez(argv[1].removeprefix("--outputs="), **arrays)
        return
    photo_keys = [k for k in arrays if k.startswith("photo/")]
    # Photo outputs of LFW faces are kept as digests only (never commit the images).
    record = {k: v for k, v in arrays.items() if not k.startswith("photo/")}
    record.update({f"sha256:{k}": np.array(digest(arrays[k])) for k in photo_keys})
    record["machine"] = np.array(machine())
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(RECORD, **record)
    print(f"wrote {RECORD} ({RECORD.stat().st_size:,} bytes, {len(record) - 1} outputs)")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
