"""Hugging Face transformers' own rotary output, validated with numrope.validation (skipped without torch)."""

import importlib

import numpy as np
import pytest

import numrope
from numrope.testing import assert_rope_allclose
from numrope.validation import compare, compare_qk, emulate

torch = pytest.importorskip("torch", reason="torch is not installed")
transformers = pytest.importorskip("transformers", reason="transformers is not installed")

POSITIONS = np.arange(64) * 2000  # up to 126000: float32 angles show

LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0}
CASES = {
    "llama": ("llama", "LlamaConfig", {"rope_theta": 10000.0}, "float32"),
    "llama3-bf16": (
        "llama",
        "LlamaConfig",
        {
            "rope_theta": 500000.0,
            "max_position_embeddings": 131072,
            "rope_scaling": {**LLAMA3, "original_max_position_embeddings": 8192},
        },
        "bfloat16",
    ),
    "qwen2-yarn-fp16": (
        "qwen2",
        "Qwen2Config",
        {
            "rope_theta": 1e6,
            "max_position_embeddings": 131072,
            "rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768},
        },
        "float16",
    ),
    "gpt-neox-partial": ("gpt_neox", "GPTNeoXConfig", {"rotary_pct": 0.25}, "float32"),
    "cohere-interleaved-bf16": ("cohere", "CohereConfig", {}, "bfloat16"),
}


def _rotary(name):
    module, config_class, kwargs, _ = CASES[name]
    sizes = {"hidden_size": 256, "num_attention_heads": 4, "num_key_value_heads": 2}
    config = getattr(transformers, config_class)(**sizes, **kwargs)
    modeling = importlib.import_module(f"transformers.models.{module}.modeling_{module}")
    rotary = next(getattr(modeling, n) for n in dir(modeling) if n.endswith("RotaryEmbedding"))(config=config)
    return config, modeling, rotary


def transformers_inv_freq(name):
    """The rotary module's own float32 frequencies (its ``inv_freq`` buffer)."""
    return _rotary(name)[2].inv_freq.numpy()


def transformers_rope(name):
    """(q, k, q_rot, k_rot, cfg) from transformers' RotaryEmbedding and apply_rotary_pos_emb."""
    dtype = CASES[name][3]
    config, modeling, rotary = _rotary(name)
    cfg = numrope.RopeConfig.from_hf(config.to_dict())
    g = torch.Generator().manual_seed(0)
    dtype = getattr(torch, dtype)
    q = torch.randn(1, 4, POSITIONS.size, cfg.head_dim, generator=g).to(dtype)  # (batch, heads, seq, dim)
    k = torch.randn(1, 2, POSITIONS.size, cfg.head_dim, generator=g).to(dtype)
    with torch.no_grad():
        cos, sin = rotary(q, torch.from_numpy(POSITIONS)[None])
        q_rot, k_rot = modeling.apply_rotary_pos_emb(q, k, cos, sin)
    return q, k, q_rot, k_rot, cfg


@pytest.mark.parametrize("name", CASES)
def test_transformers_output_matches_within_its_precision(name):
    q, k, q_rot, k_rot, cfg = transformers_rope(name)
    report = compare_qk(q_rot, k_rot, q, k, cfg, POSITIONS, seq_axis=-2, float32_angles=True)
    assert report.ok, report
    assert report.diagnosis == ()
    # a deliberately wrong config is caught and named
    other = "interleaved" if cfg.layout == "half" else "half"
    wrong = compare(q_rot, q, numrope.RopeConfig(**{**_fields(cfg), "layout": other}), POSITIONS, seq_axis=-2)
    assert [f.kind for f in wrong.diagnosis] == ["layout"]


def _fields(cfg):
    return {"head_dim": cfg.head_dim, "base": cfg.base, "rotary_dim": cfg.rotary_dim, "scaling": cfg.scaling}


@pytest.mark.parametrize("name", ["llama", "gpt-neox-partial"])
def test_float32_angles_of_transformers_are_diagnosed_as_precision(name):
    q, _, q_rot, _, cfg = transformers_rope(name)
    strict = compare(q_rot, q, cfg, POSITIONS, seq_axis=-2, float32_angles=False)
    assert not strict.ok
    assert [f.kind for f in strict.diagnosis] == ["precision"]


@pytest.mark.parametrize("name", CASES)
def test_emulate_reproduces_transformers(name):
    """numrope.validation.emulate rounds as transformers does: within a few ulps of it, while both differ from exact."""
    q, _, q_rot, _, cfg = transformers_rope(name)
    dtype = CASES[name][3]
    # torch's float32 pow may differ from NumPy's by an ulp or two: emulate with the module's own inv_freq
    inv_freq = transformers_inv_freq(name)
    mine = np.asarray(emulate.apply_rope(q, cfg, POSITIONS, seq_axis=-2, inv_freq=inv_freq), np.float64)
    theirs = q_rot.float().numpy().astype(np.float64)
    exact = numrope.apply_rope(np.asarray(q.float().numpy(), np.float64), cfg, POSITIONS, seq_axis=-2)
    scale = np.abs(exact).max()
    eps = {"float32": 2.0**-23, "bfloat16": 2.0**-7, "float16": 2.0**-10}[dtype]
    assert np.abs(mine - theirs).max() <= 4 * eps * scale
    if dtype == "float32":
        assert np.abs(theirs - exact).max() > 1000 * eps * scale


@pytest.mark.parametrize("name", CASES)
def test_compare_and_assert_rope_allclose_agree_on_transformers_output(name):
    """One tolerance story: the same output passes both or fails both, by default and with float32 angles."""
    q, _, q_rot, _, cfg = transformers_rope(name)
    outcomes = {}
    for float32_angles in (False, True):
        kw = {"seq_axis": -2, "float32_angles": float32_angles}
        ok = compare(q_rot, q, cfg, POSITIONS, **kw).ok
        try:
            assert_rope_allclose(q_rot, q, cfg, POSITIONS, **kw)
            asserted = True
        except AssertionError:
            asserted = False
        assert ok == asserted, (name, float32_angles)
        outcomes[float32_angles] = ok
    assert outcomes[True]  # transformers is right within float32 angles
    if CASES[name][3] != "bfloat16":  # bfloat16's own rounding hides float32 angles up to here
        assert not outcomes[False]  # and not within float64 angles, whichever function asks
    # the defaults: both hold the output to float64 angles
    assert compare(q_rot, q, cfg, POSITIONS, seq_axis=-2).ok == outcomes[False]
    if not outcomes[False]:
        with pytest.raises(AssertionError, match="precision"):
            assert_rope_allclose(q_rot, q, cfg, POSITIONS, seq_axis=-2)
