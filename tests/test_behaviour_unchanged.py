"""The shipped models and the study's models give the outputs recorded before the package was restructured.

tests/behaviour_record.py says what is recorded and how to record again. On
the processor the record was made on, every output must be bit-identical;
elsewhere XLA may pick other CPU kernels, so there the bar is 1e-5 (a moved
or changed computation differs by far more).
"""

import behaviour_record
import numpy as np
import pytest

from glcic_jax import locations


@pytest.fixture(scope="module")
def record():
    if not behaviour_record.RECORD.is_file():
        pytest.fail(f"{behaviour_record.RECORD} is missing: python tests/behaviour_record.py")
    with np.load(behaviour_record.RECORD) as saved:
        return {k: saved[k] for k in saved.files}


@pytest.fixture(scope="module")
def outputs(request):
    shared = request.getfixturevalue("shared_data") if _has_shared() else None
    return behaviour_record.compute(shared)


def _has_shared() -> bool:
    # The path conftest's `shared_data` fixture checks, $GLCIC_JAX_MIRROR included (conftest
    # itself is not importable by name: tests/survey has one too).
    return (locations.mirror() / "faces" / "test").is_dir()


def _same_machine(record) -> bool:
    return str(record["machine"]) == behaviour_record.machine()


def test_models_give_the_recorded_completions(record, outputs):
    arrays = [k for k in record if not k.startswith(("sha256:", "machine"))]
    assert len(arrays) == 11  # 5 models x (holes, completed) + the segmenter
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
