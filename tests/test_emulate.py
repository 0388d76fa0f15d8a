"""numrope.validation.emulate: roundings checked against ml_dtypes and NumPy's own float16 arithmetic."""

import sys

import numpy as np
import pytest

import numrope
from numrope import reference
from numrope.validation import emulate
from numrope.validation.emulate import round_to

ml_dtypes = pytest.importorskip("ml_dtypes")

CFG = numrope.RopeConfig(head_dim=32, base=10000.0)


def test_round_to_bfloat16_matches_ml_dtypes(rng):
    specials = np.array(
        [0.0, -0.0, 1 + 2**-8, 1 + 3 * 2**-8, -(1 + 2**-8), np.inf, -np.inf, 3.3895e38, 1e-40, 2**-133, 65504.0],
        np.float32,
    )
    spread = rng.standard_normal(10000) * 10.0 ** rng.integers(-30, 30, 10000)
    values = np.concatenate([specials, spread.astype(np.float32)])
    got = round_to(values, "bfloat16")
    want = values.astype(ml_dtypes.bfloat16).astype(np.float32)
    np.testing.assert_array_equal(got, want)
    assert np.isnan(round_to(np.float32(np.nan), "bfloat16"))


def test_round_to_other_precisions(rng):
    values = rng.standard_normal(1000) * 1e3
    np.testing.assert_array_equal(round_to(values, "float16"), values.astype(np.float16).astype(np.float32))
    np.testing.assert_array_equal(round_to(values, "float32"), values.astype(np.float32))
    assert round_to(values, "float64").dtype == np.float64
    with pytest.raises(ValueError, match="precision"):
        round_to(values, "float8")


def test_float64_everything_is_the_reference(rng):
    x = rng.standard_normal((2, 20, 3, 32))
    y = emulate.apply_rope(x, CFG, 5, angles="float64")
    np.testing.assert_allclose(y, reference.complex_form(x, CFG, 5), rtol=0, atol=1e-14)
    assert y.dtype == np.float64


def test_float16_multiply_is_numpys_float16_arithmetic(rng):
    """table and compute in float16: each product and sum rounded to float16, as NumPy's float16 ops round."""
    x = rng.standard_normal((1, 16, 2, 32)).astype(np.float16)
    positions = np.arange(16) + 100
    y = emulate.apply_rope(x, CFG, positions, angles="float64")
    cos, sin = numrope.rope_cache(CFG, positions, np.float16)
    c, s = cos[:, None], sin[:, None]
    x0, x1 = x[..., :16], x[..., 16:]
    want = np.concatenate([x0 * c - x1 * s, x1 * c + x0 * s], axis=-1)
    assert want.dtype == np.float16
    np.testing.assert_array_equal(y, want)


def test_table_rounded_before_the_multiply():
    """Unit inputs (1, 0) read the table back: with compute in float64 the output is the rounded table."""
    cfg = numrope.RopeConfig(head_dim=2)
    x = np.zeros((1, 50, 1, 2))
    x[..., 0] = 1.0
    y = emulate.apply_rope(x, cfg, angles="float64", table="bfloat16")
    exact = np.cos(np.arange(50.0))
    np.testing.assert_array_equal(y[0, :, 0, 0], np.asarray(exact, ml_dtypes.bfloat16).astype(np.float64))
    assert not np.array_equal(y[0, :, 0, 0], exact)


def test_float32_angle_error_grows_with_position(rng):
    cfg = numrope.RopeConfig(head_dim=64, base=500000.0)
    x = rng.standard_normal((1, 1, 1, 64))
    errors = []
    for m in (10, 1000, 100_000):
        exact = reference.complex_form(x, cfg, m)
        f32 = emulate.apply_rope(x, cfg, m, compute="float64")  # only the angles in float32
        f64 = emulate.apply_rope(x, cfg, m, angles="float64")
        assert np.abs(f64 - exact).max() < 1e-10  # the reference rounds m * theta in float64
        errors.append(np.abs(f32 - exact).max())
    assert errors[0] < 1e-5 < errors[2]
    assert errors[0] < errors[1] < errors[2]


def test_dtype_and_bfloat16_without_ml_dtypes(rng, monkeypatch):
    x = rng.standard_normal((1, 8, 2, 32)).astype(np.float32)
    y = emulate.apply_rope(x, CFG, dtype="bfloat16")
    assert y.dtype == ml_dtypes.bfloat16
    monkeypatch.setitem(sys.modules, "ml_dtypes", None)  # import fails: float32 holding bfloat16 values
    z = emulate.apply_rope(x, CFG, dtype="bfloat16")
    assert z.dtype == np.float32
    np.testing.assert_array_equal(z, y.astype(np.float32))
    assert (round_to(z, "bfloat16") == z).all()


def test_inverse_undoes(rng):
    x = rng.standard_normal((1, 8, 2, 32))
    back = emulate.apply_rope(emulate.apply_rope(x, CFG, 7, angles="float64"), CFG, 7, angles="float64", inverse=True)
    np.testing.assert_allclose(back, x, atol=1e-14)


def test_bad_arguments(rng):
    x = rng.standard_normal((1, 8, 2, 32))
    with pytest.raises(ValueError, match="angles"):
        emulate.apply_rope(x, CFG, angles="float16")
    with pytest.raises(ValueError, match="table"):
        emulate.apply_rope(x, CFG, table="int8")
    with pytest.raises(ValueError, match="head_dim=32"):
        emulate.apply_rope(x[..., :16], CFG)
    with pytest.raises(TypeError, match="floats"):
        emulate.apply_rope(x.astype(int), CFG)
    with pytest.raises(TypeError, match="RopeConfig"):
        emulate.apply_rope(x, None)


def test_inv_freq_replaces_the_float32_formula(rng):
    cfg = numrope.RopeConfig(head_dim=16, base=10000.0)
    x = rng.standard_normal((1, 8, 2, 16)).astype(np.float32)
    pos = np.arange(8) * 10_000
    own = (1.0 / np.power(np.float32(cfg.base), np.arange(0, 16, 2, dtype=np.float32) / np.float32(16))).astype(
        np.float32
    )
    np.testing.assert_array_equal(
        emulate.apply_rope(x, cfg, pos, inv_freq=own), emulate.apply_rope(x, cfg, pos)
    )  # the same frequencies, the same rounding
    nudged = np.nextafter(own, np.float32(1), dtype=np.float32)  # one ulp up, as a framework's pow may be
    moved = emulate.apply_rope(x, cfg, pos, inv_freq=nudged)
    assert np.abs(moved - emulate.apply_rope(x, cfg, pos)).max() > 1e-4  # grows with the position


def test_inv_freq_bad_input(rng):
    cfg = numrope.RopeConfig(head_dim=16)
    x = rng.standard_normal((1, 4, 1, 16)).astype(np.float32)
    with pytest.raises(ValueError, match="shape"):
        emulate.apply_rope(x, cfg, inv_freq=np.ones(7))
    with pytest.raises(ValueError, match="finite"):
        emulate.apply_rope(x, cfg, inv_freq=np.full(8, np.nan))
    with pytest.raises(ValueError, match="float32"):
        emulate.apply_rope(x, cfg, angles="float64", inv_freq=np.ones(8))
