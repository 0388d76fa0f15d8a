"""Writing a RopeConfig back as Hugging Face config keys (:meth:`numrope.RopeConfig.to_hf`).

Private to :mod:`numrope.models`; :mod:`numrope.models.hf` re-exports :func:`rope_config_to_hf`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from numrope import variants as _scaling
from numrope.models import multiaxis as _multiaxis


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
        variant holds it; ``rope_interleave: True`` for the interleaved layout. A rotary part at
        the end of the head (``rotary_offset = head_dim - rotary_dim``) is written as multi-head
        latent attention, ``qk_nope_head_dim`` and ``qk_rope_head_dim``, with ``rope_interleave``
        true for ``"interleaved_in_half_out"`` and false for ``"half"`` (DeepSeek-V3's meaning of the
        key) and ``model_type: "deepseek_v2"`` for ``"interleaved"``.
        :meth:`numrope.RopeConfig.from_hf` reads it back to an equal configuration.

    Raises
    ------
    TypeError
        If ``cfg`` is not a RopeConfig.
    NotImplementedError
        For what no Hugging Face key says: ``direction=-1`` (nanochat's model type implies it), a
        rotary part neither at the start nor at the end of the head, ``"interleaved_in_half_out"``
        on part of a head that does not end it.

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
    direction, offset = getattr(cfg, "direction", 1), getattr(cfg, "rotary_offset", 0)
    if direction != 1:
        raise NotImplementedError("direction=-1: no Hugging Face config key says so (nanochat's model type implies it)")
    mla = offset > 0 or cfg.layout == "interleaved_in_half_out"
    if mla and offset + cfg.rotary_dim != cfg.head_dim:
        raise NotImplementedError(
            f"rotary_offset={offset} with rotary_dim={cfg.rotary_dim} of head_dim={cfg.head_dim}"
            + (f", layout {cfg.layout!r}" if cfg.layout == "interleaved_in_half_out" else "")
            + ": Hugging Face configs place the rotary part at the start of the head, or at its end "
            "(multi-head latent attention)"
        )
    if mla:
        out: dict = {"head_dim": cfg.rotary_dim, "qk_nope_head_dim": offset, "qk_rope_head_dim": cfg.rotary_dim}
    else:
        out = {"head_dim": cfg.head_dim}
    params: dict = {
        "rope_type": cfg.scaling.rope_type if cfg.scaling is not None else "default",
        "rope_theta": cfg.base,
    }
    if cfg.rotary_dim != cfg.head_dim and not mla:
        params["partial_rotary_factor"] = _fraction(cfg.rotary_dim, cfg.head_dim)
    top: dict = {}
    if cfg.scaling is not None:
        for field in dataclasses.fields(cfg.scaling):
            value = getattr(cfg.scaling, field.name)
            if value is None or (field.metadata.get("omit_default") and value == field.default):
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
    if mla and cfg.layout == "interleaved":
        out["model_type"] = "deepseek_v2"  # complex pairs on the latent attention's rope part
    elif mla:
        out["rope_interleave"] = cfg.layout == "interleaved_in_half_out"
    elif cfg.layout == "interleaved":
        out["rope_interleave"] = True
    return out
