"""NTK scaling: vLLM's fixed NTK, the NTK-aware base change once, and from the sequence length (dynamic NTK)."""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np

from numrope.variants._base import (
    TOP_LEVEL,
    RopeScaling,
    _check_factor,
    _check_ntk_dim,
    _count,
    _ntk_inv_freq,
    _real,
    _set,
)


@dataclasses.dataclass(frozen=True)
class NTK(RopeScaling):
    """vLLM's fixed NTK scaling (``rope_type="ntk"``): ``theta_i * factor**(-(2i + 2)/d)``, or mixed with ``mixed_b``.

    Parameters
    ----------
    factor : float
        The scale ``s``: the last pair's frequency is divided by exactly ``s``.
    mixed_b : float, optional
        Mixed NTK scaling: pair ``i`` is divided by ``lambda_i = exp(a (i + 1)**b)`` with
        ``a = ln(s) / (d/2)**b`` (``b = mixed_b``), instead of ``s**((2i + 2)/d)``.

    Raises
    ------
    TypeError
        If a field is not a real number.
    ValueError
        If ``factor`` is not positive and finite, or ``mixed_b`` is not finite.

    Notes
    -----
    vLLM's ``NTKScalingRotaryEmbedding`` (``vllm/model_executor/layers/rotary_embedding/ntk_scaling_rope.py``,
    after Su Jianlin, https://kexue.fm/archives/9706): without ``mixed_b`` the base is multiplied by
    ``s`` and every frequency then divided by ``s**(2/d)``, so ``theta_i' = theta_i s**(-(2i + 2)/d)``
    (``d`` the rotary dimension); with it the base is kept and ``theta_i' = theta_i / lambda_i``.
    ``mixed_b = 1`` gives the same as no ``mixed_b``. This is not the NTK-aware base change of the
    YaRN paper, ``base * s**(d/(d-2))``, which pair 0 keeps unchanged: that is :class:`NTKAware`.

    Examples
    --------
    >>> import numrope
    >>> cfg = numrope.RopeConfig(head_dim=8, scaling=numrope.variants.NTK(factor=16.0))
    >>> inv = cfg.inv_freq() / numrope.RopeConfig(head_dim=8).inv_freq()
    >>> [float(r) for r in inv]  # 16 ** (-(2i + 2) / 8)
    [0.5, 0.25, 0.125, 0.0625]
    """

    factor: float
    mixed_b: float | None = None
    rope_type: ClassVar[str] = "ntk"

    def __post_init__(self):
        _set(self, "factor", _check_factor("factor", self.factor))
        if self.mixed_b is not None:
            _set(self, "mixed_b", _real("mixed_b", self.mixed_b, positive=False))

    def inv_freq(self, inv_freq, cfg, seq_len):
        d = cfg.rotary_dim
        k = np.arange(1, d // 2 + 1, dtype=np.float64)  # i + 1
        if self.mixed_b is None:
            return inv_freq * self.factor ** (-2.0 * k / d)
        a = math.log(self.factor) / (d / 2) ** self.mixed_b
        return inv_freq / np.exp(a * k**self.mixed_b)


@dataclasses.dataclass(frozen=True)
class NTKAware(RopeScaling):
    """The NTK-aware base change, once: ``base * alpha**(d / (d - 2))`` (Hunyuan's ``"dynamic"`` with ``alpha``).

    Parameters
    ----------
    alpha : float
        The lowest frequency is divided by exactly ``alpha`` and the highest is unchanged.

    Raises
    ------
    TypeError
        If ``alpha`` is not a real number.
    ValueError
        If ``alpha`` is not positive and finite, or (on use) ``rotary_dim <= 2``.

    Notes
    -----
    ``theta_i' = (base * a**(d/(d-2)))**(-2i/d) = theta_i * a**(-2i/(d-2))`` with ``a = alpha``
    and ``d`` the rotary dimension: a geometric interpolation from 1 (pair 0) to ``1/a`` (the
    last pair). Proposed by bloc97, "NTK-Aware Scaled RoPE allows LLaMA models to have extended
    (8k+) context size without any fine-tuning" (r/LocalLLaMA, June 2023), and discussed in the
    YaRN paper (Peng et al. 2023, arXiv:2309.00071, section 3.1). vLLM computes it for
    ``{"rope_type": "dynamic", "alpha": a}`` (``DynamicNTKAlphaRotaryEmbedding``, Hunyuan), and
    rotary-embedding-torch and x-transformers for their base rescale factors; it is written back
    to Hugging Face configs in vLLM's form.

    Examples
    --------
    >>> import numrope
    >>> cfg = numrope.RopeConfig(head_dim=8, scaling=numrope.variants.NTKAware(alpha=4.0))
    >>> inv = cfg.inv_freq() / numrope.RopeConfig(head_dim=8).inv_freq()
    >>> [round(float(r), 6) for r in inv]  # 1, then down to exactly 1/4
    [1.0, 0.629961, 0.39685, 0.25]
    """

    alpha: float
    rope_type: ClassVar[str] = "dynamic"

    def __post_init__(self):
        _set(self, "alpha", _check_factor("alpha", self.alpha))

    def check(self, rotary_dim):
        _check_ntk_dim("NTK-aware scaling", rotary_dim)

    def inv_freq(self, inv_freq, cfg, seq_len):
        return _ntk_inv_freq(cfg, self.alpha)


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
