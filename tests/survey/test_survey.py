"""The A/B survey: hidden order and its undoing, the answers DB, the summary, the web app's guards.

Web tests run the real server (`survey.py serve`, waitress, in its own
process) on an ephemeral 127.0.0.1 port against a synthetic survey folder; one
test builds a survey from two tiny checkpoints and takes it through the app and
the summary. The real-browser test is in test_survey_browser.py; the fixtures
are in conftest.py.
"""

import base64
import concurrent.futures
import csv
import json
import math
import os
import pathlib
import random
import socket
import sqlite3
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest

from glcic_jax.survey import database, design
from glcic_jax.survey import summary as survey_summary

ROOT = pathlib.Path(__file__).resolve().parents[2]
POINTS = (100, 200)
N_IMAGES = 3
N_QUESTIONS = N_IMAGES * len(POINTS)


@pytest.fixture(scope="module")
def survey_dir(tmp_path_factory, make_synthetic_survey):
    out = tmp_path_factory.mktemp("survey")
    make_synthetic_survey(out, n=N_IMAGES, points=POINTS)
    return out


def db_rows(db_path, sql, args=()):
    with sqlite3.connect(db_path) as db:
        return db.execute(sql, args).fetchall()


# ---- the hidden order -----------------------------------------------------


def test_order_is_deterministic_balanced_and_varies():
    secret = "s" * 64
    assert design.mouth_on_top(secret, "alice", "s5-00") == design.mouth_on_top(
        secret, "alice", "s5-00"
    )
    per_participant = [design.mouth_on_top(secret, f"p{i}", "s5-00") for i in range(2000)]
    per_question = [design.mouth_on_top(secret, "alice", f"s5-{i:02d}") for i in range(2000)]
    for flips in (per_participant, per_question):
        assert 900 < sum(flips) < 1100  # fair within ~4.5 sigma
    # Another survey (secret) orders the same participant and question independently.
    other = [design.mouth_on_top("t" * 64, f"p{i}", "s5-00") for i in range(2000)]
    assert 0.4 < np.mean(np.equal(per_participant, other)) < 0.6


@pytest.mark.parametrize(
    "choice, mouth_top, score",
    [(1, True, 5), (2, True, 4), (3, True, 3), (4, True, 2), (5, True, 1),
     (1, False, 1), (2, False, 2), (3, False, 3), (4, False, 4), (5, False, 5)],
)  # fmt: skip
def test_mouth_score_undoes_the_order(choice, mouth_top, score):
    assert design.mouth_score(choice, mouth_top) == score


def test_someone_who_always_picks_the_mouth_model_scores_5_either_way():
    for mouth_top in (True, False):
        clicked = 1 if mouth_top else 5  # "top/bottom is more similar", wherever mouth is
        assert design.mouth_score(clicked, mouth_top) == 5
    with pytest.raises(ValueError):
        design.mouth_score(6, True)


def test_definition_is_blind_and_images_resolve_only_inside(
    survey_dir, tmp_path, make_synthetic_survey
):
    loaded = design.Survey.load(survey_dir)
    assert len(loaded.questions) == N_QUESTIONS and loaded.points == POINTS
    names = [n for q in loaded.questions for n in q.images.values()]
    assert len(set(names)) == len(names)
    assert all(design.IMAGE_NAME.fullmatch(n) for n in names)
    assert sorted(p.name for p in (survey_dir / "images").iterdir()) == sorted(names)
    assert loaded.image_path(names[0]) == survey_dir / "images" / names[0]
    for bad in ["../survey.json", "survey.json", "/etc/passwd", "", "A" * 32 + ".png",
                "0" * 32 + ".png", names[0] + "/", names[0].upper()]:  # fmt: skip
        assert loaded.image_path(bad) is None, bad
    # A listed image swapped for a symlink out of the folder is refused too.
    copy = tmp_path / "copy"
    make_synthetic_survey(copy)
    copied = design.Survey.load(copy)
    victim = copied.questions[0].images["original"]
    (copy / "images" / victim).unlink()
    (copy / "images" / victim).symlink_to(copy / "survey.json")
    assert copied.image_path(victim) is None


def test_survey_folder_errors(survey_dir, tmp_path, make_synthetic_survey):
    with pytest.raises(design.SurveyError, match="already holds"):
        make_synthetic_survey(survey_dir)
    with pytest.raises(design.SurveyError, match="cannot read"):
        design.Survey.load(tmp_path)
    with pytest.raises(design.SurveyError, match="share no checkpoint"):
        design.default_points([5, 10], [20])
    assert design.default_points([5, 10, 15, 20], [10, 15, 20, 25]) == [15, 20]
    files = [f"f{i}" for i in range(20)]
    assert design.pick_images(files, 5, 0) == design.pick_images(files, 5, 0)
    assert len(set(design.pick_images(files, 20, 1))) == 20
    with pytest.raises(design.SurveyError):
        design.pick_images(files, 21, 0)


# ---- the database ---------------------------------------------------------


def test_db_stores_each_answer_once_with_its_recorded_order(
    survey_dir, tmp_path, make_synthetic_survey
):
    loaded = design.Survey.load(survey_dir)
    db = database.SurveyDB(tmp_path / "a.db")
    db.attach(loaded)
    db.attach(loaded)  # idempotent: a restarted server re-attaches
    assert db_rows(tmp_path / "a.db", "PRAGMA journal_mode") == [("wal",)]
    db.add_participant("alice", "30-39")
    db.add_participant("alice", "60-")  # the first age band stays
    qid = loaded.questions[0].id
    with pytest.raises(database.NotShown):
        db.answer("alice", qid, 2)
    assert db.record_shown("alice", qid, True) is True
    assert db.record_shown("alice", qid, False) is True  # the first recorded order stays
    assert db.answer("alice", qid, 2) is True
    assert db.answer("alice", qid, 5) is False
    with pytest.raises(ValueError):
        db.answer("alice", qid, 6)
    with pytest.raises(sqlite3.IntegrityError):  # the schema itself refuses a second row
        db_rows(tmp_path / "a.db", "INSERT INTO answers VALUES (NULL, 'alice', ?, 1, 0, 0)", (qid,))
    with pytest.raises(sqlite3.IntegrityError):  # and choices outside 1..5
        db_rows(tmp_path / "a.db", "INSERT INTO answers VALUES (NULL, 'alice', 'x', 9, 0, 0)")
    [row] = db.rows()
    assert (row["choice"], row["mouth_on_top"], row["age_band"]) == (2, 1, "30-39")
    other = tmp_path / "other"
    with pytest.raises(design.SurveyError, match="another survey"):
        db.attach(make_synthetic_survey(other))


def synthetic_db(survey_dir, path, scores: dict):
    """A DB where participant p gave mouth score scores[qid][p] (clicked as the page showed it)."""
    loaded = design.Survey.load(survey_dir)
    db = database.SurveyDB(path)
    db.attach(loaded)
    for qid, per_participant in scores.items():
        for i, score in enumerate(per_participant):
            participant = f"p{i}"
            db.add_participant(participant, ["20-29", "60-", "", "20-29"][i % 4])
            top = db.record_shown(participant, qid, loaded.mouth_on_top(participant, qid))
            assert db.answer(participant, qid, 6 - score if top else score)
    return loaded


def test_summary_tables_on_a_synthetic_db(survey_dir, tmp_path):
    qids = [q.id for q in design.Survey.load(survey_dir).questions]
    scores = {
        qids[0]: [5, 5, 4, 5],  # mouth wins
        qids[1]: [1, 2, 1, 2],  # random wins
        qids[2]: [3, 3, 4, 2],  # tie
        qids[3]: [4, 4, 4, 4],  # mouth, zero-width interval
        qids[4]: [2],  # one answer: no interval
    }  # qids[5] never answered
    synthetic_db(survey_dir, tmp_path / "s.db", scores)
    summary = survey_summary.write_report(tmp_path / "s.db", tmp_path / "report")
    rows = {r["question"]: r for r in summary["questions"]}
    assert [rows[q]["winner"] for q in qids] == ["mouth", "random", "tie", "mouth", "random", ""]
    assert rows[qids[1]]["mean"] == pytest.approx(1.5)
    half = 3.182446 * np.std([1, 2, 1, 2], ddof=1) / 2  # t(0.975, 3) * s / sqrt(n)
    assert rows[qids[1]]["ci_low"] == pytest.approx(1.5 - half, abs=1e-5)
    assert rows[qids[1]]["ci_high"] == pytest.approx(1.5 + half, abs=1e-5)
    assert (rows[qids[3]]["ci_low"], rows[qids[3]]["ci_high"]) == (4.0, 4.0)
    assert math.isnan(rows[qids[4]]["ci_low"]) and rows[qids[5]]["n"] == 0
    q2 = rows[qids[2]]
    assert (q2["n_prefer_mouth"], q2["n_prefer_random"], q2["n_same"]) == (1, 1, 2)
    first, second = summary["points"]
    assert (first["point"], first["mouth_wins"], first["random_wins"], first["ties"]) == (
        POINTS[0], 1, 1, 1,
    )  # fmt: skip
    assert first["mean"] == pytest.approx(np.mean([4.75, 1.5, 3.0]))
    assert first["sign_test_p"] == 1.0 and first["participants"] == 4 and first["answers"] == 12
    assert (second["questions"], second["mouth_wins"], second["random_wins"]) == (2, 1, 1)
    ages = {r["age_band"]: r for r in summary["ages"]}
    assert ages["20-29"]["participants"] == 2 and ages["not given"]["participants"] == 1
    report = tmp_path / "report"
    with open(report / "questions.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["winner"] for r in table] == ["mouth", "random", "tie", "mouth", "random", ""]
    with open(report / "answers.csv") as f:
        answers = list(csv.DictReader(f))
    assert len(answers) == 17
    assert {a["mouth_score"] for a in answers if a["question"] == qids[0]} == {"4", "5"}
    text = (report / "summary.md").read_text()
    assert "## Per question" in text and "| mouth |" in text
    assert (report / "scores.png").stat().st_size > 1000


def test_summarize_cli(survey_dir, tmp_path):
    synthetic_db(
        survey_dir, tmp_path / "s.db", {design.Survey.load(survey_dir).questions[0].id: [5, 4]}
    )
    script = [sys.executable, str(ROOT / "experiments" / "survey.py")]
    done = subprocess.run(
        script + ["summarize", f"--db={tmp_path / 's.db'}", f"--out={tmp_path / 'r'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"step {POINTS[0]}: mouth won 1, random 0, ties 0 of 1 questions" in done.stdout
    assert (tmp_path / "r" / "summary.md").is_file()
    missing = subprocess.run(
        script + ["summarize", f"--db={tmp_path / 'none.db'}", f"--out={tmp_path / 'r2'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert missing.returncode == 1 and "no survey database" in missing.stderr


# ---- the web app ----------------------------------------------------------


def test_answering_every_question_and_resuming(
    served, survey_dir, new_client, question_of, resume_code_of
):
    base, db_path = served
    client = new_client(base)
    status, page = client.start("alice", "20-29")
    assert status == 200 and b"question 1 of 6" in page
    code = resume_code_of(page)
    seen = []
    for i in range(N_QUESTIONS):
        assert resume_code_of(page) == code  # every question page shows it
        if i == 2:  # a new browser: same id and its resume code, resumes at the third question
            client = new_client(base)
            status, page = client.start("alice", code=code)
            assert b"question 3 of 6" in page
        seen.append(question_of(page))
        status, location = client.answer(page, i % 5 + 1)
        assert (status, location) == (303, "/q")
        _, _, page = client.get("/q")
    assert b"id='thanks'" in page and b"6 answers recorded" in page
    assert resume_code_of(page) == code
    assert seen == [q.id for q in design.Survey.load(survey_dir).questions]
    rows = db_rows(db_path, "SELECT question, choice FROM answers ORDER BY id")
    assert rows == [(q, i % 5 + 1) for i, q in enumerate(seen)]
    assert db_rows(db_path, "SELECT age_band FROM participants") == [("20-29",)]


def test_order_is_hidden_recorded_and_stable(
    served, survey_dir, new_client, question_of, image_src
):
    base, db_path = served
    loaded = design.Survey.load(survey_dir)
    client = new_client(base)
    _, page = client.start("bob")
    qid = question_of(page)
    top, bottom = image_src(page, "top"), image_src(page, "bottom")
    images = loaded.question(qid).images
    mouth_top = loaded.mouth_on_top("bob", qid)
    assert (top, bottom) == ((images["mouth"], images["random"]) if mouth_top
                             else (images["random"], images["mouth"]))  # fmt: skip
    assert image_src(page, "original") == images["original"]
    assert b"mouth" not in page.lower() and b"random" not in page.lower()
    _, _, again = client.get(f"/q/{qid}")
    assert (image_src(again, "top"), image_src(again, "bottom")) == (top, bottom)
    assert db_rows(db_path, "SELECT mouth_on_top FROM shown") == [(int(mouth_top),)]
    client.answer(page, 1)
    assert db_rows(db_path, "SELECT mouth_on_top, choice FROM answers") == [(int(mouth_top), 1)]
    # Across participants the same question is shown both ways.
    orders = {loaded.mouth_on_top(f"p{i}", qid) for i in range(20)}
    assert orders == {True, False}


def test_second_answer_to_a_question_is_refused(served, new_client, question_of):
    base, db_path = served
    client = new_client(base)
    _, page = client.start("carol")
    assert client.answer(page, 2) == (303, "/q")
    status, _ = client.answer(page, 5)  # resubmitting the same page
    assert status == 409
    assert db_rows(db_path, "SELECT choice FROM answers") == [(2,)]
    status, headers, _ = client.request("GET", f"/q/{question_of(page)}")
    assert (status, headers["Location"]) == (303, "/q")  # the back button leads on


def test_forms_need_a_valid_csrf_token(served, new_client, question_of):
    base, db_path = served
    client = new_client(base)
    _, page = client.start("dave")
    form = {"question": question_of(page), "choice": "3"}
    assert client.post("/answer", form)[0] == 403
    assert client.post("/answer", {**form, "csrf": "0" * 64})[0] == 403
    other = new_client(base)
    _, _, other_page = other.get("/")
    assert client.post("/answer", {**form, "csrf": other.csrf(other_page)})[0] == 403
    fresh = new_client(base)  # never loaded a page: no session cookie
    assert fresh.post("/start", {"csrf": client.csrf(page), "participant": "eve"})[0] == 403
    assert db_rows(db_path, "SELECT COUNT(*) FROM answers") == [(0,)]
    assert db_rows(db_path, "SELECT id FROM participants") == [("dave",)]
    assert client.post("/answer", {**form, "csrf": client.csrf(page)})[0] == 303


def test_a_session_edited_to_another_participant_is_refused(served, new_client):
    """The session cookie is signed: changing its participant makes it no one's."""
    base, _ = served
    new_client(base).start("heidi")
    client = new_client(base)
    client.start("grace")
    [cookie] = [c.value for c in client.jar if c.name == "survey_session"]
    # payload.timestamp.signature; a payload starting with "." is zlib-compressed.
    compressed = cookie.startswith(".")
    payload, stamp_and_signature = cookie.removeprefix(".").split(".", 1)
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    data = json.loads(zlib.decompress(raw) if compressed else raw)

    def encode(data: dict) -> str:
        raw = json.dumps(data, separators=(",", ":")).encode()
        payload = base64.urlsafe_b64encode(zlib.compress(raw) if compressed else raw)
        return "." * compressed + payload.decode().rstrip("=") + "." + stamp_and_signature

    assert encode(data) == cookie  # the encoding is understood: only the id will differ
    assert data["participant"] == "grace"
    forged = encode({**data, "participant": "heidi"})

    def next_page(session: str) -> str:
        """Where /q leads a new browser that sends `session`."""
        status, headers, _ = new_client(base).request(
            "GET", "/q", headers={"Cookie": f"survey_session={session}"}
        )
        assert status == 303
        return headers["Location"]

    assert next_page(cookie).startswith("/q/")  # grace's own cookie: her next question
    assert next_page(forged) == "/"  # the edited one is no one's: back to the start


def raw_status(base: str, request: str) -> int:
    """Send `request` bytes as they are; -> the response's status code."""
    with socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])), timeout=30) as s:
        s.sendall(request.encode())
        return int(s.makefile("rb").readline().split()[1])


def test_input_is_validated(served, survey_dir, new_client, question_of):
    base, db_path = served
    client = new_client(base)
    for bad in ["", "a" * 33, "a b", "名前", "x';--", "../x", "<script>alert(1)</script>"]:
        status, body = client.start(bad)
        assert status == 400, bad
        assert b"<script" not in body, bad  # never echoed into the page
    assert client.start("frank", age="99")[0] == 400
    assert db_rows(db_path, "SELECT COUNT(*) FROM participants") == [(0,)]
    _, page = client.start("frank")
    token, qid = client.csrf(page), question_of(page)
    other_qid = [q for q in design.Survey.load(survey_dir).questions if q.id != qid][0].id
    for form, why in [
        ({"question": qid, "choice": c}, "choice") for c in ["0", "6", "1.0", "", "x", "٣"]
    ] + [
        ({"question": "nope", "choice": "1"}, "unknown question"),
        ({"question": "../" + qid, "choice": "1"}, "bad id"),
        ({"question": other_qid, "choice": "1"}, "not shown yet"),
        ({"choice": "1"}, "no question"),
    ]:  # fmt: skip
        assert client.post("/answer", {"csrf": token, **form})[0] == 400, why
    dup = f"csrf={token}&question={qid}&choice=1&choice=5".encode()
    ctype = {"Content-Type": "application/x-www-form-urlencoded"}
    assert client.request("POST", "/answer", body=dup, headers=ctype)[0] == 400
    big = f"csrf={token}&question={qid}&choice=1&pad={'x' * 4000}".encode()
    assert client.request("POST", "/answer", body=big, headers=ctype)[0] == 413
    form = f"csrf={token}&question={qid}&choice=1".encode()
    assert (
        client.request("POST", "/answer", body=form, headers={"Content-Type": "text/plain"})[0]
        == 415
    )
    assert client.request("GET", "/q/" + "a" * 300)[0] == 414
    # Content-Length sent by hand. HTTP/1.1 requires a 400 for a malformed one, and
    # waitress answers it before the app; a missing one is the app's 411.
    for length in ["", "²", "-1", "1e3"]:
        assert raw_status(base, f"POST /answer HTTP/1.0\r\nContent-Length: {length}\r\n\r\n") == 400
    assert raw_status(base, "POST /answer HTTP/1.0\r\n\r\n") == 411
    assert client.request("PUT", "/answer", body=form, headers=ctype)[0] == 405
    assert client.request("DELETE", "/")[0] == 405
    assert db_rows(db_path, "SELECT COUNT(*) FROM answers") == [(0,)]


def test_nothing_but_the_survey_is_served(served, survey_dir, new_client):
    base, _ = served
    client = new_client(base)
    loaded = design.Survey.load(survey_dir)
    name = loaded.questions[0].images["original"]
    status, headers, body = client.request("GET", f"/image/{name}")
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert body == (survey_dir / "images" / name).read_bytes()
    assert headers["Server"] == "survey"
    _, headers, _ = new_client(base).request("GET", "/")
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    _, *attributes = (part.strip() for part in headers["Set-Cookie"].split(";"))
    assert sorted(attributes) == ["HttpOnly", "Path=/", "SameSite=Strict"]  # in any order
    secret = loaded.secret.encode()
    for path in [
        "/survey.json", "/images/" + name, "/image/../survey.json", "/image/..%2fsurvey.json",
        "/image/%2e%2e/survey.json", "/image/%2e%2e%2fsurvey.json", "/image/....//survey.json",
        "/image//etc/passwd", "/image/" + name + "/../../survey.json", "/image/" + name.upper(),
        "/image/" + name + "%00.png", "/image/..\\survey.json", "//etc/passwd", "/../../etc/passwd",
        "/q/../survey.json", "/static/x.css", "/admin", "/favicon.ico", "/answers.db",
    ]:  # fmt: skip
        status, _, body = client.request("GET", path)
        assert status in (303, 404), path
        assert secret not in body and b"root:" not in body, path


def test_load_50_participants_every_answer_stored_once(
    survey_dir, tmp_path, start_survey_server, new_client, question_of
):
    """50 concurrent participants (threads over loopback) answer everything, some twice."""
    n_participants = 50
    db_path = tmp_path / "answers.db"
    # They all come from 127.0.0.1, as a lab behind one NAT address would: the
    # server lets that many ids register from one address in an hour, and that
    # many connections be open from it at once.
    server = start_survey_server(
        survey_dir, db_path, 0, f"--new_ids_per_hour={n_participants}",
        f"--connections_per_address={n_participants + 10}",
    )  # fmt: skip
    base = server.base

    def participant(i):
        rng = random.Random(i)
        client = new_client(base)
        status, page = client.start(f"load{i:02d}", rng.choice(["", "20-29", "60-"]))
        assert status == 200
        sent, refused = {}, 0
        while question_of(page):
            qid, choice = question_of(page), rng.randint(1, 5)
            status, location = client.answer(page, choice)
            assert (status, location) == (303, "/q")
            sent[qid] = choice
            if rng.random() < 0.2:  # a double click: must not be stored again
                status, _ = client.answer(page, 6 - choice if choice != 3 else 1)
                assert status == 409
                refused += 1
            _, _, page = client.get("/q")
        assert b"id='thanks'" in page
        return f"load{i:02d}", sent, refused

    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(n_participants) as pool:
        results = list(pool.map(participant, range(n_participants)))
    seconds = time.time() - t0
    stored = db_rows(db_path, "SELECT participant, question, choice FROM answers")
    assert len(stored) == n_participants * N_QUESTIONS == 300
    assert len({(p, q) for p, q, _ in stored}) == len(stored)
    expected = {(p, q, c) for p, sent, _ in results for q, c in sent.items()}
    assert set(stored) == expected
    assert sum(r[2] for r in results) > 0  # some duplicates were tried and refused
    print(f"load test: {len(stored)} answers from {n_participants} participants in {seconds:.1f} s")


# ---- from checkpoints -----------------------------------------------------


@pytest.fixture(scope="module")
def two_runs(tiny_runs):
    """Two tiny runs (random and mouth holes, conftest), checkpoints at steps 5 and 10."""
    return tiny_runs


def test_build_from_checkpoints_serve_and_summarize(
    two_runs, faces_dir, tmp_path, start_survey_server, new_client, question_of
):
    out = tmp_path / "built"
    built = design.build(out, two_runs["random"], two_runs["mouth"], faces_dir, n=3)
    assert built.points == (5, 10) and len(built.questions) == 6
    spec = json.loads((out / "survey.json").read_text())
    assert spec["models"]["mouth"]["trained_on"] == "mouth" and spec["image_size"] == 32
    assert spec["hole"] == [16, 7, 12, 18]  # the study's mouth box at 32 px
    from PIL import Image

    for q in built.questions:
        shown = {r: np.asarray(Image.open(out / "images" / n)) for r, n in q.images.items()}
        assert all(a.shape == (256, 256, 3) for a in shown.values())
        assert not np.array_equal(shown["original"], shown["mouth"])  # the hole was filled
    again = design.build(tmp_path / "again", two_runs["random"], two_runs["mouth"], faces_dir,
                         n=3, steps=[10])  # fmt: skip
    assert again.points == (10,) and [q.source for q in again.questions] == [
        q.source for q in built.questions if q.point == 10
    ]
    with pytest.raises(design.SurveyError, match="missing"):
        design.build(tmp_path / "x", two_runs["random"], two_runs["mouth"], faces_dir, steps=[3])

    with start_survey_server(out, tmp_path / "a.db") as server:
        for name, pick in [("likes_mouth", "mouth"), ("likes_random", "random")]:
            client = new_client(server.base)
            _, page = client.start(name)
            while question_of(page):
                qid = question_of(page)
                mouth_top = built.mouth_on_top(name, qid)
                choice = 1 if (pick == "mouth") == mouth_top else 5  # "top" or "bottom"
                client.answer(page, choice)
                _, _, page = client.get("/q")
    summary = survey_summary.write_report(tmp_path / "a.db", tmp_path / "report")
    # One participant always picked the mouth model, one the random: every mean is 3.
    assert all(q["mean"] == 3 and q["winner"] == "tie" for q in summary["questions"])
    scores = {(a["participant"], a["mouth_score"]) for a in summary["answers"]}
    assert scores == {("likes_mouth", 5), ("likes_random", 1)}


def test_cli_usage_errors(tmp_path, faces_dir):
    script = [sys.executable, str(ROOT / "experiments" / "survey.py")]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    missing = tmp_path / "no-run"
    for args, message in [
        (["nope"], "usage"),
        (["build", "--n=3"], "needs --random, --mouth, --data_dir, --out"),
        (["build", f"--random={missing}", f"--mouth={missing}", f"--data_dir={faces_dir}",
          f"--out={tmp_path / 's'}"], "does not exist"),
        (["serve", f"--survey={tmp_path}", f"--db={tmp_path / 'a.db'}"], "cannot read"),
        (["serve", f"--survey={tmp_path}", f"--db={tmp_path / 'a.db'}", "--new_ids_per_hour=0"],
         "new_ids_per_hour"),
    ]:  # fmt: skip
        done = subprocess.run(script + args, capture_output=True, text=True, timeout=120,
                              env=env, cwd=tmp_path)  # fmt: skip
        assert done.returncode != 0 and message in done.stderr, done.stderr


def test_serve_on_a_busy_port_says_so_in_one_line(survey_dir, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, str(ROOT / "experiments" / "survey.py"), "serve",
             f"--survey={survey_dir}", f"--db={tmp_path / 'a.db'}", f"--port={port}"],
            capture_output=True, text=True, timeout=120, cwd=tmp_path,
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert f"cannot serve on 127.0.0.1:{port}" in done.stderr and "Traceback" not in done.stderr


def test_build_from_the_shipped_comparison_models_and_answer(
    faces_dir, tmp_path, start_survey_server, new_client, question_of
):
    """The README's survey command on the committed models: build, serve, answer every question."""
    from glcic_jax.completion import inference

    random_model = pathlib.Path(inference.PRETRAINED).parents[3] / "docs/results/models/random.npz"
    out = tmp_path / "shipped"
    built = design.build(out, random_model, inference.PRETRAINED, faces_dir, n=4)
    assert len(built.points) == 1 and len(built.questions) == 4
    spec = json.loads((out / "survey.json").read_text())
    assert spec["image_size"] == 64 and spec["models"]["random"]["trained_on"] == "random"
    with start_survey_server(out, tmp_path / "a.db") as server:
        client = new_client(server.base)
        _, page = client.start("someone")
        answered = 0
        while question_of(page):
            client.answer(page, 2)
            answered += 1
            _, _, page = client.get("/q")
    assert answered == 4
    summary = survey_summary.write_report(tmp_path / "a.db", tmp_path / "report")
    assert len(summary["answers"]) == 4


def test_one_address_holding_hundreds_of_connections_does_not_block_the_others(served):
    """A client on 127.0.0.3 opens 300 connections and sends nothing; one on 127.0.0.2 is served."""
    import http.client

    base, _ = served
    port = int(base.rsplit(":", 1)[1])
    held = []
    try:
        for _ in range(300):
            s = socket.socket()
            s.bind(("127.0.0.3", 0))
            s.settimeout(5)
            try:
                s.connect(("127.0.0.1", port))
            except OSError:
                s.close()  # refused or reset: the server is not letting this address in
                continue
            held.append(s)
        time.sleep(1.0)  # let the server accept (and close) what it will
        started = time.monotonic()
        other = http.client.HTTPConnection("127.0.0.1", port, timeout=10,
                                           source_address=("127.0.0.2", 0))  # fmt: skip
        other.request("GET", "/")
        assert other.getresponse().status == 200
        assert time.monotonic() - started < 5
        other.close()
    finally:
        for s in held:
            s.close()
