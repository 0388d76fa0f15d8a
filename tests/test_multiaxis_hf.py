"""Reading and writing multi-axis RoPE in Hugging Face configs: every key that says several axes is
read right or refused by name, never read as plain RoPE; to_hf writes what from_hf reads back."""

import dataclasses

import pytest

import numrope
from numrope import axes
from numrope.models import hf, multiaxis

YARN = numrope.variants.YaRN(4.0, 32768)

ROUND_TRIP = {
    "qwen2_vl": numrope.RopeConfig(128, 1e6, axes=axes.sectioned([16, 24, 24])),
    "qwen2_vl_yarn": numrope.RopeConfig(128, 1e6, scaling=YARN, axes=axes.sectioned([16, 24, 24])),
    "glm4v": numrope.RopeConfig(128, 1e4, rotary_dim=64, layout="interleaved", axes=axes.sectioned([8, 12, 12])),
    "glm4v_moe": numrope.RopeConfig(128, 1e4, rotary_dim=64, axes=axes.sectioned([8, 12, 12])),
    "qwen3_vl": numrope.RopeConfig(128, 5e6, axes=axes.interleaved([24, 20, 20])),
    "qwen3_5": numrope.RopeConfig(256, 1e7, rotary_dim=64, axes=axes.interleaved([11, 11, 10])),
    "ernie": numrope.RopeConfig(128, 5e5, layout="interleaved", axes=axes.ernie([22, 22, 20])),
    "qwen_tower": numrope.RopeConfig(80, 1e4, axes=axes.axial(40)),
    "llama4_sam3_tower": numrope.RopeConfig(88, 1e4, layout="interleaved", axes=axes.axial(44, names=("x", "y"))),
    "pixtral": numrope.RopeConfig(64, 1e4, axes=axes.pixtral(32)),
}


@pytest.mark.parametrize("name", sorted(ROUND_TRIP))
@pytest.mark.parametrize("legacy", [False, True])
def test_to_hf_reads_back_equal(name, legacy):
    cfg = ROUND_TRIP[name]
    written = hf.rope_config_to_hf(cfg, legacy=legacy)
    assert numrope.RopeConfig.from_hf(written) == cfg, written
    if not legacy:
        assert cfg.to_hf() == written


def test_written_keys_are_transformers_keys():
    params = ROUND_TRIP["qwen3_vl"].to_hf()["rope_parameters"]
    assert params["mrope_section"] == [24, 20, 20] and params["mrope_interleaved"] is True
    assert hf.rope_config_to_hf(ROUND_TRIP["qwen2_vl"], legacy=True)["rope_scaling"] == {
        "type": "mrope",
        "mrope_section": [16, 24, 24],
    }
    assert ROUND_TRIP["qwen_tower"].to_hf() == {
        "model_type": "qwen2_vl_vision",
        "head_dim": 80,
        "rope_parameters": {"rope_type": "axial", "rope_theta": 10000.0},
    }


@pytest.mark.parametrize(
    "cfg",
    [
        numrope.RopeConfig(8, axes=axes.AxisMap([0, 1, 1, 0])),
        numrope.RopeConfig(16, axes=axes.axial(8)).__class__(16, layout="interleaved", axes=axes.axial(8)),
        numrope.RopeConfig(16, layout="half", axes=axes.ernie([3, 3, 2])),
        numrope.RopeConfig(16, scaling=numrope.variants.Linear(2.0), axes=axes.axial(8)),
    ],
    ids=["custom", "axial-h-w-interleaved", "ernie-half", "scaled-tower"],
)
def test_maps_no_config_describes_are_not_written(cfg):
    with pytest.raises(NotImplementedError):
        cfg.to_hf()


MULTIAXIS_CONFIGS = {
    "rope_parameters.mrope_section": {
        "head_dim": 64,
        "rope_parameters": {"rope_type": "default", "mrope_section": [8, 12, 12]},
    },
    "rope_scaling.mrope_section": {"head_dim": 64, "rope_scaling": {"type": "mrope", "mrope_section": [8, 12, 12]}},
    "mrope_interleaved": {
        "head_dim": 64,
        "rope_parameters": {"mrope_interleaved": True, "mrope_section": [12, 10, 10]},
    },
    "model_type only": {"model_type": "qwen2_vl_text", "hidden_size": 2048, "num_attention_heads": 16},
    "nested text_config": {
        "model_type": "glm4v",
        "text_config": {
            "model_type": "glm4v_text",
            "head_dim": 64,
            "partial_rotary_factor": 0.5,
            "rope_parameters": {"mrope_section": [4, 6, 6]},
        },
    },
    "omni thinker": {
        "model_type": "qwen2_5_omni",
        "thinker_config": {
            "model_type": "qwen2_5_omni_thinker",
            "text_config": {"hidden_size": 2048, "num_attention_heads": 16},
        },
    },
}


@pytest.mark.parametrize("name", sorted(MULTIAXIS_CONFIGS))
def test_multiaxis_configs_are_never_read_as_plain_rope(name):
    cfg = numrope.RopeConfig.from_hf(MULTIAXIS_CONFIGS[name])
    assert cfg.axes is not None and cfg.n_axes == 3
    assert hf.rope_fields_from_hf(MULTIAXIS_CONFIGS[name])["axes"] == cfg.axes


@pytest.mark.parametrize(
    ("config", "error", "match"),
    [
        ({"head_dim": 64, "rope_scaling": {"type": "mrope"}}, ValueError, "mrope_section is missing"),
        ({"head_dim": 64, "rope_parameters": {"mrope_interleaved": True}}, ValueError, "mrope_section is missing"),
        ({"head_dim": 64, "rope_parameters": {"rope_type": "axial"}}, NotImplementedError, "rope_type 'axial'"),
        (
            {"head_dim": 64, "rope_scaling": {"type": "xdrope", "xdrope_section": [8] * 4}},
            NotImplementedError,
            "xdrope_section",
        ),
        (
            {"model_type": "cohere_compass_text", "head_dim": 64, "rope_parameters": {"mrope_section": [8, 12, 12]}},
            NotImplementedError,
            "mrope_section in a config of model type 'cohere_compass_text'",
        ),
        ({"model_type": "hunyuan_vl", "text_config": {"head_dim": 128}}, NotImplementedError, "HunYuan"),
        ({"head_dim": 64, "rope_parameters": {"mrope_section": [8, 12, 10]}}, ValueError, "sums to 30 pairs"),
        ({"head_dim": 64, "rope_parameters": {"mrope_section": [8, 12, 6, 6]}}, NotImplementedError, "three sections"),
        ({"head_dim": 64, "rope_parameters": {"mrope_section": [8, "12", 12]}}, ValueError, "non-negative ints"),
        (
            {
                "model_type": "ernie4_5_vl_moe_text",
                "head_dim": 128,
                "rope_parameters": {"rope_type": "linear", "factor": 2.0},
            },
            ValueError,
            "'default' only",
        ),
        ({"model_type": "qwen2_vl_text", "head_dim": 128, "rope_scaling": [1, 2]}, TypeError, "JSON object"),
        (
            {
                "head_dim": 64,
                "layer_types": ["full_attention"],
                "rope_parameters": {"full_attention": {"mrope_section": [8, 12, 12]}},
            },
            NotImplementedError,
            "per layer type",
        ),
    ],
)
def test_what_numrope_does_not_read_is_refused_by_name(config, error, match):
    with pytest.raises(error, match=match):
        numrope.RopeConfig.from_hf(config)


def test_plain_configs_stay_plain():
    for config in (
        {"hidden_size": 4096, "num_attention_heads": 32, "rope_theta": 5e5},
        {"model_type": "llama", "head_dim": 128, "rope_parameters": {"rope_type": "linear", "factor": 2.0}},
        {
            "model_type": "llava",
            "text_config": {"model_type": "mistral", "head_dim": 128},
            "vision_config": {"model_type": "pixtral", "hidden_size": 1024, "num_attention_heads": 16},
        },
        {
            "head_dim": 64,
            "rope_parameters": {"full_attention": {"rope_theta": 1e6}, "sliding_attention": None},
            "layer_types": ["full_attention"],
        },
    ):
        kwargs = {"layer_type": "full_attention"} if "layer_types" in config else {}
        assert numrope.RopeConfig.from_hf(config, **kwargs).axes is None


def test_vision_part():
    full = {
        "model_type": "qwen2_5_vl",
        "hidden_size": 3584,
        "num_attention_heads": 28,
        "vision_config": {"hidden_size": 1280, "num_heads": 16, "tokens_per_second": 2},
    }
    cfg = numrope.RopeConfig.from_hf(full, part="vision")
    assert cfg == numrope.RopeConfig(80, 1e4, axes=axes.axial(40))
    assert numrope.RopeConfig.from_hf(full).axes == axes.sectioned([16, 24, 24])  # the text part by default
    with pytest.raises(ValueError, match="no vision config"):
        numrope.RopeConfig.from_hf({"model_type": "qwen2_vl", "hidden_size": 64}, part="vision")
    with pytest.raises(NotImplementedError, match="vision tower of model type 'siglip'"):
        numrope.RopeConfig.from_hf(
            {"model_type": "x", "vision_config": {"model_type": "siglip_vision_model"}}, part="vision"
        )
    with pytest.raises(ValueError, match="part must be"):
        numrope.RopeConfig.from_hf(full, part="audio")
    with pytest.raises(ValueError, match="multiple of 4"):
        numrope.RopeConfig.from_hf({"model_type": "pixtral", "head_dim": 66}, part="vision")


def test_family_table_names_its_sources():
    for family in (*multiaxis.TEXT_FAMILIES.values(), *multiaxis.VISION_FAMILIES.values()):
        assert family.source and dataclasses.is_dataclass(family)
