"""Shared test helpers: the per-dtype error bound every fast path is held to.

Also, where no CUDA driver is installed, the GPU tests run under Numba's CUDA simulator. The variable
must be set before Numba is imported (importing Numba reads numba-cuda's configuration), and pytest
loads this file before it imports any test or ``numrope`` module; so the NumbaPerformanceWarning
filter, which imports Numba, is added here (``pytest_configure``) rather than in pyproject.toml.
A value the user set is left alone: ``NUMBA_ENABLE_CUDASIM=0`` skips the GPU tests instead.
"""

import ctypes
import os
import sys
from pathlib import Path


def _cuda_driver_present() -> bool:
    """Whether the CUDA driver library loads (what numba.cuda needs to find a GPU), without importing Numba."""
    names = ("nvcuda.dll",) if sys.platform == "win32" else ("libcuda.so.1", "libcuda.so", "libcuda.dylib")
    for name in names:
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return True
    return False


if "NUMBA_ENABLE_CUDASIM" not in os.environ and not _cuda_driver_present():
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("filterwarnings", "error::numba.core.errors.NumbaPerformanceWarning")


def pytest_ignore_collect(collection_path, config):
    """Helper modules here (not test_*.py) are imported by the tests that use them, which skip
    where an optional package is missing; --doctest-modules must not import them on its own."""
    if collection_path.suffix == ".py" and collection_path.parent == Path(__file__).parent:
        if not collection_path.name.startswith("test_") and collection_path.name != "conftest.py":
            return True
    return None


EPS64 = np.finfo(np.float64).eps


def compute_eps(dtype) -> float:
    """Machine epsilon of the arithmetic numrope uses for x of this dtype (float32 for float16)."""
    return float(np.finfo(np.result_type(np.float32, dtype)).eps)


def rope_tolerance(x, dtype, max_angle=0.0, scaling=1.0):
    """Per-element absolute bound on |apply_rope(x) - exact| for inputs ``x`` (float64 copy).

    Each output ``x0 c - x1 s`` is formed from cos/sin rounded to the compute precision (half an
    ulp each), two rounded products and a rounded sum: at most ``3 eps_c (|x0| + |x1|)`` with unit
    rounding ``eps_c / 2`` and a safety factor 2. The reference's float64 angle ``m theta`` is off
    by up to ``|m theta| eps64 / 2``, which moves its result by that times ``|x0| + |x1|``. Casting
    to a narrower output adds half an ulp of the result.
    """
    x = np.abs(np.asarray(x, dtype=np.float64))
    pair_bound = 2 * scaling * x.max(initial=0.0) if x.size else 0.0
    eps_c = compute_eps(dtype)
    eps_o = float(np.finfo(dtype).eps)
    return pair_bound * (3 * eps_c + max_angle * EPS64) + eps_o * scaling * pair_bound


def assert_matches(actual, expected, x, dtype, max_angle=0.0, scaling=1.0):
    tol = rope_tolerance(x, dtype, max_angle, scaling)
    err = np.abs(np.asarray(actual, dtype=np.float64) - expected)
    worst = np.unravel_index(np.argmax(err), err.shape) if err.size else ()
    assert err.max(initial=0.0) <= tol, (
        f"max error {err.max():.3g} at {worst} exceeds the {np.dtype(dtype)} bound {tol:.3g}"
    )


def numpy_rotation(x, cos, sin, layout, inverse):
    """x rotated by table rows 0..n-1 along axis -3, one rounding per product and per sum, in x's dtype (float32
    for float16 and bfloat16, rounded to them at the end)."""
    wide = np.float64 if x.dtype == np.float64 else np.float32
    dtype = x.dtype
    x, cos, sin = x.astype(wide), cos.astype(wide), sin.astype(wide)
    c, s = cos[:, None, :], sin[:, None, :]
    half = cos.shape[-1]
    if layout == "half":
        x0, x1 = x[..., :half], x[..., half:]
    else:
        x0, x1 = x[..., 0::2], x[..., 1::2]
    # backwards: x0 c - x1 (-s) is x0 c + x1 s exactly
    r0, r1 = (x0 * c + x1 * s, x1 * c - x0 * s) if inverse else (x0 * c - x1 * s, x1 * c + x0 * s)
    out = np.empty_like(x)
    if layout == "half":
        out[..., :half], out[..., half:] = r0, r1
    else:
        out[..., 0::2], out[..., 1::2] = r0, r1
    return out.astype(dtype)


@pytest.fixture
def rng():
    return np.random.default_rng(20210420)  # RoFormer's arXiv submission date


# Helper modules that test files import (they import torch and transformers at the top): pytest's
# doctest collection (--doctest-modules) must not import them on its own where those are missing.
collect_ignore = ["hf_models.py", "model_sweep.py"]
