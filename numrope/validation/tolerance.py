"""The tolerance model: the largest error a correct RoPE implementation may make, element by element.

Every comparison in numrope (:func:`numrope.validation.compare`,
:func:`numrope.testing.assert_rope_allclose`, the diagnosis) holds an output to the bound of
:func:`error_bound`, derived in its Notes.
"""

from __future__ import annotations

import numpy as np

from numrope._interop import MANTISSA_BITS, MIN_EXP, precision_name


def unit_roundoff(precision: str) -> float:
    """Half an ulp of 1 in ``precision``: 2**-8 for bfloat16, 2**-11 for float16, 2**-24, 2**-53."""
    return 2.0 ** -(MANTISSA_BITS[precision] + 1)


def smallest_subnormal(precision: str) -> float:
    return 2.0 ** (MIN_EXP[precision] - MANTISSA_BITS[precision])


def default_rtol(precision: str, table: str | None = None) -> float:
    """``u_table + 7 u``: cos/sin rounding, two products, a sum, the output rounding, and 3 u of margin."""
    u = unit_roundoff(precision)
    u_table = max(u, unit_roundoff(table)) if table else u
    return u_table + 7 * u


def default_atol(precision: str) -> float:
    """Two of the smallest subnormals: the rounding of results that underflow."""
    return 2 * smallest_subnormal(precision)


def pair_norms(a: np.ndarray, cfg) -> np.ndarray:
    """Each rotating feature's pair norm ``hypot(a_j0, a_j1)``; ``|a_j|`` for the features that pass through."""
    out = np.abs(a)
    j0, j1 = cfg.pair_indices(output=True)
    norm = np.hypot(a[..., j0], a[..., j1])
    out[..., j0] = norm
    out[..., j1] = norm
    return out


def angle_weights(theta: np.ndarray, pos: np.ndarray, cfg) -> np.ndarray:
    """``|m theta_i| (2 i + |ln theta_i| + 4)`` per token and feature, shape ``(T, head_dim)``.

    Times the unit roundoff of the precision the angles are formed in, it bounds the angle error.
    """
    i = np.arange(theta.size)
    with np.errstate(divide="ignore"):
        magnitude = np.abs(theta)  # theta < 0 rotates the other way (direction=-1)
        log_theta = np.where(magnitude > 0, np.abs(np.log(np.where(magnitude > 0, magnitude, 1.0))), 0.0)
    per_pair = np.abs(pos)[:, None] * np.abs(theta) * (2 * i + log_theta + 4)
    out = np.zeros((pos.size, cfg.head_dim))
    j0, j1 = cfg.pair_indices(output=True)
    out[:, j0] = per_pair
    out[:, j1] = per_pair
    return out


def angle_error(theta: np.ndarray, pos: np.ndarray, cfg, u_angle: float) -> np.ndarray:
    """The bound on the error of angles formed with unit roundoff ``u_angle``, radians, shape ``(T, head_dim)``."""
    return angle_weights(theta, pos, cfg) * u_angle


def chord(delta: np.ndarray) -> np.ndarray:
    """``2 sin(min(delta, pi) / 2)``: how far a pair of norm 1 moves when rotated by at most ``delta`` radians.

    Never above 2 (the diameter): an angle error bound of ``pi`` or more allows any rotation, and
    the pair's norm is all that is left to check.
    """
    return 2.0 * np.sin(np.minimum(delta, np.pi) / 2.0)


def bound_thd(expected, pos, theta, cfg, precision, *, float32_angles, rtol=None, atol=None, table=None):
    """The per-element bound for ``(tokens, heads, head_dim)`` arrays; see :func:`error_bound`."""
    rtol = default_rtol(precision, table) if rtol is None else float(rtol)
    atol = default_atol(precision) if atol is None else float(atol)
    u_angle = unit_roundoff("float32") if float32_angles else unit_roundoff("float64")
    growth = chord(angle_error(theta, pos, cfg, u_angle))[:, None, :]
    return atol + pair_norms(expected, cfg) * (rtol + growth)


def norm_tolerance(expected, cfg, precision, *, rtol=None, atol=None, table=None):
    """The largest difference between a rotating pair's norm and the expected one that rounding explains.

    A rotation by any angle, float32 angles included, keeps each pair's norm, so only rounding
    moves it: the per-element rounding error ``atol + rtol r`` of both elements, at most
    ``sqrt(2) (atol + rtol r)`` in norm. Shape ``(T, H, head_dim)``; ``inf`` for the features that
    pass through (their bound is element-wise only).
    """
    rtol = default_rtol(precision, table) if rtol is None else float(rtol)
    atol = default_atol(precision) if atol is None else float(atol)
    out = np.full(expected.shape, np.inf)
    j0, j1 = cfg.pair_indices(output=True)
    tol = np.sqrt(2.0) * (atol + np.hypot(expected[..., j0], expected[..., j1]) * rtol)
    out[..., j0] = tol
    out[..., j1] = tol
    return out


def _ratio(err, tol):
    """``err / tol`` with ``0`` where ``err == 0`` and ``inf`` where ``err`` is NaN or ``tol`` is 0."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = np.where(err == 0, 0.0, err / tol)
    return np.where(np.isnan(ratio), np.inf, ratio)


def norm_error(actual, expected, cfg) -> np.ndarray:
    """``| |actual pair| - |expected pair| |`` for each rotating feature, 0 for those that pass through.

    0 also for pairs holding NaN or infinite values: the element-wise check rejects those
    elements, and their finite partners are not counted against the pair's norm.
    """
    out = np.zeros(expected.shape)
    j0, j1 = cfg.pair_indices(output=True)
    a0, a1 = actual[..., j0], actual[..., j1]
    with np.errstate(over="ignore", invalid="ignore"):
        diff = np.abs(np.hypot(a0, a1) - np.hypot(expected[..., j0], expected[..., j1]))
    diff = np.where(np.isfinite(a0) & np.isfinite(a1), diff, 0.0)
    out[..., j0] = diff
    out[..., j1] = diff
    return out


def verdict_ratios(actual, expected, pos, theta, cfg, precision, *, float32_angles, rtol=None, atol=None, table=None):
    """Each element's error against its bound and its pair's norm error against the norm tolerance.

    Returns ``(err, bound, element_ratio, norm_ratio)``; an element is accepted when both ratios are at most 1
    (NaN counts as infinitely far outside).
    """
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(actual - expected)
    err = np.where(np.isnan(err), np.inf, err)
    kw = {"rtol": rtol, "atol": atol, "table": table}
    bound = bound_thd(expected, pos, theta, cfg, precision, float32_angles=float32_angles, **kw)
    n_tol = norm_tolerance(expected, cfg, precision, **kw)
    return err, bound, _ratio(err, bound), _ratio(norm_error(actual, expected, cfg), n_tol)


def uninformative_from(theta: np.ndarray, cfg, u_angle: float) -> np.ndarray:
    """For each pair, the position from which its angle error bound reaches ``pi``: angles carry no information.

    ``inf`` for a pair with ``theta_i = 0`` (it never rotates).
    """
    weights = angle_weights(theta, np.ones(1), cfg)[0, cfg.pair_indices(output=True)[0]]
    with np.errstate(divide="ignore"):
        return np.where(weights > 0, np.pi / (weights * u_angle), np.inf)


def _check_tolerance(name, value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be non-negative and finite, got {value}")
    return float(value)


def error_bound(
    x, cfg, positions=None, *, dtype="float32", seq_axis=-3, rtol=None, atol=None, float32_angles=False, seq_len=None
):
    """The largest error a correct RoPE implementation may make, element by element.

    Parameters
    ----------
    x : array_like
        The input that was rotated (any float dtype; bfloat16 through ml_dtypes or DLPack).
    cfg : RopeConfig
        The RoPE configuration.
    positions : None, int or array_like, optional
        As for :func:`numrope.apply_rope`.
    dtype : {"bfloat16", "float16", "float32", "float64"} or numpy dtype, default "float32"
        The precision of the output being judged.
    seq_axis : int, default -3
        The sequence axis of ``x``.
    rtol, atol : float, optional
        Replace the derived relative tolerance (relative to the norm of each element's pair) and
        the absolute floor.
    float32_angles : bool, default False
        Allow for angles ``m * theta`` formed in float32, as Hugging Face transformers, vLLM and
        llama.cpp form them: a term that grows with the position.
    seq_len : int, optional
        For the scaling variants that depend on the sequence length.

    Returns
    -------
    numpy.ndarray
        float64 array of ``x``'s shape: the bound on ``|actual - exact|`` for each element.

    Notes
    -----
    For a rotating pair ``(x0, x1)`` with norm ``r`` at position ``m``, an implementation
    computes ``y0 = x0 c - x1 s`` (and ``y1`` alike) from ``c, s`` rounded to a table precision
    (unit roundoff ``u_t``), two products and a sum in a compute precision (``u_c``), and a
    final rounding to the output (``u_o``). With ``|x0||c| + |x1||s| <= r`` (Cauchy-Schwarz,
    ``c**2 + s**2 = 1``) and ``|y0| <= r``, the error is at most ``(u_t + 3 u_c + u_o) r`` to
    first order. For every precision at most the output's unit roundoff ``u`` this is
    ``5 u r``; the default relative tolerance is ``rtol = u_t + 7 u`` (``8 u``, four machine
    epsilons), the margin covering cos and sin evaluated to within an ulp and second-order terms.
    Attention scaling ``a`` (YaRN, LongRoPE) multiplies ``r``, which is why the bound uses the
    norm of the expected pair, ``a r``.

    Angles formed in a precision with unit roundoff ``u_a`` are off by at most
    ``|m theta_i| (2 i + |ln theta_i| + 4) u_a``: ``|ln theta_i| u_a`` from rounding the exponent
    ``2 i / d`` before ``base ** (2 i / d)``, ``2 i u_a`` where ``theta_i`` is built by ``i``
    repeated products (llama.cpp), and ``4 u_a`` for the power, the reciprocal, the position
    and the product ``m theta_i``. A rotation by a wrong angle moves the pair by at most
    ``r`` times the angle error. The bound is therefore

    ``atol + a r (rtol + |m theta_i| (2 i + |ln theta_i| + 4) u_a)``

    with ``u_a = 2**-53`` (float64 angles) unless ``float32_angles`` (``u_a = 2**-24``), and
    ``atol`` two subnormals of the output precision. Features past ``rotary_dim`` pass through:
    their bound is ``atol + rtol |x_j|``.

    The angle term is capped where it stops meaning anything: a pair rotated by an angle at most
    ``delta`` off moves by at most the chord ``2 r sin(min(delta, pi) / 2)``, never more than
    ``2 r``, and that chord replaces ``r delta`` above (they agree to ``delta**3 / 24``). From the
    position where ``delta`` reaches ``pi`` (pair 0 of a ``head_dim=128`` model near position
    ``1.3e7`` with float32 angles) the angles carry no information: any rotation is within the
    bound. What still holds there is that a rotation keeps each pair's norm, so the comparisons
    (:func:`numrope.validation.compare`, :func:`numrope.testing.assert_rope_allclose`) also hold
    each rotating pair's norm to within ``sqrt(2) (atol + rtol a r)`` of the expected ``a r``,
    the rounding of its two elements; an all-zero output never passes.

    Examples
    --------
    >>> import numpy as np, numrope
    >>> from numrope.testing import error_bound
    >>> cfg = numrope.RopeConfig(head_dim=4)
    >>> x = np.ones((1, 3, 1, 4))
    >>> b = error_bound(x, cfg, dtype="float32")
    >>> float(b[0, 0, 0, 0] / np.sqrt(2))  # 8 u = 4 float32 epsilons of the pair norm sqrt(2)
    4.76837158203125e-07
    >>> b32 = error_bound(x, cfg, dtype="float32", float32_angles=True)
    >>> bool(b32[0, 2, 0, 0] > b32[0, 1, 0, 0] > b32[0, 0, 0, 0])  # grows with the position
    True
    """
    from numrope.validation.case import prepare

    precision = _precision_arg(dtype)
    rtol, atol = _check_tolerance("rtol", rtol), _check_tolerance("atol", atol)
    case = prepare(x, x, cfg, positions, seq_axis=seq_axis, seq_len=seq_len, names=("x", "x"))
    bound = bound_thd(
        case.expected, case.pos, case.theta, cfg, precision, float32_angles=bool(float32_angles), rtol=rtol, atol=atol
    )
    return bound.reshape(case.shape)


def _precision_arg(dtype) -> str:
    if isinstance(dtype, str) and dtype in MANTISSA_BITS:
        return dtype
    try:
        name = precision_name(np.dtype(dtype))
    except TypeError:
        name = None
    if name is None:
        raise TypeError(f"dtype must be bfloat16, float16, float32 or float64, got {dtype!r}")
    return name
