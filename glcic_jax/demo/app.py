"""The demo page: Flask routes over `jobs.JobStore` and the photo pipeline.

    GET  /                              upload one or several photos, choose the model
    POST /complete                      complete them (each face's worn mask), show the job
    GET  /job/<job>                     every photo: input | region found | completion, its
                                        faces (box, score, method, donor), a brush over the
                                        region, downloads
    POST /job/<job>/<i>/region          the painted region (a PNG): complete that photo again
    GET  /job/<job>/<i>/<file>          input.png, region.png, view.png, completed.png,
                                        faces.csv (?download=1 as an attachment)

The page is for one person on their own machine: it binds 127.0.0.1 unless
told otherwise, every POST carries a CSRF token (flask-wtf), uploads are
limited in number and bytes, every file is read by the project's one image
reader (a bad file is a message on the page, not a traceback), and nothing
is written outside the output folder (`jobs`).
"""

import secrets

import flask
from flask_wtf import csrf
from werkzeug import exceptions

from glcic_jax.completion import photo, photo_folder
from glcic_jax.demo import jobs

MAX_PHOTOS = 20
MAX_UPLOAD_BYTES = 64 * 1024 * 1024
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self' data: blob:; script-src 'self'; "
        "style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class Models:
    """The completion models the page offers, each loaded once, sharing one detector and segmenter.

    Args:
      loaders: {label: a function returning an `inference.Completer`}, the first the default.
      detail_bank: a `donor_bank.DonorBank` for every model, or None.
    """

    def __init__(self, loaders: dict, detail_bank=None):
        if not loaders:
            raise ValueError("no completion model to offer")
        self.loaders = dict(loaders)
        self.detail_bank = detail_bank
        self._completers = {}
        self._shared = {}

    @property
    def labels(self) -> list[str]:
        return list(self.loaders)

    def completer(self, label: str) -> photo.PhotoCompleter:
        if label not in self.loaders:
            raise photo.PhotoError(f"unknown model {label!r}")
        if label not in self._completers:
            made = photo.PhotoCompleter(
                self.loaders[label](),
                detector=self._shared.get("detector"),
                mask_segmenter=self._shared.get("mask_net"),
                detail_bank=self.detail_bank,
            )
            self._shared.setdefault("detector", made.detector)
            self._shared.setdefault("mask_net", made.mask_net)
            self._completers[label] = made
        return self._completers[label]


def create_app(models: Models, output_dir) -> flask.Flask:
    """The page's Flask app, storing uploads and results under `output_dir`."""
    store = jobs.JobStore(output_dir)
    app = flask.Flask(__name__)
    app.config.update(
        SECRET_KEY=secrets.token_hex(32),
        MAX_CONTENT_LENGTH=MAX_UPLOAD_BYTES,
        WTF_CSRF_TIME_LIMIT=None,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
    )
    csrf.CSRFProtect(app)

    @app.after_request
    def _headers(response):
        response.headers.update(HEADERS)
        return response

    @app.errorhandler(csrf.CSRFError)
    def _csrf(error):
        return _index(models, "the page had expired: please try again", 400)

    @app.errorhandler(exceptions.RequestEntityTooLarge)
    def _too_large(error):
        limit = MAX_UPLOAD_BYTES // (1024 * 1024)
        return _index(models, f"too much at once: at most {limit} MB per upload", 413)

    @app.errorhandler(jobs.JobError)
    def _missing(error):
        return flask.render_template("error.html", message=str(error)), 404

    @app.get("/")
    def index():
        return _index(models)

    @app.post("/complete")
    def complete():
        files = [f for f in flask.request.files.getlist("photos") if f and f.filename]
        label = flask.request.form.get("model", models.labels[0])
        if not files:
            return _index(models, "choose one or more photos first", 400)
        if len(files) > MAX_PHOTOS:
            return _index(models, f"at most {MAX_PHOTOS} photos at once", 400)
        if label not in models.labels:
            return _index(models, f"unknown model {label!r}", 400)
        job = store.new_job()
        for index, upload in enumerate(files):
            name = upload.filename[-200:]
            path = store.save_upload(job, index, name, upload.read())
            _complete_one(store, models, job, index, name, label, path)
        return flask.redirect(flask.url_for("show_job", job=job))

    @app.get("/job/<job>")
    def show_job(job):
        entries = store.entries(job)
        return flask.render_template("job.html", job=job, entries=entries, models=models.labels)

    @app.post("/job/<job>/<int:index>/region")
    def repaint(job, index):
        entry = next((e for e in store.entries(job) if e.index == index), None)
        if entry is None or entry.status == photo_folder.FAILED:
            raise jobs.JobError(f"no completed photo {index} in job {job}")
        label = flask.request.form.get("model", entry.model)
        rgb = store.input_photo(job, index)
        try:
            region = jobs.decode_mask(flask.request.form.get("region", ""), rgb.shape)
            if label not in models.labels:
                raise photo.PhotoError(f"unknown model {label!r}")
            result = models.completer(label).complete(rgb, "file", user_mask=region)
        except photo.PhotoError as e:
            flask.flash(f"{entry.name}: {e}")
        else:
            store.save_result(job, index, entry.name, label, rgb, result)
        return flask.redirect(flask.url_for("show_job", job=job, _anchor=f"photo-{index}"))

    @app.get("/job/<job>/<int:index>/<name>")
    def job_file(job, index, name):
        path = store.file(job, index, name)
        download = flask.request.args.get("download") == "1"
        return flask.send_file(
            path,
            mimetype=jobs.MEDIA[path.suffix],
            as_attachment=download,
            download_name=f"{job}_{index}_{name}",
            max_age=0,
        )

    return app


def _complete_one(store, models, job, index, name, label, path) -> None:
    """Reads and completes one upload; a bad file or a failure is its message on the page."""
    try:
        rgb = photo.load_photo(path)
        result = models.completer(label).complete(rgb, "mask")
    except photo.PhotoError as e:
        store.save_failure(job, index, name, label, str(e).replace(str(path), name))
    except Exception as e:  # noqa: BLE001 - one odd photo must not end the page
        store.save_failure(job, index, name, label, f"{e.__class__.__name__}: {e}")
    else:
        store.save_result(job, index, name, label, rgb, result)


def _index(models, message: str = "", status: int = 200):
    page = flask.render_template("index.html", models=models.labels, message=message)
    return page, status
