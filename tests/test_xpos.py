"""xPos (numrope.variants.XPos): queries scaled up and keys down by each pair's factor, on top of RoPE.

Held to the formula of Sun et al. 2022 written out here in NumPy, and to rotary-embedding-torch's
``RotaryEmbedding(use_xpos=True).rotate_queries_and_keys`` where that package is installed.
"""

import numpy as np
import pytest
from conftest import assert_matches

import numrope
from numrope.variants import XPos


def by_hand(q, k, head_dim, base, scale_base, center, positions, rotary_dim=None):
    """Sun et al. 2022, eq. 8: pair i of q at m times zeta_i**((m - c)/B), of k times zeta_i**(-(m - c)/B),
    zeta_i = (2i + 0.4 d)/(1.4 d), rotated as RoPE with the half layout; (batch, seq, heads, head_dim)."""
    d = rotary_dim or head_dim
    n = d // 2
    i = np.arange(n)
    theta = base ** (-2.0 * i / d)
    zeta = (2.0 * i + 0.4 * d) / (1.4 * d)
    m = np.asarray(positions, dtype=np.float64)
    angle = m[:, None] * theta
    c, s = np.cos(angle)[None, :, None, :], np.sin(angle)[None, :, None, :]
    f = (zeta ** ((m[:, None] - center) / scale_base))[None, :, None, :]

    def rot(x, scale):
        x = np.asarray(x, dtype=np.float64)
        out = x.copy()
        x0, x1 = x[..., :n], x[..., n:d]
        out[..., :n], out[..., n:d] = scale * (x0 * c - x1 * s), scale * (x1 * c + x0 * s)
        return out

    return rot(q, f), rot(k, 1.0 / f)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_queries_up_keys_down(dtype, rng):
    cfg = numrope.RopeConfig(32, base=10000.0, rotary_dim=24, scaling=XPos(scale_base=64.0, center=10.0))
    q = rng.standard_normal((2, 20, 4, 32)).astype(dtype)
    k = rng.standard_normal((2, 20, 2, 32)).astype(dtype)
    pos = np.arange(20) * 7
    eq, ek = by_hand(q, k, 32, 10000.0, 64.0, 10.0, pos, rotary_dim=24)
    got_q, got_k = numrope.apply_rope_qk(q, k, cfg, pos)
    f_max = float(np.max(cfg.scaling.query_factors(cfg, pos)))  # the largest factor, on either side
    big = max(f_max, 1 / float(np.min(cfg.scaling.query_factors(cfg, pos))))
    assert_matches(got_q, eq, q, dtype, 140, big)
    assert_matches(got_k, ek, k, dtype, 140, big)
    # q_m . k_n keeps only zeta**((m - n)/B): the center drops out of the scores
    other = numrope.RopeConfig(32, base=10000.0, rotary_dim=24, scaling=XPos(scale_base=64.0))
    q64, k64 = q.astype(np.float64), k.astype(np.float64)
    a = np.einsum(
        "bshd,bthd->bhst",
        *(r[:, :, :2] if n == 0 else r for n, r in enumerate(numrope.apply_rope_qk(q64, k64, cfg, pos))),
    )
    b = np.einsum(
        "bshd,bthd->bhst",
        *(r[:, :, :2] if n == 0 else r for n, r in enumerate(numrope.apply_rope_qk(q64, k64, other, pos))),
    )
    assert np.allclose(a, b, rtol=1e-12, atol=1e-12 * np.abs(a).max())
    # the inverse undoes it; the transpose is the adjoint of each side's map
    back_q, back_k = numrope.apply_rope_qk(got_q, got_k, cfg, pos, inverse=True)
    assert_matches(back_q, q, got_q, dtype, 140, big)
    assert_matches(back_k, k, got_k, dtype, 140, big)
    if dtype == np.float64:
        gq, gk = rng.standard_normal(q.shape), rng.standard_normal(k.shape)
        tq, tk = numrope.apply_rope_qk(gq, gk, cfg, pos, transpose=True)
        assert np.isclose(np.sum(got_q * gq), np.sum(q * tq), rtol=1e-12)
        assert np.isclose(np.sum(got_k * gk), np.sum(k * tk), rtol=1e-12)


def test_one_tensor_and_tables_are_refused():
    cfg = numrope.RopeConfig(8, scaling=XPos())
    x = np.ones((1, 3, 1, 8))
    with pytest.raises(NotImplementedError, match="xPos scales queries and keys apart"):
        numrope.apply_rope(x, cfg)
    with pytest.raises(NotImplementedError, match="xPos scales queries and keys apart"):
        numrope.apply_rope(x, cfg, 0, cache=numrope.rope_cache(numrope.RopeConfig(8), 4))
    with pytest.raises(NotImplementedError, match="rope_cache: xPos"):
        numrope.rope_cache(cfg, 4)
    with pytest.raises(NotImplementedError, match="xPos with cache="):
        numrope.apply_rope_qk(x, x, cfg, cache=numrope.rope_cache(numrope.RopeConfig(8), 4))
    with pytest.raises(ValueError, match="scale_base must be positive"):
        XPos(scale_base=0)
    assert "xpos" not in numrope.variants.VARIANTS  # no rope_type of Hugging Face configs


@pytest.mark.parametrize(("seq_len", "scale_base"), [(16, 512), (33, 8), (200, 64)])
def test_rotary_embedding_torch(seq_len, scale_base, rng):
    """rotary-embedding-torch counts the factors from the middle of the sequence: center = seq_len // 2."""
    torch = pytest.importorskip("torch")
    ret = pytest.importorskip("rotary_embedding_torch", reason="rotary-embedding-torch is not installed")
    dim = 32
    rope = ret.RotaryEmbedding(dim=dim, use_xpos=True, xpos_scale_base=scale_base)
    q = rng.standard_normal((2, 4, seq_len, dim)).astype(np.float32)  # (batch, heads, seq, dim)
    k = rng.standard_normal((2, 4, seq_len, dim)).astype(np.float32)
    tq, tk = rope.rotate_queries_and_keys(torch.from_numpy(q), torch.from_numpy(k))
    # rotary-embedding-torch pairs adjacent features: the interleaved layout
    cfg = numrope.RopeConfig(dim, layout="interleaved", scaling=XPos(scale_base=scale_base, center=seq_len // 2))
    nq, nk = numrope.apply_rope_qk(q.astype(np.float64), k.astype(np.float64), cfg, seq_axis=-2)
    factors = cfg.scaling.query_factors(cfg, np.arange(seq_len))
    big = max(float(factors.max()), float(1 / factors.min()))
    # float32 throughout in the framework: angles m theta formed in float32 (|m theta| <= seq_len), the
    # factors zeta**p in float32, a few roundings per element; relative to each pair's size
    eps = float(np.finfo(np.float32).eps)
    for got, ours, x in ((tq, nq, q), (tk, nk, k)):
        pair = np.abs(x).max() * 2 * big
        # |m theta| <= seq_len (theta <= 1): the float32 angle is off by seq_len eps; zeta**p in float32 by
        # (|ln big| + 2) eps relative; a few roundings of the products: a factor 2 of margin
        assert np.abs(got.numpy() - ours).max() <= pair * eps * 2 * (seq_len + np.log(big) + 6)
