"""The demo page (glcic_jax.demo): Flask's test client for what the server refuses and stores,
and headless Chromium for what a person does: upload, complete, brush, complete again, download.

The photos are LFW test faces with face-mask templates pasted on (../shared/data).
"""

import base64
import io
import pathlib
import re
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from glcic_jax.completion import photo
from glcic_jax.demo import app as demo_app
from glcic_jax.demo import jobs

ROOT = pathlib.Path(__file__).resolve().parents[1]


def png_data_url(mask: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_a_painted_region_must_be_a_png_of_the_photos_size():
    mask = np.zeros((30, 40), bool)
    mask[5:10, 5:20] = True
    assert np.array_equal(jobs.decode_mask(png_data_url(mask), (30, 40, 3)), mask)
    with pytest.raises(photo.PhotoError, match="the photo 40x31"):
        jobs.decode_mask(png_data_url(mask), (31, 40, 3))
    with pytest.raises(photo.PhotoError, match="did not arrive as a PNG"):
        jobs.decode_mask("data:text/plain;base64,aGk=", (30, 40, 3))
    with pytest.raises(photo.PhotoError, match="not a readable PNG"):
        jobs.decode_mask("data:image/png;base64,bm90IGEgcG5n", (30, 40, 3))


def test_only_the_stores_own_names_reach_a_file(tmp_path):
    store = jobs.JobStore(tmp_path / "out")
    job = store.new_job()
    store.save_failure(job, 0, "a.jpg", "m", "bad")
    (tmp_path / "secret.png").write_bytes(b"x")
    for job_id, index, name in [
        ("../..", 0, "input.png"),
        (job, 0, "../../secret.png"),
        (job, 0, "meta.json"),
        (job, 5, "input.png"),
        ("0123456789abcdef", 0, "input.png"),
    ]:
        with pytest.raises(jobs.JobError):
            store.file(job_id, index, name)


class _NoFace:
    """A completer stand-in: finds no face (the page's own logic, without a model)."""

    def complete(self, rgb, region="mask", user_mask=None):
        if region == "file":
            out = rgb.copy()
            out[user_mask] = 0
            return photo.PhotoResult("ok", out, user_mask, [])
        return photo.PhotoResult("no_face", rgb.copy(), np.zeros(rgb.shape[:2], bool), [])


@pytest.fixture
def client(tmp_path):
    models = demo_app.Models({"stand-in": lambda: None})
    models._completers["stand-in"] = _NoFace()
    flask_app = demo_app.create_app(models, tmp_path / "out")
    flask_app.config["WTF_CSRF_ENABLED"] = False
    return flask_app.test_client(), tmp_path / "out"


def upload(client, files):
    data = {"model": "stand-in", "photos": [(io.BytesIO(b), n) for n, b in files]}
    return client.post("/complete", data=data, content_type="multipart/form-data")


def png_bytes(shape=(48, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((*shape, 3), 120, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_bad_files_are_messages_on_the_page_and_nothing_leaves_the_output(client, tmp_path):
    client, out = client
    response = upload(client, [("a.png", png_bytes()), ("../../evil.jpg", b"not an image")])
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "no face found: paint the region" in page
    assert "evil.jpg: not a readable image" in page
    assert "Traceback" not in page
    written = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()}
    assert all(p.parts[0] == "out" for p in written)
    assert upload(client, []).status_code == 400  # no file chosen: the form again, with a line
    assert "choose one or more photos first" in upload(client, []).get_data(as_text=True)


def test_a_painted_region_is_completed_and_a_wrong_one_is_a_message(client):
    client, out = client
    job = upload(client, [("a.png", png_bytes())]).headers["Location"].rsplit("/", 1)[1]
    mask = np.zeros((48, 64), bool)
    mask[10:20, 10:30] = True
    response = client.post(f"/job/{job}/0/region", data={"region": png_data_url(mask)})
    assert response.status_code == 302
    region = np.asarray(Image.open(io.BytesIO(client.get(f"/job/{job}/0/region.png").data))) > 127
    assert np.array_equal(region, mask)
    done = np.asarray(Image.open(io.BytesIO(client.get(f"/job/{job}/0/completed.png").data)))
    assert (done[mask] == 0).all() and (done[~mask] == 120).all()
    wrong = client.post(f"/job/{job}/0/region", data={"region": png_data_url(mask[:40])})
    page = client.get(wrong.headers["Location"]).get_data(as_text=True)
    assert "the painted region is 64x40, the photo 64x48" in page
    download = client.get(f"/job/{job}/0/completed.png?download=1")
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert client.get(f"/job/{job}/0/../../x").status_code == 404


def test_every_post_needs_the_pages_token(tmp_path):
    models = demo_app.Models({"stand-in": lambda: None})
    models._completers["stand-in"] = _NoFace()
    client = demo_app.create_app(models, tmp_path / "out").test_client()
    response = upload(client, [("a.png", png_bytes())])
    assert response.status_code == 400 and "the page had expired" in response.get_data(as_text=True)
    assert not any((tmp_path / "out").iterdir())


# ---------------------------------------------------------------------------
# In Chromium, with the shipped models
# ---------------------------------------------------------------------------


@pytest.fixture
def masked_photo(faces_dir, templates_dir, tmp_path):
    """An LFW test face with a face-mask template pasted on, as a PNG file."""
    from glcic_jax.face_masks import overlay
    from glcic_jax.faces import detection

    rgb = photo.load_photo(sorted((faces_dir / "test").glob("*.jpg"))[3])
    rgb = np.asarray(Image.fromarray(rgb).resize((300, 300), Image.LANCZOS))
    face = max(detection.Detector().detect(rgb), key=lambda f: f.area)
    points, template = overlay.photo_points(face, np.random.default_rng(0))
    masked, _ = overlay.paste(rgb, points, template, templates_dir)
    path = tmp_path / "masked.png"
    Image.fromarray(masked).save(path)
    return path


@pytest.fixture
def demo_server(tmp_path):
    out = tmp_path / "out"
    log = open(tmp_path / "server.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "glcic_jax.demo", "--port=0", f"--output={out}", "--donors="],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True,
    )  # fmt: skip
    line = process.stdout.readline()
    match = re.match(r"serving the demo on (http://127\.0\.0\.1:\d+)/$", line.strip())
    if not match:
        process.kill()
        pytest.fail(f"the demo did not start: {line}{(tmp_path / 'server.log').read_text()}")
    yield match.group(1), out
    process.terminate()
    process.wait(20)
    log.close()


def test_upload_complete_brush_download_in_chromium(
    demo_server, masked_photo, make_chromium, tmp_path
):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    base, out = demo_server
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image at all")
    driver = make_chromium(tmp_path / "profile")
    wait = WebDriverWait(driver, 120)
    driver.get(base + "/")
    driver.find_element(By.ID, "photos").send_keys(f"{masked_photo}\n{bad}")
    driver.find_element(By.ID, "complete").click()
    wait.until(lambda d: d.find_elements(By.ID, "photo-1"))
    first = driver.find_element(By.ID, "photo-0")
    assert first.get_attribute("data-status") == "completed", first.text
    assert "not a readable image" in driver.find_element(By.ID, "status-1").text
    assert driver.execute_script(
        "return [...document.images].every(i => i.complete && i.naturalWidth > 0)"
    )
    job = driver.current_url.rsplit("/", 1)[1].split("#")[0]
    folder = out / job / "0"
    before = np.asarray(Image.open(folder / "region.png")) > 127
    assert before.any()
    # Paint a stroke across the photo's top-left corner, far from the mask, and complete again.
    canvas = driver.find_element(By.ID, "canvas-0")
    wait.until(lambda d: canvas.get_attribute("data-ready") == "1")
    width = canvas.size["width"]
    left = -width // 2 + 10  # offsets are from the canvas's centre
    ActionChains(driver).move_to_element_with_offset(
        canvas, left, left
    ).click_and_hold().move_by_offset(width // 4, 0).move_by_offset(
        0, width // 8
    ).release().perform()
    stamp = (folder / "completed.png").stat().st_mtime_ns
    driver.find_element(By.ID, "again-0").click()
    wait.until(lambda d: (folder / "completed.png").stat().st_mtime_ns != stamp)
    wait.until(lambda d: d.find_elements(By.ID, "download-0"))
    after = np.asarray(Image.open(folder / "region.png")) > 127
    assert after[:40, :40].sum() > 100 and not before[:40, :40].any()  # the stroke is in the region
    assert (after & before).sum() >= 0.95 * before.sum()  # the found region is kept
    # The download link gives the completed photo.
    href = driver.find_element(By.ID, "download-0").get_attribute("href")
    with urllib.request.urlopen(href, timeout=30) as response:
        downloaded = response.read()
        assert "attachment" in response.headers["Content-Disposition"]
    assert downloaded == (folder / "completed.png").read_bytes()
    completed = np.asarray(Image.open(io.BytesIO(downloaded)))
    original = np.asarray(Image.open(masked_photo))
    assert completed.shape == original.shape
    changed = np.any(completed != original, axis=-1)
    assert changed[:40, :40].any() and not changed[~after].any()  # only the painted region changed
    time.sleep(0)  # (the page is left as it is: the fixture closes the browser)
