"""What each transformers model does to queries and keys with RoPE: the ground truth of tests/test_model_sweep.py.

For every model type whose modeling module defines a text ``*RotaryEmbedding`` class, :func:`build`
instantiates that class from the model type's default config class (``CONFIG_MAPPING[model_type]()``,
no weights) and :meth:`Truth.rotate` applies its cos/sin the way the model's attention does:

* with the apply function the text attention class calls (``apply_rotary_pos_emb``,
  ``apply_rotary_pos_emb_interleave``, Llama 4's and DeepSeek-V2's complex ``apply_rotary_emb``,
  Gemma 3n's single-tensor form, GPT-J's ``(sin, cos)`` form, ...);
* with the slicing the attention does around the call (``q[..., :rotary_ndims]`` of Phi, Persimmon,
  StableLM, GPT-NeoX-Japanese, CodeGen, GPT-J; the ``[nope | rope]`` split of multi-head latent
  attention);
* per layer type and per layer: the rope parameters of the layer type, and the rules by which some
  layers have no RoPE (Cohere 2's full-attention layers, Llama 4's and SmolLM3's ``no_rope_layers``, ...);
* with the q/k scalings the attention applies around RoPE (``scaling=True``; ``scaling=False`` leaves
  them out): Llama 4's position-dependent query scale in Ministral 3 and Mistral 4, the
  ``head_dim**-0.25`` of openai_privacy_filter, LongCat-Flash's query scale, ...

A fresh copy of the rotary module serves each call, so the caches of the dynamic variants never
carry over. The per-family rules (``SPECS``) were read from each family's attention ``forward``
(transformers 5.24; the source locations are in each entry) and checked against the real attention
classes: with q/k projections replaced by known tensors, the query and key reaching the attention
kernel equal :meth:`Truth.rotate` exactly for every model type marked ``ok``.

``q``: (B, Hq, S, D) float32, ``k``: (B, Hk, S, D), ``position_ids``: (B, S) int64, where
``D == truth.head_dim_for(layer_type, layer_idx)``.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import json
import os
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch

warnings.filterwarnings("ignore")
import transformers  # noqa: E402

transformers.logging.set_verbosity_error()
from transformers.models.auto.configuration_auto import (  # noqa: E402
    CONFIG_MAPPING,
    CONFIG_MAPPING_NAMES,
    model_type_to_module_name,
)

_TF_MODELS = os.path.join(os.path.dirname(transformers.__file__), "models")
_ROT_RE = re.compile(r"^class (\w*RotaryEmbedding)\b", re.M)


# ----------------------------------------------------------------------------------------------
# enumeration
# ----------------------------------------------------------------------------------------------
def _module_of(model_type: str) -> str:
    return model_type_to_module_name(model_type)


def _modeling_path(mod: str) -> str:
    return os.path.join(_TF_MODELS, mod, f"modeling_{mod}.py")


def _rotary_class_names(mod: str) -> list[str]:
    p = _modeling_path(mod)
    if not os.path.exists(p):
        return []
    return _ROT_RE.findall(open(p).read())


def _text_rotary_class_names(mod: str) -> list[str]:
    """Rotary classes that are not vision rotaries (``*VisionRotaryEmbedding``; note that e.g.
    ``Granite4VisionTextRotaryEmbedding`` is a text rotary of the granite4_vision model)."""
    return [
        n
        for n in _rotary_class_names(mod)
        if not re.search(r"Vision\w*RotaryEmbedding$", n) or n.endswith("TextRotaryEmbedding")
    ]


def model_types() -> list[str]:
    """Model types (CONFIG_MAPPING names) whose modeling module defines a non-vision *RotaryEmbedding."""
    out = []
    for mt in CONFIG_MAPPING_NAMES:
        if _text_rotary_class_names(_module_of(mt)):
            out.append(mt)
    return sorted(out)


def _load(mod: str):
    return importlib.import_module(f"transformers.models.{mod}.modeling_{mod}")


# ----------------------------------------------------------------------------------------------
# config helpers
# ----------------------------------------------------------------------------------------------
def _safe_get(cfg, name, default=None):
    try:
        return getattr(cfg, name, default)
    except Exception:  # heterogeneous (per-layer) attribute: global value, without mutating the config
        try:
            return cfg._getattr_without_heterogeneous_validation(name)
        except Exception:
            return default


def _hetero(cfg) -> bool:
    try:
        return bool(getattr(cfg, "is_heterogeneous", False))
    except Exception:
        return False


def _per_layer(cfg, key):
    """cfg.per_layer_config[key] if the config is heterogeneous, else cfg."""
    if not _hetero(cfg):
        return cfg
    plc = cfg.per_layer_config
    try:
        return plc[key]
    except Exception:
        return cfg


def _find_path(root, target, _depth=0):
    if root is target:
        return []
    if _depth > 3:
        return None
    for name in list(getattr(root, "sub_configs", {}) or {}):
        sub = getattr(root, name, None)
        if sub is None or not hasattr(sub, "to_dict"):
            continue
        p = _find_path(sub, target, _depth + 1)
        if p is not None:
            return [name] + p
    return None


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=str))


def _default_head_dim(cfg, lt=None, layer_idx=None):
    c = cfg
    if _hetero(cfg):
        key = layer_idx if layer_idx is not None else lt
        if key is not None:
            c = _per_layer(cfg, key)
    hd = _safe_get(c, "head_dim", None)
    if hd:
        return int(hd)
    return int(_safe_get(c, "hidden_size") // _safe_get(c, "num_attention_heads"))


def _layer_types_list(cfg):
    lt = _safe_get(cfg, "layer_types", None)
    if isinstance(lt, (list, tuple)) and lt:
        return list(lt)
    return None


# ----------------------------------------------------------------------------------------------
# per-family specification (read from each family's attention forward; see NOTES.md)
# ----------------------------------------------------------------------------------------------
# spec keys:
#   rotary       : rotary class name (default: auto-chosen)
#   attention    : attention class name whose forward is mirrored (documentation + verification)
#   apply        : 'qk' (fn(q,k,cos,sin) on (B,H,S,D)), 'qk_bshd' (fn(q,k,cos,sin,unsqueeze_dim=2) on
#                  (B,S,H,D)), 'x_bshd' (fn(x,cos,sin,unsqueeze_dim=2) per tensor, (B,S,H,D)),
#                  'x_bhsd' (fn(x,cos,sin) per tensor), 'interleave' (apply_rotary_pos_emb_interleave),
#                  'complex_bshd' (llama4 apply_rotary_emb(q,k,freqs_cis) on (B,S,H,D)),
#                  'complex_bhsd' (deepseek_v2), 'gptj' (fn(x,sin,cos) per tensor on (B,S,H,D))
#   apply_fn     : name of the module-level function called (default per apply kind)
#   slice        : None | ('first', fn(cfg, lt)->n) | ('last', fn(cfg, lt)->n)  -- slicing done by the
#                  attention itself around the apply call
#   head_dim     : fn(cfg, lt) -> attention head dim of q/k fed to rotate
#   rope_key     : fn(cfg, lt) -> layer_type passed to the rotary module (default: lt)
#   rope_on      : fn(cfg, layer_idx, lt) -> bool   (per-layer NoPE rules)
#   pre_q/pre_k  : fn(cfg, lt) -> float scale applied to q/k before rope (inside attention)
#   post_q       : fn(cfg, position_ids) -> tensor (B,1,S,1) multiplied into q after rope
#   post_qk      : fn(cfg) -> float multiplied into q and k after rope
#   multi_axis   : reason string -> multi-axis (mrope / 2-D / axial), skipped
#   skip         : reason string -> skipped
#   nonstandard  : short description of the non-standard behaviour (recorded in truth.json)
#   source       : "module:function" locations read (recorded in NOTES.md)
#   variants     : {name: {config overrides}} extra probes (e.g. enabling flags that are off by default)


def _pr(cfg, lt=None):
    """rope_parameters (of layer type ``lt`` when they are keyed by layer type; None if that key is None)."""
    rp = _safe_get(cfg, "rope_parameters", None) or {}
    keyed = bool(rp) and all(isinstance(v, dict) or v is None for v in rp.values())
    if lt is not None and keyed:
        return rp.get(lt)
    return rp


def _partial_first(cfg, lt=None):
    hd = _default_head_dim(cfg, lt)
    return int(hd * _pr(cfg, lt)["partial_rotary_factor"])


def _lt_of(cfg, layer_idx):
    lts = _layer_types_list(cfg)
    return lts[layer_idx] if lts is not None else None


def _only_sliding(cfg, i, lt):
    return (lt if lt is not None else _lt_of(cfg, i)) == "sliding_attention"


def _mla_head_dim(cfg, lt=None):
    c = _per_layer(cfg, lt) if (lt is not None and _hetero(cfg)) else cfg
    return int(_safe_get(c, "qk_nope_head_dim") + _safe_get(c, "qk_rope_head_dim"))


def _mla_rope(cfg, lt=None):
    c = _per_layer(cfg, lt) if (lt is not None and _hetero(cfg)) else cfg
    return int(_safe_get(c, "qk_rope_head_dim"))


def _llama4_attn_scale(cfg, position_ids):
    rp = cfg.rope_parameters
    beta = rp.get("llama_4_scaling_beta")
    omax = rp.get("original_max_position_embeddings")
    if beta is None or omax is None:
        return None
    s = 1 + beta * torch.log(1 + torch.floor(position_ids / omax))
    return s[:, None, :, None]


_MLA_INTERLEAVE_FLAG_NOTE = (
    "MLA: attention splits q/k heads into [nope | rope] (qk_nope_head_dim | qk_rope_head_dim) and ropes only "
    "the LAST qk_rope_head_dim features; the k rope part is a single shared head (broadcast to all heads)."
)

SPECS: dict[str, dict] = {
    # ---------------- interleaved layouts --------------------------------------------------------
    "cohere": dict(
        nonstandard="interleaved pairs: rotary repeat_interleave(freqs,2) + rotate_half on (0::2,1::2)",
        source="cohere.CohereRotaryEmbedding.forward, cohere.rotate_half, cohere.CohereAttention.forward",
    ),
    "cohere2": dict(
        rope_on=lambda c, i, lt: _only_sliding(c, i, lt),
        nonstandard="interleaved pairs (cohere rotate_half + repeat_interleave freqs); RoPE only on "
        "sliding_attention layers (full_attention layers are NoPE: `if self.sliding_window "
        "is not None`)",
        source="cohere2.Cohere2Attention.forward/__init__, cohere2.rotate_half, cohere2.Cohere2RotaryEmbedding.forward",
    ),
    "cohere2_moe": dict(
        rope_on=lambda c, i, lt: (
            (_lt_of(c, i) == "sliding_attention")
            or (c.mlp_layer_types[i] == "dense" and c.prefix_dense_sliding_window_pattern == 1)
            if i is not None
            else lt == "sliding_attention"
        ),
        nonstandard="interleaved pairs; RoPE on sliding layers, plus `force_rope` full-attention layers "
        "(mlp_layer_types[i]=='dense' and prefix_dense_sliding_window_pattern==1) -> needs layer_idx",
        source="cohere2_moe.Cohere2MoeAttention.__init__ (force_rope) / forward, cohere2_moe.rotate_half",
    ),
    "blt": dict(
        nonstandard="interleaved pairs (cohere-style rotate_half + repeat_interleave freqs)",
        source="blt.BltRotaryEmbedding.forward, blt.rotate_half, blt.BltSelfAttention.forward",
    ),
    "ernie4_5": dict(
        nonstandard="interleaved pairs: apply_rotary_pos_emb takes cos[..., :D/2].repeat_interleave(2) "
        "and an interleaved rotate_half (computed in float32)",
        source="ernie4_5.apply_rotary_pos_emb, ernie4_5.rotate_half, ernie4_5.Ernie4_5Attention.forward",
    ),
    "ernie4_5_moe": dict(
        nonstandard="interleaved pairs (same apply as ernie4_5)",
        source="ernie4_5_moe.apply_rotary_pos_emb, ernie4_5_moe.rotate_half",
    ),
    "helium": dict(
        nonstandard="interleaved pairs: apply takes cos[..., :D/2].repeat_interleave(2) + interleaved rotate_half",
        source="helium.apply_rotary_pos_emb, helium.rotate_half, helium.HeliumAttention.forward",
    ),
    "glm": dict(
        nonstandard="interleaved pairs on the FIRST rotary_dim=head_dim*partial_rotary_factor features "
        "(apply slices by cos width, cos[..., :half].repeat_interleave(2))",
        source="glm.apply_rotary_pos_emb, glm.rotate_half, glm.GlmRotaryEmbedding.compute_default_rope_parameters",
    ),
    "glm4": dict(
        nonstandard="interleaved pairs on first head_dim*partial_rotary_factor features (GLM-style apply)",
        source="glm4.apply_rotary_pos_emb, glm4.rotate_half",
    ),
    "moonshine": dict(
        nonstandard="interleaved pairs on first head_dim*partial_rotary_factor features (GLM-style "
        "apply); RoPE only in self-attention (cross-attention has none)",
        source="moonshine.apply_rotary_pos_emb, moonshine.rotate_half, moonshine.MoonshineAttention.forward",
    ),
    "moonshine_streaming": dict(
        nonstandard="interleaved pairs on first head_dim*partial_rotary_factor features "
        "(GLM-style apply); self-attention only",
        source="moonshine_streaming.apply_rotary_pos_emb, moonshine_streaming.rotate_half, "
        "moonshine_streaming.MoonshineStreamingAttention.forward",
    ),
    "openai_privacy_filter": dict(
        post_qk=lambda c: c.head_dim**-0.25,
        nonstandard="interleaved pairs: rotary returns un-duplicated freqs (width D/2) and _apply_rotary_emb uses "
        "x[...,::2], x[...,1::2] + stack; q and k are both multiplied by head_dim**-0.25 after rope",
        source="openai_privacy_filter._apply_rotary_emb, openai_privacy_filter.apply_rotary_pos_emb, "
        "openai_privacy_filter.OpenAIPrivacyFilterAttention.forward",
    ),
    "gpt_oss": dict(
        nonstandard="rotary returns un-duplicated freqs (width D/2); _apply_rotary_emb chunks x in two "
        "halves -> half layout",
        source="gpt_oss._apply_rotary_emb, gpt_oss.GptOssRotaryEmbedding.forward",
    ),
    "pe_audio": dict(
        nonstandard="interleaved pairs via stack_freqs 2x2 rotation matrices on q.reshape(...,D/2,1,2)",
        source="pe_audio.apply_rotary_pos_emb, pe_audio.stack_freqs",
    ),
    "pe_audio_video": dict(
        nonstandard="interleaved pairs via stack_freqs 2x2 rotation matrices",
        source="pe_audio_video.apply_rotary_pos_emb, pe_audio_video.stack_freqs",
    ),
    "pe_video": dict(
        nonstandard="interleaved pairs via stack_freqs 2x2 rotation matrices on q.reshape(...,D/2,1,2)",
        source="pe_video.apply_rotary_pos_emb, pe_video.stack_freqs, pe_video.PeVideoEncoderAttention.forward",
    ),
    "nanochat": dict(
        nonstandard="rotate_half returns cat(x2, -x1) (sign flipped) -> rotation by -theta; q/k RMS-normed AFTER rope",
        source="nanochat.rotate_half, nanochat.NanoChatAttention.forward",
    ),
    # ---------------- complex / gptj-style -------------------------------------------------------
    "llama4": dict(
        apply="complex_bshd",
        apply_fn="apply_rotary_emb",
        rope_on=lambda c, i, lt: bool(c.no_rope_layers[i]) if i is not None else True,
        nonstandard="complex freqs_cis (torch.polar) applied with view_as_complex on (B,S,H,D) -> "
        "interleaved pairs; NoPE layers where no_rope_layers[i]==0 (every 4th layer by "
        "default) -> needs layer_idx; L2 qk_norm after rope on rope layers; "
        "attn_temperature_tuning scales q on NoPE layers",
        source="llama4.apply_rotary_emb, llama4.Llama4TextRotaryEmbedding.forward, "
        "llama4.Llama4TextAttention.__init__/forward",
    ),
    "deepseek_v2": dict(
        apply="complex_bhsd",
        apply_fn="apply_rotary_emb",
        slice=("last", _mla_rope),
        head_dim=_mla_head_dim,
        nonstandard="complex freqs_cis on interleaved pairs; " + _MLA_INTERLEAVE_FLAG_NOTE,
        source="deepseek_v2.apply_rotary_emb, deepseek_v2.DeepseekV2Attention.forward",
    ),
    "codegen": dict(
        apply="gptj",
        slice=("first", lambda c, lt: c.rotary_dim),
        nonstandard="GPT-J style: rotary returns (sin, cos) from a sinusoid table of width rotary_dim, "
        "apply_rotary_pos_emb(x, sin, cos) with repeat_interleave + rotate_every_two -> "
        "interleaved pairs on the first rotary_dim features",
        source="codegen.CodeGenAttention.forward, codegen.apply_rotary_pos_emb, codegen.rotate_every_two",
    ),
    "gptj": dict(
        apply="gptj",
        slice=("first", lambda c, lt: c.rotary_dim),
        nonstandard="GPT-J style (sin,cos) + rotate_every_two -> interleaved pairs on first rotary_dim features",
        source="gptj.GPTJAttention.forward, gptj.apply_rotary_pos_emb, gptj.rotate_every_two",
    ),
    # ---------------- partial rotary done by the attention ---------------------------------------
    "phi": dict(
        slice=("first", _partial_first),
        nonstandard="attention slices q/k[..., :rotary_ndims] (head_dim*partial_rotary_factor), half layout",
        source="phi.PhiAttention.forward",
    ),
    "persimmon": dict(
        slice=("first", _partial_first),
        nonstandard="attention slices q/k[..., :rotary_ndims], half layout",
        source="persimmon.PersimmonAttention.forward",
    ),
    "stablelm": dict(
        slice=("first", _partial_first),
        nonstandard="attention slices q/k[..., :rotary_ndims], half layout",
        source="stablelm.StableLmAttention.forward",
    ),
    "gpt_neox_japanese": dict(
        slice=("first", _partial_first),
        nonstandard="attention slices q/k[..., :rotary_ndims], half layout",
        source="gpt_neox_japanese.GPTNeoXJapaneseAttention.forward",
    ),
    # ---------------- single tensor, (B,S,H,D) ----------------------------------------------------
    "gemma3n": dict(
        apply="x_bshd",
        nonstandard="single-tensor apply on (B,S,H,D) with unsqueeze_dim=2",
        source="gemma3n.Gemma3nTextAttention.forward, gemma3n.apply_rotary_pos_emb",
    ),
    "gemma4": dict(
        apply="x_bshd",
        nonstandard="single-tensor apply on (B,S,H,D); per-layer-type rope: sliding=default, "
        "full_attention='proportional' (partial_rotary_factor 0.25 over head_dim "
        "global_head_dim=512: inv_freq exponent uses the full head_dim and the "
        "non-rotated pairs get inv_freq=0, so in half layout the rotated features are "
        "[0,r/2) U [D/2, D/2+r/2)); per-layer head_dim",
        source="gemma4.Gemma4TextAttention.forward/__init__, gemma4.Gemma4TextRotaryEmbedding, "
        "modeling_rope_utils._compute_proportional_rope_parameters",
    ),
    "gemma4_unified": dict(
        apply="x_bshd",
        nonstandard="as gemma4 (proportional rope on full-attention layers)",
        source="gemma4_unified.Gemma4UnifiedTextAttention.forward",
    ),
    "diffusion_gemma": dict(
        apply="x_bshd",
        nonstandard="as gemma4 (proportional rope on full-attention layers)",
        source="diffusion_gemma.DiffusionGemmaEncoderTextAttention.forward",
    ),
    "neucodec": dict(
        apply="head_index",
        nonstandard="RoPE position = HEAD INDEX: the decoder builds position_ids=arange(num_attention_heads) "
        "and applies cos/sin (B,H,D) with unsqueeze_dim=2 to q/k (B,H,S,D); the sequence "
        "position is ignored and, since q and k of a head get the same rotation, q.k is "
        "unchanged (RoPE is a no-op for the attention scores). rotate() ignores position_ids",
        source="neucodec.NeuCodecDecoder.forward "
        "(position_ids = torch.arange(self.num_attention_heads)), neucodec.NeuCodecAttention.forward",
    ),
    "xcodec2": dict(
        apply="head_index",
        nonstandard="RoPE position = HEAD INDEX: the decoder builds position_ids=arange(num_attention_heads) "
        "and applies cos/sin (B,H,D) with unsqueeze_dim=2 to q/k (B,H,S,D); the sequence "
        "position is ignored and, since q and k of a head get the same rotation, q.k is "
        "unchanged (RoPE is a no-op for the attention scores). rotate() ignores position_ids",
        source="xcodec2.Xcodec2Decoder.forward "
        "(position_ids = torch.arange(self.num_attention_heads)), xcodec2.Xcodec2Attention.forward",
    ),
    "deepseek_v3": dict(
        apply="mla_flag",
        slice=("last", _mla_rope),
        head_dim=_mla_head_dim,
        nonstandard="rope_interleave (default True) -> apply_rotary_pos_emb_interleave: input "
        "interleaved pairs, output de-interleaved (half) order; " + _MLA_INTERLEAVE_FLAG_NOTE,
        variants={"rope_interleave_false": {"rope_interleave": False}},
        source="deepseek_v3.DeepseekV3Attention.forward, deepseek_v3.apply_rotary_pos_emb_interleave",
    ),
    "glm4_moe_lite": dict(
        apply="mla_flag",
        slice=("last", _mla_rope),
        head_dim=_mla_head_dim,
        nonstandard="DeepSeek-V3 MLA clone (rope_interleave flag); " + _MLA_INTERLEAVE_FLAG_NOTE,
        variants={"rope_interleave_false": {"rope_interleave": False}},
        source="glm4_moe_lite.Glm4MoeLiteAttention.forward, glm4_moe_lite.apply_rotary_pos_emb_interleave",
    ),
    "youtu": dict(
        apply="mla_flag",
        slice=("last", _mla_rope),
        head_dim=_mla_head_dim,
        nonstandard="DeepSeek-V3 MLA clone (rope_interleave flag); " + _MLA_INTERLEAVE_FLAG_NOTE,
        variants={"rope_interleave_false": {"rope_interleave": False}},
        source="youtu.YoutuAttention.forward, youtu.apply_rotary_pos_emb_interleave",
    ),
    "axk1": dict(
        apply="mla_flag",
        slice=("last", _mla_rope),
        head_dim=_mla_head_dim,
        nonstandard="DeepSeek-V3 MLA clone (rope_interleave flag); " + _MLA_INTERLEAVE_FLAG_NOTE,
        variants={"rope_interleave_false": {"rope_interleave": False}},
        source="axk1.AXK1Attention.forward, axk1.apply_rotary_pos_emb_interleave",
    ),
    "mistral4": dict(
        apply="mla_flag",
        slice=("last", _mla_rope),
        head_dim=_mla_head_dim,
        post_q=_llama4_attn_scale,
        nonstandard="DeepSeek-V3 MLA clone (rope_interleave flag); q multiplied after rope by "
        "1+llama_4_scaling_beta*log(1+floor(pos/original_max_position_embeddings)) "
        "(rope_parameters keys); " + _MLA_INTERLEAVE_FLAG_NOTE,
        variants={"rope_interleave_false": {"rope_interleave": False}},
        source="mistral4.Mistral4Attention.forward, mistral4.get_llama_4_attn_scale",
    ),
    "axk2": dict(
        apply="interleave",
        slice=("last", _mla_rope),
        head_dim=_mla_head_dim,
        nonstandard="MLA, always apply_rotary_pos_emb_interleave; " + _MLA_INTERLEAVE_FLAG_NOTE,
        source="axk2.AXK2Attention.forward",
    ),
    "bailing_hybrid": dict(
        apply="interleave",
        slice=("last", _mla_rope),
        head_dim=_mla_head_dim,
        nonstandard="MLA, always interleave; " + _MLA_INTERLEAVE_FLAG_NOTE,
        source="bailing_hybrid.BailingHybridAttention.forward",
    ),
    "deepseek_v32": dict(
        apply="interleave",
        slice=("last", _mla_rope),
        head_dim=_mla_head_dim,
        nonstandard="MLA, always interleave (indexer uses non-interleaved apply); " + _MLA_INTERLEAVE_FLAG_NOTE,
        source="deepseek_v32.DeepseekV32Attention.forward",
    ),
    "glm_moe_dsa": dict(
        apply="interleave",
        slice=("last", _mla_rope),
        head_dim=_mla_head_dim,
        nonstandard="MLA, always interleave; " + _MLA_INTERLEAVE_FLAG_NOTE,
        source="glm_moe_dsa.GlmMoeDsaAttention.forward",
    ),
    "longcat_flash": dict(
        apply="interleave",
        slice=("last", _mla_rope),
        head_dim=_mla_head_dim,
        attention="LongcatFlashMLA",
        pre_q=lambda c, lt: (c.hidden_size / c.q_lora_rank) ** 0.5,
        nonstandard="MLA, always interleave; q (nope and rope parts) multiplied by "
        "mla_scale_q_lora=(hidden_size/q_lora_rank)**0.5 before rope; " + _MLA_INTERLEAVE_FLAG_NOTE,
        source="longcat_flash.LongcatFlashMLA.forward/__init__",
    ),
    "minicpm3": dict(
        apply="qk",
        slice=("last", _mla_rope),
        head_dim=_mla_head_dim,
        nonstandard="MLA with plain half-layout apply_rotary_pos_emb; " + _MLA_INTERLEAVE_FLAG_NOTE,
        source="minicpm3.MiniCPM3Attention.forward",
    ),
    "hy_v4": dict(
        apply="qk",
        slice=("last", _mla_rope),
        head_dim=_mla_head_dim,
        nonstandard="MLA with plain half-layout apply_rotary_pos_emb; " + _MLA_INTERLEAVE_FLAG_NOTE,
        source="hy_v4.HYV4Attention.forward",
    ),
    "mistral_large4": dict(
        apply="interleave",
        slice=("last", _mla_rope),
        head_dim=_mla_head_dim,
        rope_on=lambda c, i, lt: bool(c.no_rope_layers[i]) if i is not None else True,
        nonstandard="MLA, always interleave; NoPE layers from no_rope_layers (needs layer_idx; "
        "on NoPE layers the whole head is 'nope'); rotary has a LEARNED per-frequency "
        "log-scale `alpha` (checkpoint weight, zero at init) multiplying inv_freq; "
        "learned position-dependent softmax scaling of q after rope (weights, not "
        "reproduced); " + _MLA_INTERLEAVE_FLAG_NOTE,
        source="mistral_large4.MistralLarge4TextAttention.forward/__init__, "
        "mistral_large4.MistralLarge4TextRotaryEmbedding.forward",
    ),
    "dots3_note": dict(
        apply="interleave",
        slice=("last", _mla_rope),
        head_dim=_mla_head_dim,
        nonstandard="MLA, always interleave, per-layer-type rope params (indexed/sliding) with "
        "partial_rotary_factor; " + _MLA_INTERLEAVE_FLAG_NOTE,
        source="dots3_note.Dots3NoteTextAttention.forward",
    ),
    "deepseek_v4": dict(
        apply="x_bhsd",
        rope_key=lambda c, lt: "main" if lt == "sliding_attention" else "compress",
        nonstandard="apply_rotary_pos_emb(x,cos,sin) ropes the LAST rope_dim=head_dim*"
        "partial_rotary_factor features with interleaved pairs (cos.repeat_interleave "
        "+ interleaved rotate_half); K==V (kv tensor roped) and the attention output is "
        "de-rotated with (cos,-sin); rope params keyed 'main' (sliding layers) / "
        "'compress' (compressed layers)",
        source="deepseek_v4.DeepseekV4Attention.forward, deepseek_v4.apply_rotary_pos_emb, "
        "deepseek_v4.DeepseekV4RotaryEmbedding",
    ),
    # ---------------- per-layer NoPE rules --------------------------------------------------------
    "exaone4": dict(
        rope_on=lambda c, i, lt: (
            c.sliding_window is None or ((lt if lt is not None else _lt_of(c, i)) == "sliding_attention")
        ),
        nonstandard="RoPE only if sliding_window is None or layer is sliding_attention (full layers NoPE in "
        "hybrid configs)",
        source="exaone4.Exaone4Attention.forward",
    ),
    "exaone_moe": dict(
        rope_on=lambda c, i, lt: (
            c.sliding_window is None or ((lt if lt is not None else _lt_of(c, i)) == "sliding_attention")
        ),
        nonstandard="as exaone4 (NoPE on full layers when sliding_window set)",
        source="exaone_moe.ExaoneMoeAttention.forward",
    ),
    "exaone4_5": dict(
        rope_on=lambda c, i, lt: (
            c.sliding_window is None or ((lt if lt is not None else _lt_of(c, i)) == "sliding_attention")
        ),
        nonstandard="as exaone4 (NoPE on full layers when sliding_window set)",
        source="exaone4_5.Exaone4_5_Attention.forward",
    ),
    "kolibri1": dict(
        rope_on=lambda c, i, lt: (
            c.sliding_window is None or ((lt if lt is not None else _lt_of(c, i)) == "sliding_attention")
        ),
        nonstandard="as exaone4 (NoPE on full layers when sliding_window set)",
        source="kolibri1.Kolibri1Attention.forward",
    ),
    "afmoe": dict(
        rope_on=lambda c, i, lt: _only_sliding(c, i, lt),
        nonstandard="RoPE only on sliding_attention (local) layers; full layers NoPE",
        source="afmoe.AfmoeAttention.forward",
    ),
    "flint": dict(
        rope_on=lambda c, i, lt: _only_sliding(c, i, lt),
        nonstandard="RoPE only on sliding_attention layers; full layers NoPE",
        source="flint.FlintAttention.forward",
    ),
    "smollm3": dict(
        rope_on=lambda c, i, lt: bool(c.no_rope_layers[i]) if i is not None else True,
        nonstandard="NoPE layers where no_rope_layers[i]==0 (needs layer_idx)",
        source="smollm3.SmolLM3Attention.__init__/forward",
    ),
    "bamba": dict(
        nonstandard="default config has no attention layers (attn_layer_indices=None -> all mamba); "
        "attention layers use partial rotary (partial_rotary_factor 0.5, half layout via cos "
        "width)",
        variants={"attn_layers": {"attn_layer_indices": [1, 3]}},
        source="bamba.BambaConfig (layers_block_type), bamba.apply_rotary_pos_emb",
    ),
    "zamba2": dict(
        rope_on=lambda c, i, lt: bool(c.use_mem_rope),
        nonstandard="RoPE only if use_mem_rope (default False -> no RoPE at all); head_dim is "
        "attention_head_dim = 2*hidden_size/num_attention_heads (attribute_map head_dim)",
        variants={"use_mem_rope": {"use_mem_rope": True}},
        source="zamba2.Zamba2Attention.forward, zamba2.Zamba2Model.forward",
    ),
    "falcon": dict(
        rope_on=lambda c, i, lt: not c.alibi,
        nonstandard="RoPE only when alibi is False (default)",
        source="falcon.FalconAttention.forward",
    ),
    "beam": dict(
        rope_on=lambda c, i, lt: _pr(c).get(lt if lt is not None else _lt_of(c, i)) is not None,
        nonstandard="rope_parameters['full_attention'] is None -> full layers NoPE (with position-"
        "dependent attention_scaling instead); sliding layers rope",
        source="beam.BeamModel.forward, beam.BeamAttention.forward",
    ),
    "lara_mini": dict(
        rope_on=lambda c, i, lt: _only_sliding(c, i, lt),
        nonstandard="position_embeddings passed only to sliding_attention layers (full NoPE)",
        source="lara_mini.LaraMiniModel.forward, lara_mini.LaraMiniAttention.forward",
    ),
    "olmo_hybrid": dict(
        rope_on=lambda c, i, lt: (
            (_pr(c).get("rope_theta") is not None) and ((lt if lt is not None else _lt_of(c, i)) == "full_attention")
        ),
        nonstandard="rotary only if rope_parameters.rope_theta set; only full_attention layers are attention "
        "layers (others linear attention)",
        source="olmo_hybrid.OlmoHybridModel.__init__/forward",
    ),
    "granitemoehybrid": dict(
        rope_on=lambda c, i, lt: c.position_embedding_type == "rope",
        nonstandard="rotary only if position_embedding_type=='rope' (default None -> NoPE); "
        "default config is all-mamba (no attention layers)",
        variants={"rope": {"position_embedding_type": "rope", "layers_block_type": ["mamba", "attention"] * 16}},
        source="granitemoehybrid.GraniteMoeHybridModel.__init__/forward",
    ),
    "muse_glimmer": dict(
        rope_on=lambda c, i, lt: bool(c.layer_rope_theta[i]) if i is not None else True,
        pre_q=lambda c, lt: c.qk_scale_factor,
        nonstandard="layers with layer_rope_theta[i] falsy get no RoPE (needs layer_idx); q "
        "multiplied by qk_scale_factor before rope",
        source="muse_glimmer.MuseGlimmerTextModel.forward, muse_glimmer.MuseGlimmerTextAttention.forward",
    ),
    "muse_spark": dict(
        rope_on=lambda c, i, lt: bool(c.layer_rope_theta[i]) if i is not None else True,
        pre_q=lambda c, lt: c.qk_scale_factor,
        nonstandard="as muse_glimmer",
        source="muse_spark.MuseSparkTextAttention.forward",
    ),
    # ---------------- scalings around rope --------------------------------------------------------
    "falcon_h1": dict(
        pre_k=lambda c, lt: c.key_multiplier,
        nonstandard="k multiplied by key_multiplier before rope",
        source="falcon_h1.FalconH1Attention.forward",
    ),
    "ministral3": dict(
        post_q=_llama4_attn_scale,
        nonstandard="q multiplied after rope by 1+llama_4_scaling_beta*log(1+floor(pos/"
        "original_max_position_embeddings)) (rope_parameters keys)",
        source="ministral3.Ministral3Attention.forward, ministral3.get_llama_4_attn_scale",
    ),
    "esm": dict(
        pre_q=lambda c, lt: (c.hidden_size // c.num_attention_heads) ** -0.5,
        rope_on=lambda c, i, lt: c.position_embedding_type == "rotary",
        nonstandard="RoPE only if position_embedding_type=='rotary' (default 'absolute'); q scaled by "
        "head_size**-0.5 BEFORE rope; rotary uses config.rope_theta (no rope_parameters)",
        variants={"rotary": {"position_embedding_type": "rotary"}},
        source="esm.EsmSelfAttention.forward, esm.EsmRotaryEmbedding",
    ),
    "molmo2": dict(
        rotary_kwargs=lambda c, i: {"scaled": True if i is None else (i in c.rope_scaling_layers)},
        nonstandard="two rotaries: layers listed in config.rope_scaling_layers use the scaled rope "
        "(rope_parameters.rope_type), the others an UNSCALED default rope with the same theta "
        "(Molmo2RotaryEmbedding(config, scaled=False)); default config: all layers scaled and "
        "rope_type default -> identical",
        source="molmo2.Molmo2TextModel.__init__/forward (rope_types), molmo2.Molmo2RotaryEmbedding.__init__",
    ),
    # ---------------- documentation-only notes (behaviour reproduced by the generic path) ---------
    "jetmoe": dict(
        nonstandard="head_dim = kv_channels (attribute_map head_dim->kv_channels; NOT hidden_size/"
        "num_attention_heads); num_attention_heads = num_key_value_heads*num_experts_per_tok; q "
        "comes from the MoA experts (experts.map), k from kv_proj; the attention tiles k "
        "(repeat(1, top_k, 1, 1)) itself; rope standard half layout",
        source="jetmoe.JetMoeAttention.__init__/forward, jetmoe.JetMoeConfig.attribute_map",
    ),
    "dbrx": dict(
        nonstandard="rope_theta is read from top-level rope_parameters only; legacy checkpoints keep "
        "rope_theta in attn_config (attn_config.rope_theta is stored on DbrxAttention but unused "
        "-> default theta 10000 instead of e.g. 500000 unless rope_parameters is set); fused "
        "Wqkv [q|k|v]; default DbrxAttentionConfig has no rope_theta (DbrxAttention() raises) "
        "and clip_qkv=None makes forward raise in torch.clamp",
        source="dbrx.DbrxAttention.__init__/forward, dbrx.DbrxRotaryEmbedding.compute_default_rope_parameters, "
        "dbrx.configuration_dbrx.DbrxConfig/DbrxAttentionConfig",
    ),
    "minimax_m3_vl": dict(
        nonstandard="text config has rotary_dim=64 but it is NOT mapped to "
        "rope_parameters.partial_rotary_factor (unlike minimax_m2) -> default config "
        "rotates the full head_dim=128; text rope is 1-D (vision tower separate); the "
        "lightning indexer applies apply_rotary_pos_emb with cos[..., :index_head_dim]",
        source="minimax_m3_vl.MiniMaxM3VLAttention.forward, minimax_m3_vl.MiniMaxM3VLRotaryEmbedding, "
        "minimax_m3_vl.MiniMaxM3VLIndexer.forward, "
        "minimax_m3_vl.configuration_minimax_m3_vl.MiniMaxM3VLTextConfig",
    ),
    "minimax_m2": dict(
        nonstandard="legacy rotary_dim converted to partial_rotary_factor=rotary_dim/head_dim in the "
        "config __post_init__ (half layout, first rotary_dim features via cos width)",
        source="minimax_m2.configuration_minimax_m2.MiniMaxM2Config.__post_init__, minimax_m2.apply_rotary_pos_emb",
    ),
    "glm4_moe": dict(
        nonstandard="HALF layout (unlike glm/glm4 interleaved) on the first head_dim*partial_rotary_factor "
        "features (apply slices by cos width); default config has no head_dim -> "
        "4096//96=42 and int(42*0.5)=21 -> 11 frequencies -> 22 rotated features (odd "
        "rotary dim rounds UP to cos width 2*ceil(21/2))",
        source="glm4_moe.apply_rotary_pos_emb, glm4_moe.Glm4MoeRotaryEmbedding.compute_default_rope_parameters",
    ),
    "gpt_neox": dict(
        nonstandard="partial rotary (rotary_pct -> partial_rotary_factor 0.25) via cos width, half layout",
        source="gpt_neox.apply_rotary_pos_emb, gpt_neox.GPTNeoXAttention.forward",
    ),
    "dory": dict(
        nonstandard="after rope q is multiplied by a LEARNED per-feature scale (sqk*sqk_scale)**2 "
        "(= head_dim at init) -- weights, not reproduced by rotate()",
        source="dory.DoryAttention.forward/__init__",
    ),
    "timesfm2_5": dict(
        nonstandard="q/k RMS-normed AFTER rope, then q scaled by LEARNED softplus(scaling)*log2(e)/"
        "sqrt(head_dim) (weights, not reproduced by rotate())",
        source="timesfm2_5.TimesFm2_5Attention.forward",
    ),
    "hunyuan_v1_dense": dict(
        nonstandard="q/k layernormed AFTER rope (query_layernorm/key_layernorm); rope standard",
        source="hunyuan_v1_dense.HunYuanDenseV1Attention.forward",
    ),
    "hunyuan_v1_moe": dict(
        nonstandard="q/k layernormed AFTER rope; rope standard", source="hunyuan_v1_moe.HunYuanMoEV1Attention.forward"
    ),
    "modernbert": dict(
        nonstandard="per-layer-type rope: full_attention (global) and sliding_attention (local) "
        "rope_parameters with different rope_theta; fused Wqkv",
        source="modernbert.ModernBertAttention.forward, modernbert.ModernBertRotaryEmbedding",
    ),
    "hy_v4_vl": dict(
        nonstandard="MULTI-AXIS (Qwen3-VL style interleaved mrope sections, 3 axes) on an MLA attention "
        "(q/k split [nope|rope], rope part last) with an ernie-style interleaved apply "
        "(cos[..., :D/2].repeat_interleave(2) + interleaved rotate_half)",
        source="hy_v4_vl.HYV4VLRotaryEmbedding, hy_v4_vl.apply_rotary_pos_emb, hy_v4_vl.HYV4VLAttention.forward",
    ),
    "glm_ocr": dict(
        nonstandard="MULTI-AXIS mrope (sections [8,12,12]) whose recomposition repeat_interleaves "
        "(interleaved pairs), applied with rotate_half_llm (interleaved) on the first "
        "head_dim*partial_rotary_factor features",
        source="glm_ocr.GlmOcrTextRotaryEmbedding, glm_ocr.apply_rotary_pos_emb, glm_ocr.rotate_half_llm",
    ),
    "glm4v": dict(
        nonstandard="MULTI-AXIS mrope, interleaved (repeat_interleave recomposition + rotate_half_llm), partial",
        source="glm4v.Glm4vTextRotaryEmbedding, glm4v.apply_rotary_pos_emb",
    ),
    "glm4v_moe": dict(
        nonstandard="MULTI-AXIS mrope with cat (half) recomposition and half-layout partial apply "
        "(unlike glm4v which is interleaved)",
        source="glm4v_moe.Glm4vMoeTextRotaryEmbedding, glm4v_moe.apply_rotary_pos_emb",
    ),
    "qwen3_omni_moe": dict(
        nonstandard="three rotaries: thinker text (Qwen3OmniMoeThinkerTextRotaryEmbedding, "
        "interleaved-mrope, multi-axis), talker (Qwen3OmniMoeTalkerRotaryEmbedding "
        "subclasses the thinker one -> multi-axis), code predictor / code2wav "
        "(Qwen3OmniMoeRotaryEmbedding, plain 1-D half layout)",
        source="qwen3_omni_moe.Qwen3OmniMoeThinkerTextRotaryEmbedding, "
        "qwen3_omni_moe.Qwen3OmniMoeTalkerRotaryEmbedding, "
        "qwen3_omni_moe.Qwen3OmniMoeRotaryEmbedding, "
        "qwen3_omni_moe.Qwen3OmniMoeTalkerCodePredictorAttention.forward",
    ),
    "ernie4_5_vl_moe": dict(
        nonstandard="MULTI-AXIS: inv_freq re-ordered (h/w interleaved) at init, recomposition "
        "stacks h/w then t and repeat_interleaves; interleaved rotate_half_text",
        source="ernie4_5_vl_moe.Ernie4_5_VLMoeTextRotaryEmbedding, ernie4_5_vl_moe.apply_rotary_pos_emb",
    ),
    # ---------------- multi-axis / 2-D / non-text -------------------------------------------------
    "eomt_dinov3": dict(
        multi_axis="2-D patch-centre RoPE (DINOv3), prefix tokens skipped",
        source="eomt_dinov3.EomtDinov3RotaryEmbedding.forward, eomt_dinov3.apply_rotary_pos_emb",
    ),
    "efficientloftr": dict(
        multi_axis="2-D (h,w) feature-map RoPE computed from feature shape",
        source="efficientloftr.EfficientLoFTRRotaryEmbedding.forward, efficientloftr.EfficientLoFTRAttention.forward",
    ),
    "sam3": dict(multi_axis="axial 2-D ViT RoPE", source="sam3.Sam3ViTRotaryEmbedding"),
    "cohere_compass": dict(
        multi_axis="mrope keyed by layer type (t/h/w sections); default text config has empty "
        "rope_parameters so the rotary cannot even be built from it",
        source="cohere_compass.CohereCompassRotaryEmbedding, cohere_compass.CohereCompassAttention.forward",
    ),
    "mlcd": dict(multi_axis="axial 2-D vision RoPE", source="mlcd.MLCDRotaryEmbedding"),
    "esmfold2": dict(multi_axis="3-D atom-coordinate RoPE (ref_pos, uid)", source="esmfold2.EsmFold2RotaryEmbedding"),
    "neomme": dict(
        multi_axis="2-axis (row/col) RoPE, position_ids expanded to 2 axes",
        source="neomme.NeoMMERotaryEmbedding.forward",
    ),
    "musicflamingo": dict(
        skip="audio time RoPE driven by timestamps (no position_ids interface)",
        source="musicflamingo.MusicFlamingoRotaryEmbedding.forward, musicflamingo.apply_rotary_time_emb",
    ),
}

# per (module, text-config class) overrides merged over SPECS[module]
SPEC_BY_CONFIG: dict = {
    ("dots3_note", "Dots3NoteAudioConfig"): dict(
        apply="qk",
        slice=None,
        head_dim=None,
        attention="Dots3NoteAudioAttention",
        nonstandard="audio encoder: GLM-style partial rotary (first head_dim*partial_rotary_factor features, half "
        "layout via cos width)",
        source="dots3_note.Dots3NoteAudioAttention.forward, dots3_note.apply_rotary_pos_emb",
    ),
    ("qwen2_5_omni", "Qwen2_5OmniDiTConfig"): dict(
        apply="dit_first_head",
        attention="DiTAttention",
        nonstandard="Qwen2.5-Omni token2wav DiT: RoPE applied to the FIRST HEAD ONLY (query[:, :1]); q/k of that "
        "head are de-interleaved (x[...,0::2] ++ x[...,1::2]) before a half-layout rotation and written "
        "back in de-interleaved order (interleaved-in-half-out); other heads untouched",
        source="qwen2_5_omni.DiTAttention.forward, qwen2_5_omni.deinterleave_head_dim",
    ),
}

# modules whose text rotary is multi-axis (mrope family): detected automatically by _is_multi_axis, listed here
# only for documentation.
_NON_ATTENTION_LT = re.compile(r"linear|conv|mamba|ssm|recurrent")
_MROPE_NOTE = "mrope (3-D t/h/w sections over the frequency axis)"


# ----------------------------------------------------------------------------------------------
# rotary / attention class selection
# ----------------------------------------------------------------------------------------------
def _config_ann(cls) -> str | None:
    try:
        p = inspect.signature(cls.__init__).parameters
    except Exception:
        return None
    for name in ("config", "atom_config"):
        if name in p:
            a = p[name].annotation
            if a is inspect._empty:
                return None
            return a if isinstance(a, str) else getattr(a, "__name__", str(a))
    return None


_TEXT_CONFIG_OVERRIDES = {
    # model_type -> attribute path from the top-level config to the config the rope'd transformer uses
    "blt": ["global_config"],
}

_ATTENTION_OVERRIDES = {
    ("qwen3_omni_moe", "Qwen3OmniMoeTalkerCodePredictorConfig"): "Qwen3OmniMoeTalkerCodePredictorAttention",
    ("qwen2_5_omni", "Qwen2_5OmniDiTConfig"): "DiTAttention",
    ("deepseek_ocr2", "DeepseekOcr2VisionEncoderConfig"): "DeepseekOcr2VisionAttention",
}

_ROTARY_OVERRIDES = {
    # (module, text config class) -> rotary class
    ("qwen3_omni_moe", "Qwen3OmniMoeTalkerCodePredictorConfig"): "Qwen3OmniMoeRotaryEmbedding",
    ("qwen3_omni_moe", "Qwen3OmniMoeTalkerTextConfig"): "Qwen3OmniMoeTalkerRotaryEmbedding",
    ("qwen3_omni_moe", "Qwen3OmniMoeTextConfig"): "Qwen3OmniMoeThinkerTextRotaryEmbedding",
    ("qwen2_5_omni", "Qwen2_5OmniDiTConfig"): "Qwen2_5OmniDiTRotaryEmbedding",
    ("evolla", "EvollaConfig"): "EvollaRotaryEmbedding",
    ("dots3_note", "Dots3NoteAudioConfig"): "Dots3NoteAudioRotaryEmbedding",
    ("deepseek_ocr2", "DeepseekOcr2VisionEncoderConfig"): "DeepseekOcr2VisionRotaryEmbedding",
    ("dots3_note", "Dots3NoteTextConfig"): "Dots3NoteTextRotaryEmbedding",
}


def _choose_rotary(mod_obj, mod: str, tc) -> str:
    names = _text_rotary_class_names(mod)
    key = (mod, type(tc).__name__)
    if key in _ROTARY_OVERRIDES:
        return _ROTARY_OVERRIDES[key]
    if len(names) == 1:
        return names[0]
    tcn = type(tc).__name__
    ann = [n for n in names if _config_ann(getattr(mod_obj, n)) == tcn]
    if len(ann) == 1:
        return ann[0]
    text = [n for n in names if "Text" in n]
    if len(text) == 1:
        return text[0]
    return sorted(names, key=len)[0]


_APPLY_CALL_RE = re.compile(
    r"\b(apply_rotary_pos_emb\w*|_apply_rotary_emb|apply_rotary_emb|apply_multidimensional_rope"
    r"|apply_rotary_time_emb)\s*\("
)


def _attention_candidates(mod_obj):
    out = []
    for n, c in vars(mod_obj).items():
        if not (inspect.isclass(c) and issubclass(c, torch.nn.Module) and c.__module__ == mod_obj.__name__):
            continue
        if "Attention" not in n:
            continue
        try:
            src = inspect.getsource(c.forward)
        except Exception:
            continue
        if _APPLY_CALL_RE.search(src):
            out.append(n)
    return out


def _choose_attention(mod_obj, mod: str, tc, spec) -> str | None:
    if spec.get("attention"):
        return spec["attention"]
    if (mod, type(tc).__name__) in _ATTENTION_OVERRIDES:
        return _ATTENTION_OVERRIDES[(mod, type(tc).__name__)]
    cands = [n for n in _attention_candidates(mod_obj) if not re.search(r"Vision|DiT|Audio(?!Token)", n)]
    if not cands:
        cands = _attention_candidates(mod_obj)
    if len(cands) == 1:
        return cands[0]
    tcn = type(tc).__name__
    ann = [n for n in cands if _config_ann(getattr(mod_obj, n)) == tcn]
    if len(ann) == 1:
        return ann[0]
    text = [n for n in cands if "Text" in n and "Cross" not in n]
    if len(text) >= 1:
        return sorted(text, key=len)[0]
    return sorted(cands, key=len)[0] if cands else None


def _attention_apply_calls(mod_obj, attn_name) -> list[str]:
    if not attn_name:
        return []
    try:
        src = inspect.getsource(getattr(mod_obj, attn_name).forward)
    except Exception:
        return []
    return sorted(set(m.group(1) for m in _APPLY_CALL_RE.finditer(src)))


def _is_multi_axis(rot_cls, tc) -> str | None:
    src = ""
    for c in rot_cls.__mro__:
        if c.__module__.startswith("transformers."):
            try:
                src += inspect.getsource(c)
            except Exception:
                pass
    rp = _safe_get(tc, "rope_parameters", None) or {}
    if "mrope_section" in src or (isinstance(rp, dict) and "mrope_section" in rp):
        return _MROPE_NOTE
    if re.search(r"position_ids\.expand\(\s*(2|3|len)", src):
        return "multi-axis position_ids (expanded to several axes)"
    if "axial" in src:
        return "axial RoPE"
    return None


# ----------------------------------------------------------------------------------------------
# the Truth object
# ----------------------------------------------------------------------------------------------
@dataclass
class Truth:
    model_type: str
    module: str
    status: str = "ok"
    multi_axis: bool = False
    config_class: str | None = None
    text_config_class: str | None = None
    text_config_path: list | None = None
    config_dict: dict | None = None
    text_config_dict: dict | None = None
    rotary_class: str | None = None
    attention_class: str | None = None
    apply_kind: str | None = None
    apply_fn: str | None = None
    apply_calls_in_attention: list = field(default_factory=list)
    layer_types: list | None = None  # per layer (config.layer_types) or None
    rope_layer_types: list = field(default_factory=lambda: [None])  # distinct values to pass as layer_type
    nonstandard: str | None = None
    source: str | None = None
    variant: str | None = None
    variants: dict = field(default_factory=dict)
    # internals
    _cfg: Any = None
    _tc: Any = None
    _mod: Any = None
    _spec: dict = field(default_factory=dict)
    _rot_cls: Any = None
    _rot_cache: dict = field(default_factory=dict)
    _keyed: bool = False

    # ----- metadata -----------------------------------------------------------------------------
    def head_dim_for(self, layer_type=None, layer_idx=None) -> int:
        f = self._spec.get("head_dim")
        if f is not None:
            return int(f(self._tc, layer_type))
        if layer_idx is not None and _hetero(self._tc):
            return _default_head_dim(self._tc, None, layer_idx)
        return _default_head_dim(self._tc, layer_type)

    @property
    def head_dim(self):
        hds = {lt: self.head_dim_for(lt) for lt in self.rope_layer_types}
        vals = set(hds.values())
        return vals.pop() if len(vals) == 1 else hds

    def _rule(self, i, lt) -> bool:
        # non-attention layers (linear attention / mamba / conv / recurrent blocks) have no rope
        if lt is None and i is not None:
            lt_i = _lt_of(self._tc, i)
            if lt_i is not None and _NON_ATTENTION_LT.search(str(lt_i)):
                return False
        if lt is not None and _NON_ATTENTION_LT.search(str(lt)):
            return False
        # layer types whose rope parameters are missing / None get no rotary at all (the model passes None or
        # the layer is not an attention layer, e.g. lfm3 'conv', beam 'full_attention')
        if self._keyed and lt is not None:
            rp = _safe_get(self._tc, "rope_parameters", None) or {}
            key = self._rope_key(lt)
            if not isinstance(rp.get(key), dict):
                return False
        f = self._spec.get("rope_on")
        return True if f is None else bool(f(self._tc, i, lt))

    def is_attention_layer(self, layer_idx) -> bool:
        lt = _lt_of(self._tc, layer_idx)
        return not (lt is not None and _NON_ATTENTION_LT.search(str(lt)))

    def attention_layers(self) -> list | None:
        n = _safe_get(self._tc, "num_hidden_layers", None)
        if not isinstance(n, int):
            return None
        return [i for i in range(n) if self.is_attention_layer(i)]

    def rope_applied(self, layer_type=None, layer_idx=None) -> bool:
        """Whether the attention applies RoPE on that layer (per-layer NoPE rules).

        With only ``layer_type`` (or nothing) given, the rule is evaluated on every *attention* layer of that
        type and must agree (else ValueError: pass ``layer_idx``)."""
        if layer_idx is not None:
            return self._rule(layer_idx, layer_type if layer_type is not None else _lt_of(self._tc, layer_idx))
        att = self.attention_layers()
        if not att:
            return self._rule(None, layer_type)
        lts = _layer_types_list(self._tc)
        vals = {
            self._rule(i, _lt_of(self._tc, i)) for i in att if layer_type is None or lts is None or lts[i] == layer_type
        }
        if not vals:
            return self._rule(None, layer_type)
        if len(vals) != 1:
            raise ValueError(
                f"{self.model_type}: RoPE application varies across layers"
                f"{' of type ' + str(layer_type) if layer_type else ''}; pass layer_idx"
            )
        return vals.pop()

    def rope_layers(self) -> list | None:
        """Per layer index: does the layer apply RoPE (default config; non-attention layers -> False)."""
        n = _safe_get(self._tc, "num_hidden_layers", None)
        if not isinstance(n, int):
            return None
        return [self._rule(i, _lt_of(self._tc, i)) for i in range(n)]

    def layer_groups(self) -> list:
        """Representative (layer_type, layer_idx) pairs (attention layers only) covering every distinct rope
        behaviour (layer type, NoPE rule, rotary variant)."""
        att = self.attention_layers()
        if not att:
            return [(lt, None) for lt in self.rope_layer_types]
        rk = self._spec.get("rotary_kwargs")
        seen, out = set(), []
        for i in att:
            lt = _lt_of(self._tc, i) if self.rope_layer_types != [None] else None
            if lt is not None and lt not in self.rope_layer_types:
                continue  # a layer type without attention (Dory's "mlp" layers)
            key = (lt, self._rule(i, _lt_of(self._tc, i)), json.dumps(rk(self._tc, i), sort_keys=True) if rk else None)
            if key not in seen:
                seen.add(key)
                out.append((lt, i))
        return out

    def rope_parameters(self, layer_type=None):
        return _jsonable(_pr(self._tc, self._rope_key(layer_type)))

    def _rope_key(self, layer_type):
        f = self._spec.get("rope_key")
        return f(self._tc, layer_type) if f else layer_type

    # ----- cos/sin ------------------------------------------------------------------------------
    def _rotary(self, layer_idx=None):
        f = self._spec.get("rotary_kwargs")
        kw = f(self._tc, layer_idx) if f else {}
        key = json.dumps(kw, sort_keys=True)
        if key not in self._rot_cache:
            cls = self._rot_cls
            try:
                self._rot_cache[key] = cls(config=self._tc, **kw)
            except TypeError:
                self._rot_cache[key] = cls(self._tc, **kw)
        return copy.deepcopy(self._rot_cache[key])

    def cos_sin(self, x, position_ids, layer_type=None, layer_idx=None):
        rot = self._rotary(layer_idx)
        key = self._rope_key(layer_type)
        params = inspect.signature(type(rot).forward).parameters
        with torch.no_grad():
            if "layer_type" in params and key is not None:
                return rot(x, position_ids, key)
            return rot(x, position_ids)

    # ----- rotate ---------------------------------------------------------------------------------
    def rotate(self, q, k, position_ids, layer_type=None, layer_idx=None, scaling=True):
        if self.status != "ok" and not self.status.startswith(
            ("skipped: no RoPE with default", "skipped: no attention layers")
        ):
            raise RuntimeError(f"{self.model_type}: {self.status}")
        if layer_type is None and layer_idx is not None and self.rope_layer_types != [None]:
            layer_type = _lt_of(self._tc, layer_idx)
        if layer_type is None and self.rope_layer_types != [None]:
            raise ValueError(f"{self.model_type}: layer_type required, one of {self.rope_layer_types}")
        spec = self._spec
        D = self.head_dim_for(layer_type, layer_idx)
        assert q.shape[-1] == D and k.shape[-1] == D, (q.shape, k.shape, D)
        q = q.float()
        k = k.float()
        if scaling and spec.get("pre_q"):
            q = q * spec["pre_q"](self._tc, layer_type)
        if scaling and spec.get("pre_k"):
            k = k * spec["pre_k"](self._tc, layer_type)
        if not self.rope_applied(layer_type, layer_idx):
            return q.clone(), k.clone()
        sl = spec.get("slice")
        if sl is not None:
            n = int(sl[1](self._tc, layer_type))
            if sl[0] == "first":
                q_r, q_p, k_r, k_p = q[..., :n], q[..., n:], k[..., :n], k[..., n:]
            else:
                q_p, q_r, k_p, k_r = q[..., : D - n], q[..., D - n :], k[..., : D - n], k[..., D - n :]
        else:
            q_r, k_r = q, k
        q_r, k_r = self._apply(q_r, k_r, position_ids, layer_type, layer_idx)
        if sl is not None:
            if sl[0] == "first":
                q, k = torch.cat([q_r, q_p], -1), torch.cat([k_r, k_p], -1)
            else:
                q, k = torch.cat([q_p, q_r], -1), torch.cat([k_p, k_r], -1)
        else:
            q, k = q_r, k_r
        if scaling and spec.get("post_q"):
            f = spec["post_q"](self._tc, position_ids)
            if f is not None:
                q = q * f.to(q.dtype)
        if scaling and spec.get("post_qk"):
            s = spec["post_qk"](self._tc)
            q, k = q * s, k * s
        return q, k

    def _apply(self, q, k, position_ids, layer_type, layer_idx=None):
        m = self._mod
        kind = self.apply_kind
        with torch.no_grad():
            if kind == "qk":
                cos, sin = self.cos_sin(q, position_ids, layer_type, layer_idx)
                return getattr(m, self.apply_fn)(q, k, cos, sin)
            if kind == "interleave":
                cos, sin = self.cos_sin(q, position_ids, layer_type, layer_idx)
                return m.apply_rotary_pos_emb_interleave(q, k, cos, sin)
            if kind == "qk_bshd":
                cos, sin = self.cos_sin(q, position_ids, layer_type, layer_idx)
                q2, k2 = getattr(m, self.apply_fn)(q.transpose(1, 2), k.transpose(1, 2), cos, sin, unsqueeze_dim=2)
                return q2.transpose(1, 2), k2.transpose(1, 2)
            if kind == "x_bshd":
                cos, sin = self.cos_sin(q, position_ids, layer_type, layer_idx)
                f = getattr(m, self.apply_fn)
                return (
                    f(q.transpose(1, 2), cos, sin, unsqueeze_dim=2).transpose(1, 2),
                    f(k.transpose(1, 2), cos, sin, unsqueeze_dim=2).transpose(1, 2),
                )
            if kind == "x_bhsd":
                cos, sin = self.cos_sin(q, position_ids, layer_type, layer_idx)
                f = getattr(m, self.apply_fn)
                return f(q, cos, sin), f(k, cos, sin)
            if kind == "complex_bshd":
                freqs = self.cos_sin(q, position_ids, layer_type, layer_idx)
                q2, k2 = m.apply_rotary_emb(q.transpose(1, 2), k.transpose(1, 2), freqs)
                return q2.transpose(1, 2), k2.transpose(1, 2)
            if kind == "complex_bhsd":
                freqs = self.cos_sin(q, position_ids, layer_type, layer_idx)
                return m.apply_rotary_emb(q, k, freqs)
            if kind == "head_index":
                if q.shape[1] != k.shape[1]:
                    raise ValueError("head_index rope needs as many k heads as q heads")
                hpos = torch.arange(q.shape[1]).unsqueeze(0).expand(q.shape[0], -1)
                cos, sin = self.cos_sin(q, hpos, layer_type, layer_idx)
                return getattr(m, self.apply_fn)(q, k, cos, sin, unsqueeze_dim=2)
            if kind == "dit_first_head":
                cos, sin = self.cos_sin(q, position_ids, layer_type, layer_idx)
                q, k = q.clone(), k.clone()
                dq, dk = m.deinterleave_head_dim(q[:, :1]), m.deinterleave_head_dim(k[:, :1])
                q[:, :1], k[:, :1] = getattr(m, self.apply_fn)(dq, dk, cos, sin)
                return q, k
            if kind == "gptj":
                sin, cos = self.cos_sin(q, position_ids, layer_type, layer_idx)
                f = m.apply_rotary_pos_emb
                return (f(q.transpose(1, 2), sin, cos).transpose(1, 2), f(k.transpose(1, 2), sin, cos).transpose(1, 2))
        raise NotImplementedError(kind)

    # ----- summary --------------------------------------------------------------------------------
    def summary(self) -> dict:
        return dict(
            model_type=self.model_type,
            module=self.module,
            status=self.status,
            multi_axis=self.multi_axis,
            variant=self.variant,
            config_class=self.config_class,
            text_config_class=self.text_config_class,
            text_config_path=self.text_config_path,
            rotary_class=self.rotary_class,
            attention_class=self.attention_class,
            apply_kind=self.apply_kind,
            apply_fn=self.apply_fn,
            apply_calls_in_attention=self.apply_calls_in_attention,
            nonstandard=self.nonstandard,
            source=self.source,
        )


def _resolve_apply(spec, tc, mod_obj, calls):
    kind = spec.get("apply", "qk")
    if kind == "mla_flag":
        kind = "interleave" if getattr(tc, "rope_interleave", True) else "qk"
    fn = spec.get("apply_fn")
    if fn is None:
        fn = {
            "qk": "apply_rotary_pos_emb",
            "qk_bshd": "apply_rotary_pos_emb",
            "x_bshd": "apply_rotary_pos_emb",
            "x_bhsd": "apply_rotary_pos_emb",
            "interleave": "apply_rotary_pos_emb_interleave",
            "gptj": "apply_rotary_pos_emb",
            "complex_bshd": "apply_rotary_emb",
            "complex_bhsd": "apply_rotary_emb",
            "dit_first_head": "apply_rotary_pos_emb",
            "head_index": "apply_rotary_pos_emb",
        }[kind]
    return kind, fn


def build(model_type: str, variant: str | None = None, overrides: dict | None = None) -> Truth:
    """Build the ground truth for one model type (optionally a named variant / explicit overrides)."""
    mod = _module_of(model_type)
    spec = SPECS.get(mod, {})
    t = Truth(
        model_type=model_type,
        module=mod,
        _spec=spec,
        variant=variant,
        nonstandard=spec.get("nonstandard"),
        source=spec.get("source"),
        variants={k: v for k, v in (spec.get("variants") or {}).items()},
    )
    ov = dict(overrides or {})
    if variant is not None:
        ov.update(spec["variants"][variant])
    try:
        cfg_cls = CONFIG_MAPPING[model_type]
        cfg = cfg_cls(**ov) if ov else cfg_cls()
    except Exception as e:  # pragma: no cover
        t.status = f"error: config {type(e).__name__}: {e}"[:300]
        return t
    t._cfg = cfg
    t.config_class = type(cfg).__name__
    try:
        t.config_dict = _jsonable(cfg.to_dict())
    except Exception as e:
        t.config_dict = {"_error": repr(e)}
    if model_type in _TEXT_CONFIG_OVERRIDES:
        tc = cfg
        for a in _TEXT_CONFIG_OVERRIDES[model_type]:
            tc = getattr(tc, a)
    else:
        try:
            tc = cfg.get_text_config(decoder=True)
        except Exception:
            tc = cfg
    if ov and tc is not cfg:
        for k_, v_ in ov.items():
            setattr(tc, k_, v_)
    t._tc = tc
    t.text_config_class = type(tc).__name__
    if (mod, type(tc).__name__) in SPEC_BY_CONFIG:
        spec = {**spec, **SPEC_BY_CONFIG[(mod, type(tc).__name__)]}
        t._spec = spec
        t.nonstandard, t.source = spec.get("nonstandard"), spec.get("source")
    t.text_config_path = _find_path(cfg, tc)
    try:
        t.text_config_dict = _jsonable(tc.to_dict())
    except Exception:
        t.text_config_dict = None
    t.layer_types = _layer_types_list(tc)
    if spec.get("skip"):
        t.status = "skipped: " + spec["skip"]
        return t
    tc_mod = type(tc).__module__.split(".")
    if "models" in tc_mod and tc_mod[tc_mod.index("models") + 1] != mod:
        t.status = (
            f"skipped: text config {type(tc).__name__} belongs to module "
            f"{tc_mod[tc_mod.index('models') + 1]} (covered by that model type)"
        )
        return t
    try:
        mod_obj = _load(mod)
    except Exception as e:
        t.status = f"error: import {type(e).__name__}: {e}"[:300]
        return t
    t._mod = mod_obj
    rot_name = spec.get("rotary") or _choose_rotary(mod_obj, mod, tc)
    t.rotary_class = rot_name
    t._rot_cls = getattr(mod_obj, rot_name)
    t.attention_class = _choose_attention(mod_obj, mod, tc, spec)
    t.apply_calls_in_attention = _attention_apply_calls(mod_obj, t.attention_class)
    if spec.get("multi_axis"):
        t.multi_axis = True
        t.status = "skipped: multi_axis (" + spec["multi_axis"] + ")"
        return t
    try:
        t._rotary()
    except Exception as e:
        t.status = (
            f"skipped: no text RoPE for {type(tc).__name__} ({rot_name} cannot be built from it: "
            f"{type(e).__name__}: {e})"
        )[:300]
        return t
    ma = _is_multi_axis(t._rot_cls, tc)
    if ma:
        t.multi_axis = True
        t.status = "skipped: multi_axis (" + ma + ")"
        if not t.nonstandard:
            t.nonstandard = ma
        return t
    # distinct layer types that matter for rope
    lts = t.layer_types
    rp = _safe_get(tc, "rope_parameters", None)
    fwd_params = inspect.signature(t._rot_cls.forward).parameters
    if (
        "layer_type" in fwd_params
        and isinstance(rp, dict)
        and rp
        and all(isinstance(v, dict) or v is None for v in rp.values())
    ):
        t._keyed = True
        if spec.get("rope_key"):
            t.rope_layer_types = sorted(set(lts)) if lts else sorted(rp)
        else:
            t.rope_layer_types = sorted(set(lts)) if lts else sorted(k for k, v in rp.items())
    elif spec.get("rope_on") is not None and lts and len(set(lts)) > 1:
        t.rope_layer_types = sorted(set(lts))
    else:
        t.rope_layer_types = [None]
    t.apply_kind, t.apply_fn = _resolve_apply(spec, tc, mod_obj, t.apply_calls_in_attention)
    rl = t.rope_layers()
    if rl is not None:
        any_rope = any(rl)
    else:
        any_rope = any(t.rope_applied(lt) for lt in t.rope_layer_types)
    if t.attention_layers() == []:
        t.status = "skipped: no attention layers in default config" + (
            f" (variants: {sorted(t.variants)})" if t.variants else ""
        )
    elif not any_rope:
        t.status = "skipped: no RoPE with default config" + (f" (variants: {sorted(t.variants)})" if t.variants else "")
    return t
