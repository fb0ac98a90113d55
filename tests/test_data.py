"""Image folders: splits, decoding, and bad files skipped and counted rather than crashing."""

import shutil

import numpy as np
import pytest
from PIL import Image

from glcic_jax.dataset import folders
from glcic_jax.training import data


@pytest.fixture
def messy_dir(tmp_path, faces_dir):
    """Six real faces plus every kind of bad file a scraped folder holds."""
    train = tmp_path / "train"
    train.mkdir()
    (tmp_path / "test").mkdir()
    for f in sorted((faces_dir / "train").glob("*.jpg"))[:6]:
        shutil.copy(f, train / f.name)
    good = sorted((faces_dir / "train").glob("*.jpg"))[0].read_bytes()
    (train / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (train / "notes.jpg").write_text("not an image")
    (train / "empty.png").write_bytes(b"")
    Image.new("1", (14_000, 14_000)).save(train / "bomb.png")  # decompression-bomb size
    (train / "readme.txt").write_text("ignored: not an image suffix")
    return tmp_path


def test_scan_counts_bad_images(messy_dir):
    files = folders.list_images(messy_dir, "train")
    assert len(files) == 10
    good, bad, mean_pixel = data.scan_images(files, 32, progress=False)
    assert len(good) == 6
    assert sorted(p.rsplit("/", 1)[1] for p in bad) == [
        "bomb.png", "empty.png", "notes.jpg", "truncated.jpg",
    ]  # fmt: skip
    assert mean_pixel.shape == (3,) and (0 < mean_pixel).all() and (mean_pixel < 1).all()


def test_batches_skip_unreadable_files(messy_dir, caplog):
    files = folders.list_images(messy_dir, "train")
    it = data.training_batches(files, size=32, batch_size=4, seed=0, threads=2)
    batches = [next(it) for _ in range(6)]  # 24 images: over two epochs of the 6 good ones
    assert all(b.shape == (4, 32, 32, 3) and b.dtype == np.uint8 for b in batches)
    assert "skipping unreadable image" in caplog.text


def test_order_is_seeded_and_iterator_state_resumes(faces_dir):
    files = folders.list_images(faces_dir, "train")[:40]
    a = data.training_batches(files, size=16, batch_size=4, seed=3)
    first = [next(a) for _ in range(3)]
    state = a.get_state()
    rest = [next(a) for _ in range(12)]  # crosses an epoch boundary (40 images)
    b = data.training_batches(files, size=16, batch_size=4, seed=3)
    b.set_state(state)
    for x, y in zip(rest, [next(b) for _ in range(12)]):
        np.testing.assert_array_equal(x, y)
    c = data.training_batches(files, size=16, batch_size=4, seed=4)
    assert not np.array_equal(first[0], next(c))


def test_flat_folder_split_is_deterministic_and_disjoint(tmp_path, faces_dir):
    for f in sorted((faces_dir / "test").glob("*.jpg"))[:10]:
        shutil.copy(f, tmp_path / f.name)
    train, test = folders.list_images(tmp_path, "train"), folders.list_images(tmp_path, "test")
    assert len(train) == 8 and len(test) == 2 and not set(train) & set(test)
    assert train == folders.list_images(tmp_path, "train")


def test_load_image_centre_crops_to_square(tmp_path):
    im = np.zeros((109, 89, 3), np.uint8)
    im[10:99] = 200  # the centre 89x89 square is bright, the 10-row bands dark
    Image.fromarray(im).save(tmp_path / "x.png")
    out = folders.load_image(str(tmp_path / "x.png"), 89)
    assert out.shape == (89, 89, 3) and out.min() == 200


def test_missing_folder_is_a_data_error(tmp_path):
    with pytest.raises(folders.DataError, match="does not exist"):
        folders.list_images(tmp_path / "nope", "train")
