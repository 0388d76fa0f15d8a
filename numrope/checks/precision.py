"""How accurate are the cos/sin tables? Measured against an arbitrary-precision reference (mpmath).

numrope's claim (:func:`numrope.rope_cache`): float64 tables are within one ulp of the exact
``cos(m theta_i)`` and ``sin(m theta_i)`` for every position below ``2**53`` in magnitude (three
ulps with an attention factor other than 1), taking the float64 ``theta_i`` as exact, and float32
and float16 tables are those values correctly rounded. This module measures that claim, and the
error of the float32-angle computation most frameworks use, against mpmath. mpmath is a test-time
dependency, imported on first use.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from numrope.checks.report import Comparison, Report, _describe
from numrope.positions import as_positions

_PREC = 256  # bits: m (53 bits) * theta (53 bits) is exact, and cos/sin keep > 100 bits near zeros
_FAR = (2**32, 2**53)  # the positions of the far argument reduction (for theta_0 = 1), and their bound


def _mpmath():
    try:
        import mpmath
    except ImportError as exc:  # pragma: no cover - mpmath is installed with numrope[test]
        raise ImportError(
            "numrope.checks.precision needs mpmath for its arbitrary-precision reference; install it with "
            "`python -m pip install mpmath` (or `python -m pip install numrope[test]`)"
        ) from exc
    return mpmath


class ExactCosSin(NamedTuple):
    """Exact cosine and sine as unevaluated sums ``hi + lo`` of two float64 arrays.

    ``hi`` is the exact value rounded to nearest, ``lo`` the rest, rounded: together they carry
    about 106 bits, enough to measure a float64 error to a small fraction of an ulp.
    """

    cos: np.ndarray
    cos_lo: np.ndarray
    sin: np.ndarray
    sin_lo: np.ndarray


def exact_cos_sin(positions, inv_freq, scale: float = 1.0) -> ExactCosSin:
    """``scale * cos(m theta_i)`` and ``scale * sin(m theta_i)`` with the product taken exactly.

    Parameters
    ----------
    positions : array_like of int or float
        Positions ``m`` (their float64 values are taken as exact).
    inv_freq : array_like of float
        Frequencies ``theta_i`` (their float64 values are taken as exact).
    scale : float, default 1.0
        Factor applied to both (the attention scaling).

    Returns
    -------
    ExactCosSin
        Four float64 arrays of shape ``positions.shape + inv_freq.shape``.

    Raises
    ------
    ImportError
        If mpmath is not installed.
    TypeError, ValueError
        If positions are not real numbers, or not finite.

    Notes
    -----
    Computed with mpmath at 256-bit precision: the product of a float64 position below ``2**53``
    and a float64 frequency has at most 106 significant bits, so it is exact, and the cosine and
    sine keep well over 100 correct bits even next to their zeros.

    Examples
    --------
    >>> from numrope.checks.precision import exact_cos_sin
    >>> e = exact_cos_sin([1e9], [1.0])
    >>> float(e.cos[0, 0])  # cos(1e9), correctly rounded
    0.8378871813639024
    """
    mpmath = _mpmath()
    pos = as_positions(positions).astype(np.float64)
    theta = np.asarray(inv_freq, dtype=np.float64)
    shape = pos.shape + theta.shape
    out = np.empty((4,) + shape)
    flat = out.reshape(4, -1)
    with mpmath.workprec(_PREC):
        a = mpmath.mpf(float(scale))
        thetas = [mpmath.mpf(float(t)) for t in theta.ravel()]
        col = 0
        for m in pos.ravel():
            mm = mpmath.mpf(float(m))
            for t in thetas:
                c, s = mpmath.cos_sin(mm * t)
                c, s = a * c, a * s
                ch, sh = float(c), float(s)
                flat[:, col] = ch, float(c - ch), sh, float(s - sh)
                col += 1
    return ExactCosSin(*out)


def ulp_error(values, exact, exact_lo=0.0) -> np.ndarray:
    """Error of ``values`` against ``exact + exact_lo``, in ulps of ``values``' dtype.

    Parameters
    ----------
    values : numpy.ndarray
        float16, float32 or float64 values to measure.
    exact, exact_lo : array_like of float64
        The exact values as ``hi + lo`` (see :class:`ExactCosSin`).

    Returns
    -------
    numpy.ndarray
        float64 errors ``|values - exact| / ulp(exact)``, where ``ulp(y)`` is the spacing of
        ``values``' dtype in the binade of the exact ``y`` (``2**(e - p + 1)`` for
        ``2**e <= |y| < 2**(e+1)`` and ``p`` significant bits; subnormal spacing below the normal
        range).

    Examples
    --------
    >>> import numpy as np
    >>> from numrope.checks.precision import ulp_error
    >>> ulp_error(np.float32([1.0]), np.array([1.0 + 2.0**-23])).tolist()
    [1.0]
    """
    values = np.asarray(values)
    if values.dtype not in (np.float16, np.float32, np.float64):
        raise TypeError(f"values must be float16, float32 or float64, got {values.dtype}")
    info = np.finfo(values.dtype)
    hi = np.asarray(exact, dtype=np.float64)
    lo = np.broadcast_to(np.asarray(exact_lo, dtype=np.float64), hi.shape)
    frac, e = np.frexp(hi)  # |hi| in [2**(e-1), 2**e)
    below = (np.abs(frac) == 0.5) & (lo * hi < 0)  # hi a power of two, exact value just under it
    e = e - 1 - below
    e = np.maximum(e, info.minexp)
    ulp = np.ldexp(1.0, e - info.nmant)
    diff = (values.astype(np.float64) - hi) - lo
    return np.abs(diff) / ulp


def cos_sin_ulp_error(cfg, positions, dtype=np.float32, *, seq_len=None, tables=None):
    """Error of cos/sin tables against the exact values, in ulps of their dtype.

    Parameters
    ----------
    cfg : RopeConfig
        The configuration (frequencies and attention scaling).
    positions : array_like of int or float
        Positions to measure.
    dtype : {float32, float64, float16}, default float32
        Dtype of the tables from :func:`numrope.rope_cache` (ignored with ``tables``).
    seq_len : int, optional
        Sequence length for the variants that depend on it.
    tables : (cos, sin), optional
        Tables to measure instead of numrope's, of shape ``positions.shape + (n_pairs,)``.

    Returns
    -------
    ulp_cos, ulp_sin : numpy.ndarray
        Errors in ulps, of shape ``positions.shape + (n_pairs,)``.

    Raises
    ------
    ImportError, TypeError, ValueError
        As for :func:`exact_cos_sin`: without mpmath, or for positions that are not finite real numbers.

    Examples
    --------
    >>> import numrope
    >>> from numrope.checks.precision import cos_sin_ulp_error
    >>> ulp_cos, ulp_sin = cos_sin_ulp_error(numrope.RopeConfig(head_dim=8), [3, 10**9], np.float64)
    >>> bool(ulp_cos.max() <= 1 and ulp_sin.max() <= 1)
    True
    """
    import numrope

    pos = as_positions(positions)
    if tables is None:
        tables = numrope.rope_cache(cfg, np.asarray(positions), dtype, seq_len=seq_len)
    cos, sin = (np.asarray(t) for t in tables)
    ex = exact_cos_sin(pos, cfg.inv_freq(seq_len), cfg.attention_scaling)
    return ulp_error(cos, ex.cos, ex.cos_lo), ulp_error(sin, ex.sin, ex.sin_lo)


def float32_angle_cos_sin(cfg, positions, *, seq_len=None):
    """cos and sin the way most frameworks compute them: the angle formed in float32.

    Parameters
    ----------
    cfg : RopeConfig
        The configuration.
    positions : array_like
        Positions.
    seq_len : int, optional
        Sequence length for the variants that depend on it.

    Returns
    -------
    cos, sin : numpy.ndarray
        float32 arrays of shape ``positions.shape + (n_pairs,)``:
        ``a * cos(float32(float32(m) * float32(theta_i)))`` in float32, like the
        ``(inv_freq @ positions).cos() * attention_scaling`` of Hugging Face transformers.

    Notes
    -----
    The rounded product is off by up to half an ulp of ``m theta_i``, about
    ``m theta_i * 2**-24`` radians: at position ``10**6`` and ``theta_0 = 1`` that is 0.03
    radians, and positions above ``2**24`` are not even representable.

    Examples
    --------
    >>> import numrope
    >>> from numrope.checks.precision import float32_angle_cos_sin
    >>> cos, sin = float32_angle_cos_sin(numrope.RopeConfig(head_dim=4), [0, 1])
    >>> cos.dtype, cos[1, 0]
    (dtype('float32'), np.float32(0.5403023))
    """
    return _rounded_angle_cos_sin(cfg, positions, np.float32, seq_len)


def float64_angle_cos_sin(cfg, positions, *, seq_len=None):
    """cos and sin of the rounded float64 product ``m * theta_i`` (NumPy's, as in plain code).

    Parameters
    ----------
    cfg, positions, seq_len
        As for :func:`float32_angle_cos_sin`.

    Returns
    -------
    cos, sin : numpy.ndarray
        float64 arrays of shape ``positions.shape + (n_pairs,)``, off by up to about
        ``|m theta_i| 2**-53`` from the exact values (the rounding of the product).

    Examples
    --------
    >>> import numrope
    >>> from numrope.checks.precision import float64_angle_cos_sin
    >>> cos, _ = float64_angle_cos_sin(numrope.RopeConfig(head_dim=4), [1])
    >>> float(cos[0, 0])
    0.5403023058681398
    """
    return _rounded_angle_cos_sin(cfg, positions, np.float64, seq_len)


def _rounded_angle_cos_sin(cfg, positions, dtype, seq_len):
    """``a cos(m theta_i)`` and ``a sin(m theta_i)`` with positions, frequencies, the angle and the
    products in ``dtype``: each rounded to it, as code that works in that dtype rounds them."""
    dtype = np.dtype(dtype)
    angle = np.asarray(positions).astype(dtype)[..., None] * cfg.inv_freq(seq_len).astype(dtype)
    a = dtype.type(cfg.attention_scaling)
    return np.cos(angle) * a, np.sin(angle) * a


def error_vs_position(cfg, positions, *, seq_len=None) -> dict[str, np.ndarray]:
    """Largest absolute cos/sin error over the pairs, per position, for four ways to compute them.

    Parameters
    ----------
    cfg : RopeConfig
        The configuration.
    positions : array_like of int, 1-D
        Positions to measure.
    seq_len : int, optional
        Sequence length for the variants that depend on it.

    Returns
    -------
    dict of str to numpy.ndarray
        For ``"numrope float64"``, ``"numrope float32"`` (:func:`numrope.rope_cache`),
        ``"float64 angle"`` (:func:`float64_angle_cos_sin`) and ``"float32 angle"``
        (:func:`float32_angle_cos_sin`): ``max_i max(|cos - exact|, |sin - exact|)`` per position.

    Examples
    --------
    >>> import numrope
    >>> from numrope.checks.precision import error_vs_position
    >>> err = error_vs_position(numrope.RopeConfig(head_dim=8), [10, 1234567])
    >>> [f"{e:.0e}" for e in err["float32 angle"]], bool(err["numrope float64"].max() < 2**-53)
    (['4e-08', '3e-03'], True)
    """
    import numrope

    pos = np.asarray(positions)
    if pos.ndim != 1:
        raise ValueError(f"positions must be 1-D, got shape {pos.shape}")
    ex = exact_cos_sin(pos, cfg.inv_freq(seq_len), cfg.attention_scaling)
    methods = {
        "numrope float64": numrope.rope_cache(cfg, pos, np.float64, seq_len=seq_len),
        "numrope float32": numrope.rope_cache(cfg, pos, np.float32, seq_len=seq_len),
        "float64 angle": float64_angle_cos_sin(cfg, pos, seq_len=seq_len),
        "float32 angle": float32_angle_cos_sin(cfg, pos, seq_len=seq_len),
    }
    out = {}
    for name, (cos, sin) in methods.items():
        err_c = np.abs((cos.astype(np.float64) - ex.cos) - ex.cos_lo)
        err_s = np.abs((sin.astype(np.float64) - ex.sin) - ex.sin_lo)
        out[name] = np.maximum(err_c, err_s).max(axis=-1)
    return out


def _convergents(x, limit):
    """Denominators q <= limit of the convergents and semiconvergents of the continued fraction of x."""
    mpmath = _mpmath()
    out = []
    p0, q0, p1, q1 = 0, 1, 1, 0
    y = x
    for _ in range(200):
        a = int(mpmath.floor(y))
        for j in (1, max(1, a // 2), a - 1):  # semiconvergents between the previous convergent and this
            if 0 < j < a and q0 + j * q1 <= limit:
                out.append(q0 + j * q1)
        p0, q0, p1, q1 = p1, q1, a * p1 + p0, a * q1 + q0
        if q1 > limit:
            break
        out.append(q1)
        frac = y - a
        if frac == 0:
            break
        y = 1 / frac
    return out


def adversarial_positions(inv_freq, max_position: int = 2**31) -> np.ndarray:
    """Positions ``m`` at which ``m * theta_i`` comes closest to a multiple of pi/2.

    There the cosine or the sine is nearly zero and an angle formed or reduced carelessly loses
    all of its relative accuracy: these are the hard cases for a claim of one ulp.

    Parameters
    ----------
    inv_freq : array_like of float
        The frequencies ``theta_i`` (float64 values taken as exact).
    max_position : int, default 2**31
        Largest position to return.

    Returns
    -------
    numpy.ndarray
        Sorted unique int64 positions in ``1 .. max_position``.

    Raises
    ------
    ImportError
        If mpmath is not installed.

    Notes
    -----
    ``m theta = k pi/2 + r`` with ``|r|`` small means ``k / m`` is a good rational approximation
    of ``x = theta / (pi/2)``. The best ones are the convergents of the continued fraction of
    ``x`` (and, less good, its semiconvergents): a convergent ``p/q`` has
    ``|q x - p| < 1/q'`` with ``q'`` the next denominator, so ``|r| < (pi/2) / q'``.

    Examples
    --------
    >>> from numrope.checks.precision import adversarial_positions
    >>> m = adversarial_positions([1.0], max_position=1000)
    >>> 355 in m  # 355 is within 3e-5 of 113 pi
    True
    """
    mpmath = _mpmath()
    limit = int(max_position)
    out = set()
    with mpmath.workprec(_PREC):
        half_pi = mpmath.pi / 2
        for t in np.asarray(inv_freq, dtype=np.float64).ravel():
            out.update(_convergents(mpmath.mpf(float(t)) / half_pi, limit))
    return np.array(sorted(q for q in out if 1 <= q <= limit), dtype=np.int64)


def check_precision(
    cfg,
    positions=None,
    *,
    n_random: int = 64,
    max_position: int = 2**31,
    far: bool = True,
    seq_len: int | None = None,
    seed: int = 0,
) -> Report:
    """Check numrope's cos/sin tables against mpmath: one ulp in float64, correct rounding below.

    Parameters
    ----------
    cfg : RopeConfig
        The configuration.
    positions : array_like of int, optional
        Positions to check. Default: ``n_random`` random positions below ``max_position``, every
        position given by :func:`adversarial_positions` for the first, a middle and the last pair,
        and ``0``, ``1`` and ``max_position - 1``; with ``far``, also positions from ``2**32`` to
        ``2**53``.
    n_random : int, default 64
        Number of random positions in the default set.
    max_position : int, default 2**31
        Upper end of the default positions (those with ``far`` aside).
    far : bool, default True
        Add to the default positions ``n_random // 4`` random positions in ``[2**32, 2**53)``,
        ``2**53 - 1``, and the adversarial positions of the three pairs in that range: the angles
        of the first pairs there take the far path of numrope's argument reduction. (The range
        ends lower where a frequency exceeds 1, at angles of ``2**53``.)
    seq_len : int, optional
        Sequence length for the variants that depend on it.
    seed : int
        Seed of the random positions.

    Returns
    -------
    Report
        Comparisons: float64 error in ulps (bound 1, or 3 when the attention scaling is not 1:
        one ulp of the cosine, times the factor, plus the rounding of that product); float32 and
        float16 tables equal to the float64 table rounded to nearest (count of differences,
        bound 0); float32 error in ulps (bound ``1/2 + 2**-29``, or ``1/2 + 3 * 2**-29``).

    Raises
    ------
    ImportError
        If mpmath is not installed.

    Examples
    --------
    >>> import numrope
    >>> from numrope.checks.precision import check_precision
    >>> check_precision(numrope.RopeConfig(head_dim=8), n_random=8).passed
    True
    """
    import numrope

    if positions is None:
        rng = np.random.default_rng(seed)
        theta = cfg.inv_freq(seq_len)
        picks = theta[[0, theta.size // 2, -1]]
        positions = np.concatenate(
            [
                [0, 1, max_position - 1],
                rng.integers(0, max_position, n_random),
                adversarial_positions(picks, max_position - 1),
            ]
        )
        if far:
            # below 2**53, and below 2**53 radians where a frequency exceeds 1 (numrope refuses beyond)
            lo, hi = _FAR
            hi = min(hi, int(hi / theta.max())) if theta.size and theta.max() > 1 else hi
            if hi > lo:
                hard = adversarial_positions(picks, hi - 1)
                far_positions = [[hi - 1], rng.integers(lo, hi, n_random // 4), hard[hard >= lo]]
                positions = np.concatenate([positions, *far_positions])
    pos = np.unique(np.asarray(positions))
    ex = exact_cos_sin(pos, cfg.inv_freq(seq_len), cfg.attention_scaling)
    scaled = cfg.attention_scaling != 1.0
    t64 = numrope.rope_cache(cfg, pos, np.float64, seq_len=seq_len)
    t32 = numrope.rope_cache(cfg, pos, np.float32, seq_len=seq_len)
    t16 = numrope.rope_cache(cfg, pos, np.float16, seq_len=seq_len)
    rows = []
    err64 = max(ulp_error(t64[0], ex.cos, ex.cos_lo).max(), ulp_error(t64[1], ex.sin, ex.sin_lo).max())
    rows.append(Comparison("float64 cos/sin error (ulp)", float(err64), float(err64), 3.0 if scaled else 1.0, "ulp"))
    for name, table, dt in (("float32", t32, np.float32), ("float16", t16, np.float16)):
        diff = int(sum(np.count_nonzero(t != t64[i].astype(dt)) for i, t in enumerate(table)))
        rows.append(Comparison(f"{name} = float64 rounded (mismatches)", diff, diff, 0.0, "count"))
    err32 = max(ulp_error(t32[0], ex.cos, ex.cos_lo).max(), ulp_error(t32[1], ex.sin, ex.sin_lo).max())
    bound32 = 0.5 + (3.0 if scaled else 1.0) * 2.0**-29
    unit = f"ulp (bound {bound32:.10f})"
    rows.append(Comparison("float32 cos/sin error (ulp)", float(err32), float(err32), bound32, unit))
    lo, hi = (int(pos.min()), int(pos.max())) if pos.size else (0, 0)
    title = f"cos/sin precision at {pos.size} positions in [{lo}, {hi}] ({_describe(cfg, seq_len)})"
    return Report(title, tuple(rows))
