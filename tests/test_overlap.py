"""Outputs that share memory with inputs: computed as if every input were read before any output
is written, or refused with a ValueError; exactly disjoint strided views are not refused."""

import numpy as np
import pytest
from conftest import assert_matches

import numrope
from numrope import _checks, reference

CFG = numrope.RopeConfig(head_dim=8, layout="interleaved")
POS = np.array([3, 1, 4, 1, 5])


def expected(x):
    return reference.complex_form(x, CFG, POS)


def check(got, x0, dtype=np.float64):
    assert_matches(got, expected(x0), x0, dtype, 5.0)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_outputs_swapped(dtype, rng):
    q0 = rng.standard_normal((2, 5, 3, 8)).astype(dtype)
    k0 = rng.standard_normal((2, 5, 3, 8)).astype(dtype)
    q, k = q0.copy(), k0.copy()
    q_rot, k_rot = numrope.apply_rope_qk(q, k, CFG, POS, out=(k, q))
    assert q_rot is k and k_rot is q
    check(q_rot, q0, dtype)
    check(k_rot, k0, dtype)


@pytest.mark.parametrize("use_cache", [False, True])
def test_q_result_into_k(use_cache, rng):
    cache = numrope.rope_cache(CFG, 8, np.float64) if use_cache else None
    q0, k0 = rng.standard_normal((2, 2, 5, 3, 8))
    q, k = q0.copy(), k0.copy()
    q_rot, k_rot = numrope.apply_rope_qk(q, k, CFG, POS, cache=cache, out=(k, None))
    assert q_rot is k
    check(q_rot, q0)
    check(k_rot, k0)
    np.testing.assert_array_equal(q, q0)


def test_q_is_k(rng):
    x0 = rng.standard_normal((2, 5, 3, 8))
    x = x0.copy()
    q_rot, k_rot = numrope.apply_rope_qk(x, x, CFG, POS, out=(x, None))
    assert q_rot is x
    check(q_rot, x0)
    check(k_rot, x0)
    x = x0.copy()
    q_rot, k_rot = numrope.apply_rope_qk(x, x, CFG, POS, out=(None, x))
    check(q_rot, x0)
    check(k_rot, x0)


def test_partly_overlapping_inputs(rng):
    buf0 = rng.standard_normal((2, 5, 6, 8))
    buf = buf0.copy()
    q, k = buf[:, :, :4], buf[:, :, 2:]  # heads 2 and 3 are in both
    q_rot, k_rot = numrope.apply_rope_qk(q, k, CFG, POS, out=(q, None))
    check(q_rot, buf0[:, :, :4])
    check(k_rot, buf0[:, :, 2:])
    buf = buf0.copy()
    q, k = buf[:, :, :4], buf[:, :, 2:]
    q_rot, k_rot = numrope.apply_rope_qk(q, k, CFG, POS, out=(None, k))
    check(q_rot, buf0[:, :, :4])
    check(k_rot, buf0[:, :, 2:])
    with pytest.raises(ValueError, match=r"out\[0\] and out\[1\] overlap"):
        numrope.apply_rope_qk(q, k, CFG, POS, out=(q, k))


def test_fused_qkv_buffer_in_place(rng):
    qkv0 = rng.standard_normal((2, 5, 3, 4, 8)).astype(np.float32)  # (batch, seq, q/k/v, heads, dim)
    qkv = qkv0.copy()
    q, k = qkv[:, :, 0], qkv[:, :, 1]
    q_rot, k_rot = numrope.apply_rope_qk(q, k, CFG, POS, out=(q, k))
    assert q_rot is q and k_rot is k
    check(qkv[:, :, 0], qkv0[:, :, 0], np.float32)
    check(qkv[:, :, 1], qkv0[:, :, 1], np.float32)
    np.testing.assert_array_equal(qkv[:, :, 2], qkv0[:, :, 2])
    # grouped-query: 6 query heads, 2 key heads and 2 value heads packed along one axis
    packed0 = rng.standard_normal((2, 5, 10, 8))
    packed = packed0.copy()
    q, k = packed[:, :, :6], packed[:, :, 6:8]
    numrope.apply_rope_qk(q, k, CFG, POS, out=(q, k))
    check(packed[:, :, :6], packed0[:, :, :6])
    check(packed[:, :, 6:8], packed0[:, :, 6:8])
    np.testing.assert_array_equal(packed[:, :, 8:], packed0[:, :, 8:])


def test_interleaved_disjoint_views(rng):
    a0 = rng.standard_normal((2, 5, 3, 16))
    a = a0.copy()
    out = numrope.apply_rope(a[..., ::2], CFG, POS, out=a[..., 1::2])
    check(out, a0[..., ::2])
    np.testing.assert_array_equal(a[..., ::2], a0[..., ::2])
    with pytest.raises(ValueError, match="out partly overlaps x"):
        numrope.apply_rope(a[..., :8], CFG, POS, out=a[..., 1:9])


def test_overlap_undecided_is_refused(monkeypatch, rng):
    """Where NumPy's bounded search gives up, the arrays count as overlapping."""
    monkeypatch.setattr(_checks, "_OVERLAP_MAX_WORK", 0)
    qkv = rng.standard_normal((2, 5, 3, 4, 8))
    with pytest.raises(ValueError, match=r"out\[0\] and out\[1\] overlap"):
        numrope.apply_rope_qk(qkv[:, :, 0], qkv[:, :, 1], CFG, POS, out=(qkv[:, :, 0], qkv[:, :, 1]))
    a = rng.standard_normal((2, 5, 3, 16))
    with pytest.raises(ValueError, match="out partly overlaps x"):
        numrope.apply_rope(a[..., ::2], CFG, POS, out=a[..., 1::2])
