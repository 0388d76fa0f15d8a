"""Per-sequence positions index the batch axes of x, never its heads, in either axis order.

The references rotate the (batch, seq, heads, dim) form, where every axis before the sequence
axis is a batch axis, and swap the axes back: independent of how numrope reads (batch, heads,
seq, dim) arrays.
"""

import numpy as np
import pytest
from conftest import assert_matches

import numrope
from numrope import reference
from numrope.validation import compare, emulate

CFG = numrope.RopeConfig(head_dim=8, rotary_dim=6)


def heads_first_reference(x, positions, cfg=CFG, inverse=False):
    """``x`` of shape (*batch, heads, seq, dim), ``positions`` (*batch, seq) or (seq,)."""
    bshd = np.swapaxes(np.asarray(x, np.float64), -3, -2)
    return np.swapaxes(reference.complex_form(bshd, cfg, positions, inverse=inverse), -3, -2)


def angle(positions):
    return float(np.abs(positions).max() * CFG.inv_freq().max())


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize(("batch", "heads"), [(3, 3), (2, 3), (3, 1), (1, 4)])
@pytest.mark.parametrize("use_cache", [False, True], ids=["fresh", "cache"])
def test_batch_positions_with_heads_first(batch, heads, dtype, use_cache, rng):
    x = rng.standard_normal((batch, heads, 5, 8)).astype(dtype)
    positions = rng.integers(0, 300, (batch, 5))
    cache = numrope.rope_cache(CFG, 300, np.float64 if dtype == np.float64 else np.float32) if use_cache else None
    expected = heads_first_reference(x, positions)
    got = numrope.apply_rope(x, CFG, positions, seq_axis=-2, cache=cache)
    assert_matches(got, expected, x, dtype, angle(positions))
    # the head axis kept with length 1, as transformers' cos/sin of shape (batch, 1, seq, dim)
    np.testing.assert_array_equal(numrope.apply_rope(x, CFG, positions[:, None], seq_axis=-2, cache=cache), got)
    # in place, and through the q/k function
    y = x.copy()
    numrope.apply_rope(y, CFG, positions, seq_axis=-2, cache=cache, out=y)
    np.testing.assert_array_equal(y, got)


def test_decode_step_heads_first(rng):
    x = rng.standard_normal((4, 4, 1, 8)).astype(np.float32)  # (batch, heads, one new token, dim)
    positions = np.array([[7], [100], [3], [42]])  # each sequence's next position
    cache = numrope.rope_cache(CFG, 128)
    for c in (None, cache):
        got = numrope.apply_rope(x, CFG, positions, seq_axis=-2, cache=c)
        assert_matches(got, heads_first_reference(x, positions), x, np.float32, angle(positions))


@pytest.mark.parametrize("pos_shape", [(2, 3, 5), (3, 5), (2, 1, 5), (1, 5), (2, 3, 1, 5), (1, 1, 1, 5)])
def test_two_batch_axes_heads_first(pos_shape, rng):
    x = rng.standard_normal((2, 3, 4, 5, 8))  # (batch, batch, heads, seq, dim)
    positions = rng.integers(0, 100, pos_shape)
    per_batch = positions.reshape(pos_shape[:-2] + pos_shape[-1:]) if len(pos_shape) == 4 else positions
    expected = heads_first_reference(x, np.broadcast_to(per_batch, (2, 3, 5)))
    got = numrope.apply_rope(x, CFG, positions, seq_axis=-2)
    assert_matches(got, expected, x, np.float64, angle(positions))


@pytest.mark.parametrize(
    ("x_shape", "pos_shape"),
    [
        ((2, 3, 5, 8), (2, 3, 5)),  # one row per head
        ((3, 3, 5, 8), (3, 3, 5)),
        ((2, 3, 5, 8), (3, 5)),  # as many rows as heads, not batches
        ((2, 3, 5, 8), (1, 3, 5)),
        ((2, 3, 5, 8), (2, 2, 5)),
        ((3, 5, 8), (3, 5)),  # heads only
        ((2, 3, 4, 5, 8), (2, 5)),  # batch axes (2, 3)
        ((2, 3, 4, 5, 8), (3, 4, 5)),
    ],
)
def test_positions_that_would_index_heads_are_refused(x_shape, pos_shape):
    x = np.zeros(x_shape)
    with pytest.raises(ValueError, match="the axis before the sequence axis holds the heads"):
        numrope.apply_rope(x, CFG, np.zeros(pos_shape, int), seq_axis=-2)


def test_heads_only(rng):
    x = rng.standard_normal((3, 5, 8))  # (heads, seq, dim)
    positions = rng.integers(0, 100, 5)
    expected = heads_first_reference(x, positions)
    for p in (positions, positions[None]):
        assert_matches(numrope.apply_rope(x, CFG, p, seq_axis=-2), expected, x, np.float64, angle(positions))


@pytest.mark.parametrize("seq_axis", [-3, -2])
@pytest.mark.parametrize("use_cache", [False, True], ids=["fresh", "cache"])
def test_qk_grouped_query_either_order(seq_axis, use_cache, rng):
    q = rng.standard_normal((2, 6, 5, 8)).astype(np.float32)  # (batch, heads, seq, dim)
    k = rng.standard_normal((2, 2, 5, 8)).astype(np.float32)
    positions = rng.integers(0, 200, (2, 5))
    cache = numrope.rope_cache(CFG, 200) if use_cache else None
    q_exp, k_exp = heads_first_reference(q, positions), heads_first_reference(k, positions)
    if seq_axis == -3:
        q, k = np.swapaxes(q, 1, 2), np.swapaxes(k, 1, 2)
        q_exp, k_exp = np.swapaxes(q_exp, 1, 2), np.swapaxes(k_exp, 1, 2)
    q_rot, k_rot = numrope.apply_rope_qk(q, k, CFG, positions, seq_axis=seq_axis, cache=cache)
    assert_matches(q_rot, q_exp, q, np.float32, angle(positions))
    assert_matches(k_rot, k_exp, k, np.float32, angle(positions))
    qq, kk = q.copy(), k.copy()
    numrope.apply_rope_qk(qq, kk, CFG, positions, seq_axis=seq_axis, cache=cache, out=(qq, kk), inverse=True)
    np.testing.assert_array_equal(qq, numrope.apply_rope(q, CFG, positions, seq_axis=seq_axis, inverse=True))
    np.testing.assert_array_equal(kk, numrope.apply_rope(k, CFG, positions, seq_axis=seq_axis, inverse=True))


def test_qk_batch_axes_must_agree():
    with pytest.raises(ValueError, match="q and k must agree on the batch axes"):
        numrope.apply_rope_qk(np.zeros((2, 4, 5, 8)), np.zeros((3, 4, 5, 8)), CFG, seq_axis=-2)


def test_reference_forms_follow_the_rule(rng):
    x = rng.standard_normal((3, 3, 5, 8))
    positions = rng.integers(0, 50, (3, 5))
    expected = heads_first_reference(x, positions)
    for form in (reference.complex_form, reference.rotate_half_form, reference.matrix_form):
        np.testing.assert_allclose(form(x, CFG, positions, seq_axis=-2), expected, rtol=0, atol=1e-12)


def test_validation_follows_the_rule(rng):
    x = rng.standard_normal((3, 3, 40, 8)).astype(np.float32)  # (batch, heads, seq, dim), batch == heads
    positions = np.stack([np.arange(40), 100 + np.arange(40), 7 + np.arange(40)])
    rotated = heads_first_reference(x, positions).astype(np.float32)
    assert compare(rotated, x, CFG, positions, seq_axis=-2).ok
    assert not compare(rotated, x, CFG, positions + 1, seq_axis=-2).ok
    emulated = emulate.apply_rope(x, CFG, positions, seq_axis=-2, angles="float64")
    assert_matches(emulated, rotated.astype(np.float64), x, np.float32, angle(positions))
