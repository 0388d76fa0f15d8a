"""inverse=True undoes the forward map; transpose=True is its backward pass. With an attention
factor ``a`` (YaRN, LongRoPE) the forward map is ``a R``: the inverse is ``R^T / a`` and the
transpose ``a R^T``, which differ unless ``a == 1``."""

import numpy as np
import pytest
from conftest import EPS64, assert_matches

import numrope
from numrope import reference
from numrope.variants import LongRoPE, YaRN

SCALED = {
    "yarn": numrope.RopeConfig(head_dim=16, scaling=YaRN(factor=4.0, original_max_position_embeddings=64)),
    "longrope": numrope.RopeConfig(
        head_dim=16,
        rotary_dim=12,
        layout="interleaved",
        scaling=LongRoPE(
            short_factor=[1.0, 1.5, 2.0, 2.5, 3.0, 3.5],
            long_factor=[1.0, 2.0, 4.0, 8.0, 16.0, 32.0],
            original_max_position_embeddings=32,
            max_position_embeddings=256,
        ),
    ),
    "below-one": numrope.RopeConfig(
        head_dim=16, scaling=YaRN(factor=2.0, original_max_position_embeddings=64, attention_scaling=0.5)
    ),
}
CONFIGS = {**SCALED, "plain": numrope.RopeConfig(head_dim=16)}
DTYPES = [np.float16, np.float32, np.float64]


def table_dtype(dtype):
    return np.float64 if dtype == np.float64 else np.float32


def max_angle(positions, cfg):
    return float(np.abs(np.asarray(positions, np.float64)).max() * cfg.inv_freq(200).max())


def test_the_configs_have_attention_factors():
    assert SCALED["yarn"].attention_scaling > 1.1
    assert SCALED["longrope"].attention_scaling > 1.1
    assert SCALED["below-one"].attention_scaling == 0.5


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("use_cache", [False, True], ids=["fresh", "cache"])
def test_inverse_undoes_forward(name, dtype, use_cache, rng):
    cfg = CONFIGS[name]
    x = rng.standard_normal((2, 6, 3, 16)).astype(dtype)
    cache = numrope.rope_cache(cfg, 200, table_dtype(dtype), seq_len=200) if use_cache else None
    a = cfg.attention_scaling
    for positions in (None, 17, rng.integers(0, 200, 6), rng.integers(0, 200, (2, 6))):
        y = numrope.apply_rope(x, cfg, positions, cache=cache, seq_len=200)
        back = numrope.apply_rope(y, cfg, positions, cache=cache, seq_len=200, inverse=True)
        # two maps, each within the forward bound of its input, the first scaled by a, the second by 1/a
        assert_matches(back, x.astype(np.float64), x, dtype, 0.0, scaling=2 * max(a, 1 / a))
        # the inverse of y against the inverse matrix applied to y
        angle = max_angle(200 if positions is None else positions, cfg)
        expected = reference.matrix_form(y, cfg, positions, inverse=True, seq_len=200)
        assert_matches(back, expected, y, dtype, angle, scaling=max(1.0, 1 / a))


@pytest.mark.parametrize("name", SCALED)
def test_inverse_with_float16_tables(name, rng):
    """The inverse divides the table's own values by a squared (rounded once, to float32)."""
    cfg = SCALED[name]
    a = cfg.attention_scaling
    x = rng.standard_normal((2, 6, 3, 16)).astype(np.float32)
    positions = rng.integers(0, 50, (2, 6))
    cos, sin = numrope.rope_cache(cfg, 50, np.float16, seq_len=50)
    got = numrope.apply_rope(x, cfg, positions, cache=(cos, sin), inverse=True)
    c = cos[positions][:, :, None].astype(np.float64) / a**2
    s = -sin[positions][:, :, None].astype(np.float64) / a**2
    j0, j1 = cfg.pair_indices()
    x0, x1 = x[..., j0].astype(np.float64), x[..., j1].astype(np.float64)
    expected = x.astype(np.float64)
    expected[..., j0], expected[..., j1] = x0 * c - x1 * s, x1 * c + x0 * s
    assert_matches(got, expected, x, np.float32, 0.0, scaling=max(1.0, 1 / a))


def numerical_vjp(f, x, g, h=2.0**-10):
    """g^T J of the linear map f at x by central differences in float64, one column at a time."""
    flat = x.reshape(-1)
    vjp = np.empty(flat.size)
    for j in range(flat.size):
        e = np.zeros(flat.size)
        e[j] = h
        column = (f((flat + e).reshape(x.shape)) - f((flat - e).reshape(x.shape))) / (2 * h)
        vjp[j] = column.reshape(-1) @ g.reshape(-1)
    return vjp.reshape(x.shape)


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("use_cache", [False, True], ids=["fresh", "cache"])
def test_transpose_is_the_backward_pass(name, use_cache, rng):
    cfg = CONFIGS[name]
    x = rng.standard_normal((2, 3, 2, 16))
    g = rng.standard_normal(x.shape)  # the gradient with respect to the output
    positions = rng.integers(0, 100, (2, 3))
    cache = numrope.rope_cache(cfg, 100, np.float64, seq_len=100) if use_cache else None

    def forward(v):
        return numrope.apply_rope(v, cfg, positions, cache=cache, seq_len=100)

    expected = numerical_vjp(forward, x, g)
    got = numrope.apply_rope(g, cfg, positions, cache=cache, seq_len=100, transpose=True)
    # f is linear: central differences err only by rounding, about eps |f| / h per column
    tol = 64 * EPS64 * cfg.attention_scaling * np.abs(x).max() * 2**10 * np.abs(g).sum()
    np.testing.assert_allclose(got, expected, rtol=0, atol=tol)
    for dtype in (np.float32, np.float16):
        low = numrope.apply_rope(g.astype(dtype), cfg, positions, seq_len=100, transpose=True)
        assert_matches(low, got, g.astype(dtype), dtype, max_angle(positions, cfg), scaling=cfg.attention_scaling)
    if cfg.attention_scaling != 1.0:
        inverse = numrope.apply_rope(g, cfg, positions, cache=cache, seq_len=100, inverse=True)
        rd = cfg.rotary_dim  # the features past it pass through both unchanged
        np.testing.assert_allclose(inverse[..., :rd] * cfg.attention_scaling**2, got[..., :rd], rtol=1e-13, atol=1e-13)
        np.testing.assert_array_equal(inverse[..., rd:], got[..., rd:])
        assert not np.allclose(inverse, got)


@pytest.mark.parametrize("name", SCALED)
@pytest.mark.parametrize("use_cache", [False, True], ids=["fresh", "cache"])
def test_qk_inverse_and_transpose(name, use_cache, rng):
    cfg = SCALED[name]
    q = rng.standard_normal((2, 5, 4, 16)).astype(np.float32)
    k = rng.standard_normal((2, 5, 2, 16)).astype(np.float32)
    positions = rng.integers(0, 60, (2, 5))
    cache = numrope.rope_cache(cfg, 60, seq_len=60) if use_cache else None
    for direction in ({"inverse": True}, {"transpose": True}):
        q_got, k_got = numrope.apply_rope_qk(q, k, cfg, positions, cache=cache, seq_len=60, **direction)
        for got, x in ((q_got, q), (k_got, k)):
            expected = reference.complex_form(x, cfg, positions, seq_len=60, **direction)
            a = cfg.attention_scaling
            assert_matches(got, expected, x, np.float32, max_angle(positions, cfg), scaling=max(a, 1 / a))


def test_reference_forms_agree_on_inverse_and_transpose(rng):
    cfg = SCALED["longrope"]
    x = rng.standard_normal((2, 5, 3, 16))
    positions = rng.integers(0, 100, (2, 5))
    for direction in ({"inverse": True}, {"transpose": True}):
        m = reference.matrix_form(x, cfg, positions, **direction)
        for form in (reference.complex_form, reference.rotate_half_form):
            np.testing.assert_allclose(form(x, cfg, positions, **direction), m, rtol=0, atol=1e-12)
    y = reference.complex_form(x, cfg, positions)
    np.testing.assert_allclose(reference.complex_form(y, cfg, positions, inverse=True), x, rtol=0, atol=1e-12)


def test_inverse_and_transpose_together_are_refused():
    x = np.zeros((1, 2, 1, 16))
    with pytest.raises(ValueError, match="inverse=True and transpose=True"):
        numrope.apply_rope(x, SCALED["yarn"], inverse=True, transpose=True)
    with pytest.raises(ValueError, match="inverse=True and transpose=True"):
        numrope.apply_rope_qk(x, x, SCALED["yarn"], inverse=True, transpose=True)


def test_attention_factor_without_a_finite_inverse():
    cfg = numrope.RopeConfig(
        head_dim=16, scaling=YaRN(factor=2.0, original_max_position_embeddings=64, attention_scaling=1e-310)
    )
    x = np.ones((1, 2, 1, 16))
    with pytest.raises(ValueError, match="has no finite inverse"):
        numrope.apply_rope(x, cfg, inverse=True)
    with pytest.raises(ValueError, match="has no finite inverse"):
        numrope.apply_rope(x, cfg, inverse=True, cache=numrope.rope_cache(cfg, 2, np.float64))
