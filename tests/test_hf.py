"""Reading and writing Hugging Face configs: real config.json files, both transformers formats.

The fixtures in ``tests/fixtures/configs`` are the published config.json files of these models,
with their RoPE-related keys verbatim (a few bulky keys unrelated to RoPE, such as
``quantization_config``, left out):

=====================================  ================================================
fixture                                source (huggingface.co/...)
=====================================  ================================================
llama-2-7b-hf.json                     meta-llama/Llama-2-7b-hf
llama-3.1-8b.json                      meta-llama/Llama-3.1-8B
llama-3.2-1b.json                      meta-llama/Llama-3.2-1B
qwen2.5-7b-instruct-yarn.json          Qwen/Qwen2.5-7B-Instruct, with the ``rope_scaling``
                                       block its model card says to add for long texts
deepseek-v2-lite.json                  deepseek-ai/DeepSeek-V2-Lite
deepseek-v3.json                       deepseek-ai/DeepSeek-V3
gpt-oss-20b.json                       openai/gpt-oss-20b
phi-3.5-mini-instruct.json             microsoft/Phi-3.5-mini-instruct
phi-2.json                             microsoft/phi-2
gpt-neox-20b.json                      EleutherAI/gpt-neox-20b
gemma-3-4b-it.json                     google/gemma-3-4b-it
chatglm3-6b.json                       THUDM/chatglm3-6b
glm-4-9b-chat.json                     THUDM/glm-4-9b-chat
*.transformers5.json                   the same config loaded and saved by transformers
                                       5.x (``rope_parameters``; Gemma 3 per layer type)
=====================================  ================================================

Expected values are worked out by hand from each config's numbers in the comments.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest

import numrope
from numrope.models import hf
from numrope.variants import Linear, Llama3, LongRoPE, NTKAware, YaRN

FIXTURES = Path(__file__).parent / "fixtures" / "configs"
ALL_FIXTURES = sorted(p.name for p in FIXTURES.glob("*.json"))


def fixture(name):
    return json.loads((FIXTURES / name).read_text())


# (fixture, layer_type) -> head_dim, rotary_dim, base, layout, rope_type, attention_scaling
EXPECTED = {
    # hidden 4096 / 32 heads = 128; no rope_theta -> 10000; rope_scaling null
    ("llama-2-7b-hf.json", None): (128, 128, 10000.0, "half", None, 1.0),
    ("llama-3.1-8b.json", None): (128, 128, 500000.0, "half", "llama3", 1.0),
    ("llama-3.1-8b.transformers5.json", None): (128, 128, 500000.0, "half", "llama3", 1.0),
    # head_dim 64 given explicitly (2048 / 32 = 64 too)
    ("llama-3.2-1b.json", None): (64, 64, 500000.0, "half", "llama3", 1.0),
    # 3584 / 28 = 128; YaRN s = 4: 0.1 ln 4 + 1
    ("qwen2.5-7b-instruct-yarn.json", None): (128, 128, 1e6, "half", "yarn", 0.1 * math.log(4) + 1),
    # MLA: heads of qk_nope_head_dim 128 + qk_rope_head_dim 64 = 192, RoPE on the last 64; DeepSeek-V2
    # pairs them as complex numbers (interleaved), V3 reads pairs (2i, 2i+1) and writes them de-interleaved
    # (rope_interleave true); mscale == mscale_all_dim -> attention factor 1
    ("deepseek-v2-lite.json", None): (192, 64, 10000.0, "interleaved", "yarn", 1.0),
    ("deepseek-v3.json", None): (192, 64, 10000.0, "interleaved_in_half_out", "yarn", 1.0),
    # head_dim 64; YaRN s = 32: 0.1 ln 32 + 1
    ("gpt-oss-20b.json", None): (64, 64, 150000.0, "half", "yarn", 0.1 * math.log(32) + 1),
    # 3072 / 32 = 96; LongRoPE s = 131072 / 4096 = 32: sqrt(1 + ln 32 / ln 4096) = sqrt(17/12)
    ("phi-3.5-mini-instruct.json", None): (96, 96, 10000.0, "half", "longrope", math.sqrt(17 / 12)),
    ("phi-3.5-mini-instruct.transformers5.json", None): (96, 96, 10000.0, "half", "longrope", math.sqrt(17 / 12)),
    # 2560 / 32 = 80, partial_rotary_factor 0.4 -> 32
    ("phi-2.json", None): (80, 32, 10000.0, "half", None, 1.0),
    # 6144 / 64 = 96, rotary_pct 0.25 -> 24, rotary_emb_base 10000
    ("gpt-neox-20b.json", None): (96, 24, 10000.0, "half", None, 1.0),
    # text_config; Gemma3TextConfig defaults: head_dim 256, rope_theta 1e6, rope_local_base_freq 1e4
    ("gemma-3-4b-it.json", "full_attention"): (256, 256, 1e6, "half", "linear", 1.0),
    ("gemma-3-4b-it.json", "sliding_attention"): (256, 256, 10000.0, "half", None, 1.0),
    ("gemma-3-4b-it.transformers5.json", "full_attention"): (256, 256, 1e6, "half", "linear", 1.0),
    ("gemma-3-4b-it.transformers5.json", "sliding_attention"): (256, 256, 10000.0, "half", None, 1.0),
    # kv_channels 128, half of it rotated (64), interleaved; base 10000 * rope_ratio (1 / 500)
    ("chatglm3-6b.json", None): (128, 64, 10000.0, "interleaved", None, 1.0),
    ("glm-4-9b-chat.json", None): (128, 64, 5e6, "interleaved", None, 1.0),
}


def test_every_fixture_is_covered():
    assert {name for name, _ in EXPECTED} == set(ALL_FIXTURES)


@pytest.mark.parametrize(("name", "layer_type"), list(EXPECTED), ids=[f"{n}-{lt}" for n, lt in EXPECTED])
def test_real_configs(name, layer_type):
    head_dim, rotary_dim, base, layout, rope_type, attention = EXPECTED[name, layer_type]
    cfg = numrope.RopeConfig.from_hf(FIXTURES / name, layer_type=layer_type)
    assert (cfg.head_dim, cfg.rotary_dim, cfg.base, cfg.layout) == (head_dim, rotary_dim, base, layout)
    assert cfg.rotary_offset == (128 if name.startswith("deepseek") else 0)
    assert (cfg.scaling.rope_type if cfg.scaling else None) == rope_type
    assert cfg.attention_scaling == pytest.approx(attention, rel=1e-15)


def test_scaling_parameters_are_read_verbatim():
    cfg = numrope.RopeConfig.from_hf(FIXTURES / "llama-3.1-8b.json")
    assert cfg.scaling == Llama3(
        factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0, original_max_position_embeddings=8192
    )
    v3 = numrope.RopeConfig.from_hf(FIXTURES / "deepseek-v3.json").scaling
    assert v3 == YaRN(
        factor=40.0, original_max_position_embeddings=4096, beta_fast=32, beta_slow=1, mscale=1.0, mscale_all_dim=1.0
    )
    oss = numrope.RopeConfig.from_hf(FIXTURES / "gpt-oss-20b.json").scaling
    assert oss.truncate is False and oss.factor == 32.0
    phi = numrope.RopeConfig.from_hf(FIXTURES / "phi-3.5-mini-instruct.json").scaling
    raw = fixture("phi-3.5-mini-instruct.json")
    assert list(phi.long_factor) == raw["rope_scaling"]["long_factor"]
    assert list(phi.short_factor) == raw["rope_scaling"]["short_factor"]
    # Phi-3 keeps original_max_position_embeddings at the top level; max_position_embeddings too
    assert (phi.original_max_position_embeddings, phi.max_position_embeddings) == (4096, 131072)


@pytest.mark.parametrize(
    ("legacy", "modern", "layer_types"),
    [
        ("llama-3.1-8b.json", "llama-3.1-8b.transformers5.json", [None]),
        ("phi-3.5-mini-instruct.json", "phi-3.5-mini-instruct.transformers5.json", [None]),
        ("gemma-3-4b-it.json", "gemma-3-4b-it.transformers5.json", ["full_attention", "sliding_attention"]),
    ],
)
def test_transformers_4_and_5_formats_agree(legacy, modern, layer_types):
    for lt in layer_types:
        assert numrope.RopeConfig.from_hf(FIXTURES / legacy, layer_type=lt) == numrope.RopeConfig.from_hf(
            FIXTURES / modern, layer_type=lt
        )


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_round_trip_in_both_formats(name):
    for layer_type in hf.layer_types(FIXTURES / name) or (None,):
        cfg = numrope.RopeConfig.from_hf(fixture(name), layer_type=layer_type)
        modern = cfg.to_hf()
        assert "rope_parameters" in modern and "rope_scaling" not in modern
        assert numrope.RopeConfig.from_hf(modern) == cfg
        legacy = hf.rope_config_to_hf(cfg, legacy=True)
        assert "rope_scaling" in legacy and "rope_parameters" not in legacy
        assert numrope.RopeConfig.from_hf(legacy) == cfg
        # what is written is plain JSON
        assert numrope.RopeConfig.from_hf(json.loads(json.dumps(modern))) == cfg


def test_round_trip_of_awkward_partial_rotary_fractions():
    # 30 / 44 rounds down to 0.6818181818181818 and 44 * that = 29.999999999999996, which readers
    # truncate to 29: the written fraction must be nudged up. Others: the plain fraction is fine.
    assert int(44 * (30 / 44)) == 29
    for head_dim, rotary_dim in ((44, 30), (90, 52), (96, 24), (80, 32), (10, 2), (126, 98)):
        cfg = numrope.RopeConfig(head_dim=head_dim, rotary_dim=rotary_dim)
        written = cfg.to_hf()["rope_parameters"]["partial_rotary_factor"]
        assert int(head_dim * written) == rotary_dim
        assert numrope.RopeConfig.from_hf(cfg.to_hf()) == cfg


def test_to_hf_writes_transformers_keys():
    cfg = numrope.RopeConfig.from_hf(FIXTURES / "phi-3.5-mini-instruct.json")
    out = hf.rope_config_to_hf(cfg, legacy=True)
    assert out["rope_theta"] == 10000.0 and out["max_position_embeddings"] == 131072
    assert out["rope_scaling"]["rope_type"] == "longrope"
    assert out["rope_scaling"]["original_max_position_embeddings"] == 4096
    assert "attention_scaling" not in out["rope_scaling"]
    yarn = numrope.RopeConfig(head_dim=64, scaling=YaRN(4.0, 64, attention_scaling=1.5), layout="interleaved")
    out = yarn.to_hf()
    assert out["rope_parameters"]["attention_factor"] == 1.5 and out["rope_interleave"] is True
    assert numrope.RopeConfig(head_dim=8).to_hf() == {
        "head_dim": 8,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
    }
    assert hf.rope_config_to_hf(numrope.RopeConfig(head_dim=8), legacy=True)["rope_scaling"] is None


def test_inputs_path_directory_dict_and_text_config(tmp_path):
    raw = fixture("gemma-3-4b-it.json")
    (tmp_path / "config.json").write_text(json.dumps(raw))
    expected = numrope.RopeConfig.from_hf(raw, layer_type="full_attention")
    for source in (tmp_path, tmp_path / "config.json", str(tmp_path / "config.json")):
        assert numrope.RopeConfig.from_hf(source, layer_type="full_attention") == expected
    assert (
        numrope.RopeConfig.from_hf(raw["text_config"] | {"model_type": "gemma3_text"}, layer_type="full_attention")
        == expected
    )


def test_per_layer_type_configs_need_a_layer_type():
    for name in ("gemma-3-4b-it.json", "gemma-3-4b-it.transformers5.json"):
        assert hf.layer_types(FIXTURES / name) == ("full_attention", "sliding_attention")
        with pytest.raises(ValueError, match=r"one RoPE per layer type .* choose one with layer_type="):
            numrope.RopeConfig.from_hf(FIXTURES / name)
        with pytest.raises(ValueError, match="layer_type 'chunked_attention' is not"):
            numrope.RopeConfig.from_hf(FIXTURES / name, layer_type="chunked_attention")
    # a layer type whose entry is null has no RoPE (Beam's full-attention layers): the answer is None
    nope = {"head_dim": 64, "rope_parameters": {"full_attention": None, "sliding_attention": {"rope_theta": 1e4}}}
    assert numrope.RopeConfig.from_hf(nope, layer_type="full_attention") is None
    assert numrope.RopeConfig.from_hf(nope, layer_type="sliding_attention") == numrope.RopeConfig(64)


def test_shared_rope_accepts_the_configs_own_layer_types():
    # gpt-oss declares sliding and full layers but one RoPE for both
    assert hf.layer_types(FIXTURES / "gpt-oss-20b.json") == ()
    base = numrope.RopeConfig.from_hf(FIXTURES / "gpt-oss-20b.json")
    assert numrope.RopeConfig.from_hf(FIXTURES / "gpt-oss-20b.json", layer_type="sliding_attention") == base
    with pytest.raises(ValueError, match="'local' is not a layer type of this config"):
        numrope.RopeConfig.from_hf(FIXTURES / "gpt-oss-20b.json", layer_type="local")
    with pytest.raises(ValueError, match="it declares no layer types"):
        numrope.RopeConfig.from_hf(FIXTURES / "llama-3.1-8b.json", layer_type="full_attention")


def test_legacy_names_and_aliases():
    raw = fixture("phi-3.5-mini-instruct.json")
    raw["rope_scaling"]["type"] = "su"  # Phi-3's first name for LongRoPE
    assert isinstance(numrope.RopeConfig.from_hf(raw).scaling, LongRoPE)
    raw = fixture("deepseek-v3.json")
    raw["rope_scaling"]["type"] = "deepseek_yarn"
    assert numrope.RopeConfig.from_hf(raw) == numrope.RopeConfig.from_hf(FIXTURES / "deepseek-v3.json")
    # rope_type wins over type where both are present (transformers 5 keeps both)
    both = {
        "head_dim": 8,
        "rope_scaling": {"type": "linear", "rope_type": "dynamic", "factor": 2.0},
        "max_position_embeddings": 64,
    }
    assert numrope.RopeConfig.from_hf(both).scaling.rope_type == "dynamic"
    # vLLM's dynamic-with-alpha (Hunyuan) is a fixed base change
    alpha = {"head_dim": 8, "rope_scaling": {"rope_type": "dynamic", "alpha": 1000.0}}
    assert numrope.RopeConfig.from_hf(alpha).scaling == NTKAware(alpha=1000.0)
    # Hunyuan's configs carry factor 1.0 beside alpha; vLLM takes alpha: base 1e4 * 1000**(128/126)
    hunyuan = {
        "head_dim": 128,
        "rope_theta": 10000.0,
        "max_position_embeddings": 32768,
        "rope_scaling": {"type": "dynamic", "alpha": 1000.0, "factor": 1.0, "mscale": 1.0},
    }
    cfg = numrope.RopeConfig.from_hf(hunyuan)
    assert cfg.scaling == NTKAware(alpha=1000.0)
    base = 10000.0 * 1000.0 ** (128 / 126)
    # both float64 pow with |ln theta| <= ln(base) = 16.2: relative error <= (16.2 + 4) eps64 each
    np.testing.assert_allclose(cfg.inv_freq(), base ** (-np.arange(0, 128, 2) / 128), rtol=41 * 2.0**-52)


def test_missing_keys_fall_back_like_transformers():
    # no original_max_position_embeddings: max_position_embeddings stands in (transformers'
    # standardize_rope_params)
    raw = {"head_dim": 64, "max_position_embeddings": 2048, "rope_scaling": {"rope_type": "yarn", "factor": 2.0}}
    assert numrope.RopeConfig.from_hf(raw).scaling.original_max_position_embeddings == 2048
    # the top-level value wins over the one in rope_scaling (Phi-3's rule) ...
    raw = {
        "head_dim": 4,
        "original_max_position_embeddings": 100,
        "max_position_embeddings": 400,
        "rope_scaling": {
            "rope_type": "longrope",
            "short_factor": [1, 1],
            "long_factor": [2, 2],
            "original_max_position_embeddings": 50,
        },
    }
    assert numrope.RopeConfig.from_hf(raw).scaling.original_max_position_embeddings == 100
    # ... but not over a per-layer-type entry
    nested = {
        "head_dim": 8,
        "original_max_position_embeddings": 100,
        "rope_parameters": {
            "full_attention": {"rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": 50}
        },
    }
    scaling = numrope.RopeConfig.from_hf(nested, layer_type="full_attention").scaling
    assert scaling.original_max_position_embeddings == 50
    # YaRN without a factor scales from the original context to the full one (transformers'
    # _compute_yarn_parameters): 131072 / 4096 = 32, attention factor 0.1 ln 32 + 1
    raw = {
        "head_dim": 64,
        "max_position_embeddings": 131072,
        "rope_scaling": {"rope_type": "yarn", "original_max_position_embeddings": 4096},
    }
    cfg = numrope.RopeConfig.from_hf(raw)
    assert cfg.scaling.factor == 32.0
    assert cfg.attention_scaling == pytest.approx(0.1 * math.log(32) + 1, rel=1e-15)
    # an explicit null partial_rotary_factor in rope_parameters leaves the top-level one in force
    raw = {
        "head_dim": 80,
        "partial_rotary_factor": 0.4,
        "rope_parameters": {"rope_theta": 1e4, "partial_rotary_factor": None},
    }
    assert numrope.RopeConfig.from_hf(raw).rotary_dim == 32


@pytest.mark.parametrize(
    ("raw", "error", "match"),
    [
        (
            {"head_dim": 64, "rope_scaling": {"rope_type": "xpos", "factor": 2.0}},
            ValueError,
            "unknown rope_type 'xpos'; numrope knows default, linear, ntk, dynamic, yarn, longrope, llama3",
        ),
        (
            {"head_dim": 64, "rope_scaling": {"rope_type": "linear"}},
            ValueError,
            "factor is required in the parameters of rope_type 'linear'",
        ),
        (
            {"head_dim": 64, "rope_scaling": {"rope_type": "dynamic", "factor": 2.0}},
            ValueError,
            "max_position_embeddings is required in the config",
        ),
        (
            {"head_dim": 64, "rope_scaling": {"rope_type": "yarn", "factor": 2.0}},
            ValueError,
            "original_max_position_embeddings is required",
        ),
        (
            {"head_dim": 64, "rope_scaling": {"rope_type": "yarn", "original_max_position_embeddings": 64}},
            ValueError,
            "factor is required in the parameters of rope_type 'yarn'",
        ),
        (
            {"head_dim": 64, "rope_scaling": {"rope_type": "linear", "factor": -8.0}},
            ValueError,
            "factor must be positive, got -8",
        ),
        (
            {"head_dim": 64, "rope_scaling": {"rope_type": "linear", "factor": 0}},
            ValueError,
            "factor must be positive, got 0",
        ),
        ({"head_dim": 64, "rope_theta": -1.0}, ValueError, "rope_theta must be positive and finite, got -1"),
        (
            {"head_dim": 64, "rope_parameters": {"rope_type": "default", "rope_theta": 0}},
            ValueError,
            "rope_theta must be positive and finite, got 0",
        ),
        ({"head_dim": 64, "rope_theta": "1e4"}, TypeError, "rope_theta must be a number, got str"),
        (
            {
                "head_dim": 8,
                "rope_scaling": {
                    "rope_type": "longrope",
                    "short_factor": [1, 1, 1],
                    "long_factor": [1, 1],
                    "original_max_position_embeddings": 64,
                    "factor": 2.0,
                },
            },
            ValueError,
            r"short_factor must have one entry per rotating pair, rotary_dim / 2 = 4, got 3",
        ),
        (
            {
                "head_dim": 4,
                "rope_scaling": {
                    "rope_type": "longrope",
                    "short_factor": [1, 0],
                    "long_factor": [1, 1],
                    "original_max_position_embeddings": 64,
                    "factor": 2.0,
                },
            },
            ValueError,
            r"short_factor\[1\] must be positive, got 0",
        ),
        (
            {
                "head_dim": 64,
                "rope_scaling": {
                    "rope_type": "yarn",
                    "factor": 2.0,
                    "original_max_position_embeddings": 8,
                    "finetuned": True,
                },
            },
            NotImplementedError,
            r"finetuned = True in the parameters of rope_type 'yarn': numrope does not implement it",
        ),
        (
            {"head_dim": 64, "rope_scaling": {"rope_type": "mllama4"}},
            NotImplementedError,
            "rope_type 'mllama4'",
        ),
        ({"num_attention_heads": 32}, ValueError, "config has no head_dim and no hidden_size to derive it from"),
        ({}, ValueError, "no head_dim and no hidden_size and num_attention_heads"),
        ({"head_dim": 0}, ValueError, "head_dim must be positive, got 0"),
        ({"head_dim": 64.5}, TypeError, "head_dim must be an int, got float 64.5"),
        ({"head_dim": 64, "partial_rotary_factor": 1.5}, ValueError, r"partial_rotary_factor must be in \(0, 1\]"),
        ({"head_dim": 64, "partial_rotary_factor": 0.01}, ValueError, "rotates no feature of a head of 64"),
        ({"head_dim": 10, "partial_rotary_factor": 0.5}, ValueError, "rotary part must have an even size .* got 5"),
        ({"head_dim": 64, "rope_interleave": "yes"}, TypeError, "rope_interleave must be true or false"),
        ({"head_dim": 64, "rope_scaling": [1, 2]}, TypeError, "rope_scaling must be a JSON object or null"),
    ],
)
def test_bad_configs_raise_naming_the_key(raw, error, match):
    with pytest.raises(error, match=match):
        numrope.RopeConfig.from_hf(raw)


def test_bad_inputs(tmp_path):
    with pytest.raises(TypeError, match=r"config must be a dict, a path to a config\.json or a model directory"):
        numrope.RopeConfig.from_hf(42)
    with pytest.raises(FileNotFoundError):
        numrope.RopeConfig.from_hf(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        numrope.RopeConfig.from_hf(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="must hold a JSON object, got list"):
        numrope.RopeConfig.from_hf(tmp_path / "list.json")
    with pytest.raises(TypeError, match=r"cfg must be a numrope\.RopeConfig"):
        hf.rope_config_to_hf({"head_dim": 8})


def chatglm_rope(x, positions, head_size, rope_ratio):
    """ChatGLM's RotaryEmbedding and apply_rotary_pos_emb (modeling_chatglm.py), in NumPy float64.

    ``RotaryEmbedding(rotary_dim // 2)`` with ``rotary_dim = kv_channels``: n_elem = head_size / 2,
    theta = 1 / (10000 rope_ratio) ** (arange(0, n_elem, 2) / n_elem); the first n_elem features
    rotate as consecutive (x[2i], x[2i+1]) pairs, the rest pass through.
    """
    n_elem = head_size // 2
    theta = 1.0 / (10000.0 * rope_ratio) ** (np.arange(0, n_elem, 2) / n_elem)
    angle = positions[:, None] * theta  # (seq, n_elem / 2)
    cos, sin = np.cos(angle)[:, None, :], np.sin(angle)[:, None, :]  # broadcast over heads
    rot, passed = x[..., :n_elem], x[..., n_elem:]
    x0, x1 = rot[..., 0::2], rot[..., 1::2]
    out = np.stack([x0 * cos - x1 * sin, x1 * cos + x0 * sin], axis=-1).reshape(rot.shape)
    return np.concatenate([out, passed], axis=-1)


@pytest.mark.parametrize(("name", "rope_ratio"), [("chatglm3-6b.json", 1), ("glm-4-9b-chat.json", 500)])
def test_chatglm_rotation_matches_its_modeling_code(name, rope_ratio, rng):
    cfg = numrope.RopeConfig.from_hf(FIXTURES / name)
    positions = np.arange(300, dtype=np.float64)
    x = rng.standard_normal((300, 2, 128))  # (seq, heads, kv_channels)
    got = numrope.apply_rope(x[None], cfg, positions)[0]
    expected = chatglm_rope(x, positions, 128, rope_ratio)
    # both float64; the reference's angle m * theta is rounded (<= 300 * eps64 absolute)
    bound = 2 * np.abs(x).max() * (3 * 2.0**-52 + 300 * 2.0**-53)
    assert np.abs(got - expected).max() <= bound


def test_gemma3_layer_types_rotate_differently(rng):
    full = numrope.RopeConfig.from_hf(FIXTURES / "gemma-3-4b-it.json", layer_type="full_attention")
    local = numrope.RopeConfig.from_hf(FIXTURES / "gemma-3-4b-it.json", layer_type="sliding_attention")
    assert full.scaling == Linear(8.0)
    # full: theta_i = 1e6**(-2i/256) / 8; sliding: 1e4**(-2i/256)
    i = np.arange(128)
    np.testing.assert_allclose(full.inv_freq(), 1e6 ** (-2 * i / 256) / 8, rtol=1e-15)
    np.testing.assert_allclose(local.inv_freq(), 1e4 ** (-2 * i / 256), rtol=1e-15)


# -- layers without RoPE, composite configs, model families -----------------------------------------

LLAMA4 = {
    "model_type": "llama4_text",
    "head_dim": 128,
    "num_hidden_layers": 8,
    "rope_theta": 500000.0,
    "no_rope_layers": [1, 1, 1, 0, 1, 1, 1, 0],
}


def test_layers_without_rope_answer_none():
    rope = numrope.RopeConfig.from_hf(LLAMA4)
    assert rope == numrope.RopeConfig(128, base=500000.0, layout="interleaved")
    assert hf.rope_layers(LLAMA4) == (True, True, True, False, True, True, True, False)
    assert [numrope.RopeConfig.from_hf(LLAMA4, layer=i) for i in (2, 3)] == [rope, None]
    # no_rope_layers left out: the config class's default, a NoPE layer every no_rope_layer_interval
    interval = {k: v for k, v in LLAMA4.items() if k != "no_rope_layers"} | {"no_rope_layer_interval": 2}
    assert hf.rope_layers(interval) == (True, False) * 4
    with pytest.raises(ValueError, match=r"layer 8 is not a layer of this config: it has 8 \(0 \.\. 7\)"):
        numrope.RopeConfig.from_hf(LLAMA4, layer=8)
    with pytest.raises(TypeError, match="layer must be an int"):
        numrope.RopeConfig.from_hf(LLAMA4, layer=1.0)
    # Cohere 2: RoPE on the sliding layers only; a layer type of NoPE layers answers None too
    cohere2 = {
        "model_type": "cohere2",
        "head_dim": 128,
        "num_hidden_layers": 4,
        "sliding_window": 4096,
        "layer_types": ["sliding_attention"] * 3 + ["full_attention"],
    }
    assert numrope.RopeConfig.from_hf(cohere2, layer_type="full_attention") is None
    assert numrope.RopeConfig.from_hf(cohere2, layer_type="sliding_attention").layout == "interleaved"
    with pytest.raises(ValueError, match="layer 3 is a 'full_attention' layer, not 'sliding_attention'"):
        numrope.RopeConfig.from_hf(cohere2, layer_type="sliding_attention", layer=3)
    # hybrid models: Mamba layers have no attention
    jamba_like = {
        "model_type": "olmo_hybrid",
        "head_dim": 64,
        "num_hidden_layers": 2,
        "rope_parameters": {"rope_theta": 1e4},
        "layer_types": ["linear_attention", "full_attention"],
    }
    assert [numrope.RopeConfig.from_hf(jamba_like, layer=i) is None for i in (0, 1)] == [True, False]


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ({"model_type": "esm", "hidden_size": 64, "num_attention_heads": 2}, "position_embedding_type is 'absolute'"),
        ({"model_type": "falcon", "head_dim": 64, "alibi": True}, "alibi is true"),
        ({"model_type": "zamba2", "attention_head_dim": 64}, "use_mem_rope is false"),
        ({"model_type": "gpt2", "n_embd": 768, "n_head": 12}, "model type 'gpt2' has no RoPE"),
        ({"model_type": "clip", "text_config": {"model_type": "clip_text_model"}}, "'clip_text_model' has no RoPE"),
    ],
)
def test_models_without_rope_are_named(raw, match):
    with pytest.raises(ValueError, match=match):
        numrope.RopeConfig.from_hf(raw)


def test_multi_head_latent_attention():
    # heads [nope | rope]: 128 + 64 features, the last 64 rotate
    mla = {"qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "head_dim": 64}
    v3 = numrope.RopeConfig.from_hf({"model_type": "deepseek_v3", **mla})
    assert (v3.head_dim, v3.rotary_dim, v3.rotary_offset, v3.layout) == (192, 64, 128, "interleaved_in_half_out")
    assert numrope.RopeConfig.from_hf({"model_type": "deepseek_v3", "rope_interleave": False, **mla}).layout == "half"
    assert numrope.RopeConfig.from_hf({"model_type": "deepseek_v2", **mla}).layout == "interleaved"
    assert numrope.RopeConfig.from_hf({"model_type": "minicpm3", **mla}).layout == "half"
    # without a model type the keys say it: rope_interleave as DeepSeek-V3 reads it
    assert numrope.RopeConfig.from_hf({**mla, "rope_interleave": True}) == v3
    # DeepSeek-V4: the last head_dim * partial_rotary_factor features, by layer type's entry
    v4 = numrope.RopeConfig.from_hf(
        {
            "model_type": "deepseek_v4",
            "head_dim": 512,
            "num_hidden_layers": 2,
            "layer_types": ["sliding_attention", "compressed_sparse_attention"],
            "rope_parameters": {
                "main": {"rope_theta": 1e4, "partial_rotary_factor": 0.125},
                "compress": {"rope_theta": 1.6e5, "partial_rotary_factor": 0.125},
            },
        },
        layer=1,
    )
    assert (v4.head_dim, v4.rotary_dim, v4.rotary_offset, v4.base, v4.layout) == (512, 64, 448, 1.6e5, "interleaved")


def test_sizes_and_names_of_particular_families():
    # JetMoe: head_dim is kv_channels, not hidden_size / num_attention_heads
    jetmoe = {"model_type": "jetmoe", "hidden_size": 2048, "num_attention_heads": 32, "kv_channels": 128}
    assert numrope.RopeConfig.from_hf(jetmoe).head_dim == 128
    # GLM-4.5: int(42 * 0.5) = 21 -> the rotary module makes 11 frequencies 10000**(-2i/21) and the apply
    # function rotates 22 features; the base that gives those exponents over 22 is 10000**(22/21)
    glm = numrope.RopeConfig.from_hf({"model_type": "glm4_moe", "head_dim": 42, "partial_rotary_factor": 0.5})
    assert glm.rotary_dim == 22
    np.testing.assert_allclose(glm.inv_freq(), 10000.0 ** (-np.arange(0, 21, 2) / 21), rtol=1e-14)
    with pytest.raises(ValueError, match=r"rotary part must have an even size .* got 21"):
        numrope.RopeConfig.from_hf({"model_type": "phi", "head_dim": 42, "partial_rotary_factor": 0.5})
    # GPT-J's names
    gptj = numrope.RopeConfig.from_hf({"model_type": "gptj", "n_embd": 4096, "n_head": 16, "rotary_dim": 64})
    assert (gptj.head_dim, gptj.rotary_dim, gptj.layout) == (256, 64, "interleaved")
    # DBRX: checkpoints keep rope_theta in attn_config
    dbrx = {"model_type": "dbrx", "d_model": 6144, "n_heads": 48, "attn_config": {"rope_theta": 500000}}
    assert numrope.RopeConfig.from_hf(dbrx) == numrope.RopeConfig(128, base=500000.0)
    with pytest.raises(ValueError, match=r"attn_config.rope_theta = 500000 and rope_theta = 10000 disagree"):
        numrope.RopeConfig.from_hf(dbrx | {"rope_parameters": {"rope_theta": 10000.0}})
    # MiniMax-M3-VL keeps a rotary_dim that transformers does not read: refused by name
    with pytest.raises(NotImplementedError, match="rotary_dim = 64 in a 'minimax_m3_vl_text' config"):
        numrope.RopeConfig.from_hf({"model_type": "minimax_m3_vl_text", "head_dim": 128, "rotary_dim": 64})
    # nanochat rotates the other way
    assert numrope.RopeConfig.from_hf({"model_type": "nanochat", "head_dim": 128}).direction == -1
    # Muse: a per-layer theta other than rope_theta is refused (transformers reads it as RoPE or not)
    muse = {
        "model_type": "muse_spark_text",
        "head_dim": 64,
        "num_hidden_layers": 2,
        "rope_theta": 5e5,
        "layer_types": ["sliding_attention", "full_attention"],
        "layer_rope_theta": [5e5, 0],
    }
    assert numrope.RopeConfig.from_hf(muse, layer=1) is None
    with pytest.raises(NotImplementedError, match=r"layer_rope_theta\[0\] = 10000.0 differs from rope_theta"):
        numrope.RopeConfig.from_hf(muse | {"layer_rope_theta": [1e4, 0]}, layer=0)


def test_composite_configs_and_parts():
    dia = {
        "model_type": "dia",
        "encoder_config": {"model_type": "dia_encoder", "head_dim": 128, "rope_parameters": {"rope_theta": 1e4}},
        "decoder_config": {"model_type": "dia_decoder", "head_dim": 64, "rope_parameters": {"rope_theta": 2e4}},
    }
    assert numrope.RopeConfig.from_hf(dia) == numrope.RopeConfig(64, base=2e4)  # the decoder, as transformers
    assert numrope.RopeConfig.from_hf(dia, part="encoder_config") == numrope.RopeConfig(128, base=1e4)
    with pytest.raises(ValueError, match="no sub-config 'encoder' for part='encoder'"):
        numrope.RopeConfig.from_hf(dia, part="encoder")
    t5gemma = {"model_type": "t5gemma", "decoder": {"model_type": "t5_gemma_module", "head_dim": 256}}
    assert numrope.RopeConfig.from_hf(t5gemma).head_dim == 256


def test_modernbert_legacy_thetas():
    # transformers 4.x ModernBERT: global_rope_theta for full attention, local_rope_theta for sliding
    legacy = {
        "model_type": "modernbert",
        "hidden_size": 768,
        "num_attention_heads": 12,
        "global_rope_theta": 160000.0,
        "local_rope_theta": 10000.0,
    }
    assert hf.layer_types(legacy) == ("full_attention", "sliding_attention")
    assert numrope.RopeConfig.from_hf(legacy, layer_type="full_attention") == numrope.RopeConfig(64, base=160000.0)
    assert numrope.RopeConfig.from_hf(legacy, layer_type="sliding_attention") == numrope.RopeConfig(64, base=1e4)


def test_keys_that_do_not_change_the_rotation_are_accepted():
    # Ministral 3 keeps Llama 4's attention temperature in rope_parameters: not part of the rotation
    raw = {
        "head_dim": 128,
        "max_position_embeddings": 262144,
        "rope_parameters": {
            "rope_type": "yarn",
            "rope_theta": 1e6,
            "factor": 16.0,
            "original_max_position_embeddings": 16384,
            "llama_4_scaling_beta": 0.1,
            "max_position_embeddings": 262144,
        },
    }
    assert numrope.RopeConfig.from_hf(raw).scaling.factor == 16.0
    # vLLM's keys are read, with vLLM's meaning
    raw["rope_parameters"] |= {"attn_factor": 2.0}
    assert numrope.RopeConfig.from_hf(raw).attention_scaling == pytest.approx(2 * (0.1 * math.log(16) + 1))
    ntk = numrope.RopeConfig.from_hf(
        {"head_dim": 64, "rope_scaling": {"rope_type": "ntk", "factor": 2.0, "mixed_b": 0.75}}
    )
    assert ntk.scaling == numrope.variants.NTK(factor=2.0, mixed_b=0.75)
    # deepseek_yarn with one of mscale / mscale_all_dim: vLLM's defaults 1 and 0
    one = {
        "head_dim": 64,
        "rope_scaling": {
            "type": "deepseek_yarn",
            "factor": 40.0,
            "original_max_position_embeddings": 4096,
            "mscale": 0.707,
        },
    }
    assert numrope.RopeConfig.from_hf(one).attention_scaling == pytest.approx(0.1 * 0.707 * math.log(40) + 1)
