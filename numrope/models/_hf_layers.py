"""Where a Hugging Face config keeps its language model, and which of its layers have RoPE.

Private helpers of :mod:`numrope.models.hf`; the rules per model type are in
:mod:`numrope.models.families`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from numrope.models.families import MODEL_DEFAULTS, Family, family

#: Keys whose presence at the top level says that a config describes a language model itself
#: (transformers 4.x multimodal configs sometimes repeat a few of them next to ``text_config``).
_TEXT_KEYS = (
    "rope_theta",
    "rope_parameters",
    "rope_scaling",
    "head_dim",
    "hidden_size",
    "num_attention_heads",
    "rotary_emb_base",
    "kv_channels",
    "qk_rope_head_dim",
)
#: Sub-configs transformers' ``get_text_config(decoder=True)`` looks in, in its order, then the
#: language model of the omni models' thinker.
_TEXT_PARTS = ("decoder", "generator", "text_config", "thinker_config")
#: Layer types that are no attention layers (and so have no RoPE).
_NOT_ATTENTION = re.compile(r"linear|conv|mamba|ssm|recurrent")


def text_config(config: Mapping, part: str = "text") -> tuple[dict, Family]:
    """(the language model's keys, its family): ``config`` itself or the sub-config that holds it.

    A ``model_type`` the sub-config lacks is its parent's (``"<parent>_text"`` where that is a known
    type); the key ``"__inherited_model_type__"`` is then set.

    ``part`` is ``"text"`` (the language model, as ``get_text_config(decoder=True)`` finds it) or
    the key of a sub-config (``"encoder_config"``), dotted for nested ones (``"thinker_config.text_config"``).
    """
    parent_type = config.get("model_type")
    if part != "text":
        for key in part.split("."):
            sub = config.get(key)
            if not isinstance(sub, Mapping):
                have = sorted(k for k, v in config.items() if isinstance(v, Mapping))
                raise ValueError(
                    f"part must be 'text', 'vision' or the key of a sub-config: the config has no sub-config {key!r} "
                    f"for part={part!r} (it has {have})"
                )
            parent_type, config = config.get("model_type", parent_type), sub
    else:
        for _ in range(3):
            path = family(config.get("model_type")).text_part
            if path:
                for key in path:
                    parent_type, config = config.get("model_type", parent_type), config[key]
                continue
            hop = next((k for k in _TEXT_PARTS if isinstance(config.get(k), Mapping)), None)
            if hop is None or (hop == "text_config" and _has_text_keys(config) and not _has_text_keys(config[hop])):
                break
            parent_type, config = config.get("model_type", parent_type), config[hop]
    out = dict(config)
    if not out.get("model_type") and isinstance(parent_type, str):
        out["model_type"] = parent_type + "_text" if parent_type + "_text" in MODEL_DEFAULTS else parent_type
        out["__inherited_model_type__"] = True
    fam = family(out.get("model_type"))
    for alias, key in fam.aliases.items():
        if out.get(key) is None and out.get(alias) is not None:
            out[key] = out[alias]
    for key, value in MODEL_DEFAULTS.get(out.get("model_type"), {}).items():
        if out.get(key) is None:
            out[key] = value
    return out, fam


def _has_text_keys(config) -> bool:
    return any(config.get(k) is not None for k in _TEXT_KEYS)


def n_layers(config) -> int | None:
    n = config.get("num_hidden_layers")
    return n if isinstance(n, int) and not isinstance(n, bool) and n >= 0 else None


def layer_types(config) -> list | None:
    """``layer_types`` (one per layer; Zamba2's ``layers_block_type``), or None where the config has none."""
    for key in ("layer_types", "layers_block_type"):
        types = config.get(key)
        if isinstance(types, (list, tuple)) and types:
            if config.get("model_type") == "dory" and "mlp" in types:
                # Dory's config.json lists (attention, mlp) per layer (DoryConfig.__post_init__)
                return list(types[::2])
            return list(types)
    return None


def _per_layer(config, key, i):
    """``config[key][i]`` for the per-layer lists, checked."""
    values = config.get(key)
    if not isinstance(values, (list, tuple)):
        raise ValueError(f"{key} must be a list with one entry per layer, got {values!r}")
    if not 0 <= i < len(values):
        raise ValueError(f"{key} has {len(values)} entries, none for layer {i}")
    return values[i]


def _no_rope_layers(config):
    values = config.get("no_rope_layers")
    if values:
        return values
    n, interval = n_layers(config), config.get("no_rope_layer_interval") or 4
    if n is None:
        raise ValueError("no_rope_layers is missing and num_hidden_layers is not there to derive it")
    return [int((i + 1) % interval != 0) for i in range(n)]  # the config classes' default


def model_has_rope(config, fam: Family) -> str | None:
    """None, or why no layer of the model has RoPE (the key and its value)."""
    rule = fam.nope
    if rule == "alibi" and config.get("alibi"):
        return "alibi is true: Falcon uses ALiBi instead of RoPE"
    if rule == "esm" and config.get("position_embedding_type", "absolute") != "rotary":
        return f"position_embedding_type is {config.get('position_embedding_type', 'absolute')!r}, not 'rotary'"
    if rule == "zamba2" and not config.get("use_mem_rope"):
        return "use_mem_rope is false: Zamba2's attention has no RoPE"
    if rule == "granitemoehybrid" and config.get("position_embedding_type") != "rope":
        return f"position_embedding_type is {config.get('position_embedding_type')!r}, not 'rope'"
    if rule == "olmo_hybrid":
        params = config.get("rope_parameters") or {}
        if (params.get("rope_theta") if isinstance(params, Mapping) else None) is None:
            return "rope_parameters has no rope_theta: OLMo-Hybrid's attention then has no RoPE"
    if rule == "bamba" and not config.get("attn_layer_indices"):
        return "attn_layer_indices is empty: every layer is a Mamba layer"
    return None


def layer_type_of(config, i):
    types = layer_types(config)
    if types is None:
        return None
    if not 0 <= i < len(types):
        raise ValueError(f"layer {i} is not a layer of this config: it has {len(types)} (layer_types)")
    return types[i]


def rope_on(config, fam: Family, i: int) -> bool:
    """Whether layer ``i`` applies RoPE (the model as a whole having it)."""
    lt = layer_type_of(config, i)
    rule = fam.nope
    if rule == "bamba":
        return i in (config.get("attn_layer_indices") or ())
    if lt is not None and _NOT_ATTENTION.search(str(lt)):
        return False
    if rule == "zamba2":
        return lt in (None, "hybrid")  # the hybrid blocks hold the shared attention
    params = config.get("rope_parameters")
    if lt is not None and isinstance(params, Mapping) and lt in params and params[lt] is None:
        return False  # Beam: rope_parameters["full_attention"] is null
    if rule == "sliding_only":
        return lt == "sliding_attention"
    if rule == "full_nope_with_sliding_window":
        return config.get("sliding_window") is None or lt == "sliding_attention"
    if rule == "cohere2_moe":
        if lt == "sliding_attention":
            return True
        dense = _per_layer(config, "mlp_layer_types", i) == "dense"
        return dense and config.get("prefix_dense_sliding_window_pattern") == 1
    if rule == "no_rope_layers":
        return bool(_no_rope_layers(config)[i])
    if rule == "layer_rope_theta":
        return bool(_per_layer(config, "layer_rope_theta", i))
    if rule == "olmo_hybrid":
        return lt in (None, "full_attention")
    return True


def layers_of(config, layer_type) -> list[int]:
    """The indices of the layers of a type (every layer for None)."""
    n = n_layers(config)
    types = layer_types(config)
    if types is not None:
        n = len(types) if n is None else min(n, len(types))
    if n is None:
        return []
    return [i for i in range(n) if layer_type is None or (types is not None and types[i] == layer_type)]


def per_layer_value(config, key, layers):
    """``key`` for the given layers: a heterogeneous config's ``per_layer_config`` overrides the
    top-level value (Gemma 4's ``head_dim`` of its full-attention layers); one value or ValueError."""
    per = config.get("per_layer_config")
    if not isinstance(per, Mapping) or not per:
        return config.get(key)
    found = set()
    for i in layers or [None]:
        entry = per.get(f"{i:02d}") if i is not None else None
        if entry is None and i is not None:
            entry = per.get(str(i))
        value = entry.get(key) if isinstance(entry, Mapping) and entry.get(key) is not None else config.get(key)
        found.add(repr(value))
        first = value
    if len(found) > 1:
        raise ValueError(f"{key} differs between the layers asked for ({', '.join(sorted(found))}): pass layer=")
    return first
