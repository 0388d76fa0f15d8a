"""The configurations ``numrope verify`` proves its checks on: plain RoPE at several sizes and each scaling variant."""

from __future__ import annotations

import numpy as np

from numrope.config import RopeConfig


def standard_configs(head_dim: int = 128, base: float = 10000.0, seq_len: int = 8192) -> list[tuple[RopeConfig, int]]:
    """The configurations numrope checks: both layouts, partial rotary, every scaling variant.

    Parameters
    ----------
    head_dim : int, default 128
        Head size of every configuration (partial rotary uses half of it).
    base : float, default 10000.0
        Frequency base.
    seq_len : int, default 8192
        The fixed sequence length given with each configuration (used by dynamic NTK).

    Returns
    -------
    list of (RopeConfig, int)
        ``(config, seq_len)`` pairs: plain RoPE in both layouts, partial rotary in both layouts,
        and one configuration per scaling variant in :mod:`numrope.variants`, with
        representative parameters.

    Examples
    --------
    >>> from numrope.checks.configs import standard_configs
    >>> [c.layout for c, _ in standard_configs()][:2]
    ['half', 'interleaved']
    """
    partial = max(2, head_dim // 4 * 2)
    configs = [
        RopeConfig(head_dim, base),
        RopeConfig(head_dim, base, layout="interleaved"),
        RopeConfig(head_dim, base, rotary_dim=partial),
        RopeConfig(head_dim, base, rotary_dim=partial, layout="interleaved"),
    ]
    configs += [RopeConfig(head_dim, base, scaling=v) for v in scaling_examples(head_dim)]
    return [(c, seq_len) for c in configs]


def scaling_examples(head_dim: int = 128) -> list:
    """One representative instance of every scaling variant in :mod:`numrope.variants`.

    Parameters
    ----------
    head_dim : int, default 128
        Head size the instances are for (LongRoPE has one factor per pair).

    Returns
    -------
    list of numrope.variants.RopeScaling
        One instance per variant, in ``rope_type`` order, with parameters like those of models
        that use it (factor 4 over a 2048- or 4096-token context, Llama 3.1's bands, Phi-3-like
        LongRoPE factors).

    Raises
    ------
    RuntimeError
        If :mod:`numrope.variants` defines a variant this function does not know how to build.

    Examples
    --------
    >>> from numrope.checks.configs import scaling_examples
    >>> type(scaling_examples()[0]).__name__
    'DynamicNTK'
    """
    from numrope import variants as scaling

    n = head_dim // 2
    known = {
        "linear": lambda: scaling.Linear(factor=4.0),
        "ntk": lambda: scaling.NTK(factor=4.0),
        "dynamic": lambda: scaling.DynamicNTK(factor=4.0, max_position_embeddings=2048),
        "yarn": lambda: scaling.YaRN(factor=4.0, original_max_position_embeddings=2048),
        "longrope": lambda: scaling.LongRoPE(
            short_factor=tuple(np.linspace(1.0, 1.5, n)),
            long_factor=tuple(np.geomspace(1.0, 16.0, n)),
            original_max_position_embeddings=4096,
            max_position_embeddings=131072,
        ),
        "llama3": lambda: scaling.Llama3(
            factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0, original_max_position_embeddings=8192
        ),
        # every pair turns: the long-term decay of the relative-position bound needs all of them to
        # (Gemma 4's 0.25 leaves three quarters of the pairs still)
        "proportional": lambda: scaling.Proportional(partial_rotary_factor=1.0, factor=2.0),
    }
    variants = getattr(scaling, "VARIANTS", None)
    if variants is None:
        variants = {
            cls.rope_type: cls
            for cls in vars(scaling).values()
            if isinstance(cls, type) and issubclass(cls, scaling.RopeScaling) and cls is not scaling.RopeScaling
        }
    out = []
    for rope_type in sorted(variants):
        if rope_type not in known:
            name = variants[rope_type].__name__
            raise RuntimeError(f"numrope.checks.configs.scaling_examples does not cover the scaling variant {name}")
        out.append(known[rope_type]())
    return out
