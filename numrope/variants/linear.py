"""Linear scaling (position interpolation): every frequency divided by the factor."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from numrope.variants._base import RopeScaling, _check_factor, _set


@dataclasses.dataclass(frozen=True)
class Linear(RopeScaling):
    """Position interpolation: every frequency divided by ``factor``.

    Parameters
    ----------
    factor : float
        The interpolation factor ``s``; positions ``0 .. s*L`` then rotate as ``0 .. L`` did.

    Raises
    ------
    TypeError
        If ``factor`` is not a real number.
    ValueError
        If ``factor`` is not positive and finite.

    Notes
    -----
    ``theta_i' = theta_i / s``, i.e. position ``m`` is read as ``m / s``. Chen et al. 2023,
    *Extending Context Window of Large Language Models via Positional Interpolation*
    (arXiv:2306.15595), eq. 2; transformers' ``rope_type="linear"``. Gemma 3 uses it (``s = 8``)
    on its global-attention layers.

    Examples
    --------
    >>> import numrope
    >>> cfg = numrope.RopeConfig(head_dim=8, scaling=numrope.variants.Linear(factor=4.0))
    >>> [round(float(t), 6) for t in cfg.inv_freq()]
    [0.25, 0.025, 0.0025, 0.00025]
    """

    factor: float
    rope_type: ClassVar[str] = "linear"

    def __post_init__(self):
        _set(self, "factor", _check_factor("factor", self.factor))

    def inv_freq(self, inv_freq, cfg, seq_len):
        return inv_freq / self.factor
