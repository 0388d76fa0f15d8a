"""Writing multi-axis RoPE as Hugging Face config keys (``RopeConfig.to_hf``); part of
:mod:`numrope.models.multiaxis`, which reads them back."""

from __future__ import annotations

import dataclasses

from numrope import axes as _axes


def _recognise(cfg):
    """(kind, sections) of cfg.axes among the families, or None."""
    m = cfg.axes
    n = len(m)
    if m.names == _axes.TEXT_AXES and m.freq == tuple(range(n)):
        c = m.counts()
        candidates = [("sectioned", c, lambda: _axes.sectioned(c)), ("interleaved", c, lambda: _axes.interleaved(c, n))]
        if c[1] == c[2]:
            candidates.append(("ernie", (c[1], c[2], c[0]), lambda: _axes.ernie((c[1], c[2], c[0]))))
        for kind, sections, build in candidates:
            try:
                if build() == m:
                    return kind, sections
            except ValueError:
                continue
    if n % 2 == 0 and len(m.names) == 2:
        for kind, build in (("axial", _axes.axial), ("pixtral", _axes.pixtral)):
            if build(n, names=m.names) == m:
                return kind, ()
    return None


_WRITE_TYPES = {
    ("ernie", "interleaved", _axes.TEXT_AXES): "ernie4_5_vl_moe_text",
    ("axial", "half", ("h", "w")): "qwen2_vl_vision",
    ("axial", "interleaved", ("x", "y")): "llama4_vision_model",
    ("pixtral", "half", ("h", "w")): "pixtral",
}


def rope_config_to_hf(cfg, plain_to_hf, *, legacy: bool = False) -> dict:
    """The Hugging Face keys of a multi-axis configuration (``RopeConfig.to_hf``).

    Parameters
    ----------
    cfg : RopeConfig
        A configuration with ``axes``.
    plain_to_hf : callable
        The writer of the one-axis keys (:func:`numrope.models.hf.rope_config_to_hf`).
    legacy : bool, default False
        The transformers 4.x form (``rope_scaling``).

    Returns
    -------
    dict
        The one-axis keys with ``mrope_section`` (and ``mrope_interleaved: true`` for the
        interleaved map) in the rope dict; a ``model_type`` where the keys alone do not say the map
        (Ernie 4.5 VL, the vision towers: ``qwen2_vl_vision``, ``llama4_vision_model``,
        ``pixtral``). :meth:`numrope.RopeConfig.from_hf` reads it back to an equal configuration.

    Raises
    ------
    NotImplementedError
        A map no transformers model type reads from its config (a custom :class:`~numrope.axes.AxisMap`,
        or a family's map with another layout or axis names), or a vision map with scaling or
        partial rotary.

    Examples
    --------
    >>> import numrope
    >>> cfg = numrope.RopeConfig(128, 1e6, axes=numrope.axes.interleaved([24, 20, 20]))
    >>> cfg.to_hf()["rope_parameters"]
    {'rope_type': 'default', 'rope_theta': 1000000.0, 'mrope_section': [24, 20, 20], 'mrope_interleaved': True}
    """
    found = _recognise(cfg)
    if found is None:
        raise NotImplementedError(
            f"no Hugging Face config describes this axis map ({cfg.axes.pattern()!r} with frequencies "
            f"{list(cfg.axes.freq)}): only the maps of numrope.axes' builders are written"
        )
    kind, sections = found
    out = plain_to_hf(dataclasses.replace(cfg, axes=None), legacy=legacy)
    model_type = _WRITE_TYPES.get((kind, cfg.layout, cfg.axes.names))
    if kind in ("axial", "pixtral"):
        if model_type is None or cfg.scaling is not None or cfg.rotary_dim != cfg.head_dim:
            raise NotImplementedError(
                f"no transformers vision tower rotates the {kind} map with layout {cfg.layout!r}, axes "
                f"{cfg.axes.names}"
                + (", scaling" if cfg.scaling is not None else "")
                + (", partial rotary" if cfg.rotary_dim != cfg.head_dim else "")
            )
        out.pop("rope_interleave", None)
        rope_type = "default" if model_type == "llama4_vision_model" else "axial"
        params = {"rope_type": rope_type, "rope_theta": cfg.base}
        return {"model_type": model_type, "head_dim": cfg.head_dim, "rope_parameters": params}
    if kind == "ernie":
        if model_type is None or cfg.scaling is not None:
            raise NotImplementedError("Ernie 4.5 VL's map is read with the interleaved layout and no scaling only")
        out = {"model_type": model_type, **out}
    extra = {"mrope_section": list(sections)}
    if kind == "interleaved":
        extra["mrope_interleaved"] = True
    if legacy:
        rope_scaling = out.get("rope_scaling") or {"type": "mrope"}
        out["rope_scaling"] = {**rope_scaling, **extra}
    else:
        out["rope_parameters"] = {**out["rope_parameters"], **extra}
    return out
