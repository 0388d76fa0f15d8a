"""YaRN: a per-pair ramp between unchanged and interpolated frequencies, and an attention factor."""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np

from numrope.variants._base import ATTENTION_FACTOR, VLLM_ONLY, RopeScaling, _check_factor, _count, _real, _set


def _yarn_mscale(scale, mscale=1.0):
    """YaRN's attention temperature 0.1 * mscale * ln(s) + 1 (1 for s <= 1)."""
    if scale <= 1:
        return 1.0
    return 0.1 * mscale * math.log(scale) + 1.0


@dataclasses.dataclass(frozen=True)
class YaRN(RopeScaling):
    """YaRN: interpolate the low frequencies, keep the high ones, ramp in between; scale attention.

    Parameters
    ----------
    factor : float
        The scale ``s`` (new context length over ``L0``).
    original_max_position_embeddings : int
        The pre-training context length ``L0``.
    beta_fast, beta_slow : float, default 32 and 1
        Rotation counts over ``L0`` that bound the ramp: pairs that turn more than ``beta_fast``
        times are left unchanged, pairs that turn fewer than ``beta_slow`` times are divided by
        ``s``.
    truncate : bool, default True
        Round the ramp bounds outwards to whole pairs (floor and ceil), as the YaRN reference code
        and DeepSeek do; gpt-oss sets ``False``.
    attention_scaling : float, optional
        The factor folded into cos and sin (``attention_factor`` in Hugging Face configs).
        Default: ``0.1 ln(s) + 1``, or, where ``mscale`` and ``mscale_all_dim`` are both set and
        non-zero, DeepSeek's ratio ``(0.1 mscale ln s + 1) / (0.1 mscale_all_dim ln s + 1)``.
    mscale, mscale_all_dim : float, optional
        DeepSeek-V2/V3's attention-temperature coefficients.
    extrapolation_factor : float, default 1
        vLLM's weight of the unchanged frequencies in the ramp: pair ``i`` mixes ``theta_i`` and
        ``theta_i / s`` with weights ``e (1 - g_i)`` and ``1 - e (1 - g_i)``.
    attn_factor : float, default 1
        vLLM's multiplier of the attention factor.
    apply_yarn_scaling : bool, default True
        vLLM's switch for the attention factor ``0.1 ln(s) + 1``: without it only ``attn_factor`` is
        folded into cos and sin.

    Raises
    ------
    TypeError
        If a field has the wrong type.
    ValueError
        If a factor or length is not positive and finite, ``beta_fast < beta_slow``, or
        ``apply_yarn_scaling`` is false together with ``attention_scaling``, ``mscale`` or ``mscale_all_dim``.

    Notes
    -----
    Peng, Quesnelle, Fan and Shippole 2023, *YaRN: Efficient Context Window Extension of Large
    Language Models* (arXiv:2309.00071), eqs. 17-23. With ``d`` the rotary dimension and
    ``b`` the base, the correction dimension of ``r`` rotations is
    ``c(r) = d ln(L0 / (2 pi r)) / (2 ln b)``; ``lo = c(beta_fast)``, ``hi = c(beta_slow)``,
    floored and ceiled when ``truncate``, clamped to ``[0, d - 1]`` (``hi`` is nudged by
    0.001 if the two are equal). The ramp is ``g_i = clip((i - lo) / (hi - lo), 0, 1)`` over the
    pair index ``i`` and ``theta_i' = theta_i ((1 - g_i) + g_i / s)``: pair ``i <= lo``
    unchanged, ``i >= hi`` divided by ``s``. Transformers' ``_compute_yarn_parameters``
    and vLLM's ``YaRNScalingRotaryEmbedding`` compute the same, in float32. vLLM's extra keys
    (``vllm/model_executor/layers/rotary_embedding/yarn_scaling_rope.py``) generalise it:
    ``theta_i' = theta_i (e (1 - g_i) + (1 - e (1 - g_i)) / s)`` and the attention factor
    ``attn_factor * (0.1 ln(s) + 1)``, or ``attn_factor`` alone without ``apply_yarn_scaling``;
    transformers reads none of the three (it warns and ignores them).

    Examples
    --------
    Qwen2.5 with the ``rope_scaling`` block of its model card:

    >>> import numrope
    >>> yarn = numrope.variants.YaRN(factor=4.0, original_max_position_embeddings=32768)
    >>> cfg = numrope.RopeConfig(head_dim=128, base=1e6, scaling=yarn)
    >>> round(cfg.attention_scaling, 5)  # 0.1 ln 4 + 1
    1.13863
    """

    factor: float
    original_max_position_embeddings: int
    beta_fast: float = 32.0
    beta_slow: float = 1.0
    truncate: bool = True
    attention_scaling: float | None = dataclasses.field(default=None, metadata=ATTENTION_FACTOR)
    mscale: float | None = None
    mscale_all_dim: float | None = None
    extrapolation_factor: float = dataclasses.field(default=1.0, metadata=VLLM_ONLY)
    attn_factor: float = dataclasses.field(default=1.0, metadata=VLLM_ONLY)
    apply_yarn_scaling: bool = dataclasses.field(default=True, metadata=VLLM_ONLY)
    rope_type: ClassVar[str] = "yarn"

    def __post_init__(self):
        _set(self, "factor", _check_factor("factor", self.factor))
        _set(
            self,
            "original_max_position_embeddings",
            _count("original_max_position_embeddings", self.original_max_position_embeddings),
        )
        _set(self, "beta_fast", _real("beta_fast", self.beta_fast))
        _set(self, "beta_slow", _real("beta_slow", self.beta_slow))
        if self.beta_fast < self.beta_slow:
            raise ValueError(
                f"beta_fast ({self.beta_fast:g}) must be at least beta_slow ({self.beta_slow:g}): "
                "pairs turning more than beta_fast times over the original context stay unchanged"
            )
        if not isinstance(self.truncate, (bool, np.bool_)):
            raise TypeError(f"truncate must be True or False, got {type(self.truncate).__name__} {self.truncate!r}")
        _set(self, "truncate", bool(self.truncate))
        if self.attention_scaling is not None:
            _set(self, "attention_scaling", _real("attention_scaling (attention_factor)", self.attention_scaling))
        for name in ("mscale", "mscale_all_dim"):
            value = getattr(self, name)
            if value is not None:
                _set(self, name, _real(name, value, allow_zero=True))
        _set(self, "extrapolation_factor", _real("extrapolation_factor", self.extrapolation_factor, positive=False))
        _set(self, "attn_factor", _real("attn_factor", self.attn_factor))
        if not isinstance(self.apply_yarn_scaling, (bool, np.bool_)):
            raise TypeError(f"apply_yarn_scaling must be True or False, got {self.apply_yarn_scaling!r}")
        _set(self, "apply_yarn_scaling", bool(self.apply_yarn_scaling))
        if not self.apply_yarn_scaling and (
            self.attention_scaling is not None or self.mscale is not None or self.mscale_all_dim is not None
        ):
            raise ValueError(
                "apply_yarn_scaling=False leaves attn_factor as the attention factor: it cannot be given with "
                "attention_scaling (attention_factor), mscale or mscale_all_dim"
            )

    @staticmethod
    def deepseek_attention(factor: float, mscale: float, mscale_all_dim: float) -> float:
        """DeepSeek's attention factor ``(0.1 mscale ln s + 1) / (0.1 mscale_all_dim ln s + 1)`` (1 for ``s <= 1``).

        Examples
        --------
        >>> from numrope.variants import YaRN
        >>> YaRN.deepseek_attention(40.0, 1.0, 1.0)
        1.0
        """
        return _yarn_mscale(factor, mscale) / _yarn_mscale(factor, mscale_all_dim)

    def correction_range(self, rotary_dim: int, base: float) -> tuple[float, float]:
        """The ramp's bounds ``(lo, hi)`` in pair-index units, after truncation and clamping.

        Parameters
        ----------
        rotary_dim : int
            The rotary dimension ``d``.
        base : float
            The RoPE base ``b``.

        Returns
        -------
        (float, float)
            ``max(c(beta_fast), 0)`` and ``min(c(beta_slow), d - 1)``, floored and ceiled first
            when ``truncate``.

        Examples
        --------
        >>> import numrope
        >>> yarn = numrope.variants.YaRN(factor=32.0, original_max_position_embeddings=4096)
        >>> yarn.correction_range(64, 150000.0)  # gpt-oss, but with truncation
        (8, 18)
        """

        def dim(rotations):
            return (
                rotary_dim
                * math.log(self.original_max_position_embeddings / (rotations * 2 * math.pi))
                / (2 * math.log(base))
            )

        lo, hi = dim(self.beta_fast), dim(self.beta_slow)
        if self.truncate:
            lo, hi = math.floor(lo), math.ceil(hi)
        return max(lo, 0), min(hi, rotary_dim - 1)

    def ramp(self, rotary_dim: int, base: float) -> np.ndarray:
        """The interpolation weight ``g_i`` of each pair: 0 unchanged, 1 divided by ``factor``.

        Examples
        --------
        >>> import numrope
        >>> yarn = numrope.variants.YaRN(factor=4.0, original_max_position_embeddings=2048)
        >>> yarn.correction_range(16, 10000.0)
        (2, 6)
        >>> yarn.ramp(16, 10000.0).tolist()
        [0.0, 0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
        """
        lo, hi = self.correction_range(rotary_dim, base)
        if lo == hi:
            hi += 0.001  # as the reference code: avoid a zero-width ramp
        return np.clip((np.arange(rotary_dim // 2, dtype=np.float64) - lo) / (hi - lo), 0.0, 1.0)

    def inv_freq(self, inv_freq, cfg, seq_len):
        g = self.ramp(cfg.rotary_dim, cfg.base)
        if self.extrapolation_factor != 1.0:
            kept = (1.0 - g) * self.extrapolation_factor  # vLLM's inv_freq_mask
            return (inv_freq / self.factor) * (1.0 - kept) + inv_freq * kept
        return (inv_freq / self.factor) * g + inv_freq * (1.0 - g)

    def attention_factor(self, cfg):
        if not self.apply_yarn_scaling:
            return self.attn_factor
        if self.attention_scaling is not None:
            a = self.attention_scaling
        elif self.mscale and self.mscale_all_dim:
            a = self.deepseek_attention(self.factor, self.mscale, self.mscale_all_dim)
        else:
            a = _yarn_mscale(self.factor)
        return a * self.attn_factor
