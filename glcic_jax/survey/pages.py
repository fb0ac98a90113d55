"""The survey's HTML: start, question, already-answered, thank-you and error pages.

Plain functions from values to UTF-8 bytes; every value that is not a
constant of this module is escaped. Labels are Japanese / English, as in the
study. Element ids (participant, age, start, progress, original, top, bottom,
choice-1..5, submit, continue, thanks) are what the browser test drives.
"""

import html

from glcic_jax.survey import design as survey_lib

STYLE = """
body { font-family: sans-serif; max-width: 46rem; margin: 1rem auto; padding: 0 1rem; }
.faces { display: flex; gap: 1.5rem; align-items: flex-start; flex-wrap: wrap; }
figure { margin: 0; text-align: center; }
img { width: 256px; height: 256px; border: 1px solid #888; }
fieldset { margin-top: 1rem; } label { display: block; padding: .3rem 0; }
button { margin-top: 1rem; font-size: 1.1rem; padding: .4rem 1.2rem; }
.error { color: #a00; }
"""
ID_RULE_JA = "参加者IDは英数字と _ - で1〜32文字です"
ID_RULE_EN = "the participant id must be 1-32 letters, digits, _ or -"
_e = html.escape


def page(title: str, body: str) -> bytes:
    return (
        "<!doctype html><html lang='ja'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{STYLE}</style></head>"
        f"<body>{body}</body></html>"
    ).encode()


def start_page(n_questions: int, csrf: str, participant: str | None, error: str = "") -> bytes:
    """Participant id and optional age band; a "continue" link for a recognised participant."""
    n = n_questions
    options = "".join(
        f"<option value='{_e(k)}'>{_e(ja)} / {_e(en)}</option>"
        for k, (ja, en) in survey_lib.AGE_BANDS.items()
    )
    body = (
        "<h1>画像の比較アンケート / Image comparison survey</h1>"
        f"<p>{n} 問あります。各問で元の画像と、それを補完した2枚の画像(上・下)を見て、"
        "どちらが元の画像に似ているかを選んでください。</p>"
        f"<p>There are {n} questions. Each shows an original face and two completed versions "
        "of it (top and bottom); choose which one is more similar to the original.</p>"
    )
    if error:
        body += f"<p class='error' id='error'>{_e(error)}</p>"
    if participant:
        body += (
            f"<p id='welcome-back'>{_e(participant)} さん、続きから / continue as "
            f"{_e(participant)}: <a id='continue' href='/q'>続ける / continue</a></p>"
        )
    body += (
        "<form method='post' action='/start'>"
        f"<input type='hidden' name='csrf' value='{_e(csrf)}'>"
        "<label>参加者ID / participant id (英数字, _ - ; 1-32): "
        "<input id='participant' name='participant' required maxlength='32' "
        "pattern='[A-Za-z0-9_\\-]{1,32}' autocomplete='off'></label>"
        f"<label>年齢 (任意) / age (optional): <select id='age' name='age'>{options}"
        "</select></label>"
        "<button id='start' type='submit'>開始 / Start</button></form>"
    )
    return page("アンケート / Survey", body)


def question_page(
    question: survey_lib.Question, mouth_top: bool, done: int, total: int, csrf: str
) -> bytes:
    """The original, the two completions (order per `mouth_top`, never named) and five choices."""
    top, bottom = ("mouth", "random") if mouth_top else ("random", "mouth")
    image = question.images
    choices = "".join(
        f"<label><input type='radio' id='choice-{c}' name='choice' value='{c}' required> "
        f"{c}. {_e(ja)} / {_e(en)}</label>"
        for c, (ja, en) in survey_lib.CHOICES.items()
    )
    body = (
        f"<p id='progress'>質問 {done + 1} / {total} · question {done + 1} of {total}</p>"
        f"<progress value='{done}' max='{total}'></progress>"
        "<div class='faces'>"
        f"<figure><img id='original' src='/image/{_e(image['original'])}' alt='original'>"
        "<figcaption>元の画像 / original</figcaption></figure>"
        f"<div><figure><img id='top' src='/image/{_e(image[top])}' alt='top'>"
        "<figcaption>上 / top</figcaption></figure>"
        f"<figure><img id='bottom' src='/image/{_e(image[bottom])}' alt='bottom'>"
        "<figcaption>下 / bottom</figcaption></figure></div></div>"
        "<form method='post' action='/answer'><fieldset>"
        "<legend>元の画像により似ているのはどちらですか / which is more similar to the "
        "original?</legend>"
        f"<input type='hidden' name='csrf' value='{_e(csrf)}'>"
        f"<input type='hidden' name='question' value='{_e(question.id)}'>"
        f"{choices}</fieldset><button id='submit' type='submit'>次へ / Next</button></form>"
    )
    return page(f"質問 {done + 1} / {total}", body)


def already_answered_page() -> bytes:
    body = (
        "<h1>回答済み / already answered</h1>"
        "<p>この質問には回答済みです / you already answered this question.</p>"
        "<p><a id='continue' href='/q'>続ける / continue</a></p>"
    )
    return page("回答済み / already answered", body)


def thanks_page(done: int) -> bytes:
    body = (
        "<h1 id='thanks'>ご協力ありがとうございました / Thank you!</h1>"
        f"<p>{done} 問の回答を受け付けました / {done} answers recorded.</p>"
    )
    return page("ありがとうございました / Thank you", body)


def error_page(title: str, message: str) -> bytes:
    body = (
        f"<h1>{_e(title)}</h1><p class='error'>{_e(message)}</p>"
        "<p><a href='/'>最初のページへ / back to the start</a></p>"
    )
    return page(title, body)
