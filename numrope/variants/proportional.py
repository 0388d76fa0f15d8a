"""Proportional RoPE (Gemma 4): a leading share of the pairs rotates, with exponents over the whole head."""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np

from numrope.variants._base import RopeScaling, _check_factor, _real, _set


@dataclasses.dataclass(frozen=True)
class Proportional(RopeScaling):
    """Proportional RoPE: the first pairs turn as in plain RoPE over the whole head, the others not at all.

    Use it with ``rotary_dim`` equal to the head size: pair ``i`` turns by
    ``theta_i = base**(-2i / head_dim) / factor`` for ``i < floor(partial_rotary_factor * head_dim / 2)``
    and by 0 beyond (its features pass through unchanged).

    Parameters
    ----------
    partial_rotary_factor : float
        The share of the pairs that rotate, in (0, 1].
    factor : float, default 1.0
        Divides every frequency (as :class:`Linear` does).

    Raises
    ------
    TypeError
        If a field is not a real number.
    ValueError
        If ``partial_rotary_factor`` is not in (0, 1] or ``factor`` is not positive and finite.

    Notes
    -----
    transformers' ``_compute_proportional_rope_parameters`` (rope_type ``"proportional"``, Gemma 4's
    full-attention layers): unlike ``partial_rotary_factor`` elsewhere, which shortens the rotary part
    and takes the exponents ``2i / rotary_dim`` over it, the exponents stay ``2i / head_dim`` and the
    frequencies of the remaining pairs are zero. In the ``"half"`` layout the rotating features are
    then ``0 .. n - 1`` and ``head_dim/2 .. head_dim/2 + n - 1``: two blocks, not one.

    Examples
    --------
    >>> import numrope
    >>> cfg = numrope.RopeConfig(head_dim=8, scaling=numrope.variants.Proportional(partial_rotary_factor=0.5))
    >>> [float(t) for t in cfg.inv_freq()]  # 10000 ** (-2i / 8) for the first 2 of 4 pairs
    [1.0, 0.1, 0.0, 0.0]
    """

    partial_rotary_factor: float
    factor: float = 1.0
    rope_type: ClassVar[str] = "proportional"

    def __post_init__(self):
        p = _real("partial_rotary_factor", self.partial_rotary_factor)
        if not 0 < p <= 1:
            raise ValueError(f"partial_rotary_factor must be in (0, 1], got {p:g}")
        _set(self, "partial_rotary_factor", p)
        _set(self, "factor", _check_factor("factor", self.factor))

    def n_rotating(self, head_dim: int) -> int:
        """How many pairs turn: ``floor(partial_rotary_factor * head_dim / 2)``, as transformers counts them."""
        return math.floor(self.partial_rotary_factor * head_dim / 2)

    def inv_freq(self, inv_freq, cfg, seq_len):
        out = np.array(inv_freq, dtype=np.float64) / self.factor
        out[self.n_rotating(cfg.rotary_dim) :] = 0.0
        return out
