"""numrope.validation.convert: converting q/k weights between layouts leaves every attention score unchanged."""

import numpy as np
import pytest

import numrope
from numrope.validation.convert import permute_qk_weights


def scores(wq, wk, h, cfg, n_heads, n_kv, positions):
    """Attention logits of hidden states h (seq, hidden) with RoPE in cfg's layout, grouped-query keys."""
    seq = h.shape[0]
    q = (h @ wq.T).reshape(1, seq, n_heads, cfg.head_dim)
    k = (h @ wk.T).reshape(1, seq, n_kv, cfg.head_dim)
    q, k = numrope.apply_rope_qk(q, k, cfg, positions)
    k = np.repeat(k, n_heads // n_kv, axis=2)
    return np.einsum("bqhd,bkhd->bhqk", q, k)


@pytest.mark.parametrize("rotary_dim", [None, 32])
def test_scores_unchanged_meta_to_hf(rng, rotary_dim):
    n_heads, n_kv, head_dim, hidden = 4, 2, 64, 48
    wq = rng.standard_normal((n_heads * head_dim, hidden))
    wk = rng.standard_normal((n_kv * head_dim, hidden))
    h = rng.standard_normal((12, hidden))
    positions = np.arange(12) + 30
    meta = numrope.RopeConfig(head_dim=head_dim, rotary_dim=rotary_dim, layout="interleaved")
    hf = numrope.RopeConfig(head_dim=head_dim, rotary_dim=rotary_dim, layout="half")
    wq_hf = permute_qk_weights(wq, n_heads, head_dim, to="half", rotary_dim=rotary_dim)
    wk_hf = permute_qk_weights(wk, n_kv, head_dim, to="half", rotary_dim=rotary_dim)
    before = scores(wq, wk, h, meta, n_heads, n_kv, positions)
    after = scores(wq_hf, wk_hf, h, hf, n_heads, n_kv, positions)
    np.testing.assert_allclose(after, before, rtol=1e-12, atol=1e-10)
    # without the conversion the scores differ: the test can fail
    unconverted = scores(wq, wk, h, hf, n_heads, n_kv, positions)
    assert np.abs(unconverted - before).max() > 1.0
    # and back
    wq_back = permute_qk_weights(wq_hf, n_heads, head_dim, to="interleaved", rotary_dim=rotary_dim)
    np.testing.assert_array_equal(wq_back, wq)


def test_matches_the_hf_converter_permute(rng):
    """transformers' convert_llama_weights_to_hf permute: view(n, d/2, 2, in).transpose(1, 2)."""
    n_heads, head_dim, hidden = 3, 8, 5
    w = rng.standard_normal((n_heads * head_dim, hidden))
    want = w.reshape(n_heads, head_dim // 2, 2, hidden).transpose(0, 2, 1, 3).reshape(n_heads * head_dim, hidden)
    np.testing.assert_array_equal(permute_qk_weights(w, n_heads, head_dim), want)


def test_bias_and_transposed_kernels(rng):
    n_heads, head_dim = 2, 8
    bias = rng.standard_normal(n_heads * head_dim)
    kernel = rng.standard_normal((5, n_heads * head_dim))  # JAX/Flax (in, out)
    w = kernel.T
    np.testing.assert_array_equal(
        permute_qk_weights(kernel, n_heads, head_dim, axis=1).T, permute_qk_weights(w, n_heads, head_dim)
    )
    np.testing.assert_array_equal(
        permute_qk_weights(bias, n_heads, head_dim), permute_qk_weights(bias[:, None], n_heads, head_dim)[:, 0]
    )


def test_bad_arguments(rng):
    w = rng.standard_normal((16, 4))
    with pytest.raises(ValueError, match="n_heads \\* head_dim"):
        permute_qk_weights(w, 3, 8)
    with pytest.raises(ValueError, match="to must be"):
        permute_qk_weights(w, 2, 8, to="meta")
    with pytest.raises(ValueError, match="even"):
        permute_qk_weights(w, 16, 1)
    with pytest.raises(ValueError, match="at most head_dim"):
        permute_qk_weights(w, 2, 8, rotary_dim=10)
    with pytest.raises(TypeError, match="n_heads"):
        permute_qk_weights(w, 2.0, 8)
    with pytest.raises(ValueError, match="axis"):
        permute_qk_weights(w, 2, 8, axis=2)
