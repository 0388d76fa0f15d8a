"""rope_cache: shapes, dtypes, positions forms, and the values against NumPy's cos/sin."""

import numpy as np
import pytest

import numrope
from numrope.variants import Linear

CFG = numrope.RopeConfig(head_dim=64, base=10000.0)


def test_shapes_and_rows(rng):
    cos, sin = numrope.rope_cache(CFG, 5)
    assert cos.shape == sin.shape == (5, 32) and cos.dtype == np.float32
    positions = rng.integers(0, 100, (2, 3))
    c2, s2 = numrope.rope_cache(CFG, positions, dtype=np.float64)
    assert c2.shape == (2, 3, 32) and c2.dtype == np.float64
    full_c, full_s = numrope.rope_cache(CFG, 100, dtype=np.float64)
    np.testing.assert_array_equal(c2, full_c[positions])  # row p is position p
    np.testing.assert_array_equal(s2, full_s[positions])
    assert numrope.rope_cache(CFG, 0)[0].shape == (0, 32)


def test_inv_freq_formula():
    cfg = numrope.RopeConfig(head_dim=80, rotary_dim=32, base=500000.0)
    i = np.arange(16)
    np.testing.assert_allclose(cfg.inv_freq(), 500000.0 ** (-2.0 * i / 32), rtol=2e-16)
    assert cfg.inv_freq().dtype == np.float64
    cfg.inv_freq()[0] = 5.0  # a fresh array each time: the configuration is unaffected
    assert cfg.inv_freq()[0] == 1.0


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_values_against_numpy(dtype, rng):
    """Small angles, where NumPy's cos of the rounded float64 product is itself within an ulp."""
    positions = np.concatenate([np.arange(64), rng.uniform(-3, 3, 64)])
    cos, sin = numrope.rope_cache(CFG, positions, dtype=dtype)
    angles = positions[:, None] * CFG.inv_freq()
    eps = np.finfo(dtype).eps
    # float64: 1 ulp of ours + 1 ulp of NumPy + the product's rounding (|angle| <= 64 rad, 2**-53 * 64)
    tol = 2 * eps + (64 * 2**-53 if dtype == np.float64 else 0.0)
    np.testing.assert_allclose(cos, np.cos(angles), rtol=0, atol=tol)
    np.testing.assert_allclose(sin, np.sin(angles), rtol=0, atol=tol)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_narrow_tables_rounded_once_from_float64(dtype, rng):
    positions = rng.integers(0, 2**31, 300)
    c64, s64 = numrope.rope_cache(CFG, positions, dtype=np.float64)
    c, s = numrope.rope_cache(CFG, positions, dtype=dtype)
    np.testing.assert_array_equal(c, c64.astype(dtype))
    np.testing.assert_array_equal(s, s64.astype(dtype))


def test_pythagorean_identity_at_huge_positions(rng):
    positions = rng.integers(2**30, 2**31, 1000)
    cos, sin = numrope.rope_cache(CFG, positions, dtype=np.float64)
    np.testing.assert_allclose(cos**2 + sin**2, 1.0, rtol=0, atol=4 * np.finfo(np.float64).eps)


def test_negative_positions_rotate_backwards(rng):
    positions = rng.integers(0, 10**9, 200)
    c_pos, s_pos = numrope.rope_cache(CFG, positions, dtype=np.float64)
    c_neg, s_neg = numrope.rope_cache(CFG, -positions, dtype=np.float64)
    np.testing.assert_array_equal(c_neg, c_pos)  # exact: the reduction is odd-symmetric
    np.testing.assert_array_equal(s_neg, -s_pos)


def test_integer_and_float_positions_agree(rng):
    positions = rng.integers(-(2**32) + 1, 2**32, 100)  # the range of exact angles for theta_0 = 1
    a = numrope.rope_cache(CFG, positions, dtype=np.float64)
    b = numrope.rope_cache(CFG, positions.astype(np.float64), dtype=np.float64)
    np.testing.assert_array_equal(a[0], b[0])


def test_attention_scaling_and_linear_scaling_are_folded_in():
    cfg = numrope.RopeConfig(head_dim=64, scaling=Linear(factor=4.0))
    np.testing.assert_array_equal(cfg.inv_freq(), CFG.inv_freq() / 4.0)
    cos, _ = numrope.rope_cache(cfg, 40, dtype=np.float64)
    ref, _ = numrope.rope_cache(CFG, np.arange(40) / 4.0, dtype=np.float64)
    np.testing.assert_allclose(cos, ref, rtol=0, atol=4e-16)


def test_parallel_and_serial_tables_agree():
    big = numrope.rope_cache(CFG, 5000, dtype=np.float64)  # parallel kernel
    small = numrope.rope_cache(CFG, np.arange(4990, 5000), dtype=np.float64)  # serial kernel
    np.testing.assert_array_equal(big[0][-10:], small[0])
