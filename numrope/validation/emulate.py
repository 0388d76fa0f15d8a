"""Framework precision emulation: RoPE as other frameworks round it, to tell "within their precision" from "wrong".

Three choices set a framework's precision:

============================  ===========  ==========================  ===========================
framework                     ``angles``   ``table`` (cos/sin)         ``compute`` (the multiply)
============================  ===========  ==========================  ===========================
numrope                       float64      float32 (float64 inputs:    float32 (float64 inputs:
                                           float64)                    float64)
Hugging Face transformers     float32      the input dtype             the input dtype
vLLM (cos/sin cache)          float32      the model dtype             the model dtype
============================  ===========  ==========================  ===========================

transformers forms ``inv_freq = 1 / base ** (arange(0, d, 2) / d)`` and
``freqs = position_ids.float() * inv_freq`` in float32, takes cos and sin in float32, multiplies
them by the attention scaling and casts them to the input's dtype before
``q * cos + rotate_half(q) * sin`` (``LlamaRotaryEmbedding``, ``apply_rotary_pos_emb``). vLLM builds
its cos/sin cache the same way in float32 and stores it in the model's dtype
(``RotaryEmbedding._compute_cos_sin_cache``). Arithmetic in bfloat16 or float16 is emulated as
the hardware does it: each product and sum formed in float32 and rounded to the narrow type.
"""

from __future__ import annotations

import math

import numpy as np

from numrope._checks import check_config, check_positions, check_seq_axis
from numrope._interop import MANTISSA_BITS, as_numpy
from numrope.cache import default_seq_len, rope_cache

__all__ = ["apply_rope", "round_to"]

ANGLES = ("float64", "float32")


def round_to(a, precision: str) -> np.ndarray:
    """Round to the nearest value of ``precision``, ties to even.

    Parameters
    ----------
    a : array_like
        Real values.
    precision : {"bfloat16", "float16", "float32", "float64"}
        The precision to round to.

    Returns
    -------
    numpy.ndarray
        float64 for ``"float64"``, float32 otherwise (every bfloat16 and float16 value is a
        float32 value).

    Raises
    ------
    ValueError
        If ``precision`` is not one of the four.

    Notes
    -----
    bfloat16 is the upper half of float32; rounding to it adds ``0x7FFF`` plus the lowest kept
    bit to the float32 bit pattern and clears the lower half (round to nearest, ties to even),
    as PyTorch and ml_dtypes round. Values in float64 are first rounded to float32, as a
    framework that casts a float32 intermediate does.

    Examples
    --------
    >>> from numrope.validation.emulate import round_to
    >>> float(round_to(1 + 2**-8, "bfloat16"))  # a tie: rounds to the even neighbour, 1
    1.0
    >>> float(round_to(1 + 3 * 2**-8, "bfloat16"))
    1.015625
    """
    if precision not in MANTISSA_BITS:
        raise ValueError(f"precision must be one of {tuple(MANTISSA_BITS)}, got {precision!r}")
    a = np.asarray(a)
    if precision == "float64":
        return a.astype(np.float64)
    a32 = np.asarray(a, dtype=np.float32)
    if precision == "float32":
        return a32
    if precision == "float16":
        return a32.astype(np.float16).astype(np.float32)
    from numrope.kernels.half import round_to_bfloat16  # loads Numba: only on first use

    return round_to_bfloat16(a32)


def _as_dtype(values: np.ndarray, precision: str) -> np.ndarray:
    if precision != "bfloat16":
        return values.astype(precision)
    try:
        import ml_dtypes
    except ImportError:
        return values.astype(np.float32)
    return values.astype(ml_dtypes.bfloat16)


def _precision(name, value):
    if value is None:
        return None
    if value not in MANTISSA_BITS:
        raise ValueError(f"{name} must be one of {tuple(MANTISSA_BITS)} or None, got {value!r}")
    return value


def _float32_tables(cfg, pos, seq_len, inv_freq=None):
    """cos and sin as transformers and vLLM form them: every step in float32."""
    if inv_freq is not None:  # the framework's own frequencies, exactly as it holds them
        pass
    elif cfg.scaling is None:
        exponents = np.arange(0, cfg.rotary_dim, 2, dtype=np.float32) / np.float32(cfg.rotary_dim)
        inv_freq = np.float32(cfg.direction) / np.power(np.float32(cfg.base), exponents)
    else:  # the variant's float64 frequencies (direction included), rounded once
        inv_freq = cfg.inv_freq(seq_len).astype(np.float32)
    angle = pos.astype(np.float32)[:, None] * inv_freq[None, :]
    scale = np.float32(cfg.attention_scaling)
    return np.cos(angle) * scale, np.sin(angle) * scale


def apply_rope(
    x,
    cfg,
    positions=None,
    *,
    seq_axis=-3,
    angles="float32",
    table=None,
    compute=None,
    dtype=None,
    inverse=False,
    seq_len=None,
    inv_freq=None,
):
    """RoPE rounded as another framework rounds it.

    Parameters
    ----------
    x : array_like
        Queries or keys (any float dtype; bfloat16 through ml_dtypes or DLPack); last axis ``head_dim``.
    cfg : RopeConfig
        The configuration.
    positions : None, int or array_like, optional
        As for :func:`numrope.apply_rope`.
    seq_axis : int, default -3
        The sequence axis.
    angles : {"float32", "float64"}, default "float32"
        Where ``m * theta`` and its cos and sin are formed: ``"float32"`` as transformers and
        vLLM do, ``"float64"`` exactly as numrope does.
    table : {"bfloat16", "float16", "float32", "float64"}, optional
        What cos and sin are rounded to before the multiply; defaults to ``compute``.
    compute : {"bfloat16", "float16", "float32", "float64"}, optional
        The precision of the products and sums; defaults to ``dtype``.
    dtype : {"bfloat16", "float16", "float32", "float64"}, optional
        The model's dtype: ``x`` is rounded to it first and the result is returned in it.
        Defaults to ``x``'s precision.
    inverse : bool, default False
        Rotate by minus the angle.
    seq_len : int, optional
        For the scaling variants that depend on the sequence length.
    inv_freq : array_like, optional
        The framework's own frequencies, one per pair (for example the ``inv_freq`` buffer of a
        transformers rotary module), used with ``angles="float32"`` in place of numrope's float32
        formula. Frameworks compute ``base ** (-2i/d)`` with their own ``pow``, which may differ
        from NumPy's by an ulp or two; that difference grows with the position like the angle error
        itself, so reproducing a framework bit for bit far out needs its own frequencies.

    Returns
    -------
    numpy.ndarray
        The rotated array in ``dtype``; bfloat16 as an ml_dtypes array where ml_dtypes is
        installed, else as float32 holding bfloat16 values.

    Raises
    ------
    TypeError
        ``x`` not a float array, ``cfg`` not a RopeConfig.
    ValueError
        An unknown precision, a last axis that is not ``head_dim``, bad positions or ``seq_axis``.

    Notes
    -----
    Pair ``(x0, x1)`` becomes ``(rnd(rnd(x0 c) - rnd(x1 s)), rnd(rnd(x1 c) + rnd(x0 s)))`` with
    ``rnd`` rounding to ``compute`` and ``c, s`` rounded to ``table``, then the result to
    ``dtype``. The float32 angle error grows with the position (about ``m * 2**-24`` radians for
    the first pair), which :func:`numrope.testing.error_bound` bounds.

    Examples
    --------
    >>> import numpy as np, numrope
    >>> from numrope.validation import emulate
    >>> cfg = numrope.RopeConfig(head_dim=64, base=500000.0)
    >>> x = np.random.default_rng(0).standard_normal((1, 1, 1, 64)).astype(np.float32)
    >>> far = 100_000  # a long-context position
    >>> hf = emulate.apply_rope(x, cfg, positions=far)  # float32 angles, as transformers
    >>> exact = numrope.apply_rope(x.astype(np.float64), cfg, positions=far)
    >>> bool(np.abs(hf - exact).max() > 1e-3)  # far beyond float32 rounding of the output
    True
    >>> bool(np.abs(numrope.apply_rope(x, cfg, positions=far) - exact).max() < 1e-6)
    True
    """
    check_config(cfg)
    if cfg.axes is not None:  # its float32 formula and its positions are plain RoPE's
        raise NotImplementedError(
            "emulate.apply_rope rounds plain RoPE; for multi-axis RoPE (cfg.axes) compare the framework's "
            "own output with numrope.validation.compare, which takes coordinate vectors"
        )
    if angles not in ANGLES:
        raise ValueError(f"angles must be 'float32' or 'float64', got {angles!r}")
    arr, precision = as_numpy(x, "x")
    if precision not in MANTISSA_BITS:
        raise TypeError(f"x must hold floats, got dtype {arr.dtype}")
    dtype = _precision("dtype", dtype) or precision
    compute = _precision("compute", compute) or dtype
    table = _precision("table", table) or compute
    if arr.ndim < 2 or arr.shape[-1] != cfg.head_dim:
        raise ValueError(f"x's last axis must be head_dim={cfg.head_dim}, got shape {arr.shape}")
    ax = check_seq_axis(seq_axis, arr.ndim, "x")
    if positions is not None and not isinstance(positions, (int, np.integer)):
        positions = as_numpy(positions, "positions").array
    pos = np.asarray(check_positions(positions, arr.shape, ax))
    lead, seq = arr.shape[:ax], arr.shape[ax]
    pos_t = np.broadcast_to(pos, lead + (seq,)).reshape(-1)
    if seq_len is None and cfg.depends_on_seq_len:
        seq_len = default_seq_len(pos)

    if inv_freq is not None:
        if angles != "float32":
            raise ValueError("inv_freq is used with angles='float32' only (float64 angles use numrope's frequencies)")
        inv_freq = as_numpy(inv_freq, "inv_freq").array.astype(np.float32)
        if inv_freq.shape != (cfg.n_pairs,):
            raise ValueError(f"inv_freq must have shape (rotary_dim // 2 = {cfg.n_pairs},), got {inv_freq.shape}")
        if not np.isfinite(inv_freq).all():
            raise ValueError("inv_freq must be finite")
    if angles == "float32":
        cos, sin = _float32_tables(cfg, pos_t, seq_len, inv_freq)
    else:
        cos, sin = rope_cache(cfg, pos_t, np.float64, seq_len=seq_len)
    if inverse:
        sin = -sin
    cos, sin = round_to(cos, table), round_to(sin, table)

    def rnd(a):
        return round_to(a, compute)

    work = np.float64 if compute == "float64" else np.float32
    shape3 = (math.prod(lead) * seq, math.prod(arr.shape[ax + 1 : -1]), cfg.head_dim)
    xw = rnd(round_to(arr, dtype)).astype(work).reshape(shape3)
    c, s = cos.astype(work)[:, None, :], sin.astype(work)[:, None, :]
    j0, j1 = cfg.pair_indices(output=inverse)  # the inverse reads where the forward map writes
    k0, k1 = cfg.pair_indices(output=not inverse)
    x0, x1 = xw[..., j0], xw[..., j1]
    out = xw.copy()
    out[..., k0] = rnd(rnd(x0 * c) - rnd(x1 * s))
    out[..., k1] = rnd(rnd(x1 * c) + rnd(x0 * s))
    return _as_dtype(round_to(out, dtype), dtype).reshape(arr.shape)
