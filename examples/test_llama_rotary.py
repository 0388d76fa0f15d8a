"""Check a PyTorch model's rotary embedding against numrope, in a pytest test.

Hugging Face transformers' Llama rotates queries and keys with ``LlamaRotaryEmbedding`` (the cos/sin
of each position) and ``apply_rotary_pos_emb``. This test runs both on random queries and keys and
asks :func:`numrope.testing.assert_rope_allclose` whether the result is RoPE for the model's
configuration. transformers forms its angles in float32, so the tolerance must allow for that
(``float32_angles=True``); without it the check is held to float32 rounding alone, which
transformers' output does not meet.

Run it with ``python -m pytest examples/test_llama_rotary.py`` (needs torch and transformers).
"""

import pytest

torch = pytest.importorskip("torch", reason="needs torch")
llama = pytest.importorskip("transformers.models.llama.modeling_llama", reason="needs transformers")
transformers = pytest.importorskip("transformers")

import numrope  # noqa: E402
from numrope.testing import assert_rope_allclose  # noqa: E402

HIDDEN, HEADS, KV_HEADS = 512, 8, 2
HEAD_DIM = HIDDEN // HEADS


def llama_config(rope_theta=500000.0):
    # transformers 5 keeps the RoPE settings in rope_parameters; numrope reads the same config.json.
    return transformers.LlamaConfig(
        hidden_size=HIDDEN,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        max_position_embeddings=8192,
        rope_parameters={"rope_type": "default", "rope_theta": rope_theta},
    )


@pytest.mark.parametrize("start", [0, 8000])
def test_llama_rotary_is_rope(tmp_path, start):
    config = llama_config()
    rotary = llama.LlamaRotaryEmbedding(config)
    # transformers' attention layout: (batch, heads, seq, head_dim)
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(1, HEADS, 64, HEAD_DIM, generator=gen)
    k = torch.randn(1, KV_HEADS, 64, HEAD_DIM, generator=gen)
    positions = torch.arange(start, start + 64)[None]
    cos, sin = rotary(q, positions)
    q_rot, k_rot = llama.apply_rotary_pos_emb(q, k, cos, sin)

    # The same configuration, read the way a user would: from the model's config.json.
    config.save_pretrained(tmp_path)
    cfg = numrope.RopeConfig.from_hf(tmp_path / "config.json")
    assert cfg == numrope.RopeConfig(head_dim=HEAD_DIM, base=500000.0)

    pos = positions.numpy()
    assert_rope_allclose(q_rot, q.numpy(), cfg, pos, seq_axis=-2, float32_angles=True)
    assert_rope_allclose(k_rot, k.numpy(), cfg, pos, seq_axis=-2, float32_angles=True)


def test_a_wrong_base_is_caught():
    """The check is not vacuous: Llama's rotation is not RoPE with Llama 2's base of 10000."""
    rotary = llama.LlamaRotaryEmbedding(llama_config())
    q = torch.randn(1, HEADS, 16, HEAD_DIM, generator=torch.Generator().manual_seed(1))
    positions = torch.arange(100, 116)[None]
    cos, sin = rotary(q, positions)
    q_rot, _ = llama.apply_rotary_pos_emb(q, q, cos, sin)
    with pytest.raises(AssertionError):
        assert_rope_allclose(
            q_rot,
            q.numpy(),
            numrope.RopeConfig(HEAD_DIM, base=10000.0),
            positions.numpy(),
            seq_axis=-2,
            float32_angles=True,
        )
