"""The blind A/B survey of the two models: build it, serve it, summarize the answers.

Wiring only; the logic is in glcic_jax.survey: design (definition), database
(answers), webapp (web pages, served by waitress) and summary (tables). From
the repo root:

  python experiments/survey.py build --random=runs/random-cpu64 \
      --mouth=runs/mouth-cpu64 --data_dir=data/celeba10k-aligned --n=10 --out=survey1
  python experiments/survey.py serve --survey=survey1 --db=survey1/answers.db --port=8000
  python experiments/survey.py summarize --db=survey1/answers.db --out=survey1/report

`build` completes n test images in the mouth box with both runs at two
training points (default: the two latest checkpoint steps both runs have;
`--steps=a,b` to choose). `serve` binds 127.0.0.1 unless --host says
otherwise; stop it with Ctrl-C (answers are on disk as they are given);
`--new_ids_per_hour` bounds the ids one client address registers per hour.
"""

import sys

from absl import app, flags, logging

from glcic_jax.survey import admission, design, webapp
from glcic_jax.survey import summary as survey_summary

COMMANDS = ("build", "serve", "summarize")

_RANDOM = flags.DEFINE_string("random", None, "build: workdir of the run trained on random holes.")
_MOUTH = flags.DEFINE_string("mouth", None, "build: workdir of the run trained on the mouth hole.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "build: data folder; its test split is used.")
_N = flags.DEFINE_integer("n", 10, "build: questions (test images) per training point.")
_STEPS = flags.DEFINE_list("steps", [], "build: checkpoint steps (default: two latest common).")
_SEED = flags.DEFINE_integer("seed", 0, "build: picks the test images.")
_DISPLAY = flags.DEFINE_integer("display_size", 256, "build: side of the shown images, px.")
_RESAMPLE = flags.DEFINE_enum("resample", "lanczos", ["lanczos", "nearest"], "build: upscaling.")
_OUT = flags.DEFINE_string("out", None, "build: new survey folder; summarize: report folder.")
_SURVEY = flags.DEFINE_string("survey", None, "serve: the survey folder.")
_DB = flags.DEFINE_string("db", None, "serve/summarize: the SQLite answers database.")
_HOST = flags.DEFINE_string("host", "127.0.0.1", "serve: address to bind.")
_PORT = flags.DEFINE_integer(
    "port", 8000, "serve: port (0: any free port, printed).", lower_bound=0, upper_bound=65535
)
_NEW_IDS = flags.DEFINE_integer(
    "new_ids_per_hour",
    admission.NEW_IDS_PER_ADDRESS_PER_HOUR,
    "serve: new participant ids one client address may register per hour.",
    lower_bound=1,
)


def _require(*holders):
    missing = [f"--{h.name}" for h in holders if h.value in (None, "")]
    if missing:
        raise app.UsageError(f"{sys.argv[1]} needs {', '.join(missing)}")


def main(argv):
    if len(argv) != 2 or argv[1] not in COMMANDS:
        raise app.UsageError(f"usage: survey.py {{{'|'.join(COMMANDS)}}} --flags")
    command = argv[1]
    try:
        if command == "build":
            _require(_RANDOM, _MOUTH, _DATA_DIR, _OUT)
            steps = [int(s) for s in _STEPS.value] or None
            built = design.build(
                _OUT.value, _RANDOM.value, _MOUTH.value, _DATA_DIR.value, _N.value, steps,
                _SEED.value, _DISPLAY.value, _RESAMPLE.value,
            )  # fmt: skip
            print(f"{len(built.questions)} questions at steps {list(built.points)} in {_OUT.value}")
        elif command == "serve":
            _require(_SURVEY, _DB)
            server = webapp.make_server(
                _SURVEY.value, _DB.value, _HOST.value, _PORT.value, _NEW_IDS.value
            )
            for url in webapp.urls(server):
                print(f"serving the survey on {url}", flush=True)
            server.run()  # until Ctrl-C; every answer is on disk once acknowledged
        else:
            _require(_DB, _OUT)
            summary = survey_summary.write_report(_DB.value, _OUT.value)
            for row in summary["points"]:
                print(
                    f"step {row['point']}: mouth won {row['mouth_wins']}, random "
                    f"{row['random_wins']}, ties {row['ties']} of {row['questions']} questions; "
                    f"mean score {row['mean']:.2f} ({row['answers']} answers)"
                )
            print(f"report in {_OUT.value}/summary.md")
    except design.SurveyError as e:
        logging.error("%s", e)
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)
