"""The vector kernels (numrope.kernels.simd): float32 and float64 rotations with a table of their dtype, a vector
of pairs at a time, give bit for bit the rotation written in plain NumPy, in place and into ``out``, by plain and by
streaming stores, serial and parallel; the launcher picks them exactly where they apply."""

import itertools

import numpy as np
import pytest

import numrope
from numrope.kernels import cpu, jit, simd, stream


def numpy_rotation(x, cos, sin, layout, inverse):
    """x rotated by table rows 0..n-1 along axis -3, in x's dtype, one rounding per product and per sum."""
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
    return out


@pytest.fixture
def codes(monkeypatch):
    """The layout codes the table launcher gives the kernels."""
    seen = []
    pick = cpu.vector_code

    def recording(*args):
        seen.append(pick(*args))
        return seen[-1]

    monkeypatch.setattr(cpu, "vector_code", recording)
    return seen


@pytest.mark.parametrize(
    "dtype, layout, head_dim, inverse, where, twin",
    list(
        itertools.product(
            ["float32", "float64"],
            ["half", "interleaved"],
            [32, 128, 80],  # half a multiple of a vector's lanes: 16 float32, 8 float64 (80: float64 only)
            [False, True],
            ["out", "in place", "streamed"],
            ["serial", "parallel"],
        )
    ),
)
def test_vector_kernels_give_the_numpy_rotation(monkeypatch, codes, dtype, layout, head_dim, inverse, where, twin):
    monkeypatch.setattr(jit, "PARALLEL_MIN_ELEMENTS", 0 if twin == "parallel" else 1 << 62)
    if where == "streamed":
        monkeypatch.setattr(stream, "MIN_BYTES", 0)
    cfg = numrope.RopeConfig(head_dim, layout=layout)
    x = (np.random.default_rng(head_dim).standard_normal((2, 23, 5, head_dim)) * 4).astype(dtype)
    cos, sin = numrope.rope_cache(cfg, 23, dtype=dtype)
    expected = numpy_rotation(x, cos, sin, layout, inverse)
    if where == "in place":
        got = x.copy()
        numrope.apply_rope(got, cfg, cache=(cos, sin), out=got, inverse=inverse)
    else:
        got = numrope.apply_rope(x, cfg, cache=(cos, sin), out=np.zeros_like(x), inverse=inverse)
    assert np.array_equal(got.view(f"u{x.itemsize}"), expected.view(f"u{x.itemsize}"))
    assert len(codes) == 1
    if dtype == "float64" and layout == "half" and where != "in place":
        assert codes == [4]  # float64 rows written in order, each half in turn (numrope.kernels.cpu._in_order)
    elif (head_dim // 2) % (simd.VECTOR // x.itemsize) == 0:
        assert codes[0] == (6 if layout == "interleaved" else 5)
    else:
        assert codes[0] < 5


@pytest.mark.parametrize(
    "case",
    ["float16", "float32 data, float64 table", "strided features", "rotary part of 48"],
)
def test_vector_kernels_are_not_picked_where_they_do_not_apply(codes, case):
    dtype, table_dtype, head_dim = "float32", "float32", 64
    if case == "float16":
        dtype = table_dtype = "float16"
    elif case == "float32 data, float64 table":
        table_dtype = "float64"
    cfg = numrope.RopeConfig(head_dim, rotary_dim=48 if case == "rotary part of 48" else None)
    x = np.random.default_rng(0).standard_normal((1, 9, 3, 2 * head_dim)).astype(dtype)
    x = x[..., ::2] if case == "strided features" else x[..., :head_dim]
    cos, sin = numrope.rope_cache(cfg, 9, dtype=table_dtype)
    got = numrope.apply_rope(x, cfg, cache=(cos, sin))
    assert codes and all(code < 5 for code in codes)
    wide = x.astype(np.float64)
    half = cfg.rotary_dim // 2
    c, s = cos.astype(np.float64)[:, None], sin.astype(np.float64)[:, None]
    x0, x1 = wide[..., :half], wide[..., half : 2 * half]
    expected = np.concatenate([x0 * c - x1 * s, x1 * c + x0 * s, wide[..., 2 * half :]], axis=-1)
    np.testing.assert_allclose(got.astype(np.float64), expected, rtol=4 * np.finfo(dtype).eps, atol=1e-6)


def test_a_sign_keeps_the_general_loops():
    """Given a sign to multiply by (forwards or backwards), codes 5 and 6 rotate by the general loops, the same
    pairs as codes 0 and 1."""
    from numrope.kernels.cpu import rotate_serial

    x = np.random.default_rng(1).standard_normal((1, 7, 2, 64)).astype(np.float32)
    cos, sin = numrope.rope_cache(numrope.RopeConfig(64), 7, dtype=np.float32)
    idx = np.arange(7)[None]
    for general, vector in ((0, 5), (1, 6)):
        for sign in (np.float32(1), np.float32(-1)):
            a, b = np.empty_like(x), np.empty_like(x)
            rotate_serial(x, a, cos, sin, idx, sign, general, False, 1, None, np.uintp(0))
            rotate_serial(x, b, cos, sin, idx, sign, vector, False, 1, None, np.uintp(0))
            assert np.array_equal(a, b)
