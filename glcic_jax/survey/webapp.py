"""The survey's web app: Flask routes in front of `SurveyDB`, served by waitress.

Pages are Jinja2 templates in templates/; forms are checked by `forms`. Routes
(nothing else is served; anything else is 404, other methods 405):

    GET  /                start page: participant id, optional age band
    POST /start           register a new id, or continue one (this browser's, or with its
                          resume code), go to the next question
    GET  /q               redirect to the first unanswered question, or /thanks
    GET  /q/<id>          one question: original, top and bottom completions, five choices
    POST /answer          store one answer, go on
    GET  /thanks          thank-you page
    GET  /image/<name>    a PNG listed in the survey (opaque names; see design.py)

Security, for a page that strangers open: the server binds 127.0.0.1 unless
told otherwise; every POST carries a CSRF token (flask-wtf's CSRFProtect, tied
to the browser's session); the session cookie (participant and CSRF key) is
signed with a secret kept in the database, so it stays valid across restarts,
and is HttpOnly and SameSite=Strict; POST bodies are one url-encoded form of
at most `MAX_BODY` bytes with every field once; ids and choices are checked
against fixed patterns; image names are checked three ways (see
`Survey.image_path`); templates escape every value; pages are sent with a
strict Content-Security-Policy.

Who may answer as whom (see `admission`): a browser's signed session holds
at most one participant; registering gives a resume code, shown on every
question page and the thank-you page, without which another browser cannot
continue an existing id; new ids and wrong codes per client address are
limited. Refusals are the start page again with one line (400, or 429 for a
limit).
"""

import dataclasses
import datetime
import sqlite3

import flask
from flask_wtf import csrf
from werkzeug import exceptions

from glcic_jax import web_server
from glcic_jax.survey import admission, database, design, forms, resume_codes

MAX_BODY = 2048
MAX_PATH = 200
MAX_FIELDS = 10
SESSION_LIFETIME = datetime.timedelta(days=30)  # how long a browser is recognised
FORM_TYPE = "application/x-www-form-urlencoded"
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
# The server's settings (waitress): no software version in the Server header;
# requests beyond 8 at a time wait in a queue (each holds a thread only for a
# few SQLite statements); a connection silent for 20 s is closed; one address
# holds at most `web_server.PER_ADDRESS` connections at a time; headers and
# bodies are bounded before the app sees them (bodies between MAX_BODY and this
# bound get the app's own 413 page).
SERVER_SETTINGS = {
    "ident": "survey",
    "threads": 8,
    "channel_timeout": 20,
    "max_request_header_size": 16 * 1024,
    "max_request_body_size": 64 * MAX_BODY,
}
# What a refusal says when the code that refused gave no reason of its own.
_DEFAULT_MESSAGES = {404: "no such page", 405: "method not allowed"}

pages = flask.Blueprint("survey", __name__)


@dataclasses.dataclass(frozen=True)
class _Site:
    """What every request reads: the survey, its answers database, who may start as whom."""

    survey: design.Survey
    db: database.SurveyDB
    admissions: admission.Admission


def _site() -> _Site:
    return flask.current_app.extensions["glcic_survey"]


def _route(rule: str, methods=("GET",)):
    # No automatic OPTIONS: a method the survey does not use is a 405.
    return pages.route(rule, methods=list(methods), provide_automatic_options=False)


def _participant() -> str | None:
    """This browser's participant, or None when it has not started (or the id is unknown)."""
    participant = flask.session.get("participant")
    if not isinstance(participant, str) or not design.PARTICIPANT_ID.fullmatch(participant):
        return None
    return participant if _site().db.has_participant(participant) else None


def _resume_line() -> dict:
    """What the question and thank-you pages show so the participant can continue elsewhere."""
    code = flask.session.get("resume_code")
    if not isinstance(code, str) or not resume_codes.CODE.fullmatch(code):
        return {}  # a participant registered before resume codes existed has none
    return {"resume_id": _participant(), "resume_code": resume_codes.display(code)}


def _next_question(participant: str) -> tuple[design.Question | None, int]:
    """The first unanswered question in survey order, and how many are answered."""
    done = _site().db.answered(participant)
    pending = [q for q in _site().survey.questions if q.id not in done]
    return (pending[0] if pending else None), len(done)


def _see_other(endpoint: str, **values):
    return flask.redirect(flask.url_for(endpoint, **values), 303)


# ---- routes -----------------------------------------------------------------


def _start_page_html(error: str = "") -> str:
    return flask.render_template(
        "start.html",
        n_questions=len(_site().survey.questions),
        participant=_participant(),
        error=error,
        age_bands=design.AGE_BANDS,
    )


@_route("/")
def start_page():
    return _start_page_html()


@_route("/start", methods=["POST"])
def start():
    form = forms.StartForm()
    form.validate()
    for field in (form.participant, form.code):  # the start page again, saying what is wrong
        if field.errors:
            return _start_page_html(field.errors[0]), 400
    if form.age.errors:
        flask.abort(400, form.age.errors[0])
    participant = form.participant.data
    try:
        code = _site().admissions.admit(
            _participant(), participant, form.code.data, form.age.data, flask.request.remote_addr
        )
    except admission.Refused as refusal:
        return _start_page_html(refusal.message), refusal.status
    if code is not None:
        flask.session["resume_code"] = code
    flask.session["participant"] = participant
    flask.session.permanent = True  # kept for SESSION_LIFETIME, so a participant can come back
    return _see_other("survey.next_question")


@_route("/q")
def next_question():
    participant = _participant()
    if not participant:
        return _see_other("survey.start_page")
    question, _ = _next_question(participant)
    if question is None:
        return _see_other("survey.thanks")
    return _see_other("survey.question_page", question_id=question.id)


@_route("/q/<question_id>")
def question_page(question_id: str):
    participant = _participant()
    if not participant:
        return _see_other("survey.start_page")
    site = _site()
    question = site.survey.question(question_id)
    if question is None:
        flask.abort(404, "no such question")
    if question.id in site.db.answered(participant):
        return _see_other("survey.next_question")  # the back button leads on, not to a resubmit
    mouth_top = site.db.record_shown(
        participant, question.id, site.survey.mouth_on_top(participant, question.id)
    )
    top, bottom = ("mouth", "random") if mouth_top else ("random", "mouth")
    _, done = _next_question(participant)
    return flask.render_template(
        "question.html",
        question_id=question.id,
        # Only the file names reach the page: which model is on top stays hidden.
        images={
            "original": question.images["original"],
            "top": question.images[top],
            "bottom": question.images[bottom],
        },
        done=done,
        total=len(site.survey.questions),
        choices=design.CHOICES,
        **_resume_line(),
    )


@_route("/answer", methods=["POST"])
def answer():
    participant = _participant()
    if not participant:
        flask.abort(403, "start the survey first")
    form = forms.AnswerForm(_site().survey)
    if not form.validate():
        flask.abort(400, form.first_error())
    try:
        stored = _site().db.answer(participant, form.question.data, int(form.choice.data))
    except database.NotShown:
        flask.abort(400, "that question was not shown to you")
    if not stored:
        return flask.render_template("already_answered.html"), 409
    return _see_other("survey.next_question")


@_route("/thanks")
def thanks():
    participant = _participant()
    if not participant:
        return _see_other("survey.start_page")
    question, done = _next_question(participant)
    if question is not None:
        return _see_other("survey.question_page", question_id=question.id)
    return flask.render_template("thanks.html", done=done, **_resume_line())


@_route("/image/<name>")
def image(name: str):
    path = _site().survey.image_path(name)
    if path is None:
        flask.abort(404, "no such image")
    return flask.Response(
        path.read_bytes(), mimetype="image/png", headers={"Cache-Control": "private, max-age=3600"}
    )


# ---- every request ----------------------------------------------------------


def _check_request():
    """Refuse long addresses, and POST bodies that are not one small url-encoded form.

    Runs before the CSRF check, so an oversized or malformed body is refused
    without being parsed further.
    """
    request = flask.request
    if len(request.environ.get("REQUEST_URI") or request.full_path) > MAX_PATH:
        flask.abort(414, "the address is too long")
    if request.method != "POST" or request.endpoint is None:
        return  # GET needs no body; a POST to no route is answered 404/405 by the routing
    if request.content_length is None:
        flask.abort(411, "Content-Length required")
    if request.content_length > MAX_BODY:
        flask.abort(413, f"request body over {MAX_BODY} bytes")
    if request.mimetype != FORM_TYPE:
        flask.abort(415, "expected a form")
    fields = [name for name, _ in request.form.items(multi=True)]
    if len(fields) > MAX_FIELDS:
        flask.abort(400, "malformed form")
    for name in fields:
        if fields.count(name) > 1:
            flask.abort(400, f"field {name!r} given twice")


def _add_headers(response: flask.Response) -> flask.Response:
    response.headers.update(HEADERS)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _error_page(error: exceptions.HTTPException):
    """A refusal as a page: its status line and why."""
    message = error.description
    if message == type(error).description:  # werkzeug's generic sentence
        message = _DEFAULT_MESSAGES.get(error.code, error.name)
    response = error.get_response()  # keeps the headers, e.g. a 405's Allow
    response.set_data(
        flask.render_template("error.html", title=f"{error.code} {error.name}", message=message)
    )
    response.content_type = "text/html; charset=utf-8"
    return response


def _csrf_error_page(error: csrf.CSRFError):
    # flask-wtf says 400; a missing or wrong token is a refusal, 403, as before.
    return _error_page(exceptions.Forbidden("invalid or missing CSRF token; reload the page"))


def create_app(
    survey: design.Survey,
    db: database.SurveyDB,
    new_ids_per_hour: int = admission.NEW_IDS_PER_ADDRESS_PER_HOUR,
) -> flask.Flask:
    """The survey's WSGI app: `survey` served, answers stored in `db` (bound to the survey here).

    Args:
      survey: the survey to serve.
      db: its answers database.
      new_ids_per_hour: how many new participant ids one client address may
        register in any hour.
    """
    db.attach(survey)
    app = flask.Flask(__name__, static_folder=None)  # no /static: only the routes above
    app.url_map.merge_slashes = False  # "//x" is not "/x": no redirects to guessed paths
    app.config.update(
        SECRET_KEY=db.server_secret(),
        SESSION_COOKIE_NAME="survey_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        SESSION_REFRESH_EACH_REQUEST=False,
        MAX_CONTENT_LENGTH=MAX_BODY,
        WTF_CSRF_FIELD_NAME="csrf",
        WTF_CSRF_HEADERS=[],  # the token comes in the form, nowhere else
        WTF_CSRF_TIME_LIMIT=None,  # valid as long as the session: a page may stay open for hours
        # The Referer check of HTTPS requests would refuse every form: the pages
        # ask browsers to send no Referer (Referrer-Policy above).
        WTF_CSRF_SSL_STRICT=False,
    )
    app.extensions["glcic_survey"] = _Site(survey, db, admission.Admission(db, new_ids_per_hour))
    app.before_request(_check_request)  # registered first, so it runs before the CSRF check
    csrf.CSRFProtect(app)
    app.after_request(_add_headers)
    app.register_error_handler(exceptions.HTTPException, _error_page)
    app.register_error_handler(csrf.CSRFError, _csrf_error_page)
    app.register_blueprint(pages)
    return app


def make_server(
    survey_dir,
    db_path,
    host: str = "127.0.0.1",
    port: int = 8000,
    new_ids_per_hour: int = admission.NEW_IDS_PER_ADDRESS_PER_HOUR,
    connections_per_address: int = web_server.PER_ADDRESS,
):
    """A waitress server for the survey in `survey_dir` storing answers in `db_path`.

    The socket is bound on return (port 0: any free one; see `urls`); call
    `run()` to serve until Ctrl-C. `new_ids_per_hour`: see `create_app`;
    `connections_per_address`: the open connections one client address may
    hold (`web_server`; raise it behind a reverse proxy, whose one address
    carries every participant).

    Raises:
      design.SurveyError: the survey, the database or the address cannot be used.
    """
    survey = design.Survey.load(survey_dir)
    try:
        db = database.SurveyDB(db_path)
    except sqlite3.Error as e:
        raise design.SurveyError(f"cannot open the answers database {db_path}: {e}") from None
    if new_ids_per_hour < 1:
        raise design.SurveyError(f"new_ids_per_hour must be at least 1, not {new_ids_per_hour}")
    app = create_app(survey, db, new_ids_per_hour)
    try:
        return web_server.create_server(
            app, connections_per_address, host=host, port=port, **SERVER_SETTINGS
        )
    except (OSError, ValueError) as e:  # the port is taken, no such host, ...
        reason = getattr(e, "strerror", None) or e
        raise design.SurveyError(f"cannot serve on {host}:{port}: {reason}") from None


def urls(server) -> list[str]:
    """The addresses a server from `make_server` listens on, e.g. http://127.0.0.1:8000/."""
    listening = getattr(server, "effective_listen", None) or [
        (server.effective_host, server.effective_port)
    ]
    return [
        f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
        for host, port in listening
    ]
