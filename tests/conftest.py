"""Shared pytest fixtures: the one path to the real face photos, and --runslow."""

import os
import pathlib
import shutil
import tempfile

import numpy as np
import pytest

# Tests run on 2 CPU cores; set before any test imports jax. The compilation
# cache lives in a fresh temporary folder per session (nothing is cached
# between runs, and the folder goes when the session ends); it lets the
# subprocess tests reuse the in-process compiles.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
_SESSION_CACHE = None
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _SESSION_CACHE = tempfile.mkdtemp(prefix="glcic-jax-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _SESSION_CACHE
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
# The suite compiles far more than it computes (tiny configs): LLVM's optimisation of XLA's CPU
# code at level 0 halves the compile time (two 10-step tiny runs: 108 s -> 61 s). Subprocesses
# inherit it. tests/behaviour_record.py runs its models with the default level.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0"
    ).strip()

from glcic_jax import locations  # noqa: E402  (after the environment above; imports no jax)

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
# The lab's mirror: ../shared/data beside the project, or $GLCIC_JAX_MIRROR (as the library reads it).
SHARED_DATA = locations.mirror()


def pytest_unconfigure(config):
    if _SESSION_CACHE is not None:
        shutil.rmtree(_SESSION_CACHE, ignore_errors=True)


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
        pytest.skip(
            f"real face photos not found at {SHARED_DATA} (README: Data; GLCIC_JAX_MIRROR points elsewhere)"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def faces_dir(shared_data) -> pathlib.Path:
    """The 600 LFW crops (train/ and test/)."""
    return shared_data / "faces"


@pytest.fixture(scope="session")
def celeba_test_faces(shared_data):
    """The first sixteen CelebA test faces at 64 px, float32 in [0, 1]."""
    from glcic_jax.dataset import folders

    root = shared_data / "celeba10k"
    if not (root / "test").is_dir():
        pytest.skip(f"{root / 'test'} not found")
    files = folders.list_images(root, "test")[:16]
    return np.stack([folders.load_image(f, 64) for f in files]).astype(np.float32) / 255.0


def _tiny_run_config(mask: str = "mouth"):
    """The tiny preset crossing all three phases in 10 steps, checkpoints at 5 and 10."""
    from glcic_jax.training import configs

    config = configs.get_config("tiny")
    config.mask = mask
    config.phase1_steps, config.phase2_steps, config.total_steps = 4, 2, 10
    config.log_every, config.checkpoint_every, config.sample_every = 2, 5, 100
    return config


@pytest.fixture(scope="session")
def tiny_run_config():
    """A function of the hole regime: the tiny preset crossing all three phases in 10 steps."""
    return _tiny_run_config


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory, faces_dir) -> dict:
    """Two trained tiny runs, {"mouth": workdir, "random": workdir}, shared by the suite.

    Compiling the training steps is most of a tiny run's time; the suite pays
    it once. Tests may add files (e.g. eval/) but must not train further here.
    """
    from glcic_jax.training import train

    runs = {}
    for mask in ("mouth", "random"):
        workdir = tmp_path_factory.mktemp(f"tiny-{mask}")
        assert train.train_and_evaluate(_tiny_run_config(mask), workdir, faces_dir) == 10
        runs[mask] = workdir
    return runs


def _run_state(workdir, step=None, initial: bool = False):
    """The whole train state of a run's checkpoint at `step` (default: the latest), on the host.

    With `initial`, the state that run started from instead (same config and
    mean pixel, the seed's initial weights).
    """
    import jax

    from glcic_jax.training import checkpoint, configs, steps

    config = configs.get_config("tiny")
    ckpts = checkpoint.Checkpoints(workdir, read_only=True)
    try:
        meta = ckpts.read_meta(step)
        config.update(meta["config"])
        nets = steps.build_networks(config)
        if initial:
            mean_pixel = np.asarray(meta["mean_pixel"], np.float32)
            return jax.device_get(jax.jit(lambda: steps.init_state(config, nets, mean_pixel))())
        abstract = jax.eval_shape(lambda: steps.init_state(config, nets, np.zeros(3)))
        state = ckpts.restore(checkpoint.abstract_like(abstract), step)
    finally:
        ckpts.close()
    return jax.device_get(state)


@pytest.fixture(scope="session")
def run_state():
    """A function (workdir, step=None, initial=False) -> the train state of that checkpoint."""
    return _run_state


def _assert_networks_close(a, b, start):
    """Two train states' networks (parameters and BatchNorm statistics) agree up to float noise.

    `start` is the state both trained from. Reductions in another order (more
    devices or processes) change the last bits, and Adam turns that into
    update-sized differences where a gradient is ~0 (e.g. the first conv's
    taps on the constant mask channel), so single values may differ by up to
    ~1e-3 after a few steps. The networks agree when that noise is small
    against what training changed: under 1% of the update's norm (measured:
    0.24% for 4 devices against 1 after 6 tiny steps). The optimizer moments
    scale with the gradients and are left out.
    """
    import jax

    nets = ("gen", "gen_stats", "disc", "disc_stats")
    x, y, x0 = (
        np.concatenate(
            [np.ravel(v) for n in nets for v in jax.tree_util.tree_leaves(getattr(s, n))]
        )
        for s in (a, b, start)
    )
    np.testing.assert_allclose(x, y, atol=5e-3)
    assert np.linalg.norm(x - y) < 0.01 * np.linalg.norm(x - x0)


@pytest.fixture(scope="session")
def assert_networks_close():
    return _assert_networks_close


def _untrained_like(shipped):
    """A Completer of `shipped`'s network and mean pixel with the weights training starts from."""
    from flax import nnx

    from glcic_jax.completion import inference
    from glcic_jax.nets import factory

    # The completion network draws first from the seed, as in training.
    fresh = factory.completion_network(shipped.config, nnx.Rngs(shipped.config.seed))
    _, params, stats = nnx.split(fresh, nnx.Param, nnx.BatchStat)
    return inference.Completer(shipped.config, params, stats, shipped.mean_pixel, 0)


@pytest.fixture(scope="session")
def untrained_like():
    """A function: a shipped Completer -> the same network with fresh weights (bars must fail it)."""
    return _untrained_like


@pytest.fixture(scope="session")
def templates_dir(shared_data):
    """The 21 face-mask templates."""
    return shared_data / "mask_overlays"


@pytest.fixture(scope="session")
def canonical_face_photo():
    """(a smooth random 256 px RGB 'photo', its face's landmarks): the canonical frontal face."""
    import cv2

    from glcic_jax.face_masks import overlay

    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (8, 8, 3)).astype(np.uint8)
    return cv2.resize(small, (256, 256), interpolation=cv2.INTER_CUBIC), overlay.CANONICAL.copy()


# Headless Chromium (Debian's chromium and chromium-driver), for the browser tests.
CHROMIUM = pathlib.Path("/usr/bin/chromium")
CHROMEDRIVER = pathlib.Path("/usr/bin/chromedriver")
# Flags that work headless in containers (no sandbox, no GPU, no /dev/shm, no network chatter).
CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--disable-quic",
)  # fmt: skip


@pytest.fixture
def make_chromium(monkeypatch):
    """A function (profile folder) -> a Selenium driver of headless Chromium, or a skip saying why.

    An explicit driver path, and Selenium Manager told to stay offline: nothing is downloaded.
    """
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(
            "browser test needs Debian's chromium and chromium-driver"
            " (apt-get install -y chromium chromium-driver)"
        )
    monkeypatch.setenv("SE_OFFLINE", "true")
    monkeypatch.setenv("SE_AVOID_STATS", "true")
    drivers = []

    def make(profile: pathlib.Path):
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(
            service=Service(executable_path=str(CHROMEDRIVER)), options=options
        )
        driver.set_page_load_timeout(30)
        drivers.append(driver)
        return driver

    yield make
    for driver in drivers:
        try:
            driver.quit()
        except Exception:  # noqa: BLE001 - already closed by the test
            pass
