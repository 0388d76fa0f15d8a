"""Long-context scaling variants of RoPE: each transforms the frequencies and the attention factor.

A variant is a frozen dataclass whose fields carry the names Hugging Face transformers uses in
``rope_scaling`` / ``rope_parameters`` (``factor``, ``original_max_position_embeddings``,
``beta_fast``, ...), so that a ``config.json`` maps onto it key for key (see :mod:`numrope.models.hf`).
Pass one as ``RopeConfig(..., scaling=...)``; ``scaling=None`` is plain RoPE (``rope_type``
``"default"``).

Every variant receives the unscaled float64 frequencies ``theta_i = base**(-2i/d)`` (``d`` the
rotary dimension) and returns the scaled ones, computed in float64; the attention factor it
reports is folded into cos and sin by :func:`numrope.rope_cache` and :func:`numrope.apply_rope`, as
transformers does.

========================  ===================  =====================================================
class                     ``rope_type``        what changes
========================  ===================  =====================================================
:class:`Linear`           ``linear``           every frequency divided by ``factor``
:class:`NTK`              ``ntk``              vLLM's: ``theta_i factor**(-(2i+2)/d)``, or mixed
                                               with ``mixed_b``
:class:`NTKAware`         ``dynamic`` with     the base, once: ``base * alpha**(d/(d-2))``
                          ``alpha``            (Hunyuan, as vLLM reads it)
:class:`DynamicNTK`       ``dynamic``          the base, from the sequence length
:class:`YaRN`             ``yarn``             a per-pair ramp between unchanged and divided;
                                               attention factor ``0.1 ln(s) + 1`` (or DeepSeek's)
:class:`LongRoPE`         ``longrope``         per-pair factors, short or long by sequence length;
                                               attention factor ``sqrt(1 + ln s / ln L0)``
:class:`Llama3`           ``llama3``           by wavelength: unchanged, smoothed or divided
:class:`Proportional`     ``proportional``     the first pairs, exponents over the whole head; the
                                               others do not turn (Gemma 4)
========================  ===================  =====================================================
"""

from __future__ import annotations

from numrope.variants._base import ATTENTION_FACTOR, TOP_LEVEL, RopeScaling
from numrope.variants.linear import Linear
from numrope.variants.llama3 import Llama3
from numrope.variants.longrope import LongRoPE
from numrope.variants.ntk import NTK, DynamicNTK, NTKAware
from numrope.variants.proportional import Proportional
from numrope.variants.xpos import XPos
from numrope.variants.yarn import YaRN

__all__ = [
    "ALIASES",
    "ATTENTION_FACTOR",
    "TOP_LEVEL",
    "NTK",
    "NTKAware",
    "VARIANTS",
    "DynamicNTK",
    "Linear",
    "Llama3",
    "LongRoPE",
    "Proportional",
    "RopeScaling",
    "XPos",
    "YaRN",
]

#: The variants by ``rope_type``; ``"default"`` (plain RoPE) is ``scaling=None``.
VARIANTS: dict[str, type[RopeScaling]] = {
    cls.rope_type: cls for cls in (Linear, NTK, DynamicNTK, YaRN, LongRoPE, Llama3, Proportional)
}

#: xPos (:class:`XPos`) is no rope_type of Hugging Face configs, and not listed above.

#: Other names for the same variants in configs in use: Phi-3's first name for LongRoPE, and
#: vLLM's name for DeepSeek's YaRN (the same formulas).
ALIASES: dict[str, str] = {"su": "longrope", "deepseek_yarn": "yarn"}
