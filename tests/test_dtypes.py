"""Every documented dtype combination: x float16/32/64 with cache tables float16/32/64, and q and k
of different dtypes, against the float64 reference."""

import itertools

import numpy as np
import pytest
from conftest import EPS64

import numrope
from numrope import reference

DTYPES = [np.float16, np.float32, np.float64]
CFG = numrope.RopeConfig(head_dim=16, rotary_dim=12, layout="interleaved")


def bound(x, x_dtype, table_dtype, max_angle):
    """|result - exact| for x rotated with a table of ``table_dtype``.

    The arithmetic is in the wider of float32 (float16 counts as float32), x's dtype and the
    table's; cos and sin carry the table's rounding. Each output ``x0 c - x1 s`` then errs by at
    most ``3 eps (|x0| + |x1|)`` with ``eps`` the larger of the arithmetic's and the table's
    (unit rounding eps/2, safety factor 2), plus the float64 reference's angle error
    ``|m theta| eps64 / 2`` times ``|x0| + |x1|``, plus half an ulp of the output's dtype.
    """
    compute = np.result_type(np.float32, x_dtype, table_dtype)
    eps = max(np.finfo(compute).eps, np.finfo(table_dtype).eps)
    pair = 2 * np.abs(x.astype(np.float64)).max()
    return pair * (3 * eps + max_angle * EPS64) + np.finfo(x_dtype).eps * pair


def check(got, x, table_dtype, positions, inverse=False):
    assert got.dtype == x.dtype and got.shape == x.shape
    expected = reference.complex_form(x, CFG, positions, inverse=inverse)
    angle = float(np.abs(np.asarray(positions, np.float64)).max() * CFG.inv_freq().max())
    err = np.abs(got.astype(np.float64) - expected).max()
    tol = bound(x, x.dtype, table_dtype, angle)
    assert err <= tol, f"{x.dtype} x with a {np.dtype(table_dtype)} table: error {err:.3g} > {tol:.3g}"


@pytest.mark.parametrize(("x_dtype", "table_dtype"), list(itertools.product(DTYPES, DTYPES)))
def test_x_and_table_dtypes(x_dtype, table_dtype, rng):
    x = rng.standard_normal((2, 6, 3, 16)).astype(x_dtype)
    cache = numrope.rope_cache(CFG, 100, table_dtype)
    for positions in (np.arange(6) + 4, rng.integers(0, 100, 6), rng.integers(0, 100, (2, 6))):
        forms = [positions] if positions.ndim > 1 or positions[0] != 4 else [positions, 4]
        for p in forms:
            got = numrope.apply_rope(x, CFG, p, cache=cache)
            check(got, x, table_dtype, positions)
            check(numrope.apply_rope(x, CFG, p, cache=cache, inverse=True), x, table_dtype, positions, inverse=True)
            # in place, and into an out that has no 4-D view
            y = x.copy()
            numrope.apply_rope(y, CFG, p, cache=cache, out=y)
            np.testing.assert_array_equal(y, got)
            out = np.empty((3, 2, 6, 16), x_dtype).transpose(1, 2, 0, 3)
            numrope.apply_rope(x, CFG, p, cache=cache, out=out)
            np.testing.assert_array_equal(out, got)


@pytest.mark.parametrize(("q_dtype", "k_dtype"), list(itertools.product(DTYPES, DTYPES)))
@pytest.mark.parametrize("table_dtype", [None, *DTYPES])
def test_q_and_k_of_different_dtypes(q_dtype, k_dtype, table_dtype, rng):
    q = rng.standard_normal((2, 6, 4, 16)).astype(q_dtype)
    k = rng.standard_normal((2, 6, 2, 16)).astype(k_dtype)
    positions = rng.integers(0, 100, (2, 6))
    cache = None if table_dtype is None else numrope.rope_cache(CFG, 100, table_dtype)
    q_rot, k_rot = numrope.apply_rope_qk(q, k, CFG, positions, cache=cache)
    # without a cache the shared table is in the wider of the two compute dtypes
    shared = np.result_type(np.float32, q_dtype, k_dtype) if table_dtype is None else table_dtype
    check(q_rot, q, shared, positions)
    check(k_rot, k, shared, positions)


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_in_the_other_byte_order(dtype, rng):
    """Written through a native scratch array: the kernels write native floats only."""
    native = rng.standard_normal((2, 6, 3, 16)).astype(dtype)
    swapped = native.astype(native.dtype.newbyteorder())
    positions = rng.integers(0, 100, (2, 6))
    cache = numrope.rope_cache(CFG, 100)
    for c in (None, cache):
        expected = numrope.apply_rope(native, CFG, positions, cache=c)
        check(expected, native, np.result_type(np.float32, dtype) if c is None else np.float32, positions)
        y = swapped.copy()
        assert numrope.apply_rope(y, CFG, positions, cache=c, out=y) is y  # in place
        assert y.dtype == swapped.dtype
        np.testing.assert_array_equal(y, expected)
        out = np.empty(native.shape, swapped.dtype)
        assert numrope.apply_rope(native, CFG, positions, cache=c, out=out) is out
        np.testing.assert_array_equal(out, expected)
        q, k = swapped.copy(), swapped[:, :, :1].copy()
        q_rot, k_rot = numrope.apply_rope_qk(q, k, CFG, positions, cache=c, out=(q, k))
        assert q_rot is q and k_rot is k
        np.testing.assert_array_equal(q, expected)
        np.testing.assert_array_equal(k, expected[:, :, :1])
    with pytest.raises(TypeError, match=r"out must have dtype float\d+ \(in either byte order\), got"):
        numrope.apply_rope(native, CFG, out=np.empty(native.shape, np.complex128))
