"""Reading and writing multi-axis RoPE in Hugging Face configs: M-RoPE of the text side of
vision-language models, and the 2-D RoPE of their vision towers.

A vision-language model's config describes its multi-axis RoPE in a few keys --
``rope_parameters["mrope_section"]`` (``rope_scaling`` in transformers 4.x, where
``{"type": "mrope"}`` marked it), ``mrope_interleaved``, the vision config's
``rope_type: "axial"`` -- and, as much, in its ``model_type``: transformers' code for each model
type decides how the sections are laid out (contiguous or interleaved, which features pair up),
and some model types rotate this way without any of the keys. A config read as plain RoPE would
rotate text tokens right and image tokens wrong, so :func:`fields_from_hf`, which
:func:`numrope.models.hf.rope_fields_from_hf` calls first, either reads such a config right or
raises NotImplementedError naming the key or model type.

:data:`TEXT_FAMILIES` and :data:`VISION_FAMILIES` list the model types read, with the transformers
5.24 code each follows and its class defaults. A config without a ``model_type`` is read by its
keys alone, as vLLM's ``MRotaryEmbedding`` reads them: ``mrope_section`` contiguous, or
interleaved with ``mrope_interleaved: true``; ``rope_interleave`` for adjacent pairs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import numpy as np

from numrope import axes as _axes
from numrope.models._hf_config import as_mapping as _as_mapping
from numrope.models._multiaxis_write import rope_config_to_hf

__all__ = [
    "MULTIAXIS_KEYS",
    "REFUSED_TEXT",
    "REFUSED_VISION",
    "TEXT_FAMILIES",
    "VISION_FAMILIES",
    "fields_from_hf",
    "rope_config_to_hf",
    "vision_fields_from_hf",
]

#: Keys of a rope dict that say the RoPE has several coordinate axes.
MULTIAXIS_KEYS = ("mrope_section", "mrope_interleaved", "xdrope_section")
_MULTIAXIS_TYPES = ("mrope", "axial", "xdrope")


@dataclasses.dataclass(frozen=True)
class Family:
    """How one model type's transformers code lays out its multi-axis RoPE, and its class defaults."""

    kind: str  # "sectioned", "interleaved", "ernie", "axial", "pixtral"
    layout: str
    source: str  # where transformers 5.24 implements it
    sections: tuple = ()
    theta: float = 10000.0
    partial_rotary_factor: float | None = None
    head_dim: int | None = None
    names: tuple = _axes.TEXT_AXES
    head_keys: tuple = ("hidden_size", "num_attention_heads")


def _text(kind, layout, source, sections, theta, prf=None, head_dim=None):
    return Family(kind, layout, source, sections, theta, prf, head_dim)


_QWEN2 = _text("sectioned", "half", "qwen2_vl/modeling_qwen2_vl.py Qwen2VLRotaryEmbedding", (16, 24, 24), 1e6)
_QWEN3 = _text(
    "interleaved", "half", "qwen3_vl/modeling_qwen3_vl.py Qwen3VLTextRotaryEmbedding", (24, 20, 20), 5e5, None, 128
)
_QWEN3_5 = dataclasses.replace(
    _QWEN3,
    source="qwen3_5/modeling_qwen3_5.py",
    sections=(11, 11, 10),
    theta=1e4,
    partial_rotary_factor=0.25,
    head_dim=256,
)
_GLM4V = _text("sectioned", "interleaved", "glm4v/modeling_glm4v.py Glm4vTextRotaryEmbedding", (8, 12, 12), 1e4)

#: Text (language model) model types, by transformers 5.24 code. Their class defaults fill the keys
#: a config.json leaves out.
TEXT_FAMILIES: dict[str, Family] = {
    "qwen2_vl": _QWEN2,
    "qwen2_5_vl": dataclasses.replace(_QWEN2, source="qwen2_5_vl/modeling_qwen2_5_vl.py Qwen2_5_VLRotaryEmbedding"),
    "qwen2_5_omni": dataclasses.replace(
        _QWEN2, source="qwen2_5_omni/modeling_qwen2_5_omni.py Qwen2_5OmniRotaryEmbedding"
    ),
    "paddleocr_vl": dataclasses.replace(
        _QWEN2, source="paddleocr_vl/modeling_paddleocr_vl.py PaddleOCRRotaryEmbedding", theta=5e5, head_dim=128
    ),
    "qwen3_vl": _QWEN3,
    "qwen3_vl_moe": dataclasses.replace(_QWEN3, source="qwen3_vl_moe/modeling_qwen3_vl_moe.py"),
    "qwen3_omni_moe": dataclasses.replace(
        _QWEN3, source="qwen3_omni_moe/modeling_qwen3_omni_moe.py", theta=1e6, head_dim=None
    ),
    "qwen3_5": _QWEN3_5,
    "qwen3_5_moe": dataclasses.replace(_QWEN3_5, source="qwen3_5_moe/modeling_qwen3_5_moe.py"),
    "glm4v": _GLM4V,
    "glm46v": dataclasses.replace(_GLM4V, source="glm46v (the glm4v text model)"),
    "glm_ocr": dataclasses.replace(_GLM4V, source="glm_ocr/modeling_glm_ocr.py GlmOcrTextRotaryEmbedding"),
    "glm4v_moe": _text(
        "sectioned", "half", "glm4v_moe/modeling_glm4v_moe.py Glm4vMoeTextRotaryEmbedding", (8, 12, 12), 1e4, 0.5
    ),
    "ernie4_5_vl_moe": _text(
        "ernie",
        "interleaved",
        "ernie4_5_vl_moe/modeling_ernie4_5_vl_moe.py Ernie4_5_VLMoeTextRotaryEmbedding",
        (22, 22, 20),
        5e5,
    ),
}

_QWEN_TOWER = Family(
    "axial",
    "half",
    "qwen2_vl/modeling_qwen2_vl.py Qwen2VLVisionRotaryEmbedding",
    names=("h", "w"),
    head_keys=("hidden_size", "num_heads"),
)

#: Vision tower model types (``vision_config``), by transformers 5.24 code.
VISION_FAMILIES: dict[str, Family] = {
    "qwen2_vl": dataclasses.replace(_QWEN_TOWER, head_keys=("embed_dim", "num_heads")),
    "qwen2_5_vl": dataclasses.replace(_QWEN_TOWER, source="qwen2_5_vl/modeling_qwen2_5_vl.py"),
    "qwen2_5_omni": dataclasses.replace(_QWEN_TOWER, source="qwen2_5_omni/modeling_qwen2_5_omni.py"),
    "qwen3_vl": dataclasses.replace(_QWEN_TOWER, source="qwen3_vl/modeling_qwen3_vl.py Qwen3VLVisionRotaryEmbedding"),
    "qwen3_vl_moe": dataclasses.replace(_QWEN_TOWER, source="qwen3_vl_moe/modeling_qwen3_vl_moe.py"),
    "glm4v": dataclasses.replace(_QWEN_TOWER, source="glm4v/modeling_glm4v.py Glm4vVisionRotaryEmbedding"),
    "glm4v_moe": dataclasses.replace(_QWEN_TOWER, source="glm4v_moe/modeling_glm4v_moe.py"),
    "ernie4_5_vl_moe": dataclasses.replace(_QWEN_TOWER, source="ernie4_5_vl_moe/modeling_ernie4_5_vl_moe.py"),
    "pixtral": Family("pixtral", "half", "pixtral/modeling_pixtral.py PixtralVisionRotaryEmbedding", names=("h", "w")),
    "llama4": Family("axial", "interleaved", "llama4/modeling_llama4.py Llama4VisionRotaryEmbedding", names=("x", "y")),
    "sam3": Family("axial", "interleaved", "sam3/modeling_sam3.py Sam3ViTRotaryEmbedding", names=("x", "y")),
}

#: Text model types numrope refuses, with the reason.
REFUSED_TEXT: dict[str, str] = {
    "hunyuan_vl": (
        "HunYuan-VL's XD-RoPE (mrope_section / xdrope_section with rope_type 'xdrope'): transformers 5.24 "
        "(HunYuanVLRotaryEmbedding) splits the doubled cos/sin by [2 * s for s in sections], so the two features of "
        "a pair take their angles from different axes and the map is not a rotation on image tokens; the original "
        "code splits by the sections repeated. numrope implements neither until the two agree"
    ),
}

#: Vision model types numrope refuses, with the reason.
REFUSED_VISION: dict[str, str] = {
    "mlcd": (
        "MLCD rotates its class token by learned angles (the class_pos_emb weights), not by a position's; the "
        "config cannot say them. Its patch tokens use the axial map: numrope.axes.axial(head_dim // 2) with the "
        "'half' layout"
    ),
    "gemma4": (
        "Gemma 4's vision RoPE rotates two blocks of the head, each with rotate_half "
        "(apply_multidimensional_rope): a pair layout numrope does not have"
    ),
}

_VISION_SUFFIXES = ("_vision_encoder", "_vision_model", "_vision", "_vit_model")
_SUFFIXES = ("_text", "_thinker", *_VISION_SUFFIXES)


def _is_vision_type(model_type) -> bool:
    """Whether a model type is a vision tower's (``qwen2_vl_vision``, ``pixtral``, ``sam3_vit_model``, ...)."""
    return isinstance(model_type, str) and (model_type == "pixtral" or model_type.endswith(_VISION_SUFFIXES))


def family_of(model_type):
    """The model type without the sub-config suffix: ``"qwen2_vl_text"`` -> ``"qwen2_vl"``."""
    if not isinstance(model_type, str):
        return None
    for suffix in _SUFFIXES:
        if model_type.endswith(suffix):
            return model_type[: -len(suffix)]
    return model_type


# -- small readers (the keys are checked and named, as numrope.models.hf does) -------------------


def _positive(key, value, kind=float):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{key} must be a number, got {type(value).__name__} {value!r}")
    if kind is int:
        if not float(value).is_integer():
            raise TypeError(f"{key} must be an int, got {value!r}")
        value = int(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{key} must be positive and finite, got {value!r}")
    return kind(value)


def _sections(value, key="mrope_section"):
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{key} must be a list of ints, got {value!r}")
    out = []
    for v in list(value):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{key} must hold non-negative ints, got {list(value)!r}")
        out.append(int(v))
    return tuple(out)


def _rope_dict(config):
    """The rope dict of a (text or vision) config: rope_parameters, else rope_scaling, else {}."""
    for key in ("rope_parameters", "rope_scaling"):
        value = config.get(key)
        if value:
            if not isinstance(value, Mapping):  # the plain reader names it, or the family reader below
                return {"__not_a_mapping__": key}
            if any(isinstance(v, Mapping) for v in value.values()):  # one dict per layer type (Gemma 3)
                for sub in value.values():
                    if isinstance(sub, Mapping) and _multiaxis_key(sub) is not None:
                        raise NotImplementedError(
                            f"{key} holds one multi-axis RoPE per layer type ({_multiaxis_key(sub)}): numrope "
                            "does not read that"
                        )
                return {}
            return dict(value)
    return {}


def _multiaxis_key(params):
    """The first key of ``params`` that says multi-axis RoPE, or None."""
    for key in MULTIAXIS_KEYS:
        if params.get(key) is not None:
            return key
    rope_type = params.get("rope_type") or params.get("type")
    if rope_type in _MULTIAXIS_TYPES:
        return f"rope_type {rope_type!r}"
    return None


def _text_part(config: Mapping) -> tuple[Mapping, str | None]:
    """(the language model's keys, the model type to read them by)."""
    top_type = config.get("model_type")
    for nest in ("thinker_config",):  # Qwen2.5-Omni / Qwen3-Omni keep the language model in the thinker
        if isinstance(config.get(nest), Mapping):
            config = config[nest]
            top_type = config.get("model_type") or top_type
    text = config.get("text_config")
    text_keys = ("rope_theta", "rope_parameters", "rope_scaling", "head_dim", "hidden_size", "num_attention_heads")
    if isinstance(text, Mapping) and not any(config.get(k) is not None for k in text_keys):
        return text, text.get("model_type") or top_type
    return config, config.get("model_type") or top_type


# -- reading -------------------------------------------------------------------------------------


def fields_from_hf(config, layer_type=None, scaling_from_hf=None):
    """The RopeConfig fields of a multi-axis config's language model, or None for a one-axis one.

    Parameters
    ----------
    config : dict, str, os.PathLike or transformers config
        As for :meth:`numrope.RopeConfig.from_hf`.
    layer_type : str, optional
        Must be None or one of the config's ``layer_types`` (multi-axis models rotate every layer
        alike).
    scaling_from_hf : callable, optional
        The reader of the scaling variant (:func:`numrope.models.hf.scaling_from_hf`, passed in
        by it); without one, a scaled multi-axis config is refused.

    Returns
    -------
    dict or None
        ``RopeConfig`` keyword arguments with ``axes``; None where the config has no multi-axis
        key and a model type that is not multi-axis.

    Raises
    ------
    NotImplementedError
        A multi-axis key or model type numrope does not read (HunYuan-VL's XD-RoPE, model types
        not checked against transformers), named with the reason.
    ValueError, TypeError
        Sections that do not fit the rotary part, bad values; named.

    Examples
    --------
    >>> from numrope.models import multiaxis
    >>> f = multiaxis.fields_from_hf({"model_type": "qwen2_vl", "hidden_size": 3584, "num_attention_heads": 28,
    ...     "rope_theta": 1e6, "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]}})
    >>> f["axes"].counts(), f["layout"]
    ((16, 24, 24), 'half')
    """
    config = _as_mapping(config)
    # a composite named like a vision tower (granite4_vision) holds its language model in text_config
    if _is_vision_type(config.get("model_type")) and not isinstance(config.get("text_config"), Mapping):
        return _vision_fields(config, family_of(config["model_type"]))
    text, model_type = _text_part(config)
    params = _rope_dict(text)
    key = _multiaxis_key(params)
    family = family_of(model_type)
    if family in REFUSED_TEXT:
        raise NotImplementedError(f"{model_type}: {REFUSED_TEXT[family]}")
    if key == "rope_type 'xdrope'" or params.get("xdrope_section") is not None:
        raise NotImplementedError(f"xdrope_section: {REFUSED_TEXT['hunyuan_vl']}")
    known = TEXT_FAMILIES.get(family)
    if "__not_a_mapping__" in params:
        if known is None:
            return None  # a plain config's mistake: numrope.models.hf names it
        name = params["__not_a_mapping__"]
        raise TypeError(f"{name} must be a JSON object or null, got {type(text[name]).__name__}")
    if known is None:
        if key is None:
            return None
        if model_type is not None:
            raise NotImplementedError(
                f"{key} in a config of model type {model_type!r}: numrope reads multi-axis RoPE of the model types "
                f"{sorted(TEXT_FAMILIES)} (checked against transformers 5.24), and of configs without a model_type "
                "by their keys; it does not know how this model type lays out its sections"
            )
        if key == "rope_type 'axial'":
            raise NotImplementedError(
                "rope_type 'axial' without a model_type: pass a vision config with its model_type, or the whole "
                "config with part='vision'"
            )
        kind = "interleaved" if params.get("mrope_interleaved") else "sectioned"
        known = Family(kind, "half", "vLLM MRotaryEmbedding (the keys alone)")
    _check_layer_type(text, layer_type)
    return _text_fields(text, params, known, scaling_from_hf, generic=family not in TEXT_FAMILIES)


def _check_layer_type(config, layer_type):
    if layer_type is None:
        return
    declared = config.get("layer_types") or ()
    if layer_type not in declared:
        raise ValueError(
            f"layer_type {layer_type!r} is not a layer type of this config (it has {sorted(set(declared))})"
        )


def _head_dim(config, family, part="text"):
    if config.get("head_dim") is not None:
        return _positive("head_dim", config["head_dim"], int)
    if family.head_dim is not None:
        return family.head_dim
    for hidden_key in (family.head_keys[0], "hidden_size"):
        for heads_key in (family.head_keys[1], "num_attention_heads", "num_heads"):
            hidden, heads = config.get(hidden_key), config.get(heads_key)
            if hidden is not None and heads is not None:
                return _positive(hidden_key, hidden, int) // _positive(heads_key, heads, int)
    raise ValueError(
        f"the {part} config has no head_dim and no {family.head_keys[0]} and {family.head_keys[1]} to derive it from"
    )


def _text_fields(config, params, family, scaling_from_hf, generic):
    head_dim = _head_dim(config, family)
    prf = params.get("partial_rotary_factor", config.get("partial_rotary_factor", family.partial_rotary_factor))
    rotary_dim = head_dim
    if prf is not None:
        prf = _positive("partial_rotary_factor", prf)
        if prf > 1:
            raise ValueError(f"partial_rotary_factor must be in (0, 1], got {prf:g}")
        rotary_dim = int(head_dim * prf)
    base = params.get("rope_theta", config.get("rope_theta"))
    base = family.theta if base is None else _positive("rope_theta", base)
    n_pairs = rotary_dim // 2
    raw = params.get("mrope_section")
    sections = family.sections if raw is None else _sections(raw)
    if not sections:
        raise ValueError("mrope_section is missing: the sections of the multi-axis RoPE must be given")
    if len(sections) != 3:
        raise NotImplementedError(f"mrope_section {list(sections)}: numrope reads three sections (t, h, w)")
    if family.kind != "interleaved" and sum(sections) != n_pairs:
        raise ValueError(
            f"mrope_section {list(sections)} sums to {sum(sections)} pairs, but the rotary part has {n_pairs} "
            f"(head_dim {head_dim}"
            + (f" x partial_rotary_factor {prf:g}" if prf is not None else "")
            + "); transformers fails on this config as well"
        )
    if family.kind == "sectioned":
        axis_map = _axes.sectioned(sections)
    elif family.kind == "interleaved":
        axis_map = _axes.interleaved(sections, n_pairs)
    else:
        axis_map = _axes.ernie(sections)
    layout = family.layout
    if generic and config.get("rope_interleave") is not None:
        if not isinstance(config["rope_interleave"], bool):
            raise TypeError(f"rope_interleave must be true or false, got {config['rope_interleave']!r}")
        layout = "interleaved" if config["rope_interleave"] else "half"
    rest = {k: v for k, v in params.items() if k not in MULTIAXIS_KEYS}
    if rest.get("rope_type") == "mrope" or rest.get("type") == "mrope":  # transformers 4.x's marker
        rest.pop("type", None)
        rest["rope_type"] = "default"
    rope_type = rest.get("rope_type") or rest.get("type") or "default"
    scaling = None
    if rope_type != "default":
        if family.kind == "ernie":
            raise ValueError(f"rope_type {rope_type!r}: Ernie 4.5 VL's rotary embedding takes 'default' only")
        if scaling_from_hf is None:
            raise NotImplementedError(f"rope_type {rope_type!r} with multi-axis RoPE needs the scaling reader")
        scaling = scaling_from_hf(rest, config)
    return {
        "head_dim": head_dim,
        "base": base,
        "rotary_dim": rotary_dim,
        "layout": layout,
        "scaling": scaling,
        "axes": axis_map,
    }


def vision_fields_from_hf(config) -> dict:
    """The RopeConfig fields of a vision-language model's vision tower (``RopeConfig.from_hf(..., part="vision")``).

    Parameters
    ----------
    config : dict, str, os.PathLike or transformers config
        The whole config (its ``vision_config`` is read, the family taken from its model type or
        the top level's), or a vision config with its own ``model_type``.

    Returns
    -------
    dict
        ``RopeConfig`` keyword arguments: ``head_dim`` (``head_dim``, else the family's hidden
        size over its head count), ``base`` (``rope_theta``, default 10000), the family's layout
        and :func:`numrope.axes.axial` or :func:`numrope.axes.pixtral` map.

    Raises
    ------
    NotImplementedError
        A vision model type numrope does not read (MLCD's learned class-token angles, Gemma 4's
        block layout, unchecked model types), named with the reason.
    ValueError
        No vision config, missing sizes, a rope_type other than ``"default"`` or ``"axial"``.

    Examples
    --------
    >>> from numrope.models import multiaxis
    >>> f = multiaxis.vision_fields_from_hf({"model_type": "qwen2_vl", "vision_config": {"embed_dim": 1280,
    ...     "num_heads": 16, "spatial_merge_size": 2}})
    >>> f["head_dim"], f["axes"].pattern()[::10], f["layout"]
    (80, 'hhww', 'half')
    """
    config = _as_mapping(config)
    top_type = config.get("model_type")
    if isinstance(config.get("thinker_config"), Mapping):
        config = config["thinker_config"]
    vision = config.get("vision_config")
    if isinstance(vision, Mapping):
        if isinstance(vision.get("backbone_config"), Mapping):  # SAM 3: the ViT is the vision backbone
            vision = vision["backbone_config"]
        family = family_of(vision.get("model_type")) or family_of(top_type)
        return _vision_fields(vision, family)
    if _is_vision_type(config.get("model_type")):
        return _vision_fields(config, family_of(config["model_type"]))
    raise ValueError(
        "no vision config: give the whole config of a vision-language model (with vision_config), or a vision "
        "config with its model_type"
    )


def _vision_fields(config, family):
    if family in REFUSED_VISION:
        raise NotImplementedError(f"{config.get('model_type') or family}: {REFUSED_VISION[family]}")
    known = VISION_FAMILIES.get(family)
    if known is None:
        raise NotImplementedError(
            f"the vision tower of model type {family!r}: numrope reads the vision RoPE of {sorted(VISION_FAMILIES)} "
            "(checked against transformers 5.24)"
        )
    params = _rope_dict(config)
    if "__not_a_mapping__" in params:
        name = params["__not_a_mapping__"]
        raise TypeError(f"{name} must be a JSON object or null, got {type(config[name]).__name__}")
    rope_type = params.get("rope_type") or params.get("type") or "default"
    if rope_type not in ("default", "axial"):
        raise ValueError(f"rope_type {rope_type!r}: the vision RoPE of {family} takes 'axial' (or 'default') only")
    head_dim = _head_dim(config, known, "vision")
    if head_dim % 4:
        raise ValueError(f"the vision head_dim {head_dim} must be a multiple of 4 (two axes of pairs)")
    base = params.get("rope_theta", config.get("rope_theta"))
    base = known.theta if base is None else _positive("rope_theta", base)
    build = _axes.pixtral if known.kind == "pixtral" else _axes.axial
    return {
        "head_dim": head_dim,
        "base": base,
        "rotary_dim": head_dim,
        "layout": known.layout,
        "scaling": None,
        "axes": build(head_dim // 2, names=known.names),
    }
