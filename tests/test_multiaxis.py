"""Multi-axis RoPE against transformers' own code: the rotary modules and apply functions of the
vision-language models (text side: M-RoPE; vision towers: 2-D RoPE), configured by
``RopeConfig.from_hf`` from the same configs, on mixed text/image/video positions from the models'
own ``get_rope_index``.

transformers forms its angles in float32 (float32 frequencies times float32 positions), so its
output is held to numrope's exact rotation with the float32-angle allowance of
:func:`numrope.testing.error_bound` (``float32_angles=True``). Each family also has a negative
control: the same config read as plain RoPE (or with its neighbour family's map) must be rejected,
and the diagnosis must name the mistake. ``get_rope_index`` runs as the model's own method on a
stand-in ``self`` (the config and the helper methods it calls), so no weights are built.
"""

import dataclasses
import functools
import importlib
import types

import numpy as np
import pytest

import numrope
from numrope import axes
from numrope.models import vision
from numrope.testing import assert_rope_allclose
from numrope.validation import compare

torch = pytest.importorskip("torch", reason="torch is not installed: transformers' code cannot run")
transformers = pytest.importorskip("transformers", reason="transformers is not installed")
if int(transformers.__version__.split(".")[0]) < 5:
    pytest.skip(f"transformers {transformers.__version__}: these tests call the 5.x code", allow_module_level=True)

torch.manual_seed(0)


def module(name):
    return importlib.import_module(f"transformers.models.{name}.modeling_{name}")


def configuration(name):
    return importlib.import_module(f"transformers.models.{name}.configuration_{name}")


def fake_self(cls, config, **extra):
    """A stand-in ``self`` for the model's own get_rope_index: its config and the helpers it calls."""
    ns = types.SimpleNamespace(config=config, **extra)
    for name in ("get_vision_position_ids", "get_llm_pos_ids_for_vision", "get_chunked_index"):
        if hasattr(cls, name):
            setattr(ns, name, functools.partial(getattr(cls, name), ns))
    return ns


# -- mixed text / image / video batches, as the processors lay them out ---------------------------

IMG, VID = 1, 2


def padded_batch():
    """Two sequences, the second left-padded: text, image, text, video, text, image, text / text, image, text."""
    m = 2
    n = lambda g: g[0] * (g[1] // m) * (g[2] // m)  # noqa: E731
    img_a, img_b, img_c, vid_a = (1, 8, 12), (1, 4, 4), (1, 6, 10), (4, 6, 8)
    s0 = [0] * 5 + [IMG] * n(img_a) + [0] * 5 + [VID] * n(vid_a) + [0] * 7 + [IMG] * n(img_b) + [0] * 3
    s1 = [0] * 4 + [IMG] * n(img_c) + [0] * 5
    pad = len(s0) - len(s1)
    tt = torch.tensor([s0, [0] * pad + s1])
    mask = torch.tensor([[1] * len(s0), [0] * pad + [1] * len(s1)])
    return tt, mask, torch.tensor([img_a, img_b, img_c]), torch.tensor([vid_a])


def framewise_batch():
    """Qwen3-VL / GLM-4V: an image, then a 3-frame video whose frames are separated by timestamp text."""
    tt = [0] * 4 + [IMG] * 24 + [0] * 5
    for _ in range(3):
        tt += [0] * 4 + [VID] * 12 + [0]
    tt += [0] * 6
    return (
        torch.tensor([tt]),
        torch.ones(1, len(tt), dtype=torch.long),
        torch.tensor([[1, 8, 12]]),
        torch.tensor([[3, 6, 8]]),
    )


def random_qk(batch, seq, head_dim, heads=(4, 2)):
    q = torch.randn(batch, heads[0], seq, head_dim, dtype=torch.float32)
    k = torch.randn(batch, heads[1], seq, head_dim, dtype=torch.float32)
    return q, k


def text_check(cfg, rotary_cls, apply_fn, text_config, positions, wrong=()):
    """transformers' rotary module + apply on (B, H, S, D) q/k against numrope at the same positions."""
    b, s = positions.shape[1], positions.shape[2]
    q, k = random_qk(b, s, cfg.head_dim)
    with torch.no_grad():
        cos, sin = rotary_cls(text_config)(q, positions)
        hq, hk = apply_fn(q, k, cos, sin)
    pos = positions.numpy()
    for got, x in ((hq, q), (hk, k)):
        assert_rope_allclose(got.numpy(), x.numpy(), cfg, pos, seq_axis=-2, float32_angles=True)
    nq, nk = numrope.apply_rope_qk(q.numpy(), k.numpy(), cfg, pos, seq_axis=-2)  # GQA heads, float32
    assert_rope_allclose(nq, q.numpy(), cfg, pos, seq_axis=-2)
    assert_rope_allclose(nk, k.numpy(), cfg, pos, seq_axis=-2)
    for wrong_cfg, wrong_pos, mistake in wrong:
        report = compare(hq.numpy(), q.numpy(), wrong_cfg, wrong_pos, seq_axis=-2, float32_angles=True)
        assert not report.ok
        # and the other way round: the wrong rotation, judged against the right config, is named
        bad = numrope.apply_rope(q.numpy(), wrong_cfg, wrong_pos, seq_axis=-2)
        found = compare(bad, q.numpy(), cfg, pos, seq_axis=-2, float32_angles=True).diagnosis
        assert any(f.details.get("mistake") == mistake for f in found), found
    return hq


def plain(cfg, positions):
    """The mistake this module guards against: the config read as plain RoPE, rotating by the t row."""
    return dataclasses.replace(cfg, axes=None), positions[0]


# -- text side -------------------------------------------------------------------------------------


def test_qwen2_vl_hub_config_with_padding_image_and_video():
    M, C = module("qwen2_vl"), configuration("qwen2_vl")
    hub = {  # Qwen2-VL-7B-Instruct's config.json layout: flat, rope_scaling {"type": "mrope"}
        "model_type": "qwen2_vl",
        "hidden_size": 3584,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "num_hidden_layers": 1,
        "vocab_size": 152064,
        "rope_theta": 1000000.0,
        "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
        "vision_config": {"embed_dim": 1280, "num_heads": 16, "spatial_merge_size": 2},
    }
    config = C.Qwen2VLConfig(**{k: v for k, v in hub.items() if k != "model_type"})
    cfg = numrope.RopeConfig.from_hf(hub)
    assert cfg == numrope.RopeConfig.from_hf(config.to_dict())  # transformers' own 5.x form reads the same
    assert cfg.axes == axes.sectioned([16, 24, 24]) and cfg.layout == "half" and cfg.base == 1e6
    tt, mask, ig, vg = padded_batch()
    pos, _ = M.Qwen2VLModel.get_rope_index(fake_self(M.Qwen2VLModel, config), tt, tt, ig, vg, mask)
    text_check(
        cfg,
        M.Qwen2VLRotaryEmbedding,
        M.apply_rotary_pos_emb,
        config.text_config,
        pos,
        wrong=[(*plain(cfg, pos.numpy()), "dropped")],
    )


def test_qwen2_5_vl_video_time_spacing():
    M, C = module("qwen2_5_vl"), configuration("qwen2_5_vl")
    config = C.Qwen2_5_VLConfig(
        text_config={
            "hidden_size": 3584,
            "num_attention_heads": 28,
            "num_key_value_heads": 4,
            "num_hidden_layers": 1,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]},
        },
        vision_config={"hidden_size": 1280, "num_heads": 16, "depth": 1, "tokens_per_second": 2},
    )
    cfg = numrope.RopeConfig.from_hf(config.to_dict())
    tt, mask, ig, vg = padded_batch()
    spg = torch.tensor([1.3])  # seconds per temporal grid step: t = 0, 2, 5, 7
    pos, _ = M.Qwen2_5_VLModel.get_rope_index(
        fake_self(M.Qwen2_5_VLModel, config), tt, tt, ig, vg, second_per_grid_ts=spg, attention_mask=mask
    )
    video_t = np.unique(pos[0, 0, tt[0] == VID].numpy())
    assert np.diff(video_t).tolist() == [2, 3, 2]  # trunc(k * 2 * 1.3) for the 4 temporal steps
    text_check(
        cfg,
        M.Qwen2_5_VLRotaryEmbedding,
        M.apply_rotary_pos_emb,
        config.text_config,
        pos,
        wrong=[
            (*plain(cfg, pos.numpy()), "dropped"),
            (dataclasses.replace(cfg, axes=axes.sectioned([24, 24, 16])), pos.numpy(), "order"),
        ],
    )


def test_qwen2_5_vl_with_yarn_scaling():
    """Scaled frequencies go through the same sections (the 'yarn' rope_type with mrope_section)."""
    M, C = module("qwen2_5_vl"), configuration("qwen2_5_vl")
    rope = {
        "rope_type": "yarn",
        "factor": 4.0,
        "original_max_position_embeddings": 32768,
        "rope_theta": 1e6,
        "mrope_section": [16, 24, 24],
    }
    config = C.Qwen2_5_VLConfig(
        text_config={
            "hidden_size": 3584,
            "num_attention_heads": 28,
            "num_key_value_heads": 4,
            "num_hidden_layers": 1,
            "max_position_embeddings": 128000,
            "rope_parameters": rope,
        },
        vision_config={"hidden_size": 1280, "num_heads": 16, "depth": 1},
    )
    cfg = numrope.RopeConfig.from_hf(config.to_dict())
    assert cfg.scaling is not None and cfg.scaling.rope_type == "yarn" and cfg.attention_scaling > 1
    tt, mask, ig, vg = padded_batch()
    pos, _ = M.Qwen2_5_VLModel.get_rope_index(fake_self(M.Qwen2_5_VLModel, config), tt, tt, ig, vg, attention_mask=mask)
    text_check(cfg, M.Qwen2_5_VLRotaryEmbedding, M.apply_rotary_pos_emb, config.text_config, pos)


def test_qwen3_vl_interleaved():
    M, C = module("qwen3_vl"), configuration("qwen3_vl")
    config = C.Qwen3VLConfig(
        text_config={
            "hidden_size": 4096,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "head_dim": 128,
            "num_hidden_layers": 1,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 5e6,
                "mrope_section": [24, 20, 20],
                "mrope_interleaved": True,
            },
        },
        vision_config={"hidden_size": 1152, "num_heads": 16, "depth": 1},
    )
    cfg = numrope.RopeConfig.from_hf(config.to_dict())
    assert cfg.axes == axes.interleaved([24, 20, 20], 64)
    tt, mask, ig, vg = framewise_batch()
    pos, _ = M.Qwen3VLModel.get_rope_index(fake_self(M.Qwen3VLModel, config), tt, tt, ig, vg.clone(), mask)
    sectioned = dataclasses.replace(cfg, axes=axes.sectioned([24, 20, 20]))
    text_check(
        cfg,
        M.Qwen3VLTextRotaryEmbedding,
        M.apply_rotary_pos_emb,
        config.text_config,
        pos,
        wrong=[(*plain(cfg, pos.numpy()), "dropped"), (sectioned, pos.numpy(), "interleaving")],
    )


def test_qwen3_5_interleaved_partial_rotary():
    M, C = module("qwen3_5"), configuration("qwen3_5")
    text = C.Qwen3_5TextConfig(num_hidden_layers=1)  # head_dim 256, partial_rotary_factor 0.25, [11, 11, 10]
    cfg = numrope.RopeConfig.from_hf(text.to_dict())
    assert (cfg.head_dim, cfg.rotary_dim, cfg.axes) == (256, 64, axes.interleaved([11, 11, 10], 32))
    tt, _, ig, vg = framewise_batch()
    pos, _ = vision.rope_index(tt.numpy(), ig.numpy(), vg.numpy(), family="qwen3_vl")
    text_check(cfg, M.Qwen3_5TextRotaryEmbedding, M.apply_rotary_pos_emb, text, torch.from_numpy(pos))


def test_glm4v_partial_adjacent_pairs():
    M, C = module("glm4v"), configuration("glm4v")
    config = C.Glm4vConfig(
        text_config={
            "hidden_size": 4096,
            "num_attention_heads": 32,
            "num_key_value_heads": 2,
            "num_hidden_layers": 1,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 1e4,
                "partial_rotary_factor": 0.5,
                "mrope_section": [8, 12, 12],
            },
        },
        vision_config={"hidden_size": 1536, "num_heads": 12, "depth": 1},
    )
    cfg = numrope.RopeConfig.from_hf(config.to_dict())
    assert (cfg.rotary_dim, cfg.layout) == (64, "interleaved")
    tt, mask, ig, vg = framewise_batch()
    pos, _ = M.Glm4vModel.get_rope_index(fake_self(M.Glm4vModel, config), tt, tt, ig, vg.clone(), mask)
    halves = dataclasses.replace(cfg, layout="half")
    text_check(
        cfg,
        M.Glm4vTextRotaryEmbedding,
        M.apply_rotary_pos_emb,
        config.text_config,
        pos,
        wrong=[(halves, pos.numpy(), "layout")],
    )


def test_glm4v_without_partial_rotary_factor_is_refused_as_transformers_fails():
    with pytest.raises(ValueError, match="sums to 32 pairs, but the rotary part has 64"):
        numrope.RopeConfig.from_hf(configuration("glm4v").Glm4vConfig().to_dict())


def test_glm4v_moe_partial_halves():
    M, C = module("glm4v_moe"), configuration("glm4v_moe")
    text = C.Glm4vMoeTextConfig(
        hidden_size=4096,
        num_attention_heads=96,
        num_key_value_heads=8,
        head_dim=128,
        num_hidden_layers=1,
        rope_parameters={"rope_type": "default", "rope_theta": 1e4, "mrope_section": [8, 12, 12]},
    )
    cfg = numrope.RopeConfig.from_hf(text.to_dict())
    assert (cfg.rotary_dim, cfg.layout) == (64, "half")
    tt, _, ig, vg = framewise_batch()
    pos, _ = vision.rope_index(tt.numpy(), ig.numpy(), vg.numpy(), family="glm4v")
    text_check(
        cfg,
        M.Glm4vMoeTextRotaryEmbedding,
        M.apply_rotary_pos_emb,
        text,
        torch.from_numpy(pos),
        wrong=[(dataclasses.replace(cfg, layout="interleaved"), pos, "layout")],
    )


def test_ernie_4_5_vl():
    M, C = module("ernie4_5_vl_moe"), configuration("ernie4_5_vl_moe")
    config = C.Ernie4_5_VLMoeConfig(
        text_config={
            "hidden_size": 2560,
            "num_attention_heads": 20,
            "num_key_value_heads": 4,
            "num_hidden_layers": 1,
            "rope_parameters": {"rope_type": "default", "rope_theta": 5e5, "mrope_section": [22, 22, 20]},
        },
        vision_config={"hidden_size": 1280, "num_heads": 16, "depth": 1},
    )
    cfg = numrope.RopeConfig.from_hf(config.to_dict())
    assert cfg.axes == axes.ernie([22, 22, 20]) and cfg.layout == "interleaved"
    tt = [0] * 4 + [IMG] * 24 + [0] * 4 + [VID] * 24 + [0] * 5  # a (4, 6, 8) video merges 2 frames: 24 tokens
    tt = torch.tensor([tt])
    ig, vg = torch.tensor([[1, 8, 12]]), torch.tensor([[4, 6, 8]])
    pos, _ = M.Ernie4_5_VLMoeModel.get_rope_index(
        fake_self(M.Ernie4_5_VLMoeModel, config), tt, tt, ig, vg, torch.ones_like(tt)
    )
    text_check(
        cfg,
        M.Ernie4_5_VLMoeTextRotaryEmbedding,
        M.apply_rotary_pos_emb,
        config.text_config,
        pos,
        wrong=[(*plain(cfg, pos.numpy()), "dropped")],
    )


@pytest.mark.parametrize(
    ("name", "cls", "rotary"),
    [
        ("qwen2_5_omni", "Qwen2_5OmniTextConfig", "Qwen2_5OmniRotaryEmbedding"),
        ("paddleocr_vl", "PaddleOCRTextConfig", "PaddleOCRRotaryEmbedding"),
        ("qwen3_vl_moe", "Qwen3VLMoeTextConfig", "Qwen3VLMoeTextRotaryEmbedding"),
        ("qwen3_omni_moe", "Qwen3OmniMoeTextConfig", "Qwen3OmniMoeThinkerTextRotaryEmbedding"),
        ("glm_ocr", "GlmOcrTextConfig", "GlmOcrTextRotaryEmbedding"),
    ],
)
def test_the_class_defaults_of_more_families(name, cls, rotary):
    """Configs left at their class defaults (no mrope_section in them): read with the defaults the code uses."""
    M, C = module(name), configuration(name)
    extra = {"head_dim": 128} if name == "qwen3_omni_moe" else {}  # its class default (2048 / 28) is odd
    text = getattr(C, cls)(num_hidden_layers=1, **extra)
    cfg = numrope.RopeConfig.from_hf(text.to_dict())
    assert cfg.axes is not None
    tt, _, ig, vg = framewise_batch()
    pos, _ = vision.rope_index(tt.numpy(), ig.numpy(), vg.numpy(), family="qwen3_vl")  # framewise layout
    apply_fn = M.apply_rotary_pos_emb
    text_check(cfg, getattr(M, rotary), apply_fn, text, torch.from_numpy(pos))


# -- vision towers -------------------------------------------------------------------------------

QWEN_TOWERS = [
    ("qwen2_vl", "Qwen2VLVisionConfig", {"embed_dim": 1280, "num_heads": 16}, "Qwen2VLVisionRotaryEmbedding", 80),
    (
        "qwen2_5_vl",
        "Qwen2_5_VLVisionConfig",
        {"hidden_size": 1280, "num_heads": 16},
        "Qwen2_5_VLVisionRotaryEmbedding",
        80,
    ),
    (
        "qwen2_5_omni",
        "Qwen2_5OmniVisionEncoderConfig",
        {"hidden_size": 1280, "num_heads": 16},
        "Qwen2_5OmniVisionRotaryEmbedding",
        80,
    ),
    ("qwen3_vl", "Qwen3VLVisionConfig", {"hidden_size": 1152, "num_heads": 16}, "Qwen3VLVisionRotaryEmbedding", 72),
    ("glm4v", "Glm4vVisionConfig", {"hidden_size": 1536, "num_heads": 12}, "Glm4vVisionRotaryEmbedding", 128),
    (
        "ernie4_5_vl_moe",
        "Ernie4_5_VLMoeVisionConfig",
        {"hidden_size": 1280, "num_heads": 16},
        "Ernie4_5_VLMoeVisionRotaryEmbedding",
        80,
    ),
]


@pytest.mark.parametrize(("name", "cls", "kwargs", "rotary", "head_dim"), QWEN_TOWERS, ids=[t[0] for t in QWEN_TOWERS])
def test_qwen_family_vision_towers(name, cls, kwargs, rotary, head_dim):
    from transformers.vision_utils import get_vision_position_ids

    M, C = module(name), configuration(name)
    config = getattr(C, cls)(**kwargs)
    cfg = numrope.RopeConfig.from_hf(config.to_dict())  # the vision config itself, by its model_type
    assert cfg == numrope.RopeConfig.from_hf({"model_type": name, "vision_config": kwargs}, part="vision")
    assert cfg.head_dim == head_dim and cfg.axes == axes.axial(head_dim // 2)
    grid = torch.tensor([[1, 8, 12], [3, 6, 8]])  # an image and a video of 3 temporal patches
    hf_pos = get_vision_position_ids(grid, 2)  # (N, 2)
    pos = vision.vision_positions(grid.numpy(), 2)
    np.testing.assert_array_equal(pos, hf_pos.numpy().T)
    n = pos.shape[1]
    q, k = torch.randn(n, 3, head_dim), torch.randn(n, 3, head_dim)  # (tokens, heads, head_dim)
    with torch.no_grad():
        cos, sin = getattr(M, rotary)(config)(q, hf_pos)
        hq, _ = M.apply_rotary_pos_emb_vision(q, k, cos, sin)
    assert_rope_allclose(hq.numpy(), q.numpy(), cfg, pos, float32_angles=True)
    wrong = dataclasses.replace(cfg, axes=axes.pixtral(head_dim // 2))
    assert not compare(hq.numpy(), q.numpy(), wrong, pos, float32_angles=True).ok
    found = compare(numrope.apply_rope(q.numpy(), wrong, pos), q.numpy(), cfg, pos).diagnosis
    assert [f.details.get("mistake") for f in found] == ["frequencies"]


def test_pixtral_vision_model_forward():
    M, C = module("pixtral"), configuration("pixtral")
    config = C.PixtralVisionConfig(
        hidden_size=128, num_attention_heads=2, intermediate_size=64, num_hidden_layers=1, image_size=64, patch_size=8
    )
    cfg = numrope.RopeConfig.from_hf({"model_type": "llava", "vision_config": config.to_dict()}, part="vision")
    assert cfg.axes == axes.pixtral(32) and cfg.head_dim == 64
    model = M.PixtralVisionModel(config).eval()
    captured = {}
    model.transformer.register_forward_pre_hook(
        lambda mod, args, kwargs: captured.update(pe=kwargs.get("position_embeddings")), with_kwargs=True
    )
    sizes = [(64, 48), (40, 64)]
    with torch.no_grad():
        model(torch.randn(2, 3, 64, 64), image_sizes=torch.tensor(sizes))
    cos, sin = captured["pe"]
    pos = np.concatenate([vision.raster_positions(h // 8, w // 8) for h, w in sizes], axis=1)
    q, k = random_qk(1, pos.shape[1], 64, (2, 2))
    hq, _ = M.apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=0)
    assert_rope_allclose(hq.numpy(), q.numpy(), cfg, pos, seq_axis=-2, float32_angles=True)
    axial = dataclasses.replace(cfg, axes=axes.axial(32))
    assert not compare(hq.numpy(), q.numpy(), axial, pos, seq_axis=-2, float32_angles=True).ok


def test_llama4_vision_with_the_class_token():
    M, C = module("llama4"), configuration("llama4")
    config = C.Llama4VisionConfig(hidden_size=1408, num_attention_heads=16, image_size=336, patch_size=14)
    cfg = numrope.RopeConfig.from_hf(config.to_dict())
    assert (cfg.head_dim, cfg.layout, cfg.axes) == (88, "interleaved", axes.axial(44, names=("x", "y")))
    freqs_ci = M.Llama4VisionRotaryEmbedding(config)(torch.zeros(1))  # (577, 1, 44) complex
    pos = vision.llama4_vision_positions(336, 14)
    q, k = torch.randn(1, pos.shape[1], 2, 88), torch.randn(1, pos.shape[1], 2, 88)
    hq, hk = M.vision_apply_rotary_emb(q, k, freqs_ci)
    assert_rope_allclose(hq.numpy(), q.numpy(), cfg, pos, float32_angles=True)
    assert_rope_allclose(hk.numpy(), k.numpy(), cfg, pos, float32_angles=True)
    np.testing.assert_array_equal(hq.numpy()[0, -1], q.numpy()[0, -1])  # the class token does not turn
    assert not compare(hq.numpy(), q.numpy(), dataclasses.replace(cfg, layout="half"), pos, float32_angles=True).ok


@pytest.mark.parametrize("window", [0, 24])
def test_sam3_vit_axial_fractional_positions(window):
    M = importlib.import_module("transformers.models.sam3.modeling_sam3")  # the real classes, not the dummies
    config = configuration("sam3").Sam3ViTConfig(image_size=504, patch_size=14)  # 36 x 36, global scale 24/36
    cfg = numrope.RopeConfig.from_hf(config.to_dict())
    assert cfg.axes == axes.axial(32, names=("x", "y")) and cfg.layout == "interleaved"
    hf_pos = M.Sam3ViTLayer.precompute_positions(config, window)  # (N, 2): (x, y) times window / grid
    with torch.no_grad():
        cos, sin = M.Sam3ViTRotaryEmbedding(config)(torch.zeros(1), hf_pos)
    pos = hf_pos.numpy().T.astype(np.float64)
    q, k = random_qk(1, pos.shape[1], 64, (2, 2))
    hq, _ = M.apply_rotary_pos_emb_2d(q, k, cos, sin)
    assert_rope_allclose(hq.numpy(), q.numpy(), cfg, pos, seq_axis=-2, float32_angles=True)


def test_mlcd_patch_tokens_use_the_axial_map():
    """MLCD is refused by from_hf (its class token turns by learned angles); its patch tokens are the axial map."""
    M, C = module("mlcd"), configuration("mlcd")
    config = C.MLCDVisionConfig(
        hidden_size=208, num_attention_heads=2, intermediate_size=64, num_hidden_layers=1, image_size=56, patch_size=14
    )
    with pytest.raises(NotImplementedError, match="learned angles"):
        numrope.RopeConfig.from_hf(config.to_dict())
    model = M.MLCDVisionModel(config).eval()
    captured = {}
    model.encoder.register_forward_pre_hook(
        lambda mod, args, kwargs: captured.update(pe=kwargs.get("position_embeddings")), with_kwargs=True
    )
    with torch.no_grad():
        model(torch.randn(1, 3, 56, 70))  # 4 x 5 patches
    cos, sin = captured["pe"]
    cfg = numrope.RopeConfig(104, 1e4, axes=axes.axial(52))
    q, k = torch.randn(1, cos.shape[0], 2, 104), torch.randn(1, cos.shape[0], 2, 104)
    hq, _ = M.apply_rotary_pos_emb_vision(q, k, cos.unsqueeze(0), sin.unsqueeze(0))
    patches = slice(1, None)  # the class token comes first
    assert_rope_allclose(
        hq.numpy()[:, patches], q.numpy()[:, patches], cfg, vision.raster_positions(4, 5), float32_angles=True
    )


# -- refusals ------------------------------------------------------------------------------------


def test_hunyuan_vl_is_refused_with_the_reason():
    C = configuration("hunyuan_vl")
    config = C.HunYuanVLConfig(
        text_config={
            "hidden_size": 1024,
            "num_attention_heads": 16,
            "num_key_value_heads": 8,
            "head_dim": 128,
            "num_hidden_layers": 1,
            "rope_theta": 10000.0,
            "rope_scaling": {"type": "xdrope", "alpha": 1000.0, "factor": 1.0, "xdrope_section": [16, 16, 16, 16]},
        }
    )
    for raw in (config.to_dict(), {"head_dim": 128, "rope_scaling": {"type": "xdrope", "xdrope_section": [16] * 4}}):
        with pytest.raises(NotImplementedError, match="not a rotation"):
            numrope.RopeConfig.from_hf(raw)


@pytest.mark.parametrize("name", ["gemma4"])
def test_vision_layouts_numrope_lacks_are_refused(name):
    config = configuration(name).Gemma4VisionConfig()
    with pytest.raises(NotImplementedError, match="pair layout numrope does not have"):
        numrope.RopeConfig.from_hf(config.to_dict())
