"""The kernels' float16 conversions against NumPy's, over a dense sample of every float32 range."""

import numpy as np
import pytest

import numrope

_cpu = pytest.importorskip("numrope._cpu")


def _to_f16_bits(values):
    import numba

    @numba.njit
    def convert(v, out):
        for i in range(v.size):
            out[i] = _cpu._f32_to_f16_bits(v[i])

    out = np.empty(values.size, np.uint16)
    convert(values, out)
    return out


def test_rounding_matches_numpy():
    rng = np.random.default_rng(7)
    bits = np.concatenate(
        [
            rng.integers(0, 2**32, 2_000_000, dtype=np.uint64).astype(np.uint32),
            np.arange(0x33000000 - 64, 0x38800000 + 64, 97, dtype=np.uint32),  # subnormal range and edges
            np.arange(0x477FE000, 0x47800100, dtype=np.uint32),  # around the overflow threshold
        ]
    )
    # every tie: the midpoints between neighbouring float16 values, both signs
    h = np.arange(0, 0x7BFF, dtype=np.uint16)
    mids = (h.view(np.float16).astype(np.float64) + (h + 1).view(np.float16).astype(np.float64)) / 2
    values = np.concatenate([bits.view(np.float32), mids.astype(np.float32), -mids.astype(np.float32)])
    values = values[~np.isnan(values)]
    with np.errstate(over="ignore"):
        expected = values.astype(np.float16).view(np.uint16)
    got = _to_f16_bits(values)
    bad = np.flatnonzero(got != expected)
    assert bad.size == 0, f"{bad.size} mismatches, first {values[bad[:5]]} -> {got[bad[:5]]} != {expected[bad[:5]]}"


def test_nan_stays_nan():
    got = _to_f16_bits(np.array([np.nan, -np.nan, np.inf, -np.inf], np.float32)).view(np.float16)
    assert np.isnan(got[:2]).all() and got[2] == np.inf and got[3] == -np.inf


def test_widening_is_exact_for_every_float16():
    import numba

    @numba.njit
    def widen(h, out):
        for i in range(h.size):
            out[i] = _cpu._f16_bits_to_f32(h[i])

    h = np.arange(2**16, dtype=np.uint32).astype(np.uint16)
    got = np.empty(h.size, np.float32)
    widen(h, got)
    expected = h.view(np.float16).astype(np.float32)
    nan = np.isnan(expected)
    np.testing.assert_array_equal(got.view(np.uint32)[~nan], expected.view(np.uint32)[~nan])
    assert np.isnan(got[nan]).all()


def test_float16_apply_rounds_the_float32_result_once(rng):
    cfg = numrope.RopeConfig(head_dim=32)
    x = rng.standard_normal((1, 20, 4, 32)).astype(np.float16)
    expected = numrope.apply_rope(x.astype(np.float32), cfg).astype(np.float16)
    np.testing.assert_array_equal(numrope.apply_rope(x, cfg), expected)
