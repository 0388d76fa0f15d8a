"""The model-family table: what transformers' config classes and attention code imply per model type.

A config.json says how large a model's RoPE is and which scaling it uses; the attention code of its
model type says the rest: which features pair up, where the rotary part of a head lies, which layers
have no RoPE at all, where a multimodal config keeps its language model. :mod:`numrope.models.hf`
reads all of that from here. Every entry follows the transformers 5.24 code it names; the model
sweep (``tests/test_model_sweep.py``) runs each model type's own rotary module and attention rules
against :meth:`numrope.RopeConfig.from_hf`.

* :data:`FAMILIES` -- per model type: layout, multi-head latent attention, the rule for layers
  without RoPE, the sub-config holding the language model, key aliases, the sign of the rotation;
* :data:`REFUSED` -- model types whose RoPE numrope does not reproduce, with the reason;
* :data:`IGNORED_KEYS` -- rope-parameter keys that do not change the rotation, with the reason: the
  only keys :func:`numrope.models.hf.scaling_from_hf` accepts without reading them;
* :data:`MODEL_DEFAULTS` -- the values the config classes fill in where a config.json leaves a key out.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Family:
    """What one model type's transformers code does around its rotary embedding.

    Attributes
    ----------
    layout : str
        ``"half"``, ``"interleaved"``, ``"interleaved_in_half_out"``, or ``"rope_interleave"``:
        DeepSeek-V3's flag, true by default, selecting ``"interleaved_in_half_out"`` (else ``"half"``).
    mla : bool
        Multi-head latent attention: heads are ``[nope | rope]``, ``qk_nope_head_dim +
        qk_rope_head_dim`` features, and the last ``qk_rope_head_dim`` rotate.
    rope_last : bool
        The rotary part is the last ``head_dim * partial_rotary_factor`` features (DeepSeek-V4).
    nope : str or None
        The rule for layers without RoPE (see :func:`numrope.models._hf_layers.rope_on`).
    text_part : tuple of str
        Where a composite config keeps the language model (``("decoder_config",)`` for Dia).
    aliases : dict
        Keys the config class reads under another name (``attribute_map``): ``{"n_embd": "hidden_size"}``.
    head_dim_key : str or None
        The key holding the attention's head size where it is not ``head_dim`` (JetMoe's ``kv_channels``).
    slices : bool
        The attention slices ``q[..., :rotary_ndims]`` itself: an odd ``int(head_dim * partial_rotary_factor)``
        cannot run (the other families round it up to the width of the cos table).
    direction : int
        -1 where the model rotates by ``-m theta`` (nanochat).
    rope_keys : dict
        Layer type -> key of its entry in ``rope_parameters``, where they differ (DeepSeek-V4).
    source : str
        Where transformers 5.24 implements it (``<module>.<function>``).
    """

    layout: str = "half"
    mla: bool = False
    rope_last: bool = False
    nope: str | None = None
    text_part: tuple = ()
    aliases: dict = dataclasses.field(default_factory=dict)
    head_dim_key: str | None = None
    slices: bool = False
    direction: int = 1
    rope_keys: dict = dataclasses.field(default_factory=dict)
    source: str = ""


GENERIC = Family(source="llama.apply_rotary_pos_emb (rotate_half)")


def _each(names, family):
    return dict.fromkeys(names, family)


_INTERLEAVED_SRC = {
    "blt": "blt.rotate_half (0::2 / 1::2), BltRotaryEmbedding.forward (repeat_interleave)",
    "cohere": "cohere.rotate_half, CohereRotaryEmbedding.forward (repeat_interleave)",
    "ernie4_5": "ernie4_5.apply_rotary_pos_emb (cos[..., :d/2].repeat_interleave(2)), rotate_half",
    "helium": "helium.apply_rotary_pos_emb (cos[..., :d/2].repeat_interleave(2)), rotate_half",
    "glm": "glm.apply_rotary_pos_emb (cos[..., :rotary/2].repeat_interleave(2)), rotate_half",
    "moonshine": "moonshine.apply_rotary_pos_emb (cos[..., :rotary/2].repeat_interleave(2)), rotate_half",
    "pe": "pe_video.apply_rotary_pos_emb, stack_freqs (2x2 rotations of (2i, 2i + 1))",
    "gptj": "gptj.apply_rotary_pos_emb, rotate_every_two",
}

#: Per model type. A model type missing here rotates as Llama does (GENERIC).
FAMILIES: dict[str, Family] = {
    **_each(
        ("blt_global_transformer", "blt_local_decoder", "blt_local_encoder", "blt_patcher"),
        Family("interleaved", source=_INTERLEAVED_SRC["blt"]),
    ),
    "cohere": Family("interleaved", source=_INTERLEAVED_SRC["cohere"]),
    **_each(
        ("cohere2",),
        Family("interleaved", nope="sliding_only", source=_INTERLEAVED_SRC["cohere"] + "; Cohere2Attention.__init__"),
    ),
    "cohere2_moe": Family(
        "interleaved", nope="cohere2_moe", source="cohere2_moe.Cohere2MoeAttention.__init__ (force_rope)"
    ),
    **_each(("ernie4_5", "ernie4_5_moe"), Family("interleaved", source=_INTERLEAVED_SRC["ernie4_5"])),
    "helium": Family("interleaved", source=_INTERLEAVED_SRC["helium"]),
    **_each(("glm", "glm4", "chatglm"), Family("interleaved", source=_INTERLEAVED_SRC["glm"])),
    **_each(
        ("moonshine",),
        Family(
            "interleaved",
            aliases={"decoder_num_attention_heads": "num_attention_heads"},
            source=_INTERLEAVED_SRC["moonshine"],
        ),
    ),
    "moonshine_streaming": Family("interleaved", source=_INTERLEAVED_SRC["moonshine"]),
    **_each(
        ("pe_audio_encoder", "pe_audio_video_encoder", "pe_video_encoder"),
        Family("interleaved", source=_INTERLEAVED_SRC["pe"]),
    ),
    **_each(
        ("gptj", "codegen"),
        Family(
            "interleaved",
            aliases={
                "n_embd": "hidden_size",
                "n_head": "num_attention_heads",
                "n_positions": "max_position_embeddings",
            },
            slices=True,
            source=_INTERLEAVED_SRC["gptj"] + ", GPTJAttention.forward (q[..., :rotary_dim])",
        ),
    ),
    "openai_privacy_filter": Family(
        "interleaved", source="openai_privacy_filter._apply_rotary_emb (x[..., ::2], x[..., 1::2])"
    ),
    **_each(
        ("llama4", "llama4_text"),
        Family(
            "interleaved",
            nope="no_rope_layers",
            source="llama4.apply_rotary_emb (view_as_complex), Llama4TextAttention.__init__ (use_rope)",
        ),
    ),
    "nanochat": Family(direction=-1, source="nanochat.rotate_half (cat(x2, -x1): a rotation by -m theta)"),
    # multi-head latent attention: heads [nope | rope], the rope part last
    "deepseek_v2": Family("interleaved", mla=True, source="deepseek_v2.apply_rotary_emb (view_as_complex)"),
    **_each(
        ("deepseek_v3", "glm4_moe_lite", "youtu", "axk1", "mistral4", "kimi_k2"),
        Family(
            "rope_interleave",
            mla=True,
            source="deepseek_v3.DeepseekV3Attention.forward, apply_rotary_pos_emb_interleave",
        ),
    ),
    **_each(
        ("axk2", "bailing_hybrid", "deepseek_v32", "glm_moe_dsa", "longcat_flash"),
        Family(
            "interleaved_in_half_out", mla=True, source="<module>.<Attention>.forward (apply_rotary_pos_emb_interleave)"
        ),
    ),
    **_each(
        ("mistral_large4", "mistral_large4_text"),
        Family(
            "interleaved_in_half_out",
            mla=True,
            nope="no_rope_layers",
            source="mistral_large4.MistralLarge4TextAttention.forward",
        ),
    ),
    **_each(
        ("dots3_note", "dots3_note_text"),
        Family("interleaved_in_half_out", mla=True, source="dots3_note.Dots3NoteTextAttention.forward"),
    ),
    **_each(("hy_v4", "minicpm3"), Family(mla=True, source="minicpm3.MiniCPM3Attention.forward (half layout)")),
    "deepseek_v4": Family(
        "interleaved",
        rope_last=True,
        rope_keys={
            "sliding_attention": "main",
            "compressed_sparse_attention": "compress",
            "heavily_compressed_attention": "compress",
        },
        source="deepseek_v4.apply_rotary_pos_emb (the last rope_dim features), DeepseekV4Attention.forward",
    ),
    # the attention slices the rotary part itself
    **_each(
        ("phi", "persimmon", "stablelm", "gpt_neox_japanese"),
        Family(slices=True, source="phi.PhiAttention.forward (q[..., :rotary_ndims])"),
    ),
    # layers without RoPE
    **_each(("afmoe", "flint", "lara_mini"), Family(nope="sliding_only", source="afmoe.AfmoeAttention.forward")),
    **_each(
        ("exaone4", "exaone_moe", "exaone4_5", "kolibri1"),
        Family(nope="full_nope_with_sliding_window", source="exaone4.Exaone4Attention.forward"),
    ),
    "smollm3": Family(nope="no_rope_layers", source="smollm3.SmolLM3Attention.__init__ (use_rope)"),
    **_each(
        ("muse_glimmer", "muse_glimmer_text", "muse_spark", "muse_spark_text"),
        Family(nope="layer_rope_theta", source="muse_spark.MuseSparkTextModel.forward (layer_rope_theta[i])"),
    ),
    "falcon": Family(nope="alibi", source="falcon.FalconAttention.forward (rotary only without alibi)"),
    "esm": Family(nope="esm", source="esm.EsmSelfAttention.__init__ (position_embedding_type 'rotary')"),
    "zamba2": Family(
        nope="zamba2",
        head_dim_key="attention_head_dim",
        source="zamba2.Zamba2Attention.forward (use_mem_rope), Zamba2Config.attribute_map",
    ),
    "granitemoehybrid": Family(
        nope="granitemoehybrid", source="granitemoehybrid.GraniteMoeHybridModel.__init__ (position_embedding_type)"
    ),
    "bamba": Family(nope="bamba", source="bamba.BambaConfig.layers_block_type (attn_layer_indices)"),
    "olmo_hybrid": Family(nope="olmo_hybrid", source="olmo_hybrid.OlmoHybridModel.__init__ (rope_theta set)"),
    # sizes and names
    "jetmoe": Family(head_dim_key="kv_channels", source="jetmoe.JetMoeConfig.attribute_map (head_dim: kv_channels)"),
    "dbrx": Family(
        aliases={"d_model": "hidden_size", "n_heads": "num_attention_heads", "max_seq_len": "max_position_embeddings"},
        source="dbrx.DbrxConfig.attribute_map",
    ),
    # composite configs: where the language model is
    "blt": Family("interleaved", text_part=("global_config",), source=_INTERLEAVED_SRC["blt"]),
    "dia": Family(text_part=("decoder_config",), source="dia.DiaConfig.get_text_config"),
}

#: Model types whose apply function slices the head by the width of the cos table, ``2 ceil(n / 2)``
#: for ``n = int(head_dim * partial_rotary_factor)`` (the rotary module makes ``ceil(n / 2)``
#: frequencies): an odd ``n`` rotates ``n + 1`` features there (GLM-4.5's default 21 of 42 rotates 22).
COS_WIDTH: frozenset = frozenset(
    {
        "gpt_neox", "glm", "glm4", "glm4_moe", "bamba", "laguna", "mimo_v2_flash", "minimax_m2", "nemotron",
        "qwen3_next", "recurrent_gemma", "step3p5", "step3p7", "zaya", "glmasr_encoder", "phi3", "phi4_multimodal",
        "moonshine", "moonshine_streaming", "dots3_note_audio_encoder", "nemotron3_5_transcribe_asr_audio",
        "nemotron3_5_transcribe_word_timestamp", "nemotron3_diarization_audio",
    }
)  # fmt: skip

#: Model types whose RoPE numrope does not reproduce: NotImplementedError with this reason.
REFUSED: dict[str, str] = {
    "neucodec": (
        "NeuCodec's decoder rotates by the head index (position_ids = arange(num_attention_heads), cos/sin "
        "broadcast over the sequence): not a rotation by the token's position"
    ),
    "xcodec2": (
        "X-Codec 2's decoder rotates by the head index (position_ids = arange(num_attention_heads), cos/sin "
        "broadcast over the sequence): not a rotation by the token's position"
    ),
    "qwen2_5_omni_dit": (
        "the Qwen2.5-Omni token2wav DiT rotates the first head only (query[:, :1]), de-interleaved; the other "
        "heads pass through: numrope rotates every head alike"
    ),
    "musicflamingo": "MusicFlamingo's audio RoPE turns by timestamps (apply_rotary_time_emb), not by positions",
    "mlcd": "MLCD's 2-D vision RoPE: see numrope.models.multiaxis",
}

#: Multi-axis model types (2-D or 3-D positions) that numrope.models.multiaxis does not read: refused,
#: never read as one-axis RoPE.
MULTI_AXIS: dict[str, str] = {
    **dict.fromkeys(
        ("cohere_compass", "cohere_compass_text", "cohere_compass_vision"),
        "Cohere Compass's M-RoPE keyed by layer type (cohere_compass.CohereCompassRotaryEmbedding)",
    ),
    "eomt_dinov3": "EoMT-DINOv3's 2-D patch-centre RoPE (eomt_dinov3.EomtDinov3RotaryEmbedding)",
    "efficientloftr": "EfficientLoFTR's 2-D feature-map RoPE (efficientloftr.EfficientLoFTRRotaryEmbedding)",
    "esmfold2": "ESMFold 2's 3-D atom-coordinate RoPE (esmfold2.EsmFold2RotaryEmbedding)",
    "neomme": "NeoMME's two-axis (row, column) RoPE (neomme.NeoMMERotaryEmbedding)",
    **dict.fromkeys(("glm_image", "glm_image_text"), "GLM-Image's M-RoPE (glm_image.GlmImageTextRotaryEmbedding)"),
    **dict.fromkeys(("qwen2_5_omni_talker",), "the Qwen2.5-Omni talker's M-RoPE (qwen2_5_omni.Qwen2_5OmniTalkerModel)"),
    **dict.fromkeys(
        ("qwen3_omni_moe_talker_text", "qwen3_omni_moe_talker"),
        "the Qwen3-Omni talker's interleaved M-RoPE (qwen3_omni_moe.Qwen3OmniMoeTalkerRotaryEmbedding)",
    ),
    **dict.fromkeys(("qwen4_exp", "qwen4_exp_text"), "Qwen4-Exp's M-RoPE (qwen4_exp.Qwen4ExpTextRotaryEmbedding)"),
    **dict.fromkeys(
        ("sam3_detr_decoder", "sam3_detr_encoder", "sam3_geometry_encoder", "sam3_mask_decoder", "sam3_vision_model"),
        "SAM 3's axial 2-D RoPE (sam3.Sam3ViTRotaryEmbedding)",
    ),
}

#: Keys of a rope dict that do not change the rotation of q and k, with the reason; any other key
#: numrope does not read is refused by name (numrope.models.hf.scaling_from_hf).
IGNORED_KEYS: dict[str, str] = {
    "rope_type": "read: the variant",
    "type": "read: the variant (transformers 4.x)",
    "rope_theta": "read: the base",
    "partial_rotary_factor": "read: the rotary part",
    "max_position_embeddings": "the context length the variant was configured for; the variants read "
    "original_max_position_embeddings",
    "llama_4_scaling_beta": "Ministral 3 and Mistral 4 multiply the query by 1 + beta log(1 + floor(m / "
    "original_max_position_embeddings)) after RoPE (get_llama_4_attn_scale): an attention temperature, "
    "not part of the rotation",
    "mrope_section": "read by numrope.models.multiaxis",
    "mrope_interleaved": "read by numrope.models.multiaxis",
}

#: Values the transformers config classes (or the model's own configuration code) fill in when a
#: config.json leaves a key out, for the model types whose defaults differ from plain RoPE.
MODEL_DEFAULTS: dict[str, dict] = {
    "gemma3_text": {
        "head_dim": 256,
        "rope_theta": 1_000_000.0,
        "rope_local_base_freq": 10_000.0,
        "max_position_embeddings": 131072,
    },
    "phi": {"partial_rotary_factor": 0.5},
    "glm": {"partial_rotary_factor": 0.5},
    "glm4": {"partial_rotary_factor": 0.5},
    "gpt_neox": {"rotary_pct": 0.25, "rotary_emb_base": 10000},
    "gptj": {"rotary_dim": 64},
    "codegen": {"rotary_dim": 64},
    "chatglm": {"rope_ratio": 1},
    "deepseek_v3": {"rope_interleave": True},
    "llama4_text": {"no_rope_layer_interval": 4},
    "smollm3": {"no_rope_layer_interval": 4},
}


def family(model_type) -> Family:
    """The :class:`Family` of a model type (GENERIC for one not listed)."""
    return FAMILIES.get(model_type, GENERIC) if isinstance(model_type, str) else GENERIC
