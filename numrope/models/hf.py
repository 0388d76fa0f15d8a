"""Reading and writing the RoPE part of Hugging Face ``config.json`` files (transformers 4.x and 5.x).

A model's RoPE is spread over several keys of its config, and the keys changed between
transformers 4.x and 5.x:

* transformers 4.x: ``rope_theta`` and ``partial_rotary_factor`` at the top level,
  ``rope_scaling = {"rope_type" (or "type"): ..., "factor": ..., ...}`` (``null`` for plain RoPE);
* transformers 5.x: everything in ``rope_parameters = {"rope_type": ..., "rope_theta": ...,
  "partial_rotary_factor": ..., ...}``, or one such dict per layer type
  (``{"full_attention": {...}, "sliding_attention": {...}}``) for models such as Gemma 3 whose
  layers rotate differently;
* model-specific spellings: GPT-NeoX's ``rotary_pct`` and ``rotary_emb_base``, GPT-J's
  ``rotary_dim``, Phi-3's top-level ``original_max_position_embeddings``, Gemma 3's
  ``rope_local_base_freq`` and ModernBERT's ``global_rope_theta`` / ``local_rope_theta`` (4.x),
  multi-head latent attention's ``qk_nope_head_dim`` and ``qk_rope_head_dim``, ChatGLM's
  ``kv_channels`` and ``rope_ratio``; composite configs nest the language model (``text_config``,
  ``decoder``, ...).

The model type says the rest -- which features pair up, where the rotary part lies, which layers
have no RoPE: :mod:`numrope.models.families`. :func:`rope_fields_from_hf` reads all of it for
:meth:`numrope.RopeConfig.from_hf`; :func:`rope_config_to_hf` writes a configuration back
(``RopeConfig.to_hf``). The parameter names of the scaling variants are those of :mod:`numrope.variants`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from numrope.models import _hf_layers as _layers
from numrope.models import multiaxis as _multiaxis
from numrope.models._hf_config import as_mapping as _as_mapping
from numrope.models._hf_config import load_config
from numrope.models._hf_scaling import positive_int as _int
from numrope.models._hf_scaling import real as _real
from numrope.models._hf_scaling import scaling_from_hf
from numrope.models._hf_write import rope_config_to_hf
from numrope.models._no_rope import NO_ROPE
from numrope.models.families import COS_WIDTH, MULTI_AXIS, REFUSED
from numrope.models.families import GENERIC as _GENERIC

__all__ = ["layer_types", "load_config", "rope_config_to_hf", "rope_fields_from_hf", "rope_layers", "scaling_from_hf"]


def _is_nested(rope_parameters: Mapping) -> bool:
    """Whether rope_parameters holds one dict per layer type (Gemma 3 in transformers 5.x)."""
    return bool(rope_parameters) and all(v is None or isinstance(v, Mapping) for v in rope_parameters.values())


def _legacy_per_type(config) -> dict | None:
    """transformers 4.x per-layer-type RoPE: Gemma 3's ``rope_local_base_freq``, ModernBERT's
    ``global_rope_theta`` / ``local_rope_theta``; as a 5.x ``rope_parameters`` dict, or None."""
    if config.get("rope_parameters"):
        return None
    scaling = config.get("rope_scaling")
    if scaling is not None and not isinstance(scaling, Mapping):
        return None
    if config.get("rope_local_base_freq") is not None:  # Gemma 3: the sliding layers are unscaled
        full = dict(scaling or {})
        full.setdefault("rope_theta", config.get("rope_theta"))
        local = {"rope_type": "default", "rope_theta": config["rope_local_base_freq"]}
        return {"full_attention": full, "sliding_attention": local}
    if config.get("global_rope_theta") is not None or config.get("local_rope_theta") is not None:
        # ModernBERT (configuration_modernbert.convert_rope_params_to_dict): rope_scaling applies to both
        full, local = dict(scaling or {}), dict(scaling or {})
        full["rope_theta"] = config.get("global_rope_theta", 160_000.0)
        local["rope_theta"] = config.get("local_rope_theta", 10_000.0)
        return {"full_attention": full, "sliding_attention": local}
    return None


def _rope_dict(config):
    """The 5.x-shaped rope dict: rope_parameters, a legacy per-layer-type one, or rope_scaling."""
    legacy = _legacy_per_type(config)
    if legacy is not None:
        return legacy, True
    rope_parameters = config.get("rope_parameters")
    if rope_parameters:
        if not isinstance(rope_parameters, Mapping):
            raise TypeError(f"rope_parameters must be a JSON object, got {type(rope_parameters).__name__}")
        return rope_parameters, _is_nested(rope_parameters)
    rope_scaling = config.get("rope_scaling")
    if rope_scaling is not None and not isinstance(rope_scaling, Mapping):
        raise TypeError(f"rope_scaling must be a JSON object or null, got {type(rope_scaling).__name__}")
    return dict(rope_scaling or {}), False


def layer_types(config) -> tuple[str, ...]:
    """The layer types with their own RoPE, to choose from with ``layer_type=``; ``()`` if one serves all.

    Parameters
    ----------
    config : dict, str or os.PathLike
        A config dict, or the path of a config.json or of a model directory.

    Returns
    -------
    tuple of str
        The keys of a per-layer-type ``rope_parameters`` (transformers 5.x), or
        ``("full_attention", "sliding_attention")`` for a transformers 4.x config with
        ``rope_local_base_freq`` (Gemma 3) or ``global_rope_theta`` (ModernBERT); empty when
        every layer has the same RoPE.

    Examples
    --------
    >>> from numrope.models import hf
    >>> hf.layer_types({"head_dim": 256, "rope_parameters": {
    ...     "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1e6},
    ...     "sliding_attention": {"rope_type": "default", "rope_theta": 1e4}}})
    ('full_attention', 'sliding_attention')
    """
    config, _ = _layers.text_config(_as_mapping(config))
    rope, nested = _rope_dict(config)
    return tuple(rope) if nested else ()


def rope_layers(config, *, part: str = "text") -> tuple[bool, ...] | None:
    """Which layers apply RoPE: one bool per layer, or None where the config does not say how many.

    Parameters
    ----------
    config : dict, str or os.PathLike
        As for :meth:`numrope.RopeConfig.from_hf`.
    part : str, default "text"
        As for :meth:`numrope.RopeConfig.from_hf`.

    Returns
    -------
    tuple of bool or None
        ``False`` for the layers :meth:`numrope.RopeConfig.from_hf` answers ``None`` for: the layers
        a model leaves without position encoding (Llama 4's and SmolLM3's ``no_rope_layers``, Cohere 2's
        full-attention layers, ...), and the layers that are no attention layers (Mamba, linear
        attention, convolutions).

    Examples
    --------
    >>> from numrope.models import hf
    >>> hf.rope_layers({"model_type": "llama4_text", "head_dim": 128, "num_hidden_layers": 8,
    ...                 "no_rope_layers": [1, 1, 1, 0, 1, 1, 1, 0]})
    (True, True, True, False, True, True, True, False)
    """
    text, fam = _layers.text_config(_as_mapping(config), part)
    layers = _layers.layers_of(text, None)
    if not layers:
        return None
    if _layers.model_has_rope(text, fam) is not None:
        return (False,) * len(layers)
    return tuple(_layers.rope_on(text, fam, i) for i in layers)


def _refuse(config, text):
    own = text.get("model_type") if not text.get("__inherited_model_type__") else None
    if own in NO_ROPE:
        raise ValueError(
            f"model type {own!r} has no RoPE: its transformers modeling code has no rotary embedding "
            "(numrope.models._no_rope.NO_ROPE)"
        )
    for model_type in (config.get("model_type"), text.get("model_type")):
        if model_type in REFUSED:
            raise NotImplementedError(f"model type {model_type!r}: {REFUSED[model_type]}")
        if model_type in MULTI_AXIS:
            raise NotImplementedError(
                f"model type {model_type!r} rotates by several coordinates: {MULTI_AXIS[model_type]}; "
                "numrope.models.multiaxis does not read it, and it is not one-axis RoPE"
            )


def _resolve_layers(text, fam, layer_type, layer):
    """(layer_type, the indices of the layers asked about that have RoPE), or None where none has."""
    types = _layers.layer_types(text)
    if layer is not None:
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
            raise TypeError(f"layer must be an int, got {type(layer).__name__} {layer!r}")
        layer = int(layer)
        n = _layers.n_layers(text) if types is None else len(types)
        if n is not None and not 0 <= layer < n:
            raise ValueError(f"layer {layer} is not a layer of this config: it has {n} (0 .. {n - 1})")
        own = _layers.layer_type_of(text, layer)
        if layer_type is not None and own is not None and layer_type != own:
            raise ValueError(f"layer {layer} is a {own!r} layer, not {layer_type!r}")
        if not _layers.rope_on(text, fam, layer):
            return None
        return (own if own is not None else layer_type), [layer]
    if layer_type is not None and types is not None and layer_type not in types:
        raise ValueError(
            f"layer_type {layer_type!r} is not a layer type of this config: its layer types are "
            f"{sorted(set(map(str, types)))}"
        )
    candidates = _layers.layers_of(text, layer_type)
    if not candidates:
        return layer_type, []
    with_rope = [i for i in candidates if _layers.rope_on(text, fam, i)]
    if not with_rope:
        if layer_type is None:
            raise ValueError("no layer of this config applies RoPE")
        return None
    return layer_type, with_rope


def _rope_entry(text, fam, rope, nested, layer_type, layers):
    """(the rope dict for these layers, whether it is one layer type's entry), or None for no RoPE."""
    if not nested:
        if layer_type is not None and _layers.layer_types(text) is None:
            raise ValueError(
                f"layer_type {layer_type!r} is not a layer type of this config: it declares no layer types"
            )
        return dict(rope), False
    if layer_type is None:
        types = {_layers.layer_type_of(text, i) for i in layers}
        keys = {fam.rope_keys.get(t, t) for t in types} if layers and None not in types else set(rope)
        keys = {k for k in keys if rope.get(k) is not None} if len(keys) > 1 else keys
        if len(keys) != 1:
            choices = ", ".join(sorted(rope))
            raise ValueError(f"this config has one RoPE per layer type ({choices}): choose one with layer_type=")
        key = keys.pop()
    else:
        key = fam.rope_keys.get(layer_type, layer_type)
    if key not in rope:
        raise ValueError(f"layer_type {layer_type!r} is not one of the layer types of rope_parameters, {sorted(rope)}")
    if rope[key] is None:
        return None
    return dict(rope[key]), True


def _head_dim(text, fam, layers) -> int:
    def value(key):
        return _layers.per_layer_value(text, key, layers)

    if fam.mla or (value("qk_rope_head_dim") is not None and value("qk_nope_head_dim") is not None):
        nope, rope = value("qk_nope_head_dim"), value("qk_rope_head_dim")
        if nope is None or rope is None:
            raise ValueError("multi-head latent attention needs qk_nope_head_dim and qk_rope_head_dim")
        nope = 0 if nope == 0 else _int("qk_nope_head_dim", nope)
        return nope + _int("qk_rope_head_dim", rope)
    if text.get("model_type") == "chatglm" and text.get("kv_channels") is not None:
        return _int("kv_channels", text["kv_channels"])
    key = fam.head_dim_key or "head_dim"
    if value(key) is not None:
        return _int(key, value(key))
    hidden, heads = value("hidden_size"), value("num_attention_heads")
    if hidden is None or heads is None:
        missing = [k for k, v in (("hidden_size", hidden), ("num_attention_heads", heads)) if v is None]
        raise ValueError(f"config has no head_dim and no {' and '.join(missing)} to derive it from")
    return _int("hidden_size", hidden) // _int("num_attention_heads", heads)


def _fraction_of(key, value, head_dim):
    fraction = _real(key, value)
    if fraction > 1:
        raise ValueError(f"{key} must be in (0, 1], got {fraction:g}")
    rotary_dim = int(head_dim * fraction)  # transformers and vLLM truncate
    if rotary_dim <= 0:
        raise ValueError(f"{key} = {fraction:g} rotates no feature of a head of {head_dim}")
    return rotary_dim


def _rotary(text, fam, params, head_dim, layers):
    """(rotary_dim, rotary_offset, n): ``n`` the dimension of the exponents ``2i / n`` (odd where a
    cos-width family rounds it up to the rotary part, ``rotary_dim = n + 1``)."""
    model_type = text.get("model_type")
    if fam.mla or (text.get("qk_rope_head_dim") is not None and text.get("qk_nope_head_dim") is not None):
        rope = _int("qk_rope_head_dim", _layers.per_layer_value(text, "qk_rope_head_dim", layers))
        return rope, head_dim - rope, rope  # [nope | rope]: the last features rotate
    if (params.get("rope_type") or params.get("type")) == "proportional":
        return head_dim, 0, head_dim  # partial_rotary_factor is the variant's: the exponents span the whole head
    prf = params.get("partial_rotary_factor")
    if prf is None:
        prf = text.get("partial_rotary_factor")
    if prf is not None:
        rotary_dim = _fraction_of("partial_rotary_factor", prf, head_dim)
    elif text.get("rotary_pct") is not None:  # GPT-NeoX, Pythia
        rotary_dim = _fraction_of("rotary_pct", text["rotary_pct"], head_dim)
    elif model_type == "chatglm":  # ChatGLM rotates the first half of each head
        rotary_dim = head_dim // 2
    elif text.get("rotary_dim") is not None and model_type in ("gptj", "codegen"):
        rotary_dim = _int("rotary_dim", text["rotary_dim"])
    else:
        if text.get("rotary_dim") not in (None, head_dim) and model_type not in ("minimax_m2",):
            raise NotImplementedError(
                f"rotary_dim = {text['rotary_dim']} in a {model_type!r} config: transformers 5.24 rotates the whole "
                f"head of {head_dim} here (it converts rotary_dim into partial_rotary_factor for MiniMax-M2 only); "
                "numrope reads neither until the model's code and its config agree"
            )
        rotary_dim = head_dim
    if rotary_dim > head_dim:
        raise ValueError(f"the rotary part ({rotary_dim}) is larger than head_dim ({head_dim})")
    n = rotary_dim
    if rotary_dim % 2 and model_type in COS_WIDTH and rotary_dim < head_dim:
        rotary_dim += 1  # the apply function slices by the cos table's width, 2 ceil(n / 2)
    if rotary_dim % 2:
        raise ValueError(f"the rotary part must have an even size (features rotate in pairs), got {rotary_dim}")
    return rotary_dim, (head_dim - rotary_dim if fam.rope_last else 0), n


def _base(text, params) -> float:
    if params.get("rope_theta") is not None:
        base = _real("rope_theta", params["rope_theta"])
    elif text.get("rope_theta") is not None:
        base = _real("rope_theta", text["rope_theta"])
    elif text.get("rotary_emb_base") is not None:  # GPT-NeoX
        base = _real("rotary_emb_base", text["rotary_emb_base"])
    elif text.get("model_type") == "chatglm":  # ChatGLM: base 10000 * rope_ratio
        base = 10000.0 * _real("rope_ratio", text.get("rope_ratio", 1))
    else:
        base = None
    attn = text.get("attn_config")
    legacy = attn.get("rope_theta") if isinstance(attn, Mapping) else None  # DBRX's checkpoints keep it here
    if legacy is not None:
        legacy = _real("attn_config.rope_theta", legacy)
        if base is not None and base != legacy:
            raise ValueError(
                f"attn_config.rope_theta = {legacy:g} and rope_theta = {base:g} disagree: DBRX rotates with "
                "attn_config.rope_theta; transformers 5.24 reads only rope_parameters"
            )
        return legacy
    return 10000.0 if base is None else base


def _layout(text, fam) -> str:
    interleave = text.get("rope_interleave")
    if interleave is not None and not isinstance(interleave, bool):
        raise TypeError(f"rope_interleave must be true or false, got {interleave!r}")
    mla = fam.mla or (text.get("qk_rope_head_dim") is not None and text.get("qk_nope_head_dim") is not None)
    if fam.layout == "rope_interleave" or (fam.layout == "half" and mla and interleave is not None):
        # DeepSeek-V3 and its kin: apply_rotary_pos_emb_interleave, read (2i, 2i + 1), written (i, i + d/2)
        return "half" if interleave is False else "interleaved_in_half_out"
    if fam is _GENERIC and interleave is not None:
        return "interleaved" if interleave else "half"
    return fam.layout


def rope_fields_from_hf(config, *, layer_type: str | None = None, layer: int | None = None, part: str = "text"):
    """The fields of a :class:`~numrope.RopeConfig` read from a Hugging Face config (``RopeConfig.from_hf``).

    Parameters
    ----------
    config : dict, str or os.PathLike
        The parsed config.json, or the path of a config.json or of a model directory (a
        transformers ``PretrainedConfig`` works too, through its ``to_dict``). Both the
        transformers 4.x (``rope_theta``, ``rope_scaling``) and 5.x (``rope_parameters``) formats
        are read, and the language model of a composite config.
    layer_type : str, optional
        For models whose layer types rotate differently (Gemma 3: ``"full_attention"`` and
        ``"sliding_attention"``), which one; see :func:`layer_types`. Must be given for them.
    layer : int, optional
        One layer, by index: its layer type and whether it has RoPE follow from the config.
    part : str, default "text"
        ``"text"``: the language model (the sub-config transformers' ``get_text_config(decoder=True)``
        finds); or the key of a sub-config, dotted for nested ones (``"encoder_config"``).

    Returns
    -------
    dict or None
        ``RopeConfig`` keyword arguments, or None where the layer (or every layer of the layer
        type) asked about has no RoPE (see :func:`rope_layers`). ``head_dim`` is the attention's
        head size (``head_dim``; ``hidden_size / num_attention_heads``; ``qk_nope_head_dim +
        qk_rope_head_dim`` for multi-head latent attention, whose last ``qk_rope_head_dim`` features
        rotate: ``rotary_offset``); ``base`` from ``rope_theta`` (or ``rotary_emb_base``,
        ``10000 * rope_ratio`` for ChatGLM, else 10000); ``rotary_dim`` from ``partial_rotary_factor``
        or ``rotary_pct`` (truncated, as transformers does), GPT-J's ``rotary_dim``, or half the head
        for ChatGLM; ``layout`` and ``direction`` from the model type
        (:mod:`numrope.models.families`) and ``rope_interleave``; ``scaling`` as :func:`scaling_from_hf`.

    Raises
    ------
    ValueError
        An unknown ``rope_type``; a missing required key; factor lists of the wrong length;
        non-positive factors, bases or sizes; a missing or unknown ``layer_type`` or ``layer``;
        a model without RoPE at all (``position_embedding_type`` ``"absolute"``, ...). The
        message names the key and the value.
    TypeError
        A value of the wrong type, or a ``config`` that is neither a dict nor a path.
    NotImplementedError
        A model type, key or value whose effect numrope does not implement, named with the reason.

    Notes
    -----
    Keys a config.json leaves out take the defaults of the model's transformers config class for
    the model types listed in :data:`~numrope.models.families.MODEL_DEFAULTS` (for example Gemma 3's
    ``head_dim = 256`` and ``rope_theta = 1e6``), and transformers' generic defaults otherwise (base
    10000, every feature rotated, no scaling). Without ``layer`` and ``layer_type`` the answer is the
    RoPE of the layers that have one.

    Examples
    --------
    >>> import numrope
    >>> cfg = numrope.RopeConfig.from_hf({
    ...     "hidden_size": 4096, "num_attention_heads": 32, "max_position_embeddings": 131072,
    ...     "rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3", "factor": 8.0,
    ...     "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}})
    >>> cfg.head_dim, cfg.base, cfg.scaling.rope_type
    (128, 500000.0, 'llama3')
    >>> numrope.RopeConfig.from_hf({"hidden_size": 2560, "num_attention_heads": 32,
    ...                              "partial_rotary_factor": 0.4}).rotary_dim  # Phi-2
    32
    """
    config = _as_mapping(config)
    if part == "text":
        fields = _multiaxis.fields_from_hf(config, layer_type, scaling_from_hf)  # M-RoPE, 2-D RoPE: read or refused
        if fields is not None:
            return fields
    elif not isinstance(part, str):
        raise TypeError(f"part must be a string, got {type(part).__name__}")
    text, fam = _layers.text_config(config, part)
    _refuse(config, text)
    why = _layers.model_has_rope(text, fam)
    if why is not None:
        if layer is not None or layer_type is not None:
            return None
        raise ValueError(f"this model has no RoPE: {why}")
    resolved = _resolve_layers(text, fam, layer_type, layer)
    if resolved is None:
        return None
    layer_type, layers = resolved
    rope, nested = _rope_dict(text)
    entry = _rope_entry(text, fam, rope, nested, layer_type, layers)
    if entry is None:
        return None
    params, nested = entry
    _check_layer_theta(text, fam, params, layers)
    head_dim = _head_dim(text, fam, layers)
    rotary_dim, offset, n = _rotary(text, fam, params, head_dim, layers)
    base = _base(text, params)
    if n != rotary_dim:  # frequencies base**(-2i / n) over n + 1 features: the base that gives them
        base = base ** (rotary_dim / n)
    return {
        "head_dim": head_dim,
        "base": base,
        "rotary_dim": rotary_dim,
        "layout": _layout(text, fam),
        "scaling": scaling_from_hf(params, text, nested=nested),
        "rotary_offset": offset,
        "direction": fam.direction,
    }


def _check_layer_theta(text, fam, params, layers):
    """Muse's per-layer ``layer_rope_theta``: transformers reads it as "RoPE or not" only."""
    if fam.nope != "layer_rope_theta":
        return
    theta = params.get("rope_theta", text.get("rope_theta"))
    for i in layers:
        value = text["layer_rope_theta"][i]
        if theta is not None and value and float(value) != float(theta):
            raise NotImplementedError(
                f"layer_rope_theta[{i}] = {value} differs from rope_theta = {theta}: transformers 5.24 rotates every "
                "layer with rope_theta (it reads layer_rope_theta as RoPE or not)"
            )
