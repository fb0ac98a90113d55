"""glcic_jax.images: every picture decodes as it did before the readers were merged, and bad files are refused in one line.

The references below (`_before_*`) are the decoders as they were before
issue 29 merged them into `glcic_jax.images`: `dataset/folders.to_rgb`
(training, evaluation, the survey, preparation and photo completion), the
OpenCV readers of the segmenter's face sources and of the face-mask
templates, and `completion/photo.load_user_mask`. They are kept here only as
the bar the new readers must meet bit for bit, on pictures generated in each
mode.
"""

import os
import struct
import warnings
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from glcic_jax import images
from glcic_jax.completion import photo
from glcic_jax.dataset import folders, prepare
from glcic_jax.face_masks import overlay
from glcic_jax.segmenter.synthetic import face_sources

ORIENTATION = 0x0112


def _before_rgb(path) -> np.ndarray:
    """dataset/folders.to_rgb(Image.open(path)) before issue 29."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I") or im.mode == "F":
            values = np.asarray(im, np.float64)
            top = values.max(initial=0.0)
            if im.mode.startswith("I;16"):
                full = 65535.0
            elif im.mode == "F" and top <= 1.0:
                full = 1.0
            else:
                full = next((r for r in (255.0, 65535.0) if top <= r), top)
            grey = np.clip(np.round(values / full * 255), 0, 255).astype(np.uint8)
            return np.repeat(grey[..., None], 3, axis=2)
        return np.asarray(im.convert("RGB"), np.uint8)


def _before_source_rgb(path) -> np.ndarray:
    """segmenter/synthetic/generator._read_rgb before issue 29."""
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _before_template_rgba(path) -> np.ndarray:
    """face_masks/overlay's template reader before issue 29."""
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)


def _before_user_mask(path) -> np.ndarray:
    """completion/photo.load_user_mask before issue 29."""
    with Image.open(path) as im:
        im.load()
        if "A" in im.getbands():
            alpha = np.asarray(im.getchannel("A"))
            if alpha.min() < 255:
                return alpha > 127
        return np.asarray(im.convert("L")) > 127


def _colours(h=48, w=64, seed=0) -> np.ndarray:
    """Smooth gradients plus noise: every channel differs, so a swap or a rotation shows."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) * 255 // (w + h - 2)], -1)
    return np.clip(rgb + rng.integers(-20, 21, rgb.shape), 0, 255).astype(np.uint8)


def _alpha(h=48, w=64) -> np.ndarray:
    a = np.full((h, w), 255, np.uint8)
    a[: h // 2, : w // 3] = 0
    a[h // 2 :, w // 3 : 2 * w // 3] = 128
    return a


def _write_each_mode(folder) -> dict:
    """One picture per mode a user or a data set may hand us: name -> path."""
    rgb, alpha = _colours(), _alpha()
    grey = rgb[..., 0]
    stored = {}

    def save(name, im, **kw):
        stored[name] = folder / name
        im.save(stored[name], **kw)

    save("rgb.png", Image.fromarray(rgb))
    save("rgb.jpg", Image.fromarray(rgb), quality=90)
    save("rgba.png", Image.fromarray(np.dstack([rgb, alpha]), "RGBA"))
    save("la.png", Image.fromarray(np.dstack([grey, alpha]), "LA"))
    save("l.png", Image.fromarray(grey, "L"))
    save("l.jpg", Image.fromarray(grey, "L"), quality=90)
    save("1.png", Image.fromarray(grey > 127))
    save("p.png", Image.fromarray(rgb).quantize(16))
    paletted = Image.fromarray(rgb).quantize(16)
    save("p_transparent.png", paletted, transparency=3)
    save("i16.png", Image.fromarray((grey.astype(np.uint16) * 257 + 13).astype(np.uint16)))
    save("i32.tif", Image.fromarray(grey.astype(np.int32) * 100, "I"))
    save("f.tif", Image.fromarray(grey.astype(np.float32) / 255.0, "F"))
    save("cmyk.jpg", Image.fromarray(rgb).convert("CMYK"), quality=90)
    for orientation in range(2, 9):
        exif = Image.Exif()
        exif[ORIENTATION] = orientation
        save(f"exif{orientation}.jpg", Image.fromarray(rgb), exif=exif, quality=90)
    return stored


@pytest.fixture(scope="module")
def each_mode(tmp_path_factory):
    return _write_each_mode(tmp_path_factory.mktemp("modes"))


def test_the_pictures_are_in_the_modes_they_are_named_for(each_mode):
    modes = {name: Image.open(path).mode for name, path in each_mode.items()}
    assert modes["rgba.png"] == "RGBA" and modes["la.png"] == "LA" and modes["1.png"] == "1"
    assert (
        modes["p.png"] == "P" and "transparency" in Image.open(each_mode["p_transparent.png"]).info
    )
    assert modes["i16.png"].startswith("I;16") and modes["i32.tif"] == "I" and modes["f.tif"] == "F"
    assert modes["cmyk.jpg"] == "CMYK" and modes["l.jpg"] == "L"


def test_every_mode_decodes_bit_identically_to_before(each_mode):
    for name, path in each_mode.items():
        new = images.read_rgb(path)
        assert new.dtype == np.uint8 and new.shape[2] == 3, name
        np.testing.assert_array_equal(new, _before_rgb(path), err_msg=name)


def test_training_crops_are_unchanged(each_mode):
    """folders.load_image = decode, centre square, LANCZOS: as before for every mode."""
    for name, path in each_mode.items():
        im = Image.fromarray(_before_rgb(path))
        side = min(im.size)
        left, top = (im.size[0] - side) // 2, (im.size[1] - side) // 2
        im = im.crop((left, top, left + side, top + side)).resize(
            (40, 40), Image.Resampling.LANCZOS
        )
        np.testing.assert_array_equal(folders.load_image(str(path), 40), np.asarray(im), name)


@pytest.mark.parametrize(
    "name", ["rgb.png", "rgb.jpg", "rgba.png", "la.png", "l.png", "l.jpg", "p.png", "exif6.jpg"]
)
def test_face_sources_decode_as_opencv_decoded_them(each_mode, name):
    """The segmenter's sources were read by OpenCV: same pixels for 8-bit pictures."""
    np.testing.assert_array_equal(
        images.read_rgb(each_mode[name]), _before_source_rgb(each_mode[name])
    )


def test_templates_decode_as_opencv_decoded_them(each_mode):
    new = images.read_rgba(each_mode["rgba.png"])
    assert new.shape == (48, 64, 4)
    np.testing.assert_array_equal(new, _before_template_rgba(each_mode["rgba.png"]))
    with pytest.raises(images.ImageError, match="rgb.png: has no alpha channel") as e:
        images.read_rgba(each_mode["rgb.png"])
    assert e.value.reason == "no_alpha"
    # A palette with a transparent entry is a picture with alpha too.
    assert images.read_rgba(each_mode["p_transparent.png"])[..., 3].min() == 0


def test_shipped_templates_decode_as_opencv_decoded_them(shared_data):
    for path in sorted((shared_data / "mask_overlays").glob("*.png")):
        np.testing.assert_array_equal(
            images.read_rgba(path), _before_template_rgba(path), path.name
        )


@pytest.mark.parametrize(
    "name", ["rgb.png", "rgba.png", "la.png", "l.png", "1.png", "p.png", "p_transparent.png"]
)
def test_user_masks_decode_as_before(each_mode, name):
    np.testing.assert_array_equal(
        photo.load_user_mask(each_mode[name]), _before_user_mask(each_mode[name])
    )


def test_a_mask_uses_its_alpha_only_when_some_of_it_is_transparent(tmp_path):
    grey = np.zeros((40, 40), np.uint8)
    grey[10:20] = 255
    opaque = np.dstack([grey, grey, grey, np.full_like(grey, 255)])
    Image.fromarray(opaque, "RGBA").save(tmp_path / "opaque.png")
    np.testing.assert_array_equal(images.read_mask(tmp_path / "opaque.png"), grey)
    painted = np.dstack([np.zeros((40, 40, 3), np.uint8), grey])  # black paint, alpha = region
    Image.fromarray(painted, "RGBA").save(tmp_path / "layer.png")
    np.testing.assert_array_equal(images.read_mask(tmp_path / "layer.png"), grey)


def test_a_sixteen_bit_mask_is_scaled_not_clipped(tmp_path):
    """Pillow's own conversion clipped it (every value above 255 was white); now it keeps its tones."""
    ramp = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "m16.png")
    np.testing.assert_array_equal(images.read_mask(tmp_path / "m16.png") > 127, ramp > 32767)
    assert _before_user_mask(tmp_path / "m16.png").mean() > 0.99  # what it was


def test_sixteen_bit_and_float_greyscale_is_scaled_to_its_range(each_mode, tmp_path):
    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    out = images.read_rgb(tmp_path / "g16.png")
    np.testing.assert_array_equal(out[..., 0], np.round(ramp / 65535.0 * 255).astype(np.uint8))
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    grey = _colours()[..., 0]
    # 32-bit integers up to 25,500: the 16-bit range; floats up to 1: that range.
    np.testing.assert_array_equal(
        images.read_rgb(each_mode["i32.tif"])[..., 0],
        np.round(grey.astype(np.float64) * 100 / 65535.0 * 255).astype(np.uint8),
    )
    np.testing.assert_allclose(images.read_rgb(each_mode["f.tif"])[..., 0], grey, atol=1)


def test_alpha_is_dropped_not_composited(each_mode):
    rgb = images.read_rgb(each_mode["rgba.png"])
    np.testing.assert_array_equal(rgb, _colours())  # transparent pixels keep their stored colour


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(tmp_path, orientation):
    stored = np.zeros((30, 50, 3), np.uint8)
    stored[:10, :10] = 255  # a white corner shows where the top left went
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    Image.fromarray(stored).save(tmp_path / "o.png", exif=exif)
    upright = {
        1: stored,
        2: stored[:, ::-1],
        3: stored[::-1, ::-1],
        4: stored[::-1],
        5: stored.transpose(1, 0, 2),
        6: np.rot90(stored, -1),
        7: stored[::-1, ::-1].transpose(1, 0, 2),
        8: np.rot90(stored, 1),
    }[orientation]
    np.testing.assert_array_equal(images.read_rgb(tmp_path / "o.png"), upright)
    assert images.read_mask(tmp_path / "o.png").shape == upright.shape[:2]


def test_corrupt_exif_is_ignored_quietly(tmp_path):
    """An EXIF block cut short: read as stored, its orientation still applied, no warning."""
    truncated = b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x01\x00\x12\x01\x03\x00\x01\x00\x00\x00\x06\x00\x00\x00"
    Image.fromarray(_colours()).save(tmp_path / "c.jpg", exif=truncated, quality=90)
    with warnings.catch_warnings(record=True) as before:
        warnings.simplefilter("always")
        expected = _before_rgb(tmp_path / "c.jpg")
    assert any("Corrupt EXIF" in str(w.message) for w in before)  # Pillow does complain
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rgb = images.read_rgb(tmp_path / "c.jpg")
        images.read_mask(tmp_path / "c.jpg")
    assert [str(w.message) for w in caught] == []
    assert rgb.shape == (64, 48, 3)
    np.testing.assert_array_equal(rgb, expected)


def _png_header(path, w, h):
    """A PNG that claims w x h pixels and holds none: refused before any decoding."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


def test_pictures_over_the_limit_are_refused_in_one_line(tmp_path):
    Image.fromarray(_colours(100, 80)).save(tmp_path / "ok.png")
    with pytest.raises(images.ImageError) as e:
        images.read_rgb(tmp_path / "ok.png", max_pixels=7_999)
    assert str(e.value) == f"{tmp_path / 'ok.png'}: more than 7,999 pixels, refused"
    assert e.value.reason == "too_large" and isinstance(e.value, ValueError)
    assert images.read_rgb(tmp_path / "ok.png", max_pixels=8_000).shape == (100, 80, 3)
    # No limit given: Pillow's (about 89 million pixels) refuses; a larger one of ours lets
    # a picture through up to Pillow's hard refusal, twice that.
    pillow = Image.MAX_IMAGE_PIXELS
    _png_header(tmp_path / "bomb.png", 10_000, 9_000)
    with pytest.raises(images.ImageError, match=f"more than {pillow:,} pixels"):
        images.read_rgb(tmp_path / "bomb.png")
    _png_header(tmp_path / "huge.png", 15_000, 12_000)
    assert images.pixel_limit(500_000_000) == 2 * pillow
    with pytest.raises(images.ImageError, match=f"more than {2 * pillow:,} pixels") as e:
        images.read_rgba(tmp_path / "huge.png", max_pixels=500_000_000)
    assert e.value.reason == "too_large"
    with pytest.raises(images.ImageError, match="more than 100 pixels"):
        images.read_mask(tmp_path / "ok.png", max_pixels=100)


def test_degenerate_sizes_are_refused_only_when_asked(tmp_path):
    for name, (h, w) in {"small.png": (31, 40), "long.png": (40, 321)}.items():
        Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(tmp_path / name)
        assert images.read_rgb(tmp_path / name).shape == (h, w, 3)
        with pytest.raises(images.ImageError, match=f"is {w}x{h}: too small or too elongated") as e:
            images.read_rgb(tmp_path / name, refuse_degenerate=True)
        assert e.value.reason == "degenerate"
        assert folders.try_load_image(str(tmp_path / name), 32) is None
    Image.fromarray(np.zeros((40, 320, 3), np.uint8)).save(tmp_path / "wide.png")  # 8:1 is fine
    assert images.read_rgb(tmp_path / "wide.png", refuse_degenerate=True).shape == (40, 320, 3)


def _bad_files(folder) -> dict:
    """name -> (path, reason, the message's end)."""
    Image.fromarray(_colours()).save(folder / "whole.jpg")
    (folder / "cut.jpg").write_bytes((folder / "whole.jpg").read_bytes()[:300])
    (folder / "text.png").write_text("not a picture")
    (folder / "folder.png").mkdir()
    os.symlink(folder / "nothing.png", folder / "dangling.png")
    os.mkfifo(folder / "fifo.png")
    return {
        "gone": (folder / "gone.jpg", "missing", "gone.jpg: no such file"),
        "dangling": (folder / "dangling.png", "missing", "dangling.png: no such file"),
        "folder": (folder / "folder.png", "not_a_file", "folder.png: not a regular file"),
        "fifo": (folder / "fifo.png", "not_a_file", "fifo.png: not a regular file"),
        "under a file": (folder / "whole.jpg" / "x.png", "not_a_file", "x.png: Not a directory"),
        "text": (
            folder / "text.png",
            "unreadable",
            "text.png: not a readable image (UnidentifiedImageError)",
        ),
        "cut": (folder / "cut.jpg", "unreadable", "cut.jpg: not a readable image (OSError)"),
    }


@pytest.mark.parametrize("reader", [images.read_rgb, images.read_rgba, images.read_mask])
def test_bad_files_are_one_image_error_each_in_one_line(tmp_path, reader):
    for name, (path, reason, end) in _bad_files(tmp_path).items():
        with pytest.raises(images.ImageError) as e:
            reader(path)
        message = str(e.value)
        assert message.endswith(end) and "\n" not in message, (name, message)
        assert e.value.reason == reason and e.value.path == str(path), name
        assert e.value.reason in images.REASONS


def test_an_unreadable_file_says_permission_denied(tmp_path, monkeypatch):
    Image.fromarray(_colours()).save(tmp_path / "locked.png")
    os.chmod(tmp_path / "locked.png", 0)
    if os.geteuid() == 0:  # root reads any file: Pillow is made to refuse as it would

        def refuse(path, *args, **kwargs):
            raise PermissionError(13, "Permission denied", str(path))

        monkeypatch.setattr(Image, "open", refuse)
    with pytest.raises(images.ImageError, match="locked.png: permission denied") as e:
        images.read_rgb(tmp_path / "locked.png")
    assert e.value.reason == "permission"


def test_callers_keep_their_own_errors_and_reasons(tmp_path):
    """Each caller turns an ImageError into its own one-line error or drop reason."""
    (tmp_path / "text.jpg").write_text("hello")
    with pytest.raises(photo.PhotoError, match=r"^\S*text.jpg: not a readable image"):
        photo.load_photo(tmp_path / "text.jpg")
    with pytest.raises(photo.PhotoError, match=r"^mask file \S*text.jpg: not a readable image"):
        photo.load_user_mask(tmp_path / "text.jpg")
    assert prepare.load_image(tmp_path / "text.jpg", 10**8) == (None, "corrupt")
    assert folders.try_load_image(str(tmp_path / "text.jpg"), 32) is None
    source = face_sources.SourceFace(str(tmp_path / "text.jpg"), ((0.0, 0.0),) * 5)
    with pytest.raises(face_sources.SourcesError, match=r"cannot decode face source: \S*text.jpg"):
        face_sources.read_source(source)
    (tmp_path / "templates").mkdir()
    for name in overlay.TEMPLATES:
        Image.fromarray(_colours()).save(tmp_path / "templates" / f"{name}.png")
    with pytest.raises(overlay.OverlayError, match="face-mask template .*: has no alpha channel"):
        overlay.load_templates(tmp_path / "templates")
