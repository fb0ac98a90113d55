"""Every module, script and file path that README.md and docs/ name exists in the tree.

A reader who follows a name from the docs must find it: paths such as
`glcic_jax/faces/align.py` or `experiments/complete.py`, and dotted names
such as `glcic_jax.completion.model_io.resolve` (the module, and the name
defined in it).
"""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
DOCS += sorted((ROOT / "glcic_jax").rglob("*.md"))  # model cards
PATH = re.compile(r"\b((?:glcic_jax|experiments|tests|docs)/[\w./-]*\w)")
DOTTED = re.compile(r"\b(glcic_jax(?:\.\w+)+)")


def _module_file(parts: list[str]) -> pathlib.Path | None:
    base = ROOT.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _defines(module: pathlib.Path, name: str) -> bool:
    text = module.read_text()
    pattern = rf"^(?:def|class)\s+{name}\b|^{name}\s*[:=]|^\s+def\s+{name}\b|import .*\b{name}\b"
    return re.search(pattern, text, re.M) is not None


def missing_names(text: str) -> list[str]:
    missing = []
    for path in set(PATH.findall(text)):
        if "*" in path or "<" in path:
            continue
        if not (ROOT / path).exists() and not (ROOT / path).with_suffix(".py").exists():
            missing.append(path)
    for dotted in set(DOTTED.findall(text)):
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            module = _module_file(parts[:cut])
            if module is not None:
                rest = parts[cut:]
                if rest and not _defines(module, rest[0]):
                    missing.append(dotted)
                break
        else:
            missing.append(dotted)
    return sorted(missing)


def test_the_checker_finds_a_moved_module():
    assert missing_names("see glcic_jax/faces/overlay.py and glcic_jax.faces.synthetic") == [
        "glcic_jax.faces.synthetic",
        "glcic_jax/faces/overlay.py",
    ]
    assert missing_names("glcic_jax.completion.model_io.resolve, experiments/complete.py") == []
    assert missing_names("glcic_jax.completion.model_io.no_such_function") == [
        "glcic_jax.completion.model_io.no_such_function"
    ]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_named_path_exists(doc):
    assert missing_names(doc.read_text()) == []
