"""Fixtures of the survey tests: a synthetic survey folder, the real server, a loopback client.

The server is `experiments/survey.py serve` (waitress) in its own process, as
it runs for real, so a test can also kill it. The client is one participant's
browser over 127.0.0.1: a cookie jar, redirects shown, not followed.
"""

import dataclasses
import http.cookiejar
import pathlib
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pytest

from glcic_jax.survey import design

SURVEY_SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "experiments" / "survey.py"


def _make_synthetic_survey(out, n: int = 3, points=(100, 200), size: int = 16) -> design.Survey:
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


@pytest.fixture(scope="session")
def make_synthetic_survey():
    """A function (out, n=3, points=(100, 200), size=16) -> the written `design.Survey`."""
    return _make_synthetic_survey


@dataclasses.dataclass
class SurveyServer:
    """A running `survey.py serve` process and the address it serves."""

    process: subprocess.Popen
    base: str  # e.g. http://127.0.0.1:41234, no trailing slash
    log: pathlib.Path  # its stderr

    def __enter__(self) -> "SurveyServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(10)

    def kill(self) -> None:
        """SIGKILL: no chance to flush anything."""
        self.process.kill()
        self.process.wait(10)


@pytest.fixture
def start_survey_server():
    """A function (survey_dir, db_path, port=0, *flags) -> SurveyServer, once it accepts connections.

    `flags` are more `survey.py serve` flags, e.g. "--new_ids_per_hour=3".
    Servers still running at the end of the test are killed.
    """
    started = []

    def start(survey_dir, db_path, port: int = 0, *flags: str) -> SurveyServer:
        log = pathlib.Path(f"{db_path}.{len(started)}.log")
        with open(log, "a") as stderr:  # a file, not a pipe nobody reads
            process = subprocess.Popen(
                [sys.executable, str(SURVEY_SCRIPT), "serve", f"--survey={survey_dir}",
                 f"--db={db_path}", f"--port={port}", *flags],
                stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=SURVEY_SCRIPT.parents[1],
            )  # fmt: skip
        started.append(process)
        line = process.stdout.readline()
        match = re.match(r"serving the survey on (http://127\.0\.0\.1:(\d+))/$", line.strip())
        if not match or (port and int(match.group(2)) != port):
            process.kill()
            process.wait(30)
            pytest.fail(f"server did not start: {line}{log.read_text()}")
        return SurveyServer(process, match.group(1), log)

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


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
        return re.search(rb"name='csrf' value='([^']+)'", page).group(1).decode()

    def start(self, participant: str, age: str = "", code: str | None = None) -> tuple[int, bytes]:
        """Open the start page and register (or continue, with a resume `code`).

        Returns the status and the page after redirects.
        """
        _, _, page = self.get("/")
        form = {"csrf": self.csrf(page), "participant": participant, "age": age}
        if code is not None:
            form["code"] = code
        status, headers, body = self.post("/start", form)
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


@pytest.fixture(scope="session")
def new_client():
    """A function (base URL) -> a fresh `Client`: a new browser with no cookies."""
    return Client


@pytest.fixture(scope="session")
def question_of():
    """A function (page bytes) -> the id of the question on it, or None."""

    def find(page: bytes) -> str | None:
        m = re.search(rb"name='question' value='([^']+)'", page)
        return m.group(1).decode() if m else None

    return find


@pytest.fixture(scope="session")
def resume_code_of():
    """A function (page bytes) -> the resume code the page shows, or None."""

    def find(page: bytes) -> str | None:
        m = re.search(rb"id='resume-code'>([^<]+)<", page)
        return m.group(1).decode() if m else None

    return find


@pytest.fixture(scope="session")
def image_src():
    """A function (page bytes, element id) -> the image name that element shows."""

    def find(page: bytes, element_id: str) -> str:
        pattern = rf"id='{element_id}' src='/image/([^']+)'".encode()
        return re.search(pattern, page).group(1).decode()

    return find


@pytest.fixture
def served(survey_dir, tmp_path, start_survey_server):
    """A survey server on the module's `survey_dir` and a fresh database: (base URL, db path)."""
    db_path = tmp_path / "answers.db"
    server = start_survey_server(survey_dir, db_path)
    yield server.base, db_path
    server.stop()
