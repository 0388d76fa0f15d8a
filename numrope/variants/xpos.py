"""xPos: RoPE whose queries grow and keys shrink with the position, by a per-pair factor."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from numrope.variants._base import RopeScaling, _real, _set


@dataclasses.dataclass(frozen=True)
class XPos(RopeScaling):
    """xPos (Sun et al. 2022): queries times ``zeta_i ** ((m - center) / scale_base)``, keys times its inverse.

    The frequencies are those of plain RoPE; on top of the rotation, pair ``i`` of a query at position
    ``m`` is multiplied by ``zeta_i ** ((m - center) / scale_base)`` and pair ``i`` of a key by
    ``zeta_i ** (-(m - center) / scale_base)``, with ``zeta_i = (2i + gamma d) / ((1 + gamma) d)`` (``d``
    the rotary dimension). In ``q_m . k_n`` the factors leave ``zeta_i ** ((m - n) / scale_base)``: an
    exponential decay with the distance, slower for the fast pairs. Queries and keys are scaled apart,
    so :func:`numrope.apply_rope_qk` applies it and :func:`numrope.apply_rope` refuses it.

    Parameters
    ----------
    scale_base : float, default 512
        The distance over which ``zeta_i`` applies once.
    center : float, default 0
        The position whose factor is 1. rotary-embedding-torch (``use_xpos``), flash-attn's
        ``RotaryEmbedding(scale_base=...)`` and torchscale's ``XPOS`` count from the middle of the
        sequence they are given: ``center = seq_len // 2`` reproduces their outputs for positions
        ``0 .. seq_len - 1``; the dot products do not depend on it.
    gamma : float, default 0.4
        Sets ``zeta_i``; 0.4 in the paper and every implementation.

    Raises
    ------
    TypeError
        If a field is not a real number.
    ValueError
        If ``scale_base`` or ``gamma`` is not positive and finite, or ``center`` not finite.

    Notes
    -----
    Sun, Dong, Patra, Ma, Huang, Benhaim, Chaudhary, Song and Wei 2022, *A Length-Extrapolatable
    Transformer* (arXiv:2212.10554), eq. 8 and section 3.2. xPos is no ``rope_type`` of Hugging Face
    configs: :meth:`numrope.RopeConfig.from_hf` never returns it.

    Examples
    --------
    >>> import numpy as np, numrope
    >>> cfg = numrope.RopeConfig(head_dim=4, scaling=numrope.variants.XPos(scale_base=2.0))
    >>> [round(float(z), 6) for z in cfg.scaling.zeta(cfg)]  # (2i + 1.6) / 5.6
    [0.285714, 0.642857]
    >>> q, k = np.ones((1, 3, 1, 4)), np.ones((1, 3, 1, 4))
    >>> q2, k2 = numrope.apply_rope_qk(q, k, cfg)
    >>> bool(np.allclose((q2 * k2).sum(-1), (q * k).sum(-1)))  # same position: the factors cancel
    True
    """

    scale_base: float = 512.0
    center: float = 0.0
    gamma: float = 0.4
    rope_type: ClassVar[str] = "xpos"
    scales_qk: ClassVar[bool] = True

    def __post_init__(self):
        _set(self, "scale_base", _real("scale_base", self.scale_base))
        _set(self, "center", _real("center", self.center, positive=False))
        _set(self, "gamma", _real("gamma", self.gamma))

    def inv_freq(self, inv_freq, cfg, seq_len):
        return np.array(inv_freq, dtype=np.float64)

    def zeta(self, cfg) -> np.ndarray:
        """``zeta_i = (2i + gamma d) / ((1 + gamma) d)`` per pair, float64."""
        d = cfg.rotary_dim
        return (np.arange(0, d, 2, dtype=np.float64) + self.gamma * d) / ((1 + self.gamma) * d)

    def query_factors(self, cfg, positions) -> np.ndarray:
        """``zeta_i ** ((m - center) / scale_base)``, shape ``positions.shape + (n_pairs,)``: the queries'
        factors (the keys' are their inverses)."""
        power = (np.asarray(positions, dtype=np.float64) - self.center) / self.scale_base
        return self.zeta(cfg) ** power[..., None]
