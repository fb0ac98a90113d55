"""Who may answer as whom: resume codes, one participant per browser, new ids per address.

Web tests run the real server (`survey.py serve`, waitress, in its own
process) on an ephemeral 127.0.0.1 port; the fixtures are in conftest.py.
"""

import concurrent.futures
import re
import sqlite3

import pytest

from glcic_jax.survey import address_limits, admission, database, forms, resume_codes

# The columns of the tables the study's data lives in, as (name, type, notnull, default, pk).
DATA_TABLES = {
    "meta": [("key", "TEXT", 0, None, 1), ("value", "TEXT", 1, None, 0)],
    "questions": [
        ("id", "TEXT", 0, None, 1), ("point", "INTEGER", 1, None, 0),
        ("position", "INTEGER", 1, None, 0), ("image_index", "INTEGER", 1, None, 0),
        ("source", "TEXT", 1, None, 0),
    ],
    "participants": [
        ("id", "TEXT", 0, None, 1), ("age_band", "TEXT", 1, "''", 0),
        ("created_at", "REAL", 1, None, 0),
    ],
    "shown": [
        ("participant", "TEXT", 1, None, 1), ("question", "TEXT", 1, None, 2),
        ("mouth_on_top", "INTEGER", 1, None, 0), ("shown_at", "REAL", 1, None, 0),
    ],
    "answers": [
        ("id", "INTEGER", 0, None, 1), ("participant", "TEXT", 1, None, 0),
        ("question", "TEXT", 1, None, 0), ("choice", "INTEGER", 1, None, 0),
        ("mouth_on_top", "INTEGER", 1, None, 0), ("answered_at", "REAL", 1, None, 0),
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def survey_dir(tmp_path_factory, make_synthetic_survey):
    out = tmp_path_factory.mktemp("survey")
    make_synthetic_survey(out, n=2, points=(100,))
    return out


def db_rows(db_path, sql, args=()):
    with sqlite3.connect(db_path) as db:
        return db.execute(sql, args).fetchall()


def error_line(page: bytes) -> str:
    """The one message the start page shows after a refusal."""
    return re.search(rb"id='error'>([^<]*)<", page).group(1).decode()


def another_code(code: str) -> str:
    """A well-formed code that is not `code`."""
    return next(c for c in ("ABCDEFGH", "HGFEDCBA") if c != code)


# ---- resume codes -----------------------------------------------------------


def test_resume_codes_are_random_hashed_and_checked():
    code = resume_codes.new_code()
    assert resume_codes.CODE.fullmatch(code) and code != resume_codes.new_code()
    stored = resume_codes.hash_code(code)
    assert code not in stored and stored != resume_codes.hash_code(code)  # salted
    assert resume_codes.matches(code, stored)
    assert not resume_codes.matches(another_code(code), stored)
    assert not resume_codes.matches(code, None)  # no stored code: nothing matches
    shown = resume_codes.display(code)
    assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}", shown)
    assert resume_codes.normalise(f" {shown.lower()} ") == code
    assert resume_codes.normalise(shown[:4] + " " + shown[5:]) == code
    assert resume_codes.normalise("ａｂｃｄ－ｅｆ２３") == "ABCDEF23"  # typed with a Japanese IME


def test_new_table_only_the_data_tables_are_unchanged(tmp_path):
    """The resume codes live in a table of their own; an older database gains it when opened."""
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as db:  # a database written before resume codes existed
        db.executescript(database.SCHEMA.split("CREATE TABLE IF NOT EXISTS resume_codes")[0])
        db.execute("INSERT INTO participants VALUES ('olga', '60-', 0)")
    surveydb = database.SurveyDB(old)
    for path in (old, tmp_path / "new.db"):
        database.SurveyDB(path)
        for table, columns in DATA_TABLES.items():
            info = db_rows(path, f"PRAGMA table_info({table})")
            assert [tuple(c[1:]) for c in info] == columns, (path, table)
        tables = {r[0] for r in db_rows(path, "SELECT name FROM sqlite_master WHERE type='table'")}
        assert tables == {*DATA_TABLES, "resume_codes"}
    assert db_rows(old, "SELECT * FROM participants") == [("olga", "60-", 0)]
    assert surveydb.resume_code_hash("olga") is None  # registered without a code
    stored = resume_codes.hash_code("ABCDEFGH")
    assert surveydb.register("pia", "", stored) is True
    assert surveydb.register("pia", "20-29", resume_codes.hash_code("HGFEDCBA")) is False
    assert surveydb.register("olga", "", stored) is False
    assert surveydb.resume_code_hash("pia") == stored
    assert db_rows(old, "SELECT age_band FROM participants WHERE id = 'pia'") == [("",)]
    assert db_rows(old, "SELECT participant, code_hash FROM resume_codes") == [("pia", stored)]


def test_another_browser_without_the_right_code_is_refused_and_learns_nothing(
    served, new_client, question_of, resume_code_of
):
    base, db_path = served
    alice = new_client(base)
    _, page = alice.start("alice")  # no age band given
    shown_code = resume_code_of(page)  # e.g. ABCD-EF23
    code = resume_codes.normalise(shown_code)
    assert alice.answer(page, 2) == (303, "/q")
    _, _, page = alice.get("/q")
    second_question = question_of(page)
    answers = db_rows(db_path, "SELECT * FROM answers")
    shown = db_rows(db_path, "SELECT * FROM shown")

    mallory = new_client(base)
    for participant, typed in [
        ("alice", None),  # no code
        ("alice", ""),  # an empty code
        ("alice", another_code(code)),  # a wrong code
        ("alice", resume_codes.display(another_code(code))),
        ("nobody", code),  # a right code with another id
    ]:
        status, body = mallory.start(participant, "60-", code=typed)
        assert status == 400, (participant, typed)
        assert error_line(body) == admission.RESUME_REFUSED  # the same words in every case
        assert question_of(body) is None and resume_code_of(body) is None
        assert b"alice" not in body and b"welcome-back" not in body
        assert code.encode() not in body and shown_code.encode() not in body
        status, headers, _ = mallory.request("GET", "/q")
        assert (status, headers["Location"]) == (303, "/")  # this browser is no participant
        assert mallory.request("GET", f"/q/{second_question}")[1]["Location"] == "/"
        assert mallory.request("GET", "/thanks")[1]["Location"] == "/"
    status, body = mallory.start("alice", code="x';--")  # malformed: says what a code looks like
    assert (status, error_line(body)) == (400, forms.CODE_RULE)
    assert db_rows(db_path, "SELECT * FROM answers") == answers
    assert db_rows(db_path, "SELECT * FROM shown") == shown
    assert db_rows(db_path, "SELECT id, age_band FROM participants") == [("alice", "")]

    # With the right code (typed in lower case, with a space) it resumes where alice is.
    friend = new_client(base)
    status, page = friend.start("alice", code=f"{code[:4].lower()} {code[4:]}")
    assert status == 200 and question_of(page) == second_question
    assert resume_code_of(page) == shown_code
    assert friend.answer(page, 4) == (303, "/q")
    _, _, page = alice.get("/q")  # the first browser goes on as before
    assert b"id='thanks'" in page and resume_code_of(page) == shown_code
    assert db_rows(db_path, "SELECT choice FROM answers ORDER BY id") == [(2,), (4,)]


# ---- how many participants one client registers -------------------------------


def test_a_browser_holds_one_participant(served, new_client, question_of, resume_code_of):
    base, db_path = served
    kim = new_client(base)
    _, page = kim.start("kim")
    kim_code = resume_code_of(page)
    client = new_client(base)
    status, page = client.start("ivan")
    assert status == 200 and question_of(page)
    for participant, code in [("judy", None), ("kim", None), ("kim", kim_code)]:
        status, body = client.start(participant, code=code)
        assert status == 429, participant
        assert error_line(body) == admission.already_participant("ivan")
        assert question_of(body) is None and resume_code_of(body) is None
    status, page = client.start("ivan")  # its own participant: resumes, no code needed
    assert status == 200 and question_of(page)
    assert db_rows(db_path, "SELECT id FROM participants ORDER BY id") == [("ivan",), ("kim",)]


def test_new_ids_per_address_are_limited(
    survey_dir, tmp_path, start_survey_server, new_client, question_of, resume_code_of
):
    """Eight fresh browsers from one address register at once: three get in, five get a 429."""
    db_path = tmp_path / "answers.db"
    server = start_survey_server(survey_dir, db_path, 0, "--new_ids_per_hour=3")

    def register(i):
        return new_client(server.base).start(f"bot{i}")

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(register, range(8)))
    admitted = [page for status, page in results if status == 200]
    refused = [page for status, page in results if status != 200]
    assert len(admitted) == 3 and all(question_of(page) for page in admitted)
    assert {status for status, _ in results} == {200, 429}
    assert {error_line(page) for page in refused} == {admission.TOO_MANY_NEW_IDS}
    assert db_rows(db_path, "SELECT COUNT(*) FROM participants") == [(3,)]
    assert db_rows(db_path, "SELECT COUNT(*) FROM resume_codes") == [(3,)]
    # Continuing an existing id with its code is no new id: still allowed from this address.
    [(first,)] = db_rows(db_path, "SELECT id FROM participants ORDER BY id LIMIT 1")
    page = next(p for p in admitted if f"id='resume-id'>{first}<".encode() in p)
    status, page = new_client(server.base).start(first, code=resume_code_of(page))
    assert status == 200 and question_of(page)
    assert new_client(server.base).start("bot99")[0] == 429


def test_wrong_codes_per_address_are_limited(served, new_client, question_of, resume_code_of):
    """Guessing codes stops after a few: then even the right code waits (the same address)."""
    base, db_path = served
    _, page = new_client(base).start("lena")
    code = resume_codes.normalise(resume_code_of(page))
    guesser = new_client(base)
    for _ in range(admission.WRONG_CODES_PER_ADDRESS_PER_HOUR):
        status, body = guesser.start("lena", code=another_code(code))
        assert (status, error_line(body)) == (400, admission.RESUME_REFUSED)
    status, body = guesser.start("lena", code=another_code(code))
    assert (status, error_line(body)) == (429, admission.TOO_MANY_WRONG_CODES)
    status, body = new_client(base).start("lena", code=code)
    assert (status, error_line(body)) == (429, admission.TOO_MANY_WRONG_CODES)
    assert question_of(body) is None
    assert new_client(base).start("mona")[0] == 200  # new ids are counted apart
    assert db_rows(db_path, "SELECT COUNT(*) FROM shown WHERE participant = 'lena'") == [(1,)]


def test_address_limit_slides_and_groups_ipv6_networks():
    now = [0.0]
    limit = address_limits.AddressLimit(3, clock=lambda: now[0])
    assert [limit.take("10.0.0.1") for _ in range(4)] == [True, True, True, False]
    assert limit.take("::ffff:10.0.0.1") is False  # the same IPv4 address, IPv6-mapped
    assert limit.take("10.0.0.2") is True  # another address counts on its own
    limit.give_back("10.0.0.1")  # a registration that did not happen frees its place
    assert limit.take("10.0.0.1") is True and limit.take("10.0.0.1") is False
    assert [limit.take(f"2001:db8::{i}") for i in range(1, 5)] == [True, True, True, False]
    assert limit.take("2001:db8:0:1::1") is True  # another /64
    now[0] = address_limits.WINDOW_S - 1
    assert limit.take("10.0.0.1") is False
    now[0] = address_limits.WINDOW_S + 1  # an hour later the first ones are forgotten
    assert limit.take("10.0.0.1") is True and limit.take("2001:db8::9") is True
    with pytest.raises(ValueError):
        address_limits.AddressLimit(0)
