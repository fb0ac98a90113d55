"""A bank of aligned donor faces' fine detail, and laying the best match on a fill.

    bank = DonorBank.build(paths, parsing_dir, detector)   # or DonorBank.load(file)
    bank.save("data/donor_bank.npz")
    added = bank.add_detail(completed, region, face)       # completed is changed in place

Each donor is a sharp face photo (e.g. CelebA-HQ at 512 px) put on the
store frame (`transfer.store_affine`) by its own landmarks; the bank keeps its
fine detail (int8, `transfer.DETAIL_SIGMA`), where that detail may be lent
(`transfer.usable_texture` from face-parsing labels, or the lower-face
ellipse without them), a small blurred picture to match faces by, its grain
and its yaw. Donors with an open mouth (teeth) or a strongly turned head are
left out when built.

The bank is made of people's faces: it is built where those faces are
(`experiments/build_donor_bank.py`) and inherits their terms. It is never
shipped with the code.
"""

import dataclasses
import pathlib

import cv2
import numpy as np

from glcic_jax import images, npz_files
from glcic_jax.detail import transfer

FORMAT = "glcic_jax.donor_bank/1"
MAX_OPEN_MOUTH = 0.004  # share of the store frame that is the mouth's inside (teeth) above which a donor is left out
MAX_YAW = 0.25  # |yaw| (nose offset / eye distance) above which a donor is left out
YAW_POOL = 400  # donors of the nearest yaw among which the picture match chooses (all shaven ones, as built)
CHROMA_GAIN = 0.7  # the share of the donor's colour detail (its lips' red) lent
GRAIN_WEIGHT = 0.5  # weight of the squared log grain ratio in the donor distance
GRAIN_FLOOR = (
    0.25  # grey levels: grains below this count as this (a flawless photo is not infinitely far)
)
# Donor distances up to MATCH_FULL lend their whole detail, fading to none at
# MATCH_NONE (measured: good matches 0.2-0.7, strangers' faces drawn on real
# photos at 0.85 and up).
MATCH_FULL = 0.6
MATCH_NONE = 1.0
MAX_FACIAL_HAIR = 0.2  # donors darker than this at the upper lip or chin are not lent (beards)
MAX_GRAIN_Z = 3.0  # log grain this many robust deviations above the shaven donors': not lent


class DonorBankError(Exception):
    """A donor bank that cannot be built or read; the message is one line for the user."""


def yaw_of(face) -> float:
    """How far a face is turned: the nose's offset from the eyes' midpoint, over the eye distance."""
    left, right, nose = face.point("left_eye"), face.point("right_eye"), face.point("nose")
    eyes = right - left
    distance = float(np.hypot(*eyes)) + 1e-6
    along = float(np.dot(nose - (left + right) / 2, eyes)) / distance
    return along / distance


@dataclasses.dataclass
class Donor:
    """One donor face in the store frame (what `DonorBank.build` keeps of a photo)."""

    name: str
    detail: np.ndarray  # int8 (H, W)
    usable: np.ndarray  # bool (H, W)
    chroma: np.ndarray  # int8 (H / 2, W / 2, 2): Lab a*, b* detail (`transfer.chroma_detail`)
    picture: np.ndarray  # float32 feature grid
    grain: float
    yaw: float
    facial_hair: float  # `transfer.facial_hair`


def donor_from_photo(name, rgb, face, parsing=None) -> Donor | None:
    """A `Donor` of one aligned face photo, or None when its mouth is open.

    Args:
      name: kept for the report of which donor lent a fill its detail.
      rgb: the photo, RGB uint8.
      face: its `detection.Face`.
      parsing: optional CelebAMask-HQ class map, the photo's size.
    """
    affine = transfer.store_affine(face)
    rgb_store = transfer.to_store(rgb, affine)
    luma = transfer.luminance(rgb_store)
    skin = None
    if parsing is not None:
        classes = transfer.to_store(parsing, affine, cv2.INTER_NEAREST).astype(np.uint8)
        if np.mean(classes == transfer.MOUTH_INSIDE) > MAX_OPEN_MOUTH:
            return None
        usable = transfer.usable_texture(classes)
        skin = classes == transfer.SKIN
        lips = transfer.lips_weight(classes)
    else:
        usable = transfer.lower_face_ellipse()
        lips = None
    detail = transfer.high_pass(luma, transfer.DETAIL_SIGMA)
    return Donor(
        name=str(name),
        detail=_int8(detail),
        usable=usable,
        chroma=_int8(transfer.chroma_detail(rgb_store, lips)),
        picture=transfer.matching_picture(luma),
        grain=transfer.grain(detail, usable),
        yaw=yaw_of(face),
        facial_hair=transfer.facial_hair(luma, skin),
    )


@dataclasses.dataclass
class DonorBank:
    """Donor faces' detail in the store frame, stacked."""

    names: list
    detail: np.ndarray  # int8 (N, H, W)
    usable: np.ndarray  # bool (N, H, W)
    chroma: np.ndarray  # int8 (N, H / 2, W / 2, 2)
    pictures: np.ndarray  # float32 (N, h, w)
    grains: np.ndarray  # float32 (N,)
    yaws: np.ndarray  # float32 (N,)
    facial_hair: np.ndarray  # float32 (N,)
    source: str = ""

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def from_donors(cls, donors, source: str = "") -> "DonorBank":
        if not donors:
            raise DonorBankError("no usable donor face (none found, or every mouth open)")
        return cls(
            names=[d.name for d in donors],
            detail=np.stack([d.detail for d in donors]),
            usable=np.stack([d.usable for d in donors]),
            chroma=np.stack([d.chroma for d in donors]),
            pictures=np.stack([d.picture for d in donors]).astype(np.float32),
            grains=np.array([d.grain for d in donors], np.float32),
            yaws=np.array([d.yaw for d in donors], np.float32),
            facial_hair=np.array([d.facial_hair for d in donors], np.float32),
            source=source,
        )

    def save(self, path) -> int:
        """Writes the bank as one .npz (atomically); returns its bytes."""
        header = dict(
            format=FORMAT,
            names=self.names,
            source=self.source,
            store_box=list(transfer.STORE_BOX),
            store_scale=transfer.STORE_SCALE,
            detail_sigma=transfer.DETAIL_SIGMA,
            chroma_sigma=transfer.CHROMA_SIGMA,
        )
        arrays = dict(
            detail=self.detail,
            usable=np.packbits(self.usable, axis=-1),
            chroma=self.chroma,
            pictures=self.pictures,
            grains=self.grains,
            yaws=self.yaws,
            facial_hair=self.facial_hair,
        )
        return npz_files.write(path, arrays, header)

    @classmethod
    def load(cls, path) -> "DonorBank":
        """Reads a bank written by `save`.

        Raises:
          DonorBankError: missing, unreadable, or made for another store frame.
        """
        path = pathlib.Path(path)
        if not path.is_file():
            raise DonorBankError(f"donor bank {path} not found")
        try:
            arrays, header = npz_files.read(path)
        except (OSError, ValueError, KeyError) as e:
            raise DonorBankError(f"donor bank {path} is unreadable ({e})") from None
        expected = (
            FORMAT, list(transfer.STORE_BOX), transfer.STORE_SCALE, transfer.DETAIL_SIGMA,
            transfer.CHROMA_SIGMA,
        )  # fmt: skip
        keys = ("format", "store_box", "store_scale", "detail_sigma", "chroma_sigma")
        found = tuple(header.get(k) for k in keys)
        if found != expected:
            raise DonorBankError(
                f"donor bank {path} was made for another store frame or format; rebuild it"
                " (python experiments/build_donor_bank.py)"
            )
        width = transfer.STORE_SHAPE[1]
        return cls(
            names=list(header["names"]),
            detail=arrays["detail"],
            usable=np.unpackbits(arrays["usable"], axis=-1, count=width).astype(bool),
            chroma=arrays["chroma"],
            pictures=arrays["pictures"],
            grains=arrays["grains"],
            yaws=arrays["yaws"],
            facial_hair=arrays["facial_hair"],
            source=header.get("source", ""),
        )

    @classmethod
    def build(cls, paths, detector, parsing_dir=None, progress=iter, min_confidence=0.9):
        """(bank, counts) from face photos: the dominant face of each, its open mouth refused.

        Args:
          paths: photo files.
          detector: a `detection.Detector`.
          parsing_dir: optional folder of class maps named like the photos
            (`NAME.png`); a photo without one is used with the ellipse.
          progress: wraps the paths (e.g. tqdm).
          min_confidence: the dominant face's least detector score.

        Returns:
          (DonorBank, {"used", "no_face", "open_mouth", "turned", "unreadable"}).
        """
        counts = dict(used=0, no_face=0, open_mouth=0, turned=0, unreadable=0)
        donors = []
        for path in progress(list(paths)):
            path = pathlib.Path(path)
            try:
                rgb = images.read_rgb(path)
            except images.ImageError:
                counts["unreadable"] += 1
                continue
            faces = [f for f in detector.detect(rgb) if f.confidence >= min_confidence]
            if not faces:
                counts["no_face"] += 1
                continue
            face = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
            if abs(yaw_of(face)) > MAX_YAW:
                counts["turned"] += 1
                continue
            parsing = _parsing_of(path, parsing_dir, rgb.shape[:2])
            donor = donor_from_photo(path.name, rgb, face, parsing)
            if donor is None:
                counts["open_mouth"] += 1
                continue
            donors.append(donor)
            counts["used"] += 1
        source = str(paths[0].parent) if paths else ""
        return cls.from_donors(donors, source), counts

    def lendable(self) -> np.ndarray:
        """Indices of the donors `choose` may lend: clean-shaven, with skin grain like the others'.

        A shaven donor whose grain (log) lies more than `MAX_GRAIN_Z` robust
        deviations (1.4826 median absolute deviations) above the shaven donors'
        median has something else over the skin: in the CelebA-HQ bank, a net
        veil, which drew a net over real faces' fills.
        """
        shaven = np.flatnonzero(self.facial_hair <= MAX_FACIAL_HAIR)
        if not shaven.size:
            return np.arange(len(self))
        log_grain = np.log(np.maximum(self.grains[shaven], 1e-6))
        centre = np.median(log_grain)
        spread = 1.4826 * np.median(np.abs(log_grain - centre))
        if spread > 0:
            shaven = shaven[log_grain <= centre + MAX_GRAIN_Z * spread]
        return shaven

    def choose(self, picture, zone, yaw: float, grain=None, ring=None) -> tuple[int, float, float]:
        """(index, picture distance, gain) of the best donor among the `YAW_POOL` of the nearest yaws.

        Donors with a beard or moustache (`facial_hair` above `MAX_FACIAL_HAIR`)
        are passed over: a beard drawn on a face that has none is a worse
        failure than a clean-shaven fill under a bearded face's mask; so are
        donors whose grain is far beyond the others' (`lendable`).

        Donors are ranked by the matching pictures' distance
        (`transfer.donor_distances`, the one returned) plus `GRAIN_WEIGHT`
        times the squared log ratio of the face's grain (`grain`, seen in the
        store-frame `ring` around the fill) to the donor's there: a smooth
        face gets a smooth-skinned donor, a grainy one a grainy donor. The gain scales the donor's grain to the face's,
        within `transfer.GAIN_RANGE`.
        """
        candidates = self.lendable()
        nearest = np.argsort(np.abs(self.yaws[candidates] - yaw), kind="stable")[:YAW_POOL]
        pool = candidates[nearest]
        distances = transfer.donor_distances(picture, self.pictures[pool], zone)
        ranked = distances.copy()
        gains = np.ones(len(pool), np.float32)
        if grain is not None and ring is not None and ring.any():
            theirs = np.median(np.abs(self.detail[pool][:, ring].astype(np.float32)), axis=1)
            ratio = max(grain, GRAIN_FLOOR) / np.maximum(theirs, GRAIN_FLOOR)
            ranked += GRAIN_WEIGHT * np.log(ratio) ** 2
            gains = np.clip(ratio, *transfer.GAIN_RANGE)
        best = int(np.argmin(ranked))
        return int(pool[best]), float(distances[best]), float(gains[best])

    def add_detail(self, completed, region, face) -> dict | None:
        """Lays the best donor's detail on the fill of one face, in place.

        Args:
          completed: the photo after the smooth fill, RGB uint8 (H, W, 3); changed in place.
          region: bool (H, W), the pixels the fill wrote (detail stays inside them).
          face: the face's `detection.Face` (its landmarks place the donor).

        Returns:
          {"donor", "distance", "gain"}, or None when the region is empty,
          the face has no landmarks (NaN: a user's region without a face), no donor matches within `MATCH_NONE`, or no donor texture reaches it.
        """
        region = np.asarray(region, bool)
        if not region.any() or not np.all(np.isfinite(face.landmarks)):
            return None  # nothing filled, or a region without a face to place a donor on
        affine = transfer.store_affine(face)
        span = transfer.affine_scale(affine)  # store px per photo px
        luma = transfer.luminance(completed)
        region_store = transfer.to_store(region.astype(np.float32), affine) > 0.5
        picture = transfer.matching_picture(transfer.to_store(luma, affine))
        around = transfer.ring(region, transfer.RING * transfer.STORE_SCALE / span)
        ring_store = transfer.to_store(around.astype(np.float32), affine, cv2.INTER_LINEAR) > 0.5
        ring_store &= transfer.grain_band()
        # The same band in the photo: the ring's pixels that land in the face's middle columns.
        band = transfer.from_store(
            transfer.grain_band().astype(np.float32),
            affine,
            (0, luma.shape[0], 0, luma.shape[1]),
            cv2.INTER_LINEAR,
        )
        around &= band > 0.5
        index, distance, gain = self.choose(
            picture,
            transfer.matching_zone(region_store),
            yaw_of(face),
            _grain_around(luma, around, transfer.DETAIL_SIGMA / span),
            ring_store,
        )
        trust = transfer.match_trust(distance, MATCH_FULL, MATCH_NONE)
        if trust <= 0:  # no donor looks like this fill: a stranger's detail would show
            return None
        ys, xs = np.nonzero(region | around)
        box = (int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1)
        detail = transfer.from_store(self.detail[index], affine, box)
        usable = transfer.from_store(
            self.usable[index].astype(np.float32), affine, box, cv2.INTER_LINEAR
        )
        y0, y1, x0, x1 = box
        # The gain, measured again as the donor's detail arrives at the photo's scale: a
        # small face gets its detail shrunk and blurred, and gets the photo's own grain.
        seen = _grain_around(luma, around, transfer.DETAIL_SIGMA / span)
        lent = transfer.grain(detail, around[y0:y1, x0:x1])
        if seen is not None and lent > 0:
            gain = float(np.clip(seen / lent, *transfer.GAIN_RANGE))
        inside = region[y0:y1, x0:x1]
        fade = transfer.fade_in(inside, transfer.FADE * transfer.STORE_SCALE / span)
        weight = fade * np.clip(usable, 0.0, 1.0) * inside
        if not np.any(weight > 0):
            return None
        detail = transfer.soft_clip(detail, transfer.SOFT_CLIP * self.grains[index])
        gain *= trust
        half = np.diag([1.0 / transfer.CHROMA_DOWN] * 2) @ affine
        chroma = np.stack(
            [transfer.from_store(self.chroma[index][..., c], half, box) for c in range(2)], -1
        )
        delta_ab = trust * CHROMA_GAIN * chroma * weight[..., None]
        patch = completed[y0:y1, x0:x1]
        changed = weight > 0  # only these: a Lab round trip elsewhere would move saturated pixels
        patch[changed] = transfer.add_detail(patch, gain * detail * weight, delta_ab)[changed]
        return dict(donor=self.names[index], distance=distance, gain=float(gain))


def _grain_around(luma, around, sigma) -> float | None:
    """The photo's grain (`transfer.grain` of its high-pass at sigma px) over the ring `around`."""
    ys, xs = np.nonzero(around)
    if ys.size == 0:
        return None
    pad = int(3 * sigma) + 2
    y0, y1 = max(ys.min() - pad, 0), ys.max() + 1 + pad
    x0, x1 = max(xs.min() - pad, 0), xs.max() + 1 + pad
    detail = transfer.high_pass(luma[y0:y1, x0:x1], sigma)
    return transfer.grain(detail, around[y0:y1, x0:x1])


def _int8(x) -> np.ndarray:
    return np.clip(np.round(x), -127, 127).astype(np.int8)


def _parsing_of(path, parsing_dir, shape):
    """The class map beside a photo (parsing_dir/STEM.png), or None."""
    if parsing_dir is None:
        return None
    candidate = pathlib.Path(parsing_dir) / f"{pathlib.Path(path).stem}.png"
    if not candidate.is_file():
        return None
    from PIL import Image  # palette indices are the classes: no conversion to RGB

    with Image.open(candidate) as im:
        classes = np.asarray(im)
    if classes.shape[:2] != tuple(shape):
        classes = cv2.resize(classes, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    return classes
