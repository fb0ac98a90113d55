"""The photo pipeline's time per photo, compilations and peak memory on photos of mixed sizes.

  python experiments/bench_photos.py [--n=100] [--photos=DIR] [--sides=256,384,512,768,1024,1600]
      [--donors=data/donor_bank.npz] [--csv=OUT.csv]

Without --photos: held-out CelebA-HQ faces (../shared/data/celebahq) wearing a
pasted face-mask template, each resized so its long side is one of --sides in
turn. With --photos: the photos of a folder as they are (grouped by size in
the table). Completes each with complete.py's defaults (the shipped photo
model, segmenter and, if the bank exists, donor detail) and prints, for the
first photo and for each size class of the rest: median and 90th-percentile
seconds, XLA compilations, faces filled; then the setup's compilations and
the process's peak memory. Wiring only: glcic_jax.perf.photo_bench.
"""

import csv
import pathlib
import sys
import time

from absl import app, flags, logging

from glcic_jax import locations
from glcic_jax.perf import photo_bench

_N = flags.DEFINE_integer("n", 100, "Photos to complete.")
_PHOTOS = flags.DEFINE_string("photos", None, "A folder of photos (default: pasted CelebA-HQ).")
_SIDES = flags.DEFINE_list(
    "sides", [str(s) for s in photo_bench.DEFAULT_SIDES], "Long sides of the test photos, px."
)
_DONORS = flags.DEFINE_string(
    "donors", str(locations.data_home() / "donor_bank.npz"), "Donor bank ('' for none)."
)
_CSV = flags.DEFINE_string("csv", None, "Also write every photo's cost here.")


def _fail(message: str):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def _test_photos(n: int, sides: list[int]) -> list:
    """(long side, RGB) pairs: pasted held-out faces at mixed sizes, or the --photos folder."""
    from glcic_jax import images
    from glcic_jax.completion import photo_folder
    from glcic_jax.evaluation import photo_resolution

    if _PHOTOS.value:
        folder = pathlib.Path(_PHOTOS.value)
        if not folder.is_dir():
            _fail(f"--photos: no folder {folder}")
        out = []
        for path in photo_folder.list_photos(folder)[:n]:
            try:
                rgb = images.read_rgb(path, refuse_degenerate=True)
            except images.ImageError:
                continue
            out.append((max(rgb.shape[:2]), rgb))
        if not out:
            _fail(f"--photos: no readable photos in {folder}")
        return out
    paths = photo_resolution.held_out_paths()
    if not paths:
        _fail("no held-out CelebA-HQ faces (../shared/data/celebahq/test/images); pass --photos")
    distinct = min(n, len(paths), 40)  # faces to paste on; the sizes repeat them
    pasted, _ = photo_resolution.pasted_photos(paths[:distinct])
    return photo_bench.mixed_sizes([p.masked for p in pasted], n, sides)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.ERROR)
    try:
        sides = [int(s) for s in _SIDES.value]
    except ValueError:
        _fail(f"--sides must be integers, not {','.join(_SIDES.value)}")
    if _N.value < 1 or not sides or min(sides) < 32:
        _fail("--n must be >= 1 and every --sides >= 32")
    from tqdm import tqdm

    from glcic_jax.completion import inference, photo
    from glcic_jax.detail import donor_bank

    counter = photo_bench.CompileCounter().listen()
    photos = _test_photos(_N.value, sides)
    bank = None
    if _DONORS.value and pathlib.Path(_DONORS.value).is_file():
        bank = donor_bank.DonorBank.load(_DONORS.value)
    completer = photo.PhotoCompleter(
        inference.Completer.photo_model(batch_size=1), detail_bank=bank
    )
    completer.mask_net  # noqa: B018  (loaded now, not inside the first photo's time)
    setup_compiles = counter.count
    costs = []
    for side, rgb in tqdm(photos, desc="photos", unit="photo"):
        before, start = counter.count, time.perf_counter()
        result = completer.complete(rgb)
        seconds = time.perf_counter() - start
        filled = sum(1 for f in result.faces if f.filled)
        costs.append(photo_bench.PhotoCost(side, seconds, counter.count - before, filled))
    rows = photo_bench.summary_rows(costs, sides)
    print(f"{len(costs)} photos, donor detail {'on' if bank else 'off'}")
    print(
        f"{'photos':<7} {'side<=':>6} {'n':>4} {'median s':>9} {'p90 s':>7} {'compiles':>9} {'faces':>6}"
    )
    for r in rows:
        print(
            f"{r['photos']:<7} {r['side']:>6} {r['n']:>4} {r['median_s']:>9.2f} {r['p90_s']:>7.2f}"
            f" {r['compiles']:>9} {r['faces']:>6}"
        )
    later = sum(c.compiles for c in costs[1:])
    print(
        f"compilations: {setup_compiles} loading, {costs[0].compiles} in the first photo,"
        f" {later} in the {len(costs) - 1} later ones; peak memory {photo_bench.peak_rss_mb():.0f} MB"
    )
    if _CSV.value:
        with open(_CSV.value, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["side", "seconds", "compiles", "faces"])
            writer.writerows((c.side, f"{c.seconds:.4f}", c.compiles, c.faces) for c in costs)


if __name__ == "__main__":
    app.run(main)
