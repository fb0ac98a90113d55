"""The survey's web pages: a small stdlib HTTP server in front of `SurveyDB`.

Pages are rendered by survey_pages. Routes (nothing else is served; anything else is 404, other methods 405):

    GET  /                start page: participant id, optional age band
    POST /start           register (or recognise) the participant, go to the next question
    GET  /q               redirect to the first unanswered question, or /thanks
    GET  /q/<id>          one question: original, top and bottom completions, five choices
    POST /answer          store one answer, go on
    GET  /thanks          thank-you page
    GET  /image/<name>    a PNG listed in the survey (opaque names; see survey.py)

Security, for a page that strangers open: the server binds 127.0.0.1 unless
told otherwise; every form carries a CSRF token (an HMAC of a random
per-browser cookie, checked in constant time); the participant cookie is
signed with a secret kept in the database, so it stays valid across restarts;
bodies are limited to `MAX_BODY` bytes of url-encoded form; ids and choices are
checked against fixed patterns; image names are checked three ways (see
`Survey.image_path`); pages are sent with a strict Content-Security-Policy.
"""

import hmac
import http
import http.cookies
import http.server
import logging
import re
import secrets
import urllib.parse

from glcic_jax.survey import design as survey_lib
from glcic_jax.survey import database, pages

MAX_BODY = 2048
MAX_PATH = 200
SID_COOKIE = "survey_sid"
PID_COOKIE = "survey_pid"
PID_COOKIE_MAX_AGE = 30 * 24 * 3600
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
_SID = re.compile(r"[0-9a-f]{32}")


class SurveyApp:
    """The survey's state shared by all request threads: definition, database, secret."""

    def __init__(self, survey: survey_lib.Survey, db: database.SurveyDB):
        self.survey = survey
        self.db = db
        db.attach(survey)
        self.secret = db.server_secret().encode()

    def sign(self, purpose: str, value: str) -> str:
        return hmac.new(self.secret, f"{purpose}|{value}".encode(), "sha256").hexdigest()

    def csrf_token(self, sid: str) -> str:
        return self.sign("csrf", sid)

    def pid_cookie(self, participant: str) -> str:
        return f"{participant}.{self.sign('pid', participant)}"

    def participant_of(self, cookie: str | None) -> str | None:
        """The participant of a signed cookie, or None for a missing, forged or unknown one."""
        participant, _, mac = (cookie or "").partition(".")
        if not survey_lib.PARTICIPANT_ID.fullmatch(participant):
            return None
        if not hmac.compare_digest(mac, self.sign("pid", participant)):
            return None
        return participant if self.db.has_participant(participant) else None

    def next_question(self, participant: str) -> tuple[survey_lib.Question | None, int]:
        """The first unanswered question in survey order, and how many are answered."""
        done = self.db.answered(participant)
        pending = [q for q in self.survey.questions if q.id not in done]
        return (pending[0] if pending else None), len(done)


class Handler(http.server.BaseHTTPRequestHandler):
    """One request. `app` is set on a subclass by `make_server`."""

    app: SurveyApp
    timeout = 20  # seconds a client may take to send a request

    # ---- plumbing -------------------------------------------------------

    def version_string(self) -> str:
        return "survey"  # no software versions in the Server header

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        logging.debug("%s %s", self.address_string(), format % args)

    def _cookies(self) -> http.cookies.SimpleCookie:
        jar = http.cookies.SimpleCookie()
        try:
            jar.load(self.headers.get("Cookie", ""))
        except http.cookies.CookieError:
            pass
        return jar

    def _cookie(self, name: str) -> str | None:
        morsel = self._cookies().get(name)
        return morsel.value if morsel else None

    def _session(self) -> tuple[str, bool]:
        """This browser's CSRF session id, and whether it is new (so must be set)."""
        sid = self._cookie(SID_COOKIE)
        if sid and _SID.fullmatch(sid):
            return sid, False
        return secrets.token_hex(16), True

    def _send(self, status, body: bytes = b"", content_type="text/html; charset=utf-8",
              headers=None):  # fmt: skip
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in {**HEADERS, **(headers or {})}.items():
            if isinstance(v, list):
                for item in v:
                    self.send_header(k, item)
            else:
                self.send_header(k, v)
        if "Cache-Control" not in (headers or {}):
            self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, message: str, headers=None):
        title = f"{status} {http.HTTPStatus(status).phrase}"
        self._send(status, pages.error_page(title, message), headers=headers)

    def _redirect(self, location: str, cookies: list[str] | None = None):
        headers = {"Location": location}
        if cookies:
            headers["Set-Cookie"] = cookies
        self._send(http.HTTPStatus.SEE_OTHER, b"", headers=headers)

    def _sid_cookie(self, sid: str) -> str:
        return f"{SID_COOKIE}={sid}; Path=/; HttpOnly; SameSite=Strict"

    def _path(self) -> str | None:
        if len(self.path) > MAX_PATH:
            self._error(414, "the address is too long")
            return None
        return urllib.parse.urlsplit(self.path).path

    def _form(self) -> dict | None:
        """The url-encoded body, size-checked; None after an error was sent."""
        length = self.headers.get("Content-Length")
        if length is None or not (length.isascii() and length.isdigit()):
            self._error(411, "Content-Length required")
            return None
        if int(length) > MAX_BODY:
            # Read (a bounded part of) it first, so the client sees the answer, not a reset.
            self.rfile.read(min(int(length), 64 * MAX_BODY))
            self.close_connection = True
            self._error(413, f"request body over {MAX_BODY} bytes")
            return None
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            self._error(415, "expected a form")
            return None
        raw = self.rfile.read(int(length))
        try:
            pairs = urllib.parse.parse_qsl(
                raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                max_num_fields=10,
            )  # fmt: skip
        except (UnicodeDecodeError, ValueError):
            self._error(400, "malformed form")
            return None
        form = {}
        for k, v in pairs:
            if k in form:
                self._error(400, f"field {k!r} given twice")
                return None
            form[k] = v
        return form

    def _csrf_ok(self, form: dict) -> bool:
        sid = self._cookie(SID_COOKIE)
        token = form.get("csrf", "")
        if not sid or not _SID.fullmatch(sid) or not token:
            return False
        return hmac.compare_digest(token, self.app.csrf_token(sid))

    # ---- routes ---------------------------------------------------------

    def do_GET(self):
        path = self._path()
        if path is None:
            return
        if path == "/":
            return self._start_page()
        if path == "/q":
            return self._to_next()
        if path.startswith("/q/"):
            return self._question_page(path[3:])
        if path == "/thanks":
            return self._thanks_page()
        if path.startswith("/image/"):
            return self._image(path[len("/image/") :])
        self._error(404, "no such page")

    do_HEAD = do_GET

    def do_POST(self):
        path = self._path()
        if path is None:
            return
        if path not in ("/start", "/answer"):
            return self._error(404, "no such page")
        form = self._form()
        if form is None:
            return
        if not self._csrf_ok(form):
            return self._error(403, "invalid or missing CSRF token; reload the page")
        if path == "/start":
            return self._start(form)
        return self._answer(form)

    def _method_not_allowed(self):
        self._error(405, "method not allowed", headers={"Allow": "GET, HEAD, POST"})

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _method_not_allowed

    def _participant(self) -> str | None:
        return self.app.participant_of(self._cookie(PID_COOKIE))

    def _start_page(self, error: str = "", status: int = 200):
        sid, new = self._session()
        body = pages.start_page(
            len(self.app.survey.questions), self.app.csrf_token(sid), self._participant(), error
        )
        self._send(status, body, headers={"Set-Cookie": [self._sid_cookie(sid)]} if new else None)

    def _start(self, form: dict):
        participant = form.get("participant", "").strip()
        age = form.get("age", "")
        if not survey_lib.PARTICIPANT_ID.fullmatch(participant):
            error = f"{pages.ID_RULE_JA} / {pages.ID_RULE_EN}"
            return self._start_page(error, status=400)
        if age not in survey_lib.AGE_BANDS:
            return self._error(400, "unknown age band")
        self.app.db.add_participant(participant, age)
        cookie = (
            f"{PID_COOKIE}={self.app.pid_cookie(participant)}; Path=/; HttpOnly; "
            f"SameSite=Strict; Max-Age={PID_COOKIE_MAX_AGE}"
        )
        self._redirect("/q", [cookie])

    def _to_next(self):
        participant = self._participant()
        if not participant:
            return self._redirect("/")
        question, _ = self.app.next_question(participant)
        self._redirect(f"/q/{question.id}" if question else "/thanks")

    def _question_page(self, question_id: str):
        participant = self._participant()
        if not participant:
            return self._redirect("/")
        question = self.app.survey.question(question_id)
        if question is None:
            return self._error(404, "no such question")
        if question.id in self.app.db.answered(participant):
            return self._redirect("/q")  # answered: the back button leads on, not to a resubmit
        sid, new = self._session()
        mouth_top = self.app.db.record_shown(
            participant, question.id, self.app.survey.mouth_on_top(participant, question.id)
        )
        _, done = self.app.next_question(participant)
        body = pages.question_page(
            question, mouth_top, done, len(self.app.survey.questions), self.app.csrf_token(sid)
        )
        self._send(200, body, headers={"Set-Cookie": [self._sid_cookie(sid)]} if new else None)

    def _answer(self, form: dict):
        participant = self._participant()
        if not participant:
            return self._error(403, "start the survey first")
        question_id, choice = form.get("question", ""), form.get("choice", "")
        if not survey_lib.QUESTION_ID.fullmatch(question_id) or not self.app.survey.question(
            question_id
        ):
            return self._error(400, "unknown question")
        if choice not in ("1", "2", "3", "4", "5"):
            return self._error(400, "choose one of 1..5 / 1〜5 から選んでください")
        try:
            stored = self.app.db.answer(participant, question_id, int(choice))
        except database.NotShown:
            return self._error(400, "that question was not shown to you")
        if not stored:
            return self._send(409, pages.already_answered_page())
        self._redirect("/q")

    def _thanks_page(self):
        participant = self._participant()
        if not participant:
            return self._redirect("/")
        question, done = self.app.next_question(participant)
        if question is not None:
            return self._redirect(f"/q/{question.id}")
        self._send(200, pages.thanks_page(done))

    def _image(self, name: str):
        path = self.app.survey.image_path(name)
        if path is None:
            return self._error(404, "no such image")
        self._send(200, path.read_bytes(), "image/png", {"Cache-Control": "private, max-age=3600"})


class SurveyServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many participants may connect at once


def make_server(survey_dir, db_path, host: str = "127.0.0.1", port: int = 8000) -> SurveyServer:
    """A server for the survey in `survey_dir` storing answers in `db_path` (port 0: any free)."""
    survey = survey_lib.Survey.load(survey_dir)
    app = SurveyApp(survey, database.SurveyDB(db_path))
    handler = type("BoundHandler", (Handler,), {"app": app})
    return SurveyServer((host, port), handler)
