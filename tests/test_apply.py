"""apply_rope and apply_rope_qk against the plain-NumPy reference, in every form they accept."""

import numpy as np
import pytest
from conftest import assert_matches
from hypothesis import given, settings
from hypothesis import strategies as st

import numrope
from numrope import reference

DTYPES = [np.float16, np.float32, np.float64]
LAYOUTS = ["half", "interleaved"]


def configs():
    for layout in LAYOUTS:
        for rotary_dim in (None, 16):
            yield numrope.RopeConfig(head_dim=32, base=10000.0, rotary_dim=rotary_dim, layout=layout)


CONFIGS = list(configs())
CONFIG_IDS = [f"{c.layout}-rot{c.rotary_dim}" for c in CONFIGS]


def max_angle(positions, cfg):
    return float(np.abs(np.asarray(positions, dtype=np.float64)).max(initial=0) * cfg.inv_freq().max())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", CONFIGS, ids=CONFIG_IDS)
def test_default_positions_match_reference(cfg, dtype, rng):
    x = rng.standard_normal((2, 9, 3, cfg.head_dim)).astype(dtype)
    got = numrope.apply_rope(x, cfg)
    assert got.dtype == x.dtype and got.shape == x.shape
    assert_matches(got, reference.complex_form(x, cfg), x, dtype, max_angle(np.arange(9), cfg))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("use_cache", [False, True], ids=["fresh", "cache"])
def test_position_forms(cfg, dtype, use_cache, rng):
    """None, an int offset, a (S,) array, per-sequence (B, S) arrays and float positions."""
    x = rng.standard_normal((3, 5, 2, cfg.head_dim)).astype(dtype)
    cache = numrope.rope_cache(cfg, 400, dtype=np.float64 if dtype == np.float64 else np.float32)
    forms = [None, 7, np.array([3, 1, 4, 1, 5]), rng.integers(0, 400, (3, 5)), rng.integers(0, 400, (1, 5))]
    if not use_cache:
        forms += [rng.uniform(-300, 300, (3, 5)), 2**20 + np.arange(5)]
    for positions in forms:
        got = numrope.apply_rope(x, cfg, positions, cache=cache if use_cache else None)
        expected = reference.complex_form(x, cfg, positions)
        angle = max_angle(np.arange(5) + (positions if np.ndim(positions) == 0 and positions is not None else 0), cfg)
        if np.ndim(positions):
            angle = max_angle(positions, cfg)
        assert_matches(got, expected, x, dtype, angle)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["half", "interleaved"])
def test_float16_tables_are_read_as_their_float32_values(dtype, layout, rng):
    cfg = numrope.RopeConfig(head_dim=24, rotary_dim=16, layout=layout)
    x = rng.standard_normal((2, 6, 3, 24)).astype(dtype)
    positions = rng.integers(0, 50, (2, 6))
    cos, sin = numrope.rope_cache(cfg, 50, dtype=np.float16)
    i0, i1 = cfg.pair_indices()
    for sign in (1, -1):
        # plain NumPy in float64 with the tables' exact values
        c, s = cos[positions][:, :, None].astype(np.float64), sign * sin[positions][:, :, None].astype(np.float64)
        x0, x1 = x[..., i0].astype(np.float64), x[..., i1].astype(np.float64)
        expected = x.astype(np.float64)
        expected[..., i0], expected[..., i1] = x0 * c - x1 * s, x1 * c + x0 * s
        got = numrope.apply_rope(x, cfg, positions, cache=(cos, sin), inverse=sign < 0)
        assert_matches(got, expected, x, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", CONFIGS, ids=CONFIG_IDS)
def test_bhsd_axis_convention(cfg, dtype, rng):
    x = rng.standard_normal((2, 3, 6, cfg.head_dim)).astype(dtype)  # (batch, heads, seq, dim)
    positions = rng.integers(0, 1000, (2, 1, 6))  # per batch, shared by heads
    got = numrope.apply_rope(x, cfg, positions, seq_axis=-2)
    assert_matches(got, reference.complex_form(x, cfg, positions, seq_axis=-2), x, dtype, max_angle(positions, cfg))
    # BHSD is BSHD with the middle axes swapped
    bshd = numrope.apply_rope(np.swapaxes(x, 1, 2), cfg, positions[:, 0], seq_axis=-3)
    np.testing.assert_array_equal(np.swapaxes(bshd, 1, 2), got)


def test_other_ranks(rng):
    cfg = numrope.RopeConfig(head_dim=8)
    x2 = rng.standard_normal((5, 8))  # (seq, dim), seq_axis=-2
    assert_matches(
        numrope.apply_rope(x2, cfg, seq_axis=-2), reference.complex_form(x2, cfg, seq_axis=-2), x2, np.float64, 5.0
    )
    x5 = rng.standard_normal((2, 2, 4, 3, 8))  # two batch axes
    positions = rng.integers(0, 50, (2, 2, 4))
    assert_matches(
        numrope.apply_rope(x5, cfg, positions), reference.complex_form(x5, cfg, positions), x5, np.float64, 50.0
    )
    x3 = rng.standard_normal((6, 2, 8))  # packed (tokens, heads, dim)
    pos = numrope.positions_from_cu_seqlens([0, 2, 6])
    assert_matches(numrope.apply_rope(x3, cfg, pos), reference.complex_form(x3, cfg, pos), x3, np.float64, 4.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_strided_views_and_read_only(dtype, rng):
    cfg = numrope.RopeConfig(head_dim=16, layout="interleaved")
    base = rng.standard_normal((4, 12, 6, 40)).astype(dtype)
    views = [
        base[::2, ::3, 1::2, 3:19],  # no axis contiguous but the last
        base[:, :, :, 24:40][..., ::-1],  # negative last-axis stride
        np.moveaxis(base[..., :16], 0, 2),  # axes that cannot be merged without a copy
    ]
    for view in views:
        view.flags.writeable = False
        got = numrope.apply_rope(view, cfg)
        assert_matches(got, reference.complex_form(view, cfg), view, dtype, 12.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_non_native_byte_order(dtype, rng):
    cfg = numrope.RopeConfig(head_dim=16)
    x = rng.standard_normal((2, 5, 3, 16)).astype(dtype)
    swapped = x.astype(x.dtype.newbyteorder())
    expected = numrope.apply_rope(x, cfg, 3)
    np.testing.assert_array_equal(numrope.apply_rope(swapped, cfg, 3), expected)
    cos, sin = numrope.rope_cache(cfg, 8, dtype=np.float64 if dtype == np.float64 else np.float32)
    table = (cos.astype(cos.dtype.newbyteorder()), sin.astype(sin.dtype.newbyteorder()))
    np.testing.assert_array_equal(numrope.apply_rope(x, cfg, 3, cache=table), expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", CONFIGS, ids=CONFIG_IDS)
def test_in_place_and_out(cfg, dtype, rng):
    x = rng.standard_normal((2, 7, 3, cfg.head_dim)).astype(dtype)
    expected = numrope.apply_rope(x, cfg, 11)
    out = np.full_like(x, np.nan)
    assert numrope.apply_rope(x, cfg, 11, out=out) is out
    np.testing.assert_array_equal(out, expected)
    y = x.copy()
    assert numrope.apply_rope(y, cfg, 11, out=y) is y
    np.testing.assert_array_equal(y, expected)
    # a strided out that has no 4-D view is written through a scratch array
    big = np.full((3, 7, 2, 3, cfg.head_dim), np.nan, dtype)
    strided_out = np.moveaxis(big, 2, 0)[0, :2]
    numrope.apply_rope(x, cfg, 11, out=strided_out)
    np.testing.assert_array_equal(strided_out, expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", CONFIGS, ids=CONFIG_IDS)
def test_inverse_undoes_forward(cfg, dtype, rng):
    x = rng.standard_normal((2, 6, 2, cfg.head_dim)).astype(dtype)
    positions = rng.integers(0, 10**6, (2, 6))
    back = numrope.apply_rope(numrope.apply_rope(x, cfg, positions), cfg, positions, inverse=True)
    # two rotations, each within the forward bound of the exact result
    assert_matches(back, x.astype(np.float64), x, dtype, 0.0, scaling=2.0)
    assert_matches(
        numrope.apply_rope(x, cfg, positions, inverse=True),
        reference.complex_form(x, cfg, positions, inverse=True),
        x,
        dtype,
        max_angle(positions, cfg),
    )


@pytest.mark.parametrize("cfg", CONFIGS, ids=CONFIG_IDS)
def test_pair_norms_preserved(cfg, rng):
    x = rng.standard_normal((1, 50, 4, cfg.head_dim))
    y = numrope.apply_rope(x, cfg, rng.integers(0, 2**31, 50))
    j0, j1 = cfg.pair_indices()
    np.testing.assert_allclose(np.hypot(y[..., j0], y[..., j1]), np.hypot(x[..., j0], x[..., j1]), rtol=4e-16 * 4)
    np.testing.assert_array_equal(y[..., cfg.rotary_dim :], x[..., cfg.rotary_dim :])


def test_table_path_and_one_pass_path_agree(rng):
    """The one-pass kernel and the table kernel round cos/sin identically."""
    cfg = numrope.RopeConfig(head_dim=64)
    for dtype in DTYPES:
        x = rng.standard_normal((1, 33, 4, 64)).astype(dtype)
        table = numrope.rope_cache(cfg, 200, dtype=np.float64 if dtype == np.float64 else np.float32)
        np.testing.assert_array_equal(numrope.apply_rope(x, cfg, 100), numrope.apply_rope(x, cfg, 100, cache=table))


def test_large_arrays_take_the_parallel_kernels(rng):
    cfg = numrope.RopeConfig(head_dim=64)
    x = rng.standard_normal((3, 128, 8, 64)).astype(np.float32)  # above the parallel threshold
    positions = rng.integers(0, 5000, (3, 128))
    assert_matches(
        numrope.apply_rope(x, cfg, positions),
        reference.complex_form(x, cfg, positions),
        x,
        np.float32,
        max_angle(positions, cfg),
    )
    assert_matches(
        numrope.apply_rope(x, cfg, positions[:1]),
        reference.complex_form(x, cfg, positions[:1]),
        x,
        np.float32,
        max_angle(positions, cfg),
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_apply_rope_qk_grouped_query(dtype, rng):
    cfg = numrope.RopeConfig(head_dim=16, rotary_dim=8)
    q = rng.standard_normal((2, 5, 8, 16)).astype(dtype)
    k = rng.standard_normal((2, 5, 2, 16)).astype(dtype)
    positions = rng.integers(0, 100, (2, 5))
    q_rot, k_rot = numrope.apply_rope_qk(q, k, cfg, positions)
    np.testing.assert_array_equal(q_rot, numrope.apply_rope(q, cfg, positions))
    np.testing.assert_array_equal(k_rot, numrope.apply_rope(k, cfg, positions))
    q_out, k_out = q.copy(), k.copy()
    result = numrope.apply_rope_qk(q_out, k_out, cfg, positions, out=(q_out, k_out))
    assert result[0] is q_out and result[1] is k_out
    np.testing.assert_array_equal(q_out, q_rot)
    cache = numrope.rope_cache(cfg, 100, dtype=np.result_type(np.float32, dtype))
    qc, kc = numrope.apply_rope_qk(q, k, cfg, positions, cache=cache, inverse=True)
    assert_matches(qc, reference.complex_form(q, cfg, positions, inverse=True), q, dtype, 100.0)
    assert_matches(kc, reference.complex_form(k, cfg, positions, inverse=True), k, dtype, 100.0)


def test_empty_arrays():
    cfg = numrope.RopeConfig(head_dim=4)
    assert numrope.apply_rope(np.empty((0, 3, 2, 4)), cfg).shape == (0, 3, 2, 4)
    assert numrope.apply_rope(np.empty((1, 0, 2, 4)), cfg).shape == (1, 0, 2, 4)


def test_cu_seqlens_positions():
    np.testing.assert_array_equal(numrope.positions_from_cu_seqlens([0, 3, 3, 5]), [0, 1, 2, 0, 1])
    np.testing.assert_array_equal(numrope.positions_from_cu_seqlens([0]), np.empty(0))


arrays = st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 3), st.integers(1, 8))


@settings(deadline=None, max_examples=40)
@given(
    shape=arrays,
    layout=st.sampled_from(LAYOUTS),
    offset=st.integers(-(2**31), 2**31),
    rot_frac=st.integers(1, 4),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**32 - 1),
    base=st.floats(1.5, 1e7),
)
def test_property_matches_reference(shape, layout, offset, rot_frac, dtype, seed, base):
    b, s, h, pairs = shape
    head_dim = 2 * pairs * 2
    cfg = numrope.RopeConfig(head_dim=head_dim, base=base, rotary_dim=2 * max(1, pairs * rot_frac // 2), layout=layout)
    x = np.random.default_rng(seed).uniform(-4, 4, (b, s, h, head_dim)).astype(dtype)
    got = numrope.apply_rope(x, cfg, offset)
    expected = reference.complex_form(x, cfg, offset)
    assert_matches(got, expected, x, dtype, abs(offset) + s)


@settings(deadline=None, max_examples=25)
@given(seed=st.integers(0, 2**32 - 1), layout=st.sampled_from(LAYOUTS), n=st.integers(1, 20))
def test_property_relative_position(seed, layout, n):
    """<f(q, m), f(k, n)> depends on m - n only."""
    rng = np.random.default_rng(seed)
    cfg = numrope.RopeConfig(head_dim=16, layout=layout)
    q, k = rng.standard_normal((2, 16))
    m = rng.integers(0, 10**6, n)
    d = int(rng.integers(-1000, 1000))
    qm = numrope.apply_rope(np.broadcast_to(q, (n, 1, 1, 16)), cfg, m[:, None])
    kn = numrope.apply_rope(np.broadcast_to(k, (n, 1, 1, 16)), cfg, (m - d)[:, None])
    scores = np.einsum("nshd,nshd->n", qm, kn)
    direct = q @ reference.rope_matrix(cfg, -d) @ k  # R_m^T R_n = R_{n-m}
    # each score sums 16 products of rotated values, each within a few ulp
    np.testing.assert_allclose(scores, direct, atol=64 * np.finfo(np.float64).eps * np.abs(q).sum() * np.abs(k).max())
