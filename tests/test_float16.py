"""The kernels' float16 conversions against NumPy's, over a dense sample of every float32 range."""

import os

import numpy as np
import pytest
from conftest import assert_matches

import numrope
from numrope import reference

_half = pytest.importorskip("numrope.kernels.half")
IMPLEMENTATIONS = [
    "arith",
    pytest.param(
        "llvm",
        marks=pytest.mark.skipif(not _half.target_converts_half(), reason="no hardware float16 conversion here"),
    ),
]


def _convert(function, values, dtype):
    import numba

    @numba.njit
    def convert(v, out):
        for i in range(v.size):
            out[i] = function(v[i])

    out = np.empty(values.size, dtype)
    convert(values, out)
    return out


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_rounding_matches_numpy(impl):
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
    got = _convert(getattr(_half, f"f32_to_f16_bits_{impl}"), values, np.uint16)
    bad = np.flatnonzero(got != expected)
    assert bad.size == 0, f"{bad.size} mismatches, first {values[bad[:5]]} -> {got[bad[:5]]} != {expected[bad[:5]]}"


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_nan_stays_nan(impl):
    values = np.array([np.nan, -np.nan, np.inf, -np.inf], np.float32)
    got = _convert(getattr(_half, f"f32_to_f16_bits_{impl}"), values, np.uint16).view(np.float16)
    assert np.isnan(got[:2]).all() and got[2] == np.inf and got[3] == -np.inf


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_widening_is_exact_for_every_float16(impl):
    h = np.arange(2**16, dtype=np.uint32).astype(np.uint16)
    got = _convert(getattr(_half, f"f16_bits_to_f32_{impl}"), h, np.float32)
    expected = h.view(np.float16).astype(np.float32)
    nan = np.isnan(expected)
    np.testing.assert_array_equal(got.view(np.uint32)[~nan], expected.view(np.uint32)[~nan])
    assert np.isnan(got[nan]).all()


def test_float16_apply_rounds_the_float32_result_once(rng):
    cfg = numrope.RopeConfig(head_dim=32)
    x = rng.standard_normal((1, 20, 4, 32)).astype(np.float16)
    expected = numrope.apply_rope(x.astype(np.float32), cfg).astype(np.float16)
    np.testing.assert_array_equal(numrope.apply_rope(x, cfg), expected)


def test_kernels_without_hardware_conversion(tmp_path):
    """A generic x86-64 target (as for a portable cache) has no F16C: the arithmetic path runs."""
    import platform
    import subprocess
    import sys

    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("the generic-target fallback is chosen on x86-64 only")
    script = """
import numpy as np, numrope
from numrope.kernels import half as _half
assert not _half.target_converts_half()
assert _half.f32_to_f16_bits is _half.f32_to_f16_bits_arith
cfg = numrope.RopeConfig(head_dim=32, layout="interleaved")
x = np.random.default_rng(3).standard_normal((2, 70, 4, 32)).astype(np.float16)
expected = numrope.apply_rope(x.astype(np.float32), cfg).astype(np.float16)
np.testing.assert_array_equal(numrope.apply_rope(x, cfg), expected)
cache = numrope.rope_cache(cfg, 70)
np.testing.assert_array_equal(numrope.apply_rope(x, cfg, cache=cache), expected)
"""
    env = {**os.environ, "NUMBA_CPU_NAME": "generic", "NUMBA_CACHE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def _outs_without_4d_view(shape):
    """float16 arrays of ``shape`` (batch, batch, seq, heads, dim) whose two batch axes do not merge."""
    return np.full((shape[1], shape[0], *shape[2:]), np.nan, np.float16).swapaxes(0, 1)


@pytest.mark.parametrize("layout", ["half", "interleaved"])
@pytest.mark.parametrize("table", [None, np.float16, np.float32])
def test_float16_out_without_a_4d_view(layout, table, rng):
    """Written through a scratch array: the values, not their bit patterns, are copied back."""
    cfg = numrope.RopeConfig(head_dim=16, rotary_dim=12, layout=layout)
    x = rng.standard_normal((2, 3, 5, 4, 16)).astype(np.float16)
    cache = None if table is None else numrope.rope_cache(cfg, 64, dtype=table)
    for positions in (None, rng.integers(0, 64, (2, 3, 5)), rng.integers(0, 64, (3, 5))):
        out = _outs_without_4d_view(x.shape)
        assert numrope.apply_rope(x, cfg, positions, cache=cache, out=out) is out
        assert_matches(out, reference.complex_form(x, cfg, positions), x, np.float16, 64.0)
        # the same array in place
        y = _outs_without_4d_view(x.shape)
        y[...] = x
        numrope.apply_rope(y, cfg, positions, cache=cache, out=y)
        np.testing.assert_array_equal(y, out)


def test_float16_in_place_heads_first_view(rng):
    cfg = numrope.RopeConfig(head_dim=8)
    x = rng.standard_normal((2, 5, 3, 8)).astype(np.float16).transpose(0, 2, 1, 3)  # (batch, heads, seq, dim)
    expected = reference.complex_form(x, cfg, seq_axis=-2)
    numrope.apply_rope(x, cfg, seq_axis=-2, out=x)
    assert_matches(x, expected, expected, np.float16, 5.0)


def test_float16_memmap_in_place(tmp_path, rng):
    """A float16 np.memmap on disk, rotated in place through a view without a 4-D form, and flushed."""
    cfg = numrope.RopeConfig(head_dim=8, layout="interleaved")
    x = rng.standard_normal((2, 6, 3, 8)).astype(np.float16)  # (batch, seq, heads, dim) on disk
    path = tmp_path / "kv.f16"
    stored = np.memmap(path, dtype=np.float16, mode="w+", shape=x.shape)
    stored[...] = x
    view = stored.transpose(0, 2, 1, 3)  # (batch, heads, seq, dim): batch and heads do not merge
    assert numrope.apply_rope(view, cfg, 4, seq_axis=-2, out=view) is view
    stored.flush()
    del stored, view
    back = np.fromfile(path, dtype=np.float16).reshape(x.shape)
    expected = reference.complex_form(x, cfg, 4)
    assert_matches(back, expected, x, np.float16, 10.0)
    # a memmap out for an in-memory x
    out = np.memmap(tmp_path / "out.f16", dtype=np.float16, mode="w+", shape=x.shape).transpose(0, 2, 1, 3)
    numrope.apply_rope(x.transpose(0, 2, 1, 3), cfg, 4, seq_axis=-2, out=out)
    assert_matches(out.transpose(0, 2, 1, 3), expected, x, np.float16, 10.0)
