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
`--new_ids_per_hour` bounds the ids one client address registers per hour,
`--connections_per_address` the connections it holds open at once (behind a
reverse proxy every participant has the proxy's address: raise both).
"""

import sys

from absl import app, flags, logging

from glcic_jax import web_server
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
_CONNECTIONS = flags.DEFINE_integer(
    "connections_per_address",
    web_server.PER_ADDRESS,
    "serve: connections one client address may hold open at once (more are closed on arrival).",
    lower_bound=1,
)


def _usage_error(message: str):
    """One line on stderr and exit status 2: not absl's page of usage."""
    print(f"survey.py: {message}", file=sys.stderr)
    sys.exit(2)


def _require(command: str, *holders):
    missing = [f"--{h.name}" for h in holders if h.value in (None, "")]
    if missing:
        _usage_error(f"{command} needs {', '.join(missing)}")


def _build_steps() -> list[int] | None:
    """--steps as checkpoint steps (None: the default), or a one-line refusal."""
    steps = []
    for value in _STEPS.value:
        try:
            step = int(value)
        except ValueError:
            step = -1
        if step < 0:
            _usage_error(f"--steps must be checkpoint steps (integers >= 0), not {value!r}")
        steps.append(step)
    return steps or None


def _check_build_flags() -> None:
    for holder, low in ((_N, 1), (_SEED, 0), (_DISPLAY, 1)):
        if holder.value < low:
            _usage_error(f"--{holder.name} must be >= {low}, not {holder.value}")


def main(argv):
    usage = f"usage: survey.py {{{'|'.join(COMMANDS)}}} --flags"
    if len(argv) < 2:
        _usage_error(f"no command given; {usage}")
    if argv[1] not in COMMANDS:
        _usage_error(f"unknown command {argv[1]!r}; {usage}")
    if len(argv) > 2:
        _usage_error(f"unexpected argument {' '.join(argv[2:])!r}; {usage}")
    command = argv[1]
    try:
        if command == "build":
            _require(command, _RANDOM, _MOUTH, _DATA_DIR, _OUT)
            _check_build_flags()
            steps = _build_steps()
            built = design.build(
                _OUT.value, _RANDOM.value, _MOUTH.value, _DATA_DIR.value, _N.value, steps,
                _SEED.value, _DISPLAY.value, _RESAMPLE.value,
            )  # fmt: skip
            print(f"{len(built.questions)} questions at steps {list(built.points)} in {_OUT.value}")
        elif command == "serve":
            _require(command, _SURVEY, _DB)
            server = webapp.make_server(
                _SURVEY.value,
                _DB.value,
                _HOST.value,
                _PORT.value,
                _NEW_IDS.value,
                _CONNECTIONS.value,
            )
            for url in webapp.urls(server):
                print(f"serving the survey on {url}", flush=True)
            server.run()  # until Ctrl-C; every answer is on disk once acknowledged
        else:
            _require(command, _DB, _OUT)
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
