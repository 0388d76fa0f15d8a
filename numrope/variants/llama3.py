"""Llama 3 scaling: frequencies unchanged, smoothed or divided by their wavelength."""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np

from numrope.variants._base import RopeScaling, _check_factor, _count, _set


@dataclasses.dataclass(frozen=True)
class Llama3(RopeScaling):
    """Llama 3.1's scaling: by wavelength, keep the short, divide the long, smooth the middle.

    Parameters
    ----------
    factor : float
        The division for low frequencies (8 in Llama 3.1, 32 in Llama 3.2 1B/3B).
    low_freq_factor, high_freq_factor : float
        Set the wavelength bounds ``L0 / low_freq_factor`` and ``L0 / high_freq_factor``
        (1 and 4 in Llama 3.1). ``high_freq_factor`` must be at least ``low_freq_factor``; Llama 4
        sets them equal, which leaves no smoothed band (a frequency is kept or divided).
    original_max_position_embeddings : int
        The pre-training context length ``L0`` (8192 in Llama 3.1).

    Raises
    ------
    TypeError
        If a field has the wrong type.
    ValueError
        If a factor or length is not positive and finite, or
        ``high_freq_factor < low_freq_factor``.

    Notes
    -----
    With wavelength ``w_i = 2 pi / theta_i``: ``w_i < L0 / high_freq_factor``: unchanged;
    ``w_i > L0 / low_freq_factor``: ``theta_i / factor``; in between, with
    ``a = (L0 / w_i - low_freq_factor) / (high_freq_factor - low_freq_factor)``,
    ``theta_i' = (1 - a) theta_i / factor + a theta_i``. Meta's ``apply_scaling`` in the
    llama-models repository (``models/llama3/reference_impl/model.py``) and transformers'
    ``_compute_llama3_parameters``. For Llama 3.1 8B (base 500000, 64 pairs) 29 pairs are
    unchanged, 29 divided by 8 and 6 smoothed.

    Examples
    --------
    >>> import numpy as np, numrope
    >>> llama3 = numrope.variants.Llama3(
    ...     factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0, original_max_position_embeddings=8192)
    >>> unscaled = numrope.RopeConfig(head_dim=128, base=500000.0).inv_freq()
    >>> [int(n) for n in np.bincount(llama3.bands(unscaled))]  # unchanged, smoothed, divided
    [29, 6, 29]
    """

    factor: float
    low_freq_factor: float
    high_freq_factor: float
    original_max_position_embeddings: int
    rope_type: ClassVar[str] = "llama3"

    def __post_init__(self):
        _set(self, "factor", _check_factor("factor", self.factor))
        _set(self, "low_freq_factor", _check_factor("low_freq_factor", self.low_freq_factor))
        _set(self, "high_freq_factor", _check_factor("high_freq_factor", self.high_freq_factor))
        if self.high_freq_factor < self.low_freq_factor:
            raise ValueError(
                f"high_freq_factor ({self.high_freq_factor:g}) must be at least low_freq_factor "
                f"({self.low_freq_factor:g})"
            )
        _set(
            self,
            "original_max_position_embeddings",
            _count("original_max_position_embeddings", self.original_max_position_embeddings),
        )

    def bands(self, inv_freq: np.ndarray) -> np.ndarray:
        """Which band each unscaled frequency falls in: 0 unchanged, 1 smoothed, 2 divided."""
        wavelen = 2 * math.pi / np.asarray(inv_freq, dtype=np.float64)
        high = self.original_max_position_embeddings / self.high_freq_factor
        low = self.original_max_position_embeddings / self.low_freq_factor
        return np.where(wavelen < high, 0, np.where(wavelen > low, 2, 1))

    def inv_freq(self, inv_freq, cfg, seq_len):
        band = self.bands(inv_freq)
        out = np.where(band == 2, inv_freq / self.factor, inv_freq)
        middle = band == 1
        if middle.any():
            if self.high_freq_factor == self.low_freq_factor:
                raise ValueError(
                    f"a wavelength falls exactly on original_max_position_embeddings / low_freq_factor = "
                    f"{self.original_max_position_embeddings / self.low_freq_factor:g} with low_freq_factor == "
                    "high_freq_factor: Llama 3's smoothing is 0/0 there (NaN in transformers)"
                )
            theta = inv_freq[middle]
            smooth = (self.original_max_position_embeddings / (2 * math.pi / theta) - self.low_freq_factor) / (
                self.high_freq_factor - self.low_freq_factor
            )
            out[middle] = (1 - smooth) * theta / self.factor + smooth * theta
        return out
