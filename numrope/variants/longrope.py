"""LongRoPE (Phi-3): per-pair factors, short or long by the sequence length, and an attention factor."""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np

from numrope.variants._base import (
    ATTENTION_FACTOR,
    TOP_LEVEL,
    RopeScaling,
    _check_factor,
    _count,
    _factors,
    _real,
    _set,
)


@dataclasses.dataclass(frozen=True)
class LongRoPE(RopeScaling):
    """LongRoPE: a searched rescale factor per pair, one set for short and one for long sequences.

    Parameters
    ----------
    short_factor, long_factor : sequence of float
        One factor per pair (``rotary_dim / 2`` of them); the frequency of pair ``i`` is divided
        by factor ``i``.
    original_max_position_embeddings : int
        The pre-training context length ``L0``: sequences longer than it use ``long_factor``.
    factor : float, optional
        The scale ``s`` for the attention factor. Default ``max_position_embeddings / L0``.
    attention_scaling : float, optional
        The factor folded into cos and sin (``attention_factor`` in Hugging Face configs).
        Default ``sqrt(1 + ln s / ln L0)`` (1 if ``s <= 1``).
    max_position_embeddings : int, optional
        The extended context length (a top-level key of config.json); needed only to derive
        ``s`` when neither ``factor`` nor ``attention_scaling`` is given.
    short_mscale, long_mscale : float, optional
        vLLM's attention factors of the short and the long regime
        (``Phi3LongRoPEScaledRotaryEmbedding``); each defaults to the attention factor above. numrope
        folds one attention factor into cos and sin whatever the sequence length, so the two must
        agree (or only one be given, with ``attention_scaling`` unset or equal).

    Raises
    ------
    TypeError
        If a field has the wrong type.
    ValueError
        If a factor or length is not positive and finite, none of ``factor``,
        ``attention_scaling`` and ``max_position_embeddings`` is given, or (on use) a factor list
        does not have ``rotary_dim / 2`` entries.
    NotImplementedError
        If ``short_mscale`` and ``long_mscale`` give the two regimes different attention factors.

    Notes
    -----
    Ding et al. 2024, *LongRoPE: Extending LLM Context Window Beyond 2 Million Tokens*
    (arXiv:2402.13753); as shipped in Phi-3 (``rope_type`` ``"longrope"``, first ``"su"``) and
    computed by transformers' ``_compute_longrope_parameters``:
    ``theta_i' = theta_i / lambda_i`` with ``lambda = long_factor`` when the sequence length
    exceeds ``L0`` and ``short_factor`` otherwise (and when no length is given). Which length
    counts differs between frameworks: transformers takes ``max(position_ids) + 1`` of each
    forward pass, recent vLLM its maximum model length, llama.cpp the context size per sequence
    (``n_ctx / n_seq_max``). Pass it as ``seq_len``; :func:`numrope.rope_cache` and
    :func:`numrope.apply_rope` otherwise use the largest position plus one, as transformers does
    for one pass (see the documentation page on sequence-length policies).

    Examples
    --------
    >>> import numrope
    >>> lr = numrope.variants.LongRoPE(
    ...     short_factor=[1.0, 1.0], long_factor=[1.0, 4.0],
    ...     original_max_position_embeddings=4096, max_position_embeddings=131072)
    >>> cfg = numrope.RopeConfig(head_dim=4, scaling=lr)
    >>> round(cfg.attention_scaling, 6)  # sqrt(1 + ln 32 / ln 4096)
    1.190238
    >>> [float(t) for t in cfg.inv_freq(seq_len=4096)], [float(t) for t in cfg.inv_freq(seq_len=4097)]
    ([1.0, 0.01], [1.0, 0.0025])
    """

    short_factor: tuple[float, ...]
    long_factor: tuple[float, ...]
    original_max_position_embeddings: int
    factor: float | None = None
    attention_scaling: float | None = dataclasses.field(default=None, metadata=ATTENTION_FACTOR)
    max_position_embeddings: int | None = dataclasses.field(default=None, metadata=TOP_LEVEL)
    short_mscale: float | None = None
    long_mscale: float | None = None
    rope_type: ClassVar[str] = "longrope"
    depends_on_seq_len: ClassVar[bool] = True

    def __post_init__(self):
        _set(self, "short_factor", _factors("short_factor", self.short_factor))
        _set(self, "long_factor", _factors("long_factor", self.long_factor))
        _set(
            self,
            "original_max_position_embeddings",
            _count("original_max_position_embeddings", self.original_max_position_embeddings),
        )
        if self.factor is not None:
            _set(self, "factor", _check_factor("factor", self.factor))
        if self.attention_scaling is not None:
            _set(self, "attention_scaling", _real("attention_scaling (attention_factor)", self.attention_scaling))
        if self.max_position_embeddings is not None:
            _set(self, "max_position_embeddings", _count("max_position_embeddings", self.max_position_embeddings))
        for name in ("short_mscale", "long_mscale"):
            if getattr(self, name) is not None:
                _set(self, name, _real(name, getattr(self, name)))
        given = {v for v in (self.short_mscale, self.long_mscale) if v is not None}
        if len(given) == 1 and self.attention_scaling is None and None in (self.short_mscale, self.long_mscale):
            default = self._derived_factor()
            if default is not None and default not in given:
                given.add(default)
        if len(given) > 1 or (given and self.attention_scaling is not None and self.attention_scaling not in given):
            raise NotImplementedError(
                f"short_mscale={self.short_mscale}, long_mscale={self.long_mscale}"
                + (f", attention_factor={self.attention_scaling}" if self.attention_scaling is not None else "")
                + ": different attention factors for short and long sequences; numrope folds one into cos and sin"
            )
        if (
            self.factor is None
            and self.attention_scaling is None
            and self.max_position_embeddings is None
            and not given
        ):
            raise ValueError(
                "LongRoPE needs factor, attention_factor (attention_scaling) or max_position_embeddings "
                "to set the attention factor"
            )

    def check(self, rotary_dim):
        for name in ("short_factor", "long_factor"):
            n = len(getattr(self, name))
            if n != rotary_dim // 2:
                raise ValueError(
                    f"{name} must have one entry per rotating pair, rotary_dim / 2 = {rotary_dim // 2}, got {n}"
                )

    def uses_long_factor(self, seq_len: int | None) -> bool:
        """Whether a sequence of length ``seq_len`` uses ``long_factor`` (``seq_len > L0``)."""
        return seq_len is not None and seq_len > self.original_max_position_embeddings

    def inv_freq(self, inv_freq, cfg, seq_len):
        factors = self.long_factor if self.uses_long_factor(seq_len) else self.short_factor
        return inv_freq / np.asarray(factors, dtype=np.float64)

    def attention_factor(self, cfg):
        if self.attention_scaling is not None:
            return self.attention_scaling
        for mscale in (self.short_mscale, self.long_mscale):
            if mscale is not None:
                return mscale
        return self._derived_factor()

    def _derived_factor(self):
        """``sqrt(1 + ln s / ln L0)`` (1 for ``s <= 1``); None where neither ``factor`` nor
        ``max_position_embeddings`` gives ``s``."""
        if self.factor is None and self.max_position_embeddings is None:
            return None
        scale = self.factor
        if scale is None:
            scale = self.max_position_embeddings / self.original_max_position_embeddings
        if scale <= 1.0:
            return 1.0
        return math.sqrt(1 + math.log(scale) / math.log(self.original_max_position_embeddings))
