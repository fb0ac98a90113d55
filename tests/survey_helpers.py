"""Shared by the survey tests: a synthetic survey folder, a loopback HTTP client, a served app."""

import contextlib
import http.cookiejar
import re
import threading
import urllib.error
import urllib.parse
import urllib.request

import numpy as np

from glcic_jax.survey import design, webapp

POINTS = (100, 200)
N_IMAGES = 3


def make_synthetic_survey(out, n: int = N_IMAGES, points=POINTS, size: int = 16):
    """A survey of generated faces-that-are-not: random PNGs, no checkpoints needed."""
    rng = np.random.default_rng(0)
    originals = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    completions = {
        p: {m: rng.random((n, size, size, 3), dtype=np.float32) for m in design.MODELS}
        for p in points
    }
    sources = [f"test/face{i}.png" for i in range(n)]
    return design.write_survey(
        out, originals, completions, sources, display_size=64, resample="nearest",
        info={"seed": 0, "models": {"random": {}, "mouth": {}}},
    )  # fmt: skip


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # hand 303s back to the caller, which checks them


class Client:
    """One participant's browser over 127.0.0.1: a cookie jar, redirects shown, not followed."""

    def __init__(self, base: str):
        assert base.startswith("http://127.0.0.1:"), base  # tests talk to loopback only
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect()
        )

    def request(self, method: str, path: str, form: dict | None = None, body: bytes | None = None,
                headers: dict | None = None):  # fmt: skip
        """-> (status, response headers, body bytes)."""
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            headers = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        req = urllib.request.Request(self.base + path, body, headers or {}, method=method)
        try:
            with self.opener.open(req, timeout=30) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            with e:
                return e.code, e.headers, e.read()

    def get(self, path: str, follow: bool = True):
        status, headers, body = self.request("GET", path)
        for _ in range(5):
            if not (follow and status == 303):
                break
            status, headers, body = self.request("GET", headers["Location"])
        return status, headers, body

    def post(self, path: str, form: dict):
        return self.request("POST", path, form)

    def csrf(self, page: bytes) -> str:
        return re.search(rb"name='csrf' value='([0-9a-f]+)'", page).group(1).decode()

    def start(self, participant: str, age: str = "") -> tuple[int, bytes]:
        """Open the start page and register; -> status and the page after redirects."""
        _, _, page = self.get("/")
        status, headers, body = self.post(
            "/start", {"csrf": self.csrf(page), "participant": participant, "age": age}
        )
        if status != 303:
            return status, body
        status, _, body = self.get(headers["Location"])
        return status, body

    def answer(self, page: bytes, choice: int) -> tuple[int, str | None]:
        """Answer the question on `page`; -> status and redirect location."""
        question = re.search(rb"name='question' value='([^']+)'", page).group(1).decode()
        status, headers, _ = self.post(
            "/answer", {"csrf": self.csrf(page), "question": question, "choice": str(choice)}
        )
        return status, headers.get("Location")


def question_of(page: bytes) -> str | None:
    m = re.search(rb"name='question' value='([^']+)'", page)
    return m.group(1).decode() if m else None


def image_src(page: bytes, element_id: str) -> str:
    return re.search(rf"id='{element_id}' src='/image/([^']+)'".encode(), page).group(1).decode()


@contextlib.contextmanager
def running_server(survey_dir, db_path):
    """The app on an ephemeral 127.0.0.1 port in a thread; yields (base URL, server)."""
    server = webapp.make_server(survey_dir, db_path, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
