"""Decode token by token with a KV cache: a NumPy attention layer with grouped-query heads and RoPE.

The layer projects queries, keys and values, rotates queries and keys with numrope (one cos/sin
table for the whole run, looked up by position), appends the rotated keys and the values to a
preallocated cache, and attends over the cache with a causal mask. Eight query heads share two
key/value heads (grouped-query attention, as in Llama 2 70B and later).

The check at the end: decoding one token at a time through the cache gives the same outputs as
one pass over the whole sequence, to the rounding of float64 arithmetic. Run it with
``python examples/kv_cache_attention.py``.
"""

import numpy as np

import numrope

D_MODEL, N_HEADS, N_KV_HEADS, HEAD_DIM = 256, 8, 2, 32
MAX_LEN = 64


class Attention:
    """One causal self-attention layer with grouped-query heads, RoPE and a KV cache."""

    def __init__(self, rng, cfg, max_len, batch):
        scale = D_MODEL**-0.5
        self.wq = rng.standard_normal((D_MODEL, N_HEADS * HEAD_DIM)) * scale
        self.wk = rng.standard_normal((D_MODEL, N_KV_HEADS * HEAD_DIM)) * scale
        self.wv = rng.standard_normal((D_MODEL, N_KV_HEADS * HEAD_DIM)) * scale
        self.wo = rng.standard_normal((N_HEADS * HEAD_DIM, D_MODEL)) * scale
        self.cfg = cfg
        # Row p of the table is position p; float64 to match the activations.
        self.table = numrope.rope_cache(cfg, max_len, dtype=np.float64)
        self.k_cache = np.zeros((batch, max_len, N_KV_HEADS, HEAD_DIM))
        self.v_cache = np.zeros((batch, max_len, N_KV_HEADS, HEAD_DIM))
        self.length = 0  # tokens in the cache

    def __call__(self, x):
        """Attend from the new tokens ``x`` (batch, seq, d_model) to everything cached so far."""
        b, s, _ = x.shape
        start, end = self.length, self.length + s
        q = (x @ self.wq).reshape(b, s, N_HEADS, HEAD_DIM)
        k = (x @ self.wk).reshape(b, s, N_KV_HEADS, HEAD_DIM)
        v = (x @ self.wv).reshape(b, s, N_KV_HEADS, HEAD_DIM)
        # Queries and keys at their absolute positions; the keys go into the cache already rotated.
        q, k = numrope.apply_rope_qk(q, k, self.cfg, np.arange(start, end), cache=self.table)
        self.k_cache[:, start:end] = k
        self.v_cache[:, start:end] = v
        self.length = end

        keys, values = self.k_cache[:, :end], self.v_cache[:, :end]
        group = N_HEADS // N_KV_HEADS  # query heads per key/value head
        q = q.reshape(b, s, N_KV_HEADS, group, HEAD_DIM)
        scores = np.einsum("bqhgd,bkhd->bhgqk", q, keys) / np.sqrt(HEAD_DIM)
        # Causal mask: the token at position start + i sees keys 0 .. start + i.
        visible = np.arange(end)[None, :] <= np.arange(start, end)[:, None]
        scores = np.where(visible, scores, -np.inf)
        weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
        weights /= weights.sum(axis=-1, keepdims=True)
        out = np.einsum("bhgqk,bkhd->bqhgd", weights, values).reshape(b, s, N_HEADS * HEAD_DIM)
        return out @ self.wo


def main():
    rng = np.random.default_rng(0)
    cfg = numrope.RopeConfig(head_dim=HEAD_DIM, base=10000.0)
    batch, prompt, total = 2, 12, 40
    tokens = rng.standard_normal((batch, total, D_MODEL))  # stand-ins for embedded tokens

    # The reference: one pass over the whole sequence.
    full = Attention(np.random.default_rng(1), cfg, MAX_LEN, batch)(tokens)

    # Prefill the prompt, then decode the rest one token at a time through the cache.
    layer = Attention(np.random.default_rng(1), cfg, MAX_LEN, batch)
    steps = [layer(tokens[:, :prompt])]
    for t in range(prompt, total):
        steps.append(layer(tokens[:, t : t + 1]))
    decoded = np.concatenate(steps, axis=1)

    # The two differ only in the order of float64 sums: a few ulps of the outputs' scale.
    err = np.abs(decoded - full).max()
    bound = 64 * np.finfo(np.float64).eps * np.abs(full).max()
    print(f"prefill of {prompt} tokens, then {total - prompt} decoding steps with a KV cache of {layer.length}")
    print(f"max |cached - full-sequence| = {err:.2e} (bound {bound:.2e})")
    assert err <= bound, "decoding through the cache disagrees with the full-sequence pass"
    print("the cached decode matches the full-sequence pass")


if __name__ == "__main__":
    main()
