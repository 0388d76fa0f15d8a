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
  ``rope_local_base_freq`` (4.x), DeepSeek's ``qk_rope_head_dim``, ChatGLM's ``kv_channels``
  and ``rope_ratio``; multimodal configs nest the language model's keys in ``text_config``.

:func:`rope_fields_from_hf` reads all of them for :meth:`numrope.RopeConfig.from_hf` and
:func:`rope_config_to_hf` writes one back (``RopeConfig.to_hf``).
The parameter names of the scaling variants are those of :mod:`numrope.variants`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping

import numpy as np

from numrope import variants as _scaling
from numrope.models import multiaxis as _multiaxis
from numrope.models.families import INTERLEAVED_MODEL_TYPES, MODEL_DEFAULTS

#: Keys whose presence at the top level says that a config describes a language model itself
#: rather than wrapping one in ``text_config``.
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

#: Scaling variants that carry ``original_max_position_embeddings``; transformers falls back to
#: ``max_position_embeddings`` when a config leaves it out.
_NEEDS_ORIGINAL = ("yarn", "longrope", "llama3")


def load_config(path) -> dict:
    """Read a ``config.json`` (or the ``config.json`` in a model directory) into a dict.

    Parameters
    ----------
    path : str or os.PathLike
        The file, or a directory holding ``config.json``.

    Returns
    -------
    dict
        The parsed JSON object.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ValueError
        If the file is not JSON or does not hold an object.

    Examples
    --------
    >>> import json, os, tempfile
    >>> from numrope.models import hf
    >>> d = tempfile.mkdtemp()
    >>> with open(os.path.join(d, "config.json"), "w") as f:
    ...     json.dump({"head_dim": 64, "rope_theta": 10000.0}, f)
    >>> hf.load_config(d)["head_dim"]
    64
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, "config.json")
    with open(path, encoding="utf-8") as f:
        try:
            config = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(config).__name__}")
    return config


def _as_mapping(config) -> Mapping:
    if isinstance(config, Mapping):
        return config
    if isinstance(config, (str, os.PathLike)):
        return load_config(config)
    to_dict = getattr(config, "to_dict", None)  # a transformers PretrainedConfig
    if callable(to_dict):
        return to_dict()
    raise TypeError(f"config must be a dict, a path to a config.json or a model directory, got {type(config).__name__}")


def _text_config(config: Mapping) -> dict:
    """The language model's keys, with the defaults of its model type filled in."""
    text = config.get("text_config")
    if isinstance(text, Mapping) and not any(config.get(k) is not None for k in _TEXT_KEYS):
        config = text
    out = dict(config)
    for key, value in MODEL_DEFAULTS.get(out.get("model_type"), {}).items():
        if out.get(key) is None:
            out[key] = value
    return out


def _is_nested(rope_parameters: Mapping) -> bool:
    """Whether rope_parameters holds one dict per layer type (Gemma 3 in transformers 5.x)."""
    return bool(rope_parameters) and all(v is None or isinstance(v, Mapping) for v in rope_parameters.values())


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
        ``rope_local_base_freq`` (Gemma 3); empty when every layer has the same RoPE.

    Examples
    --------
    >>> from numrope.models import hf
    >>> hf.layer_types({"head_dim": 256, "rope_parameters": {
    ...     "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1e6},
    ...     "sliding_attention": {"rope_type": "default", "rope_theta": 1e4}}})
    ('full_attention', 'sliding_attention')
    """
    config = _text_config(_as_mapping(config))
    rope_parameters = config.get("rope_parameters")
    if isinstance(rope_parameters, Mapping) and _is_nested(rope_parameters):
        return tuple(rope_parameters)
    if not rope_parameters and config.get("rope_local_base_freq") is not None:
        return ("full_attention", "sliding_attention")
    return ()


def _check_shared_layer_type(config, layer_type):
    """layer_type with a config whose layers all share one RoPE: fine if the config names it."""
    if layer_type is None:
        return
    declared = config.get("layer_types") or ()
    if layer_type not in declared:
        known = f"its layer types are {sorted(set(declared))}" if declared else "it declares no layer types"
        raise ValueError(f"layer_type {layer_type!r} is not a layer type of this config: {known}")


def _rope_parameters(config: dict, layer_type):
    """(params, nested): the rope dict for the chosen layer type, in either format."""
    rope_parameters = config.get("rope_parameters")
    if rope_parameters:
        if not isinstance(rope_parameters, Mapping):
            raise TypeError(f"rope_parameters must be a JSON object, got {type(rope_parameters).__name__}")
        if _is_nested(rope_parameters):
            choices = sorted(rope_parameters)
            if layer_type is None:
                raise ValueError(
                    f"this config has one RoPE per layer type ({', '.join(choices)}): choose one with layer_type="
                )
            if layer_type not in rope_parameters:
                raise ValueError(
                    f"layer_type {layer_type!r} is not in rope_parameters, whose layer types are {choices}"
                )
            params = rope_parameters[layer_type]
            if params is None:
                raise ValueError(f"layer type {layer_type!r} has no RoPE (rope_parameters[{layer_type!r}] is null)")
            return dict(params), True
        _check_shared_layer_type(config, layer_type)
        return dict(rope_parameters), False
    rope_scaling = config.get("rope_scaling")
    if rope_scaling is not None and not isinstance(rope_scaling, Mapping):
        raise TypeError(f"rope_scaling must be a JSON object or null, got {type(rope_scaling).__name__}")
    params = dict(rope_scaling or {})
    if config.get("rope_local_base_freq") is not None:  # Gemma 3, transformers 4.x
        choices = ["full_attention", "sliding_attention"]
        if layer_type is None:
            raise ValueError(
                "this config has one RoPE per layer type (full_attention: rope_theta and rope_scaling; "
                "sliding_attention: rope_local_base_freq, unscaled): choose one with layer_type="
            )
        if layer_type == "sliding_attention":
            return {"rope_type": "default", "rope_theta": config["rope_local_base_freq"]}, True
        if layer_type != "full_attention":
            raise ValueError(f"layer_type {layer_type!r} is not one of {choices}")
        return params, True
    _check_shared_layer_type(config, layer_type)
    return params, False


def _real(key, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{key} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{key} must be positive and finite, got {value:g}")
    return value


def _int(key, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            value = int(value)
        else:
            raise TypeError(f"{key} must be an int, got {type(value).__name__} {value!r}")
    if value <= 0:
        raise ValueError(f"{key} must be positive, got {value}")
    return int(value)


def _head_dim(config) -> int:
    model_type = config.get("model_type")
    if config.get("qk_rope_head_dim") is not None:  # DeepSeek-V2/V3: RoPE has its own slice of the head
        return _int("qk_rope_head_dim", config["qk_rope_head_dim"])
    if model_type == "chatglm" and config.get("kv_channels") is not None:
        return _int("kv_channels", config["kv_channels"])
    if config.get("head_dim") is not None:
        return _int("head_dim", config["head_dim"])
    hidden, heads = config.get("hidden_size"), config.get("num_attention_heads")
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


def _rotary_dim(config, params, head_dim) -> int:
    model_type = config.get("model_type")
    prf = params.get("partial_rotary_factor")
    if prf is None:
        prf = config.get("partial_rotary_factor")
    if prf is not None:
        return _fraction_of("partial_rotary_factor", prf, head_dim)
    if config.get("rotary_pct") is not None:  # GPT-NeoX, Pythia
        return _fraction_of("rotary_pct", config["rotary_pct"], head_dim)
    if model_type == "chatglm":  # ChatGLM rotates the first half of each head
        return head_dim // 2
    if config.get("rotary_dim") is not None:  # GPT-J, CodeGen
        return _int("rotary_dim", config["rotary_dim"])
    return head_dim


def _base(config, params) -> float:
    if params.get("rope_theta") is not None:
        return _real("rope_theta", params["rope_theta"])
    if config.get("rope_theta") is not None:
        return _real("rope_theta", config["rope_theta"])
    if config.get("rotary_emb_base") is not None:  # GPT-NeoX
        return _real("rotary_emb_base", config["rotary_emb_base"])
    if config.get("model_type") == "chatglm":  # ChatGLM: base 10000 * rope_ratio
        return 10000.0 * _real("rope_ratio", config.get("rope_ratio", 1))
    return 10000.0


def _layout(config) -> str:
    interleave = config.get("rope_interleave")
    if interleave is not None:
        if not isinstance(interleave, bool):
            raise TypeError(f"rope_interleave must be true or false, got {interleave!r}")
        return "interleaved" if interleave else "half"
    return "interleaved" if config.get("model_type") in INTERLEAVED_MODEL_TYPES else "half"


def scaling_from_hf(params: Mapping, config: Mapping | None = None, *, nested: bool = False):
    """The scaling variant a ``rope_scaling`` / ``rope_parameters`` dict describes (``None`` for plain RoPE).

    Parameters
    ----------
    params : dict
        The dict, with ``rope_type`` (or the older ``type``); ``"default"`` or no type at all is
        plain RoPE.
    config : dict, optional
        The whole config, for the keys kept at its top level (``max_position_embeddings``, and
        Phi-3's ``original_max_position_embeddings``).
    nested : bool, default False
        Whether ``params`` is one layer type's entry; then a top-level
        ``original_max_position_embeddings`` does not override the one inside ``params``.

    Returns
    -------
    numrope.variants.RopeScaling or None

    Raises
    ------
    ValueError
        An unknown ``rope_type``, a missing required key, or a bad value (named).
    TypeError
        A value of the wrong type (named).

    Notes
    -----
    Follows transformers' ``standardize_rope_params``: ``original_max_position_embeddings``
    comes from the top level of the config if it is there, else from ``params``, else it is
    ``max_position_embeddings``; a YaRN ``factor`` left out is ``max_position_embeddings /
    original_max_position_embeddings``. The legacy names ``"su"`` (LongRoPE) and ``"deepseek_yarn"``
    are accepted, and vLLM's ``{"rope_type": "dynamic", "alpha": a}`` (Hunyuan), a fixed base
    change, reads as ``NTK(factor=a)`` whatever its ``factor`` (as in vLLM, ``alpha`` wins).

    Examples
    --------
    >>> from numrope.models import hf
    >>> hf.scaling_from_hf({"type": "linear", "factor": 2})
    Linear(factor=2.0)
    >>> print(hf.scaling_from_hf({"rope_type": "default"}))
    None
    """
    config = config or {}
    rope_type = params.get("rope_type") or params.get("type") or "default"
    if not isinstance(rope_type, str):
        raise TypeError(f"rope_type must be a string, got {rope_type!r}")
    if rope_type == "default":
        return None
    name = _scaling.ALIASES.get(rope_type, rope_type)
    params = dict(params)
    if name == "dynamic" and params.get("alpha") is not None:
        # vLLM's DynamicNTKAlphaRotaryEmbedding: alpha wins over factor (Hunyuan sets both, factor 1)
        name, params["factor"] = "ntk", params["alpha"]
    if name == "ntk":
        if params.get("mixed_b") is not None:
            raise ValueError(f"mixed_b = {params['mixed_b']!r}: mixed NTK scaling is not supported")
        if params.get("factor") is None and params.get("alpha") is not None:
            params["factor"] = params["alpha"]
    cls = _scaling.VARIANTS.get(name)
    if cls is None:
        known = ", ".join(["default", *_scaling.VARIANTS, *_scaling.ALIASES])
        raise ValueError(f"unknown rope_type {rope_type!r}; numrope knows {known}")
    if name in _NEEDS_ORIGINAL:
        original = params.get("original_max_position_embeddings")
        if not nested and config.get("original_max_position_embeddings") is not None:
            original = config["original_max_position_embeddings"]
        if original is None:
            original = config.get("max_position_embeddings")
        params["original_max_position_embeddings"] = original
    if name == "yarn" and params.get("factor") is None:
        # transformers: without a factor, YaRN scales from the original to the full context
        longest, original = config.get("max_position_embeddings"), params.get("original_max_position_embeddings")
        if longest is not None and original is not None:
            params["factor"] = _real("max_position_embeddings", longest) / _real(
                "original_max_position_embeddings", original
            )
    kwargs = {}
    for field in dataclasses.fields(cls):
        key = field.metadata.get("hf_key", field.name)
        top_level = field.metadata.get("hf") == _scaling.TOP_LEVEL["hf"]
        value = config.get(key) if top_level else params.get(key)
        if value is None:
            if field.default is dataclasses.MISSING:
                where = "the config" if top_level else f"the parameters of rope_type {rope_type!r}"
                raise ValueError(f"{key} is required in {where} and is missing")
            continue
        kwargs[field.name] = value
    return cls(**kwargs)


def rope_fields_from_hf(config, *, layer_type: str | None = None) -> dict:
    """The fields of a :class:`~numrope.RopeConfig` read from a Hugging Face config (``RopeConfig.from_hf``).

    Parameters
    ----------
    config : dict, str or os.PathLike
        The parsed config.json, or the path of a config.json or of a model directory (a
        transformers ``PretrainedConfig`` works too, through its ``to_dict``). Both the
        transformers 4.x (``rope_theta``, ``rope_scaling``) and 5.x (``rope_parameters``) formats
        are read, and a multimodal config's ``text_config``.
    layer_type : str, optional
        For models whose layer types rotate differently (Gemma 3: ``"full_attention"`` and
        ``"sliding_attention"``), which one; see :func:`layer_types`. Must be given for them.

    Returns
    -------
    dict
        ``RopeConfig`` keyword arguments: ``head_dim`` from ``head_dim`` (or ``hidden_size / num_attention_heads``,
        DeepSeek's ``qk_rope_head_dim``, ChatGLM's ``kv_channels``); ``base`` from ``rope_theta``
        (or ``rotary_emb_base``, ``10000 * rope_ratio`` for ChatGLM, else 10000);
        ``rotary_dim`` from ``partial_rotary_factor`` or ``rotary_pct`` (truncated, as
        transformers does), GPT-J's ``rotary_dim``, or half the head for ChatGLM; ``layout``
        from ``rope_interleave`` or the model type (ChatGLM, GLM, GPT-J, Cohere and DeepSeek pair
        adjacent features); ``scaling`` as :func:`scaling_from_hf`.

    Raises
    ------
    ValueError
        An unknown ``rope_type``; a missing required key; factor lists of the wrong length;
        non-positive factors, bases or sizes; a missing or unknown ``layer_type``. The message
        names the key and the value.
    TypeError
        A value of the wrong type, or a ``config`` that is neither a dict nor a path.

    Notes
    -----
    Keys a config.json leaves out take the defaults of the model's transformers config class for
    the model types listed in :data:`MODEL_DEFAULTS` (for example Gemma 3's ``head_dim = 256``
    and ``rope_theta = 1e6``), and transformers' generic defaults otherwise (base 10000, every
    feature rotated, no scaling).

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
    fields = _multiaxis.fields_from_hf(config, layer_type, scaling_from_hf)  # M-RoPE, 2-D RoPE: read or refused
    if fields is not None:
        return fields
    config = _text_config(config)
    params, nested = _rope_parameters(config, layer_type)
    head_dim = _head_dim(config)
    rotary_dim = _rotary_dim(config, params, head_dim)
    if rotary_dim > head_dim:
        raise ValueError(f"the rotary part ({rotary_dim}) is larger than head_dim ({head_dim})")
    if rotary_dim % 2:
        raise ValueError(f"the rotary part must have an even size (features rotate in pairs), got {rotary_dim}")
    return {
        "head_dim": head_dim,
        "base": _base(config, params),
        "rotary_dim": rotary_dim,
        "layout": _layout(config),
        "scaling": scaling_from_hf(params, config, nested=nested),
    }


def _fraction(rotary_dim: int, head_dim: int) -> float:
    """A partial_rotary_factor p with int(head_dim * p) == rotary_dim (what readers compute)."""
    p = rotary_dim / head_dim
    while int(head_dim * p) < rotary_dim:
        p = float(np.nextafter(p, 2.0))
    return p


def _json_value(value):
    if isinstance(value, tuple):
        return [float(v) for v in value]
    return value


def rope_config_to_hf(cfg, *, legacy: bool = False) -> dict:
    """The Hugging Face config keys that describe ``cfg`` (``RopeConfig.to_hf``).

    Parameters
    ----------
    cfg : RopeConfig
        The configuration to write.
    legacy : bool, default False
        ``False``: the transformers 5.x form, everything in ``rope_parameters``. ``True``: the
        4.x form, ``rope_theta`` and ``partial_rotary_factor`` at the top level and the variant
        in ``rope_scaling`` (``None`` for plain RoPE).

    Returns
    -------
    dict
        ``head_dim``; ``rope_parameters`` (or ``rope_theta`` and ``rope_scaling``);
        ``partial_rotary_factor`` for partial rotary; ``max_position_embeddings`` where the
        variant holds it; ``rope_interleave: True`` for the interleaved layout (the key
        transformers' DeepSeek-V3 reads). :meth:`numrope.RopeConfig.from_hf` reads it back to an equal
        configuration.

    Raises
    ------
    TypeError
        If ``cfg`` is not a RopeConfig.

    Examples
    --------
    >>> import numrope
    >>> from numrope.models import hf
    >>> cfg = numrope.RopeConfig(head_dim=64, base=1e6, scaling=numrope.variants.Linear(8.0))
    >>> cfg.to_hf()
    {'head_dim': 64, 'rope_parameters': {'rope_type': 'linear', 'rope_theta': 1000000.0, 'factor': 8.0}}
    >>> hf.rope_config_to_hf(cfg, legacy=True)
    {'head_dim': 64, 'rope_theta': 1000000.0, 'rope_scaling': {'rope_type': 'linear', 'factor': 8.0}}
    >>> numrope.RopeConfig.from_hf(cfg.to_hf()) == cfg
    True
    """
    if not all(hasattr(cfg, name) for name in ("head_dim", "base", "rotary_dim", "layout", "scaling")):
        raise TypeError(f"cfg must be a numrope.RopeConfig, got {type(cfg).__name__}")
    if getattr(cfg, "axes", None) is not None:  # multi-axis RoPE: numrope.models.multiaxis
        return _multiaxis.rope_config_to_hf(cfg, rope_config_to_hf, legacy=legacy)
    out: dict = {"head_dim": cfg.head_dim}
    params: dict = {
        "rope_type": cfg.scaling.rope_type if cfg.scaling is not None else "default",
        "rope_theta": cfg.base,
    }
    if cfg.rotary_dim != cfg.head_dim:
        params["partial_rotary_factor"] = _fraction(cfg.rotary_dim, cfg.head_dim)
    top: dict = {}
    if cfg.scaling is not None:
        for field in dataclasses.fields(cfg.scaling):
            value = getattr(cfg.scaling, field.name)
            if value is None:
                continue
            key = field.metadata.get("hf_key", field.name)
            if field.metadata.get("hf") == _scaling.TOP_LEVEL["hf"]:
                top[key] = _json_value(value)
            else:
                params[key] = _json_value(value)
    if legacy:
        out["rope_theta"] = params.pop("rope_theta")
        if "partial_rotary_factor" in params:
            out["partial_rotary_factor"] = params.pop("partial_rotary_factor")
        out["rope_scaling"] = params if cfg.scaling is not None else None
    else:
        out["rope_parameters"] = params
    out.update(top)
    if cfg.layout == "interleaved":
        out["rope_interleave"] = True
    return out
