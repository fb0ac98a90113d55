"""Shared pytest fixtures: the one path to the real face photos, and --runslow."""

import os
import pathlib
import tempfile

import pytest

# Tests run on 2 CPU cores; set before any test imports jax. The compilation
# cache lives in a fresh temporary folder per session (nothing is cached
# between runs); it lets the subprocess tests reuse the in-process compiles.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="glcic-jax-cache-"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def pytest_addoption(parser):
    parser.addoption(
        "--runslow", action="store_true", default=False, help="also run tests marked slow"
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes minutes; run with --runslow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    """../shared/data beside the project root, or a skip saying it is missing."""
    if not (SHARED_DATA / "faces" / "train").is_dir():
        pytest.skip(f"real face photos not found at {SHARED_DATA} (see README: Data)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def faces_dir(shared_data) -> pathlib.Path:
    """The 600 LFW crops (train/ and test/)."""
    return shared_data / "faces"
