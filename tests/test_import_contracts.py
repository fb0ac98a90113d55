"""The package's import contracts (pyproject.toml) hold, and a wrong arrow breaks them."""

import os
import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
LINT_IMPORTS = pathlib.Path(sys.executable).with_name("lint-imports")


def _lint_imports(root: pathlib.Path) -> subprocess.CompletedProcess:
    # --no-cache: nothing is kept between runs; PYTHONPATH: the package under `root` is the one read
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip


def test_contracts_are_kept():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Contracts: 7 kept, 0 broken." in result.stdout


def test_an_upward_import_breaks_the_layers(tmp_path):
    shutil.copytree(
        ROOT / "glcic_jax", tmp_path / "glcic_jax", ignore=shutil.ignore_patterns("*.npz", "*.png")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    models = tmp_path / "glcic_jax" / "nets" / "models.py"
    models.write_text(models.read_text() + "\nfrom glcic_jax.training import configs  # noqa\n")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    assert "glcic_jax.nets.models -> glcic_jax.training.configs" in result.stdout


def test_completion_importing_the_synthetic_faces_breaks_two_contracts(tmp_path):
    """Completion may use the segmenter's model, never the data it was trained on."""
    shutil.copytree(
        ROOT / "glcic_jax", tmp_path / "glcic_jax", ignore=shutil.ignore_patterns("*.npz", "*.png")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    photo = tmp_path / "glcic_jax" / "completion" / "photo.py"
    photo.write_text(
        photo.read_text() + "\nfrom glcic_jax.segmenter.synthetic import generator  # noqa\n"
    )
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    assert "Contracts: 5 kept, 2 broken." in result.stdout
    assert "glcic_jax.completion.photo -> glcic_jax.segmenter.synthetic.generator" in result.stdout
