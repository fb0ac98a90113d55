"""The survey in a real browser: headless Chromium driven by Selenium, server killed mid-survey.

A participant answers two questions, closes the browser; the server
(`survey.py serve`, waitress) is killed with SIGKILL and started again on the
same port; the participant comes back in a new browser profile, enters the same
id (refused without the resume code the first browser showed, then with it),
resumes at question 3, goes back once and submits an answered page again
(refused), and finishes. The database must then hold every answer exactly as
clicked, with the top/bottom order the pages showed.

Skips with a message where Debian's chromium and chromium-driver are missing
(`apt-get install -y chromium chromium-driver`). Only 127.0.0.1 is contacted.
"""

import secrets
import socket
import sqlite3
import time

import pytest

pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def page_state(driver) -> dict:
    """What the participant sees on a question page."""
    return {
        "question": driver.find_element(By.NAME, "question").get_attribute("value"),
        "progress": driver.find_element(By.ID, "progress").text,
        "top": driver.find_element(By.ID, "top").get_attribute("src").rsplit("/", 1)[1],
        "images_loaded": driver.execute_script(
            "return [...document.images].length === 3 && "
            "[...document.images].every(i => i.complete && i.naturalWidth > 0)"
        ),
    }


def navigate(driver, action) -> None:
    """Run `action` (a click, back) and wait until another document is loaded.

    The old page is marked with a fresh token; the wait ends when the window's
    document no longer carries it (a page restored from the back/forward cache
    carries an older token). Errors while the page is swapped are retried.
    """
    token = secrets.token_hex(8)
    driver.execute_script("window.__surveyNav = arguments[0]", token)
    action()
    WebDriverWait(driver, 30, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.execute_script(
            "return window.__surveyNav !== arguments[0] && document.readyState === 'complete'",
            token,
        )
    )


def start(
    driver, base: str, participant: str, age: str | None = None, code: str | None = None
) -> None:
    driver.get(base + "/")
    driver.find_element(By.ID, "participant").send_keys(participant)
    if code is not None:
        driver.find_element(By.ID, "code").send_keys(code)
    if age is not None:
        Select(driver.find_element(By.ID, "age")).select_by_value(age)
    navigate(driver, driver.find_element(By.ID, "start").click)


def answer(driver, choice: int) -> dict:
    """Click a choice and submit; returns the page as it was before submitting."""
    state = page_state(driver)
    driver.find_element(By.ID, f"choice-{choice}").click()
    navigate(driver, driver.find_element(By.ID, "submit").click)
    return state


def test_answer_close_kill_restart_resume_finish(
    tmp_path, make_chromium, make_synthetic_survey, start_survey_server
):
    loaded = make_synthetic_survey(tmp_path / "survey")
    total = len(loaded.questions)
    db_path, port = tmp_path / "answers.db", free_port()
    base = f"http://127.0.0.1:{port}"
    clicked = {}  # question -> (choice, image shown on top)
    t0 = time.time()

    server = start_survey_server(loaded.folder, db_path, port)
    try:
        driver = make_chromium(tmp_path / "profile-1")
        try:
            start(driver, base, "alice", "30-39")
            labels = [e.text for e in driver.find_elements(By.TAG_NAME, "label")]
            assert labels[0] == "1. 上の方が似ている / top is more similar"
            assert labels[4] == "5. 下の方が似ている / bottom is more similar"
            for i in range(2):
                shown = answer(driver, i + 1)
                assert shown["progress"].endswith(f"question {i + 1} of {total}")
                assert shown["images_loaded"]
                clicked[shown["question"]] = (i + 1, shown["top"])
            code = driver.find_element(By.ID, "resume-code").text  # as a participant notes it
            before = page_state(driver)["question"]
            driver.find_element(By.ID, "submit").click()  # no choice: the form refuses to send
            assert page_state(driver)["question"] == before
        finally:
            driver.quit()
    finally:
        server.kill()  # SIGKILL: no chance to flush anything

    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT COUNT(*) FROM answers").fetchone() == (2,)

    server = start_survey_server(loaded.folder, db_path, port)
    try:
        driver = make_chromium(tmp_path / "profile-2")  # a new browser: no cookies
        try:
            start(driver, base, "alice")  # without the code: the start page says why
            assert "resume code is wrong" in driver.find_element(By.ID, "error").text
            start(driver, base, "alice", code=code)
            state = page_state(driver)
            assert state["progress"].endswith(f"question 3 of {total}")
            assert state["question"] == loaded.questions[2].id
            for i in range(2, total):
                shown = answer(driver, (i % 5) + 1)
                clicked[shown["question"]] = ((i % 5) + 1, shown["top"])
                if i == 2:  # back to the answered page, answered again: refused
                    navigate(driver, driver.back)
                    assert page_state(driver)["question"] == shown["question"]
                    answer(driver, 5)  # first answered 3
                    assert "already answered" in driver.find_element(By.TAG_NAME, "h1").text
                    navigate(driver, driver.find_element(By.ID, "continue").click)
                    assert page_state(driver)["question"] == loaded.questions[3].id
            assert "Thank you" in driver.find_element(By.ID, "thanks").text
        finally:
            driver.quit()
    finally:
        server.stop()

    with sqlite3.connect(db_path) as db:
        answers = db.execute(
            "SELECT a.question, a.choice, a.mouth_on_top, s.mouth_on_top FROM answers a "
            "JOIN shown s USING (participant, question) WHERE participant = 'alice'"
        ).fetchall()
        age = db.execute("SELECT age_band FROM participants WHERE id = 'alice'").fetchone()
    assert age == ("30-39",)
    assert len(answers) == total == len(clicked)
    for question, choice, mouth_top, shown_mouth_top in answers:
        assert mouth_top == shown_mouth_top == loaded.mouth_on_top("alice", question)
        images = loaded.question(question).images
        expected_top = images["mouth"] if mouth_top else images["random"]
        assert clicked[question] == (choice, expected_top)
    print(f"browser test: {total} answers across a kill -9 in {time.time() - t0:.1f} s")
