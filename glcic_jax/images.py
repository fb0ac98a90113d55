"""The one place a picture file is decoded: upright, 8-bit, or refused with one `ImageError`.

Training, evaluation, the survey, dataset preparation, photo completion, the
segmenter's face sources and the face-mask templates all read files through
here, so they see the same pixels from the same file, and a file that cannot
be used is refused the same way everywhere, with a one-line message that
names it. This module sits at the bottom of the package (it imports only
numpy and Pillow), so any layer may read a picture without importing the
dataset code.

Every reader opens the file with Pillow, refuses it before decoding when it
is larger than the pixel limit (`pixel_limit`) and, if asked, when no face fits
it (`MIN_SIDE`, `MAX_ASPECT`), then applies the EXIF orientation (a phone
stores a portrait sideways and says so in EXIF). A damaged EXIF block is
ignored quietly: the picture is read as stored, without Pillow's
"Corrupt EXIF data" warning.

Damaged picture data is refused (reason "damaged"), not decoded with visible
damage: Pillow raises on what libjpeg and zlib call errors, but decodes some
damage without a word; `image_damage` finds what it can after a clean decode
(every reader checks, but for `read_rgb(check_damage=False)`).

  read_rgb   uint8 (H, W, 3). 16-bit, 32-bit and float greyscale are scaled
             to 0..255 (`_grey_to_uint8`): Pillow's own conversion clips them,
             so a 16-bit PNG would come out all white. Every other mode
             (L, 1, P, CMYK, YCbCr, LA, RGBA, ...) goes through Pillow's
             `convert("RGB")`. Alpha is dropped, not composited: a transparent
             pixel reads as the colour stored under it (often black), and a
             palette's transparent entry as its palette colour.
  read_rgba  uint8 (H, W, 4) of a picture that has transparency (an alpha
             band, or a palette or colour key marked transparent), such as
             the face-mask templates; a picture without it is refused.
  read_mask  uint8 (H, W): the alpha channel when the picture has one that
             is not fully opaque (a mask painted on a transparent layer),
             else the luminance (`convert("L")`; 16-bit and float greyscale
             scaled as in `read_rgb`).
"""

import os
import stat
import warnings

import numpy as np
from PIL import Image, ImageOps

from glcic_jax import image_damage

# Smaller or more elongated pictures hold no usable face (`refuse_degenerate`).
MIN_SIDE = 32
MAX_ASPECT = 8
# Why an `ImageError` was raised (its `reason`), for callers that count refusals.
REASONS = (
    "missing",
    "permission",
    "not_a_file",
    "too_large",
    "degenerate",
    "no_alpha",
    "unreadable",
    "damaged",
)

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
# Pillow's complaints about metadata it then ignores, and about a palette's
# transparency that `read_rgb` drops on purpose: nothing the user can act on.
_QUIET_PILLOW = (
    r"(possibly )?corrupt exif data"
    r"|metadata warning"
    r"|tag offset too large"
    r"|tag data larger than file"
    r"|possibly corrupt exif makernote data"
    r"|palette images with transparency expressed in bytes"
)
# Also process-wide, from import on: `warnings.catch_warnings` in `_decode` is not
# thread-safe, and a reader on another thread restoring the filters while this one
# decodes would let Pillow print these raw.
warnings.filterwarnings("ignore", _QUIET_PILLOW, UserWarning, r"PIL\.")


class ImageError(ValueError):
    """A file that is not a usable picture; the message is one line for the user, naming the file.

    A ValueError, as the refusals of a degenerate size or of a folder with an
    image's name always were, so callers that skip bad files catch it as before.

    Attributes:
      path: the file, as a string.
      reason: one of `REASONS`.
    """

    def __init__(self, path, reason: str, message: str):
        super().__init__(message)
        self.path = str(path)
        self.reason = reason


def pixel_limit(max_pixels: int | None = None) -> int | None:
    """The largest picture (width x height) the readers decode with this `max_pixels`.

    None keeps Pillow's limit (`Image.MAX_IMAGE_PIXELS`, about 89 million
    pixels). A larger `max_pixels` still stops at Pillow's hard refusal, twice
    that, so the smaller of the two is the limit. None is returned only when a
    program switched Pillow's check off and gave no limit of its own.
    """
    pillow = Image.MAX_IMAGE_PIXELS
    if max_pixels is None:
        return pillow
    if pillow is None:
        return max_pixels
    return min(max_pixels, 2 * pillow)


def read_rgb(
    path, max_pixels: int | None = None, *, refuse_degenerate: bool = False, check_damage=True
) -> np.ndarray:
    """Decode one picture file as upright uint8 RGB (H, W, 3).

    Args:
      path: the file.
      max_pixels: refuse larger pictures before decoding; None keeps Pillow's
        own limit (`pixel_limit`).
      refuse_degenerate: refuse sizes no face fits (a side under `MIN_SIDE`,
        or one side over `MAX_ASPECT` times the other).
      check_damage: refuse damaged picture data (`image_damage`). Off for a
        user's photo to complete: its damage shows in the result, and the
        pure-Python JPEG walk costs about a second at 12 megapixels.

    Raises:
      ImageError: missing, not a regular file, not readable, not a picture
        Pillow decodes, too large, or (if asked) degenerate.
    """
    return _decode(path, max_pixels, refuse_degenerate, _to_rgb, check_damage)


def read_rgba(path, max_pixels: int | None = None) -> np.ndarray:
    """Decode a picture with transparency as upright uint8 RGBA (H, W, 4).

    Raises:
      ImageError: as `read_rgb`, or (reason "no_alpha") the picture has no
        transparency.
    """
    return _decode(path, max_pixels, False, _to_rgba)


def read_mask(path, max_pixels: int | None = None) -> np.ndarray:
    """Decode a mask picture as upright uint8 (H, W): its alpha if not all opaque, else its luminance.

    Raises:
      ImageError: as `read_rgb`.
    """
    return _decode(path, max_pixels, False, _to_mask)


def _decode(path, max_pixels, refuse_degenerate, convert, check_damage=True) -> np.ndarray:
    _check_regular_file(path)
    limit = pixel_limit(max_pixels)
    try:
        with warnings.catch_warnings():
            # Our own limit decides: with none given, Pillow's warning threshold
            # refuses (as an error); with one, that threshold must not refuse first.
            # The filters are process-wide, and readers on several threads (training's
            # decoders) can restore them out of order; the size check below does not
            # depend on them, so a read never lets a picture over its limit through.
            action = "error" if max_pixels is None else "ignore"
            warnings.simplefilter(action, Image.DecompressionBombWarning)
            warnings.filterwarnings("ignore", _QUIET_PILLOW, UserWarning)
            with Image.open(path) as im:
                w, h = im.size
                if limit is not None and w * h > limit:
                    raise _too_large(path, limit)
                if refuse_degenerate and (
                    min(w, h) < MIN_SIDE or max(w, h) > MAX_ASPECT * min(w, h)
                ):
                    message = f"{path} is {w}x{h}: too small or too elongated for a face"
                    raise ImageError(path, "degenerate", message)
                pixels = convert(path, ImageOps.exif_transpose(im))
                image_format = im.format
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_large(path, limit) from None
    except FileNotFoundError:  # removed since the check
        raise ImageError(path, "missing", f"{path}: no such file") from None
    except PermissionError:
        raise ImageError(path, "permission", f"{path}: permission denied") from None
    except Exception as e:  # Pillow's decoders raise many types on damaged data (e.g. DDS, SPIDER).
        message = f"{path}: not a readable image ({e.__class__.__name__})"
        raise ImageError(path, "unreadable", message) from None
    if check_damage:
        try:
            problem = image_damage.problem(path, image_format)
        except FileNotFoundError:  # removed since it was decoded
            raise ImageError(path, "missing", f"{path}: no such file") from None
        except PermissionError:
            raise ImageError(path, "permission", f"{path}: permission denied") from None
        if problem:
            raise ImageError(path, "damaged", f"{path}: damaged image data ({problem})")
    return pixels


def _check_regular_file(path) -> None:
    try:
        mode = os.stat(path).st_mode  # follows links: a dangling one is missing
    except FileNotFoundError:
        raise ImageError(path, "missing", f"{path}: no such file") from None
    except PermissionError:
        raise ImageError(path, "permission", f"{path}: permission denied") from None
    except OSError as e:  # a name too long, a loop of links, a file used as a folder
        raise ImageError(
            path, "not_a_file", f"{path}: {e.strerror or 'not a regular file'}"
        ) from None
    if not stat.S_ISREG(mode):  # a folder, or a FIFO that would block the reader forever
        raise ImageError(path, "not_a_file", f"{path}: not a regular file")


def _too_large(path, limit) -> ImageError:
    return ImageError(path, "too_large", f"{path}: more than {limit:,} pixels, refused")


def _is_grey_beyond_8_bits(im: Image.Image) -> bool:
    return im.mode in _SIXTEEN_BIT_MODES or im.mode == "F"


def _grey_to_uint8(im: Image.Image) -> np.ndarray:
    """16-bit, 32-bit or float greyscale -> uint8 (H, W), scaled to its range, not clipped."""
    values = np.asarray(im, np.float64)
    top = values.max(initial=0.0)
    if im.mode.startswith("I;16"):
        full = 65535.0
    elif im.mode == "F" and top <= 1.0:
        full = 1.0
    else:  # 32-bit integers or floats: the smallest common range that holds them
        full = next((r for r in (255.0, 65535.0) if top <= r), top)
    return np.clip(np.round(values / full * 255), 0, 255).astype(np.uint8)


def _to_rgb(path, im: Image.Image) -> np.ndarray:
    if _is_grey_beyond_8_bits(im):
        return np.repeat(_grey_to_uint8(im)[..., None], 3, axis=2)
    return np.asarray(im.convert("RGB"), np.uint8)


def _to_rgba(path, im: Image.Image) -> np.ndarray:
    if "A" not in im.getbands() and "transparency" not in im.info:
        raise ImageError(path, "no_alpha", f"{path}: has no alpha channel ({im.mode})")
    return np.asarray(im.convert("RGBA"), np.uint8)


def _to_mask(path, im: Image.Image) -> np.ndarray:
    if "A" in im.getbands():
        alpha = np.asarray(im.getchannel("A"), np.uint8)
        if alpha.min() < 255:
            return alpha
    if _is_grey_beyond_8_bits(im):
        return _grey_to_uint8(im)
    return np.asarray(im.convert("L"), np.uint8)
