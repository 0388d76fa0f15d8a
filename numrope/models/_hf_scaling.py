"""The scaling variant of a Hugging Face ``rope_scaling`` / ``rope_parameters`` dict (:func:`scaling_from_hf`).

Private to :mod:`numrope.models`; :mod:`numrope.models.hf` re-exports :func:`scaling_from_hf`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import numpy as np

from numrope import variants as _scaling
from numrope.models.families import IGNORED_KEYS

#: Scaling variants that carry ``original_max_position_embeddings``; transformers falls back to
#: ``max_position_embeddings`` when a config leaves it out.
_NEEDS_ORIGINAL = ("yarn", "longrope", "llama3")

#: rope_type names in use that numrope does not implement (NotImplementedError rather than "unknown").
_NOT_IMPLEMENTED_TYPES = {
    "mllama4": "vLLM's Llama 4 vision RoPE (a 2-D RoPE: see numrope.models.multiaxis)",
    "xdrope": "HunYuan-VL's XD-RoPE (see numrope.models.multiaxis)",
    "openpangu": "openPangu's interleaved M-RoPE",
    "deepseek_llama_scaling": "vLLM's DeepSeek Llama scaling",
    "dual_chunk": "dual chunk attention",
}


def real(key, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{key} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{key} must be positive and finite, got {value:g}")
    return value


def positive_int(key, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            value = int(value)
        else:
            raise TypeError(f"{key} must be an int, got {type(value).__name__} {value!r}")
    if value <= 0:
        raise ValueError(f"{key} must be positive, got {value}")
    return int(value)


def _check_keys(params, rope_type, read):
    """NotImplementedError for a key that would change the rotation and that numrope does not read."""
    for key, value in params.items():
        if value is None or key in read or key in IGNORED_KEYS:
            continue
        raise NotImplementedError(
            f"{key} = {value!r} in the parameters of rope_type {rope_type!r}: numrope does not implement it "
            "(keys it reads without effect on the rotation are listed in numrope.models.families.IGNORED_KEYS)"
        )


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
    NotImplementedError
        A key that changes the rotation and that numrope does not implement (named), or a
        ``rope_type`` in use that numrope does not implement. The keys that do not change the
        rotation are listed in :data:`numrope.models.families.IGNORED_KEYS`.

    Notes
    -----
    Follows transformers' ``standardize_rope_params``: ``original_max_position_embeddings``
    comes from the top level of the config if it is there, else from ``params``, else it is
    ``max_position_embeddings``; a YaRN ``factor`` left out is ``max_position_embeddings /
    original_max_position_embeddings``. The names vLLM reads mean what they mean in vLLM:
    ``"su"`` (LongRoPE), ``"deepseek_yarn"`` (YaRN with DeepSeek's attention factor, ``mscale``
    defaulting to 1 and ``mscale_all_dim`` to 0), ``{"rope_type": "dynamic", "alpha": a}``
    (Hunyuan's fixed base change, :class:`numrope.variants.NTKAware`; ``alpha`` wins over
    ``factor``), ``rope_type: "ntk"`` with ``mixed_b`` (:class:`numrope.variants.NTK`), and
    YaRN's ``extrapolation_factor``, ``attn_factor`` and ``apply_yarn_scaling``.
    With ``rope_type`` ``"default"`` the other keys are not read, by transformers or vLLM.

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
    if rope_type in _NOT_IMPLEMENTED_TYPES:
        raise NotImplementedError(f"rope_type {rope_type!r}: {_NOT_IMPLEMENTED_TYPES[rope_type]}, not implemented")
    name = _scaling.ALIASES.get(rope_type, rope_type)
    params = dict(params)
    read = set()
    if name == "dynamic" and params.get("alpha") is not None:
        # vLLM's DynamicNTKAlphaRotaryEmbedding: alpha wins over factor (Hunyuan sets both, factor 1)
        # transformers' compute_ntk_alpha_rope_parameters and vLLM read neither factor nor mscale here
        _check_keys(params, rope_type, {"alpha", "factor", "mscale", "mscale_all_dim"})
        return _scaling.NTKAware(alpha=params["alpha"])
    if name == "yarn" and rope_type == "deepseek_yarn" and params.get("attention_factor") is None:
        # vLLM's DeepseekScalingRotaryEmbedding: mscale defaults to 1 and mscale_all_dim to 0, each used
        # when set (transformers takes the ratio only when both are set and non-zero)
        mscale, mscale_all_dim = params.get("mscale"), params.get("mscale_all_dim")
        if (mscale is None) != (mscale_all_dim is None) or 0 in (mscale, mscale_all_dim):
            factor = real("factor", params.get("factor", 1.0))
            params["attention_factor"] = _scaling.YaRN.deepseek_attention(factor, mscale or 1.0, mscale_all_dim or 0.0)
            params.pop("mscale", None)
            params.pop("mscale_all_dim", None)
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
            params["factor"] = real("max_position_embeddings", longest) / real(
                "original_max_position_embeddings", original
            )
    kwargs = {}
    for field in dataclasses.fields(cls):
        key = field.metadata.get("hf_key", field.name)
        top_level = field.metadata.get("hf") == _scaling.TOP_LEVEL["hf"]
        value = config.get(key) if top_level else params.get(key)
        if not top_level:
            read.add(key)
        if value is None:
            if field.default is dataclasses.MISSING:
                where = "the config" if top_level else f"the parameters of rope_type {rope_type!r}"
                raise ValueError(f"{key} is required in {where} and is missing")
            continue
        kwargs[field.name] = value
    _check_keys(params, rope_type, read)
    return cls(**kwargs)
