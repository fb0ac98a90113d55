"""JAX's persistent compilation cache in the workdir (training/compile_cache.py)."""

import jax
import jax.numpy as jnp
import pytest
from jax.experimental.compilation_cache import compilation_cache

from glcic_jax.training import compile_cache


@pytest.fixture
def restored_cache_config():
    """The suite's own cache settings, put back after the test changes them."""
    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs")
    saved = {name: getattr(jax.config, name) for name in names}
    yield
    compilation_cache.reset_cache()
    for name, value in saved.items():
        jax.config.update(name, value)


def test_the_cache_goes_in_the_workdir_unless_the_user_names_one(
    tmp_path, monkeypatch, restored_cache_config
):
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    path = compile_cache.enable(tmp_path / "run")
    assert path == tmp_path / "run" / compile_cache.FOLDER
    assert jax.config.jax_compilation_cache_dir == str(path)
    assert compile_cache.enable(tmp_path / "run", str(tmp_path / "mine")) == tmp_path / "mine"
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "env"))
    assert compile_cache.enable(tmp_path / "run", str(tmp_path / "mine")) == tmp_path / "env"


def test_a_second_compile_of_the_same_step_is_loaded_and_counted(
    tmp_path, monkeypatch, restored_cache_config
):
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    path = compile_cache.enable(tmp_path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    count = compile_cache.CacheCount().listen()

    def step(x):  # a shape no other test compiles
        return jnp.tanh(x @ x.T).sum() * 1.2345

    x = jnp.ones((37, 41))
    jax.jit(step)(x).block_until_ready()
    assert count.misses >= 1 and any(path.iterdir())
    jax.clear_caches()  # as a new process would start: nothing compiled in memory
    before = count.hits
    jax.jit(step)(x).block_until_ready()
    assert count.hits == before + 1
    assert count.line(path).startswith(f"compile cache: {count.hits} compilations loaded, ")
