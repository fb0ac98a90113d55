"""The shipped models and the study's models give the outputs recorded before the package was restructured.

tests/behaviour_record.py says what is recorded and how to record again. On
the processor the record was made on, every output must be bit-identical;
elsewhere XLA may pick other CPU kernels, so there the bar is 1e-5 (a moved
or changed computation differs by far more).
"""

import os
import subprocess
import sys

import behaviour_record
import numpy as np
import pytest


@pytest.fixture(scope="module")
def record():
    if not behaviour_record.RECORD.is_file():
        pytest.fail(f"{behaviour_record.RECORD} is missing: python tests/behaviour_record.py")
    with np.load(behaviour_record.RECORD) as saved:
        return {k: saved[k] for k in saved.files}


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """The outputs now, computed in a subprocess at XLA's default optimisation level.

    The record was made at the default level; the suite compiles at level 0
    (conftest), which may round differently.
    """
    path = tmp_path_factory.mktemp("behaviour") / "outputs.npz"
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if "optimization_level" not in f]
    env = dict(os.environ, XLA_FLAGS=" ".join(flags))
    script = behaviour_record.REPO_ROOT / "tests" / "behaviour_record.py"
    result = subprocess.run(
        [sys.executable, str(script), f"--outputs={path}"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(path) as saved:
        return {k: saved[k] for k in saved.files}


def _same_machine(record) -> bool:
    return str(record["machine"]) == behaviour_record.machine()


def test_models_give_the_recorded_completions(record, outputs):
    arrays = [k for k in record if not k.startswith(("sha256:", "machine"))]
    assert len(arrays) == 12  # 5 models x (holes, completed) + the segmenter + the refiner
    for key in arrays:
        if _same_machine(record):
            assert np.array_equal(outputs[key], record[key]), f"{key} changed"
        else:
            np.testing.assert_allclose(outputs[key], record[key], atol=1e-5, err_msg=key)


def test_photo_pipeline_gives_the_recorded_photos(record, outputs, shared_data):
    keys = [k for k in record if k.startswith("sha256:photo/")]
    assert len(keys) == 2 * len(behaviour_record.PHOTO_FACES)
    if not _same_machine(record):
        pytest.skip(f"record made on {record['machine']}: photo digests only compare there")
    for key in keys:
        name = key.removeprefix("sha256:")
        assert behaviour_record.digest(outputs[name]) == str(record[key]), f"{name} changed"
