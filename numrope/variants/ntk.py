"""NTK-aware scaling: a larger base, once (NTK) or from the sequence length (dynamic NTK)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from numrope.variants._base import TOP_LEVEL, RopeScaling, _check_factor, _check_ntk_dim, _count, _ntk_inv_freq, _set


@dataclasses.dataclass(frozen=True)
class NTK(RopeScaling):
    """Fixed NTK-aware scaling: a larger base, ``base * factor**(d / (d - 2))``.

    Parameters
    ----------
    factor : float
        The ``alpha`` of the NTK-aware method: the lowest frequency is divided by exactly
        ``factor`` and the highest is unchanged.

    Raises
    ------
    TypeError
        If ``factor`` is not a real number.
    ValueError
        If ``factor`` is not positive and finite, or (on use) ``rotary_dim <= 2``.

    Notes
    -----
    ``theta_i' = (base * a**(d/(d-2)))**(-2i/d) = theta_i * a**(-2i/(d-2))`` with ``a = factor``
    and ``d`` the rotary dimension: a geometric interpolation from 1 (pair 0) to ``1/a`` (the
    last pair). Proposed by bloc97, "NTK-Aware Scaled RoPE allows LLaMA models to have extended
    (8k+) context size without any fine-tuning" (r/LocalLLaMA, June 2023), and discussed in the
    YaRN paper (Peng et al. 2023, arXiv:2309.00071, section 3.1). ``rope_type="dynamic"`` with an
    ``alpha`` key in vLLM (Hunyuan) computes this same base. vLLM's ``rope_type="ntk"`` is a
    different formula: it multiplies the base by ``a`` and then divides every frequency by
    ``a**(2/d)``, i.e. ``theta_i * a**(-(2i+2)/d)``.

    Examples
    --------
    >>> import numrope
    >>> cfg = numrope.RopeConfig(head_dim=8, scaling=numrope.variants.NTK(factor=4.0))
    >>> inv = cfg.inv_freq() / numrope.RopeConfig(head_dim=8).inv_freq()
    >>> [round(float(r), 6) for r in inv]  # 1, then down to exactly 1/4
    [1.0, 0.629961, 0.39685, 0.25]
    """

    factor: float
    rope_type: ClassVar[str] = "ntk"

    def __post_init__(self):
        _set(self, "factor", _check_factor("factor", self.factor))

    def check(self, rotary_dim):
        _check_ntk_dim("NTK scaling", rotary_dim)

    def inv_freq(self, inv_freq, cfg, seq_len):
        return _ntk_inv_freq(cfg, self.factor)


@dataclasses.dataclass(frozen=True)
class DynamicNTK(RopeScaling):
    """Dynamic NTK scaling: the base grows with the sequence length once it passes the trained one.

    Parameters
    ----------
    factor : float
        The scaling factor ``a``.
    max_position_embeddings : int
        The length ``L0`` the model was trained on (a top-level key of config.json).

    Raises
    ------
    TypeError
        If a field has the wrong type.
    ValueError
        If ``factor`` is not positive and finite, ``max_position_embeddings`` is not a positive
        whole number, or (on use) ``rotary_dim <= 2``.

    Notes
    -----
    For a sequence length ``L`` (``L0`` when not given, and at least ``L0``),
    ``base' = base * (a L / L0 - (a - 1))**(d/(d-2))``; at ``L <= L0`` the frequencies are the
    unscaled ones. By emozilla, "Dynamically Scaled RoPE further increases performance of long
    context LLaMA with zero fine-tuning" (r/LocalLLaMA, June 2023); transformers'
    ``_compute_dynamic_ntk_parameters``. The frequencies depend on ``seq_len``, and frameworks
    choose it differently: transformers on each forward pass (the longest ``max(position_ids) + 1``
    since the frequencies were last reset), vLLM once for its one cos/sin table; llama.cpp has no
    dynamic NTK. Pass it explicitly to :func:`numrope.rope_cache` and :func:`numrope.apply_rope`,
    which otherwise use the largest position plus one (see the documentation page on
    sequence-length policies).

    Examples
    --------
    >>> import numrope
    >>> dyn = numrope.variants.DynamicNTK(factor=2.0, max_position_embeddings=2048)
    >>> cfg = numrope.RopeConfig(head_dim=8, scaling=dyn)
    >>> bool((cfg.inv_freq(seq_len=2048) == numrope.RopeConfig(head_dim=8).inv_freq()).all())
    True
    >>> round(float(cfg.inv_freq(seq_len=4096)[-1] / cfg.inv_freq(seq_len=2048)[-1]), 6)  # 1/3
    0.333333
    """

    factor: float
    max_position_embeddings: int = dataclasses.field(metadata=TOP_LEVEL)
    rope_type: ClassVar[str] = "dynamic"
    depends_on_seq_len: ClassVar[bool] = True

    def __post_init__(self):
        _set(self, "factor", _check_factor("factor", self.factor))
        _set(self, "max_position_embeddings", _count("max_position_embeddings", self.max_position_embeddings))

    def check(self, rotary_dim):
        _check_ntk_dim("dynamic NTK scaling", rotary_dim)

    def inv_freq(self, inv_freq, cfg, seq_len):
        length = self.max_position_embeddings if seq_len is None else max(int(seq_len), self.max_position_embeddings)
        if length == self.max_position_embeddings:
            return np.array(inv_freq, dtype=np.float64)
        a = self.factor
        return _ntk_inv_freq(cfg, a * length / self.max_position_embeddings - (a - 1))
