"""The base class of the scaling variants and the argument checks they share."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

#: Field metadata marking a value that Hugging Face configs keep at the top level of config.json
#: (not inside ``rope_scaling`` / ``rope_parameters``).
TOP_LEVEL = {"hf": "top-level"}


#: Field metadata of ``attention_scaling``, which Hugging Face configs call ``attention_factor``
#: (a name the variants' ``attention_factor(cfg)`` method already takes).
ATTENTION_FACTOR = {"hf_key": "attention_factor"}

#: Field metadata of the keys only vLLM reads: written back to a config only where they differ from
#: their default (transformers warns about keys it does not know).
VLLM_ONLY = {"omit_default": True}


class RopeScaling:
    """Base of the scaling variants: a frozen description that transforms ``inv_freq``.

    Subclasses are frozen dataclasses whose fields are named as in Hugging Face configs. The
    contract :class:`numrope.RopeConfig` relies on:

    * ``check(rotary_dim)`` raises ValueError if the variant cannot serve that rotary dimension;
    * ``inv_freq(unscaled, cfg, seq_len)`` returns the scaled float64 frequencies, one per pair,
      as a new array; ``seq_len`` is ``None`` or a positive int and matters only where
      ``depends_on_seq_len`` is true;
    * ``attention_factor(cfg)`` returns the factor folded into cos and sin;
    * ``rope_type`` names the variant as in ``rope_scaling["rope_type"]``.
    """

    rope_type: ClassVar[str] = ""
    depends_on_seq_len: ClassVar[bool] = False

    def check(self, rotary_dim: int) -> None:
        """Raise ValueError if the variant cannot be used with ``rotary_dim``."""

    def inv_freq(self, inv_freq: np.ndarray, cfg, seq_len: int | None) -> np.ndarray:
        """The scaled frequencies, float64, from the unscaled ``inv_freq`` of ``cfg``."""
        raise NotImplementedError

    def attention_factor(self, cfg) -> float:
        """The factor folded into cos and sin (1.0 unless the variant says otherwise)."""
        return 1.0


def _real(name, value, *, positive=True, allow_zero=False):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if positive and (value < 0 or (value == 0 and not allow_zero)):
        kind = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be {kind}, got {value:g}")
    return value


def _check_factor(name, value, minimum=None):
    value = _real(name, value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value:g}")
    return value


def _count(name, value):
    """A positive integer length; integral floats (4096.0) are accepted."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if isinstance(value, (float, np.floating)) and not float(value).is_integer():
        raise ValueError(f"{name} must be a whole number, got {value}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return int(value)


def _factors(name, values):
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise TypeError(f"{name} must be a list of numbers, got {type(values).__name__} {values!r}")
    return tuple(_real(f"{name}[{i}]", v) for i, v in enumerate(values))


def _set(obj, name, value):
    object.__setattr__(obj, name, value)


def _pair_exponents(cfg):
    """2i/d for the pairs i = 0 .. d/2-1, float64 (d the rotary dimension)."""
    return np.arange(0, cfg.rotary_dim, 2, dtype=np.float64) / cfg.rotary_dim


def _ntk_inv_freq(cfg, scale):
    """Frequencies of the NTK-aware base change ``base * scale**(d/(d-2))``."""
    d = cfg.rotary_dim
    base = cfg.base * scale ** (d / (d - 2))
    return np.power(base, -_pair_exponents(cfg))


def _check_ntk_dim(name, rotary_dim):
    if rotary_dim <= 2:
        raise ValueError(f"{name} changes the base by an exponent d/(d-2) and needs rotary_dim > 2, got {rotary_dim}")
