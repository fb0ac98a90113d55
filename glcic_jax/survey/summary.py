"""The survey's tables: which model people found more similar, per question and training point.

Every answer is first put on the mouth scale (:func:`survey.mouth_score`,
using the orientation recorded when the question was shown): 5 = the mouth
model's completion is more similar, 1 = the random model's, 3 = about the
same. Then, as in the study:

  per question   mean score with a 95% Student-t interval over participants,
                 the winner (mouth if the mean is above 3, random below, tie at 3)
                 and how many participants leaned each way
  per point      questions won by each model (and ties), a sign test of those
                 wins, and the mean of the question means with its 95% interval
  per age band   participants, answers and mean score

`write_report` writes them as Markdown and CSV plus a plot.
"""

import csv
import math
import pathlib

import numpy as np

from glcic_jax.evaluation import stats
from glcic_jax.survey import database
from glcic_jax.survey import design as survey_lib

CONFIDENCE = 0.95


def t_interval(values, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval; NaN interval for fewer than two values."""
    x = np.asarray(values, np.float64)
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan
    from scipy import stats as scipy_stats  # only the summary needs scipy

    half = scipy_stats.t.ppf((1 + confidence) / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return mean, mean - float(half), mean + float(half)


def winner(mean: float) -> str:
    if math.isnan(mean) or mean == 3:
        return "tie"
    return "mouth" if mean > 3 else "random"


def scored_answers(rows: list[dict]) -> list[dict]:
    """Answer rows (from `SurveyDB.rows`) with `mouth_score` added."""
    return [{**r, "mouth_score": survey_lib.mouth_score(r["choice"], bool(r["mouth_on_top"]))}
            for r in rows]  # fmt: skip


def question_table(questions: list[dict], answers: list[dict]) -> list[dict]:
    """One row per question in survey order (questions nobody answered have n = 0)."""
    table = []
    for q in questions:
        scores = [a["mouth_score"] for a in answers if a["question"] == q["id"]]
        mean, low, high = t_interval(scores)
        table.append({
            "point": q["point"], "question": q["id"], "image_index": q["image_index"],
            "source": q["source"], "n": len(scores), "mean": mean, "ci_low": low,
            "ci_high": high, "winner": winner(mean) if scores else "",
            "n_prefer_mouth": sum(s > 3 for s in scores),
            "n_prefer_random": sum(s < 3 for s in scores),
            "n_same": sum(s == 3 for s in scores),
        })  # fmt: skip
    return table


def point_table(question_rows: list[dict], answers: list[dict]) -> list[dict]:
    """One row per training point: question wins per model and the mean of question means."""
    table = []
    for point in sorted({q["point"] for q in question_rows}):
        rows = [q for q in question_rows if q["point"] == point and q["n"]]
        mouth = sum(q["winner"] == "mouth" for q in rows)
        random_ = sum(q["winner"] == "random" for q in rows)
        mean, low, high = t_interval([q["mean"] for q in rows])
        at_point = [a for a in answers if a["point"] == point]
        table.append({
            "point": point, "questions": len(rows), "answers": len(at_point),
            "participants": len({a["participant"] for a in at_point}),
            "mouth_wins": mouth, "random_wins": random_, "ties": len(rows) - mouth - random_,
            "sign_test_p": stats.binomial_two_sided_p(mouth, mouth + random_),
            "mean": mean, "ci_low": low, "ci_high": high,
        })  # fmt: skip
    return table


def age_table(answers: list[dict]) -> list[dict]:
    table = []
    for band in survey_lib.AGE_BANDS:
        rows = [a for a in answers if a["age_band"] == band]
        if rows:
            table.append({
                "age_band": band or "not given",
                "participants": len({a["participant"] for a in rows}),
                "answers": len(rows),
                "mean": float(np.mean([a["mouth_score"] for a in rows])),
            })  # fmt: skip
    return table


def summarize(db_path) -> dict:
    """All tables of a survey database (read only)."""
    if not pathlib.Path(db_path).is_file():
        raise survey_lib.SurveyError(f"no survey database at {db_path}")
    db = database.SurveyDB(db_path)
    questions = db.questions()
    if not questions:
        raise survey_lib.SurveyError(f"{db_path} is not bound to a survey (never served)")
    answers = scored_answers(db.rows())
    q_table = question_table(questions, answers)
    return {
        "meta": db.meta(),
        "answers": answers,
        "questions": q_table,
        "points": point_table(q_table, answers),
        "ages": age_table(answers),
    }


def _fmt(v) -> str:
    if isinstance(v, float):
        return "–" if math.isnan(v) else f"{v:.2f}"
    return str(v)


def _markdown_table(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def _write_csv(path: pathlib.Path, rows: list[dict], columns: list[str]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def plot(summary: dict, path) -> None:
    """Mean mouth score per question with its interval, one panel per training point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [p["point"] for p in summary["points"]] or [None]
    fig, axes = plt.subplots(1, len(points), figsize=(5 * len(points), 3.6), squeeze=False)
    for ax, point in zip(axes[0], points):
        rows = [q for q in summary["questions"] if q["point"] == point and q["n"]]
        x = np.arange(len(rows))
        means = np.array([q["mean"] for q in rows])
        err = np.array([[q["mean"] - q["ci_low"], q["ci_high"] - q["mean"]] for q in rows]).T
        colors = ["tab:orange" if q["winner"] == "mouth" else "tab:blue" if q["winner"] ==
                  "random" else "gray" for q in rows]  # fmt: skip
        ax.axhline(3, color="gray", lw=1, ls="--")
        if rows:
            ax.errorbar(x, means, yerr=np.nan_to_num(err), fmt="none", ecolor="black", capsize=3)
            ax.scatter(x, means, c=colors, zorder=3)
        ax.set_xticks(x, [str(q["image_index"]) for q in rows])
        ax.set_ylim(0.8, 5.2)
        ax.set_xlabel("question (test image)")
        ax.set_ylabel("score (>3: mouth model more similar)")
        ax.set_title(f"training step {point}")
    handles = [
        plt.Line2D([], [], marker="o", ls="", color=c, label=f"{w} model won")
        for w, c in (("mouth", "tab:orange"), ("random", "tab:blue"))
    ]
    axes[0][-1].legend(handles=handles + [plt.Line2D([], [], marker="o", ls="", color="gray",
                       label="tie")], loc="lower right", fontsize="small")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


Q_COLUMNS = ["point", "question", "image_index", "n", "mean", "ci_low", "ci_high", "winner",
             "n_prefer_mouth", "n_prefer_random", "n_same", "source"]  # fmt: skip
P_COLUMNS = ["point", "questions", "answers", "participants", "mouth_wins", "random_wins", "ties",
             "sign_test_p", "mean", "ci_low", "ci_high"]  # fmt: skip
A_COLUMNS = ["participant", "age_band", "question", "point", "choice", "mouth_on_top",
             "mouth_score", "answered_at"]  # fmt: skip


def write_report(db_path, out_dir) -> dict:
    """summary.md, questions.csv, points.csv, ages.csv, answers.csv and scores.png in `out_dir`."""
    summary = summarize(db_path)
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(out / "questions.csv", summary["questions"], Q_COLUMNS)
    _write_csv(out / "points.csv", summary["points"], P_COLUMNS)
    _write_csv(out / "ages.csv", summary["ages"], ["age_band", "participants", "answers", "mean"])
    _write_csv(out / "answers.csv", summary["answers"], A_COLUMNS)
    plot(summary, out / "scores.png")
    meta = summary["meta"]
    text = [
        "# Survey: random-hole model vs mouth-hole model",
        "",
        f"Survey `{meta.get('survey_id', '?')}`, database `{db_path}`. Scores are on the mouth "
        "scale (the top/bottom order is undone): 5 = the mouth model's completion is more "
        "similar to the original, 1 = the random model's, 3 = about the same. Intervals are "
        f"{CONFIDENCE:.0%} Student-t; a question's winner is the side of 3 its mean falls on.",
        "",
        "## Per training point",
        "",
        _markdown_table(summary["points"], P_COLUMNS),
        "",
        "`mean` is the mean of the question means; `sign_test_p` is the exact two-sided sign "
        "test of the question wins (ties dropped).",
        "",
        "## Per question",
        "",
        _markdown_table(summary["questions"], Q_COLUMNS[:-1]),
        "",
        "## Participants by age band",
        "",
        _markdown_table(summary["ages"], ["age_band", "participants", "answers", "mean"]),
        "",
        "![mean score per question](scores.png)",
        "",
    ]
    (out / "summary.md").write_text("\n".join(text))
    return summary
