"""Tests of glcic_jax.dataset.alignment_check and launch.py's warning on unaligned faces."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from glcic_jax.dataset import alignment_check
from glcic_jax.faces import align, detection

ROOT = pathlib.Path(__file__).resolve().parents[1]


def canvas_face(scale=1.0, shift=(0.0, 0.0)) -> detection.Face:
    """A face whose landmarks sit where the 256 canvas puts them, then scaled about the mouth and shifted."""
    mouth = np.array(align.MOUTH_TARGET)
    points = np.array([[108, 96], [148, 96], [128, 136], [108, 176], [148, 176]], np.float64)
    points = (points - mouth) * scale + mouth + np.array(shift)
    return detection.Face((60.0, 50.0, 200.0, 230.0), 0.99, points)


def test_a_face_on_the_canvas_is_aligned_and_a_moved_one_is_not():
    assert alignment_check.is_aligned(canvas_face(), (256, 256))
    assert alignment_check.is_aligned(canvas_face(shift=(10, -8)), (256, 256))  # a little off
    assert not alignment_check.is_aligned(canvas_face(shift=(0, -60)), (256, 256))
    assert not alignment_check.is_aligned(canvas_face(scale=0.5), (256, 256))
    assert not alignment_check.is_aligned(canvas_face(), (256, 320))  # not square
    # A prepared set stored at 64 px: the same face, scaled with the image.
    small = detection.Face((0, 0, 1, 1), 0.99, canvas_face().landmarks / 4)
    assert alignment_check.is_aligned(small, (64, 64))


class _Detector:
    def __init__(self, faces):
        self.faces = iter(faces)

    def detect(self, rgb):
        return next(self.faces)


def test_a_folder_is_called_unaligned_when_most_faces_are_off(tmp_path):
    paths = []
    for i in range(4):
        Image.new("RGB", (256, 256), (120, 100, 90)).save(tmp_path / f"{i}.png")
        paths.append(tmp_path / f"{i}.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    off = canvas_face(shift=(0, -70))
    report = alignment_check.check(
        paths + [tmp_path / "bad.png"], _Detector([[off], [off], [canvas_face()], []])
    )
    assert (report.looked_at, report.faces, report.aligned) == (4, 3, 1)
    assert report.looks_unaligned
    assert not alignment_check.check(paths[:1], _Detector([[canvas_face()]])).looks_unaligned
    assert not alignment_check.check([], _Detector([])).looks_unaligned


@pytest.mark.slow  # a launch that trains; the check itself is tested above
def test_launch_warns_when_the_mouth_box_meets_unaligned_faces(tmp_path, faces_dir):
    """LFW photos pasted off-centre on a larger canvas: launch.py says so in one line, and trains."""
    data = tmp_path / "photos"
    data.mkdir()
    for i, path in enumerate(sorted((faces_dir / "train").glob("*.jpg"))[:10]):
        canvas = Image.new("RGB", (300, 300), (40, 60, 80))
        canvas.paste(Image.open(path).convert("RGB"), (150, 10))
        canvas.save(data / f"{i}.png")
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    run = subprocess.run(
        [sys.executable, str(ROOT / "launch.py"), "--mask=mouth", "--config=tiny",
         f"--data_dir={data}", f"--workdir={tmp_path / 'w'}", "--config.total_steps=1",
         "--allocator=none"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    warnings = [line for line in run.stderr.splitlines() if line.startswith("warning: only")]
    assert len(warnings) == 1 and "prepare_data.py" in warnings[0], run.stderr[-2000:]
