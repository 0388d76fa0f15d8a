"""Numerical proofs of what makes RoPE work, with independent mathematics (scipy and plain NumPy).

* :func:`~numrope.checks.matrices.exact_rotation_matrix` -- the explicit matrix ``R_{Theta,m}``
  of RoFormer (Su et al. 2021, eq. 15), built as a block diagonal of 2 x 2 rotations and,
  independently, as the matrix exponential of its skew-symmetric generator;
* :func:`check_relative` -- the relative-position identity
  ``<f(q, m), f(k, n)> = g(q, k, m - n)`` (RoFormer section 3.2) checked through
  :func:`numrope.apply_rope` against a closed form and the matrix form;
* :func:`check_rotation` -- agreement of the two matrices, orthogonality, determinant, the group
  property ``R_m^T R_n = R_{n-m}``, and ``apply_rope(x, m) = R_m x``;
* :func:`~numrope.checks.decay.check_decay` -- RoFormer's long-term decay (section 3.4.3);
* :func:`sinusoidal_absolute` -- the additive sinusoidal encoding of the original Transformer,
  which is *not* relative: the checks must reject it, and do.

Every comparison is held to a bound derived from a floating-point error analysis of the
computation (see the "Accuracy" page of the documentation), never to a tolerance chosen to pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from numrope.checks.matrices import (
    _PADE_13,
    _THETA_13,
    U64,
    _check_cfg,
    _check_position,
    _gamma,
    _pair_order,
    cos_sin_error,
    exact_angle_cos_sin,
    exact_rotation_matrix,
    generator,
)
from numrope.checks.report import Comparison, Report, _apply_bound_coefficient, _describe
from numrope.config import RopeConfig
from numrope.reference import _sequence_positions


def sinusoidal_absolute(x, positions=None, *, seq_axis: int = -3, base: float = 10000.0) -> np.ndarray:
    """The additive sinusoidal absolute position encoding: ``x + PE(position)``.

    The encoding of the original Transformer, applied to queries and keys as a deliberately
    non-relative counter-example: ``<q + PE(m), k + PE(n)>`` depends on ``m`` and ``n``, not only
    on ``m - n``, so :func:`check_relative` must reject it.

    Parameters
    ----------
    x : array_like
        Array whose last axis (size ``d``, even) is encoded.
    positions : None, int or array_like, optional
        As for :func:`numrope.apply_rope`: ``None`` is ``0 .. S-1``, an int an offset, an array
        of shape ``(S,)`` or ``(*batch, S)``.
    seq_axis : int, default -3
        The sequence axis of ``x``.
    base : float, default 10000.0
        The wavelength base.

    Returns
    -------
    numpy.ndarray
        float64 array of ``x``'s shape.

    Raises
    ------
    ValueError
        If the last axis of ``x`` is odd, or ``seq_axis`` is the last axis or out of range.

    Notes
    -----
    Vaswani et al. 2017, section 3.5: ``PE(p, 2i) = sin(p / base**(2i/d))``,
    ``PE(p, 2i+1) = cos(p / base**(2i/d))``.

    Examples
    --------
    >>> import numpy as np
    >>> from numrope.checks.identity import sinusoidal_absolute
    >>> sinusoidal_absolute(np.zeros((1, 2, 1, 2)))[0, :, 0].round(4).tolist()
    [[0.0, 1.0], [0.8415, 0.5403]]
    """
    x = np.asarray(x, dtype=np.float64)
    d = x.shape[-1]
    if d % 2:
        raise ValueError(f"the last axis of x must be even, got shape {x.shape}")
    if not -x.ndim <= seq_axis < x.ndim - 1 or seq_axis == -1:
        raise ValueError(f"seq_axis={seq_axis} is not a sequence axis of x with shape {x.shape}")
    ax = seq_axis % x.ndim
    positions = np.asarray(_sequence_positions(positions, x.shape[ax]), dtype=np.float64)
    angles = positions[..., None] / base ** (np.arange(0, d, 2) / d)
    pe = np.stack([np.sin(angles), np.cos(angles)], axis=-1).reshape(angles.shape[:-1] + (d,))
    pe = pe.reshape(pe.shape[:-1] + (1,) * (x.ndim - ax - 2) + (d,))
    return x + pe


def check_relative(
    cfg: RopeConfig,
    *,
    dtype=np.float64,
    n_vectors: int = 16,
    n_shifts: int = 8,
    max_position: int = 8192,
    seq_len: int | None = None,
    encoding: Callable | None = None,
    seed: int = 0,
) -> Report:
    """Check ``<f(q, m), f(k, n)> = g(q, k, m - n)`` for random vectors and positions.

    For each of ``n_vectors`` random pairs ``(q, k)`` and a random distance ``D``, the score is
    computed at ``n_shifts`` random position pairs ``(m, n)`` with ``m - n = D`` through
    :func:`numrope.apply_rope` (or ``encoding``) and compared with

    * the closed form ``g(q, k, D) = a**2 Re sum_j q~_j conj(k~_j) exp(i D theta_j) + q_pass . k_pass``
      (``q~``, ``k~`` the pairs as complex numbers, ``a`` the attention scaling);
    * the matrix form ``a**2 q^T R_{n-m} k`` on the rotary features, with :func:`exact_rotation_matrix`;
    * itself: the spread of the ``n_shifts`` scores, which depend only on ``D``.

    Parameters
    ----------
    cfg : RopeConfig
        The configuration, any layout, partial rotary and scaling variant.
    dtype : {float64, float32, float16}, default float64
        Dtype of ``q`` and ``k`` given to the encoding.
    n_vectors, n_shifts : int
        Number of ``(q, k, D)`` draws, and of position pairs per draw.
    max_position : int, default 8192
        Positions are drawn from ``0 .. max_position - 1``.
    seq_len : int, optional
        Fixed sequence length for the variants that depend on it (dynamic NTK, LongRoPE);
        defaults to ``max_position``.
    encoding : callable, optional
        ``encoding(x, positions) -> array`` with ``x`` of shape ``(N, 1, 1, head_dim)`` and
        ``positions`` of shape ``(N, 1)``; defaults to ``numrope.apply_rope`` with ``cfg``. Pass
        :func:`sinusoidal_absolute` to watch the check fail.
    seed : int
        Seed of the random draws.

    Returns
    -------
    Report
        Three comparisons: closed form, matrix form, spread. Relative errors are relative to
        ``a**2 sum_p |q_p| |k_p| + sum_pass |q_j k_j|`` (``|q_p|`` the norm of pair ``p``), the
        largest the score can be; bounds come from the error analysis on the "Accuracy" page.

    Raises
    ------
    TypeError
        If ``cfg`` is not a RopeConfig or ``encoding`` is not callable.
    ValueError
        If a count is not positive or ``dtype`` is not a float dtype numrope supports.

    Notes
    -----
    RoFormer (Su et al. 2021), eq. 16: ``(R_m q)^T (R_n k) = q^T R_{n-m} k``. With the pairs as
    complex numbers, ``f(q, m)_j = q~_j exp(i m theta_j)`` and the real inner product is
    ``Re sum_j f(q, m)_j conj(f(k, n)_j) = Re sum_j q~_j conj(k~_j) exp(i (m - n) theta_j)``.

    Examples
    --------
    >>> import numrope
    >>> from numrope.checks.identity import check_relative, sinusoidal_absolute
    >>> cfg = numrope.RopeConfig(head_dim=64)
    >>> check_relative(cfg).passed
    True
    >>> check_relative(cfg, encoding=sinusoidal_absolute).passed
    False
    """
    return _relative(_OnePosition(cfg), dtype, n_vectors, n_shifts, max_position, seq_len, encoding, seed)


class _OnePosition:
    """Where :func:`check_relative` and :func:`check_rotation` put a token: at one position ``m``.

    :mod:`numrope.checks.multiaxis` subclasses it for coordinate vectors; the checks, their
    comparisons and their bounds are the same for both (:func:`_relative`, :func:`_rotation`).
    """

    relative = ("relative-position identity", "m-n", "q^T R_{n-m} k")
    rotation = ("expm(m A)", "R_m^T R_n = R_{n-m}", "apply_rope(x, m) = a R_m x")
    check = staticmethod(_check_cfg)  # the configurations this placement serves

    def __init__(self, cfg):
        self.check(cfg)
        self.cfg = cfg

    def describe(self, seq_len) -> str:
        return _describe(self.cfg, seq_len)

    def differences(self, rng, n_vectors, max_position):
        """The drawn differences ``D = m - n``, one per draw."""
        return rng.integers(-(max_position - 1), max_position, n_vectors)

    def encoding_positions(self, m):
        """The positions ``(N, 1)`` given to the encoding for tokens at ``m``, shape ``(draws, shifts)``."""
        return m.reshape(-1, 1)

    def turns(self, dist):
        """The difference each pair turns by, per draw (against the frequencies' axis)."""
        return dist[:, None]

    def matrix(self, p, seq_len):
        return exact_rotation_matrix(self.cfg, p, seq_len=seq_len)

    def points(self, positions) -> list:
        return [_check_position(p, "positions") for p in positions]

    def label(self, points) -> str:
        return f"positions {points}"

    def size(self, p) -> float:
        """The largest coordinate of ``p`` in magnitude."""
        return abs(p)

    def per_row(self, p, pair_of):
        """``|p|`` as each feature row of the block-diagonal matrix reads it."""
        return np.abs(p)

    def exponent(self, p, seq_len):
        """The matrix whose exponential is the rotation of ``p``."""
        return p * generator(self.cfg, seq_len)

    def apply_positions(self, p):
        return np.array([[p]])

    def difference(self, p2, p):
        return p2 - p


def _relative(place, dtype, n_vectors, n_shifts, max_position, seq_len, encoding, seed) -> Report:
    """:func:`check_relative` for tokens placed by ``place`` (an :class:`_OnePosition`)."""
    import numrope

    cfg = place.cfg
    for name, value in (("n_vectors", n_vectors), ("n_shifts", n_shifts), ("max_position", max_position)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if n_shifts < 2:
        raise ValueError(f"n_shifts must be at least 2 (the spread needs two positions), got {n_shifts}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float16, np.float32, np.float64):
        raise ValueError(f"dtype must be float16, float32 or float64, got {dtype}")
    if encoding is not None and not callable(encoding):
        raise TypeError(f"encoding must be callable, got {type(encoding).__name__}")
    if seq_len is None and cfg.depends_on_seq_len:
        seq_len = int(max_position)
    if encoding is None:

        def encoding(x, positions):
            return numrope.apply_rope(x, cfg, positions, seq_len=seq_len)

    rng = np.random.default_rng(seed)
    d, r, n = cfg.head_dim, cfg.rotary_dim, cfg.n_pairs
    a = cfg.attention_scaling
    theta = cfg.inv_freq(seq_len)
    # q, k as the dtype holds them; the exact forms use the same values.
    q = rng.standard_normal((n_vectors, d)).astype(dtype).astype(np.float64)
    k = rng.standard_normal((n_vectors, d)).astype(dtype).astype(np.float64)
    dist = place.differences(rng, n_vectors, max_position)  # (draws,) or (draws, axes)
    lo, hi = np.maximum(0, dist), np.minimum(max_position, max_position + dist)
    m = lo[:, None] + (rng.random((n_vectors, n_shifts) + dist.shape[1:]) * (hi - lo)[:, None]).astype(np.int64)
    nn = m - dist[:, None]

    def encode(v, pos):
        x = np.broadcast_to(v[:, None, :], (n_vectors, n_shifts, d)).astype(dtype).reshape(-1, 1, 1, d)
        out = encoding(x, place.encoding_positions(pos))
        return np.asarray(out, dtype=np.float64).reshape(n_vectors, n_shifts, d)

    scores = np.einsum("vsd,vsd->vs", encode(q, m), encode(k, nn))

    order = _pair_order(cfg)
    j0, j1 = order[0:r:2], order[1:r:2]
    rf, rest = np.sort(order[:r]), order[r:]  # the rotary features and those around them
    rho = np.hypot(q[:, j0], q[:, j1]) * np.hypot(k[:, j0], k[:, j1])  # (v, pairs)
    passthrough = np.abs(q[:, rest] * k[:, rest]).sum(axis=1)
    scale = a * a * rho.sum(axis=1) + passthrough

    c, s = exact_angle_cos_sin(place.turns(dist).astype(np.float64), theta[None, :])
    wr = q[:, j0] * k[:, j0] + q[:, j1] * k[:, j1]
    wi = q[:, j1] * k[:, j0] - q[:, j0] * k[:, j1]
    closed = a * a * (wr * c - wi * s).sum(axis=1) + (q[:, rest] * k[:, rest]).sum(axis=1)
    matrix = np.empty(n_vectors)
    for v in range(n_vectors):
        rot = place.matrix(-dist[v], seq_len)[np.ix_(rf, rf)]
        matrix[v] = a * a * (q[v, rf] @ (rot @ k[v, rf])) + q[v, rest] @ k[v, rest]

    # Bounds relative to `scale` (see the "Accuracy" page).
    eps_cs = float(cos_sin_error(np.abs(dist).max() * theta.max()))
    g2, gd = _gamma(2), _gamma(d)
    b_apply = _apply_bound_coefficient(cfg, dtype)
    b_closed = max(math.sqrt(2) * eps_cs + (1 + math.sqrt(2)) * g2 + _gamma(n) + 2 * U64, gd + U64)
    b_matrix = 2 * eps_cs + math.sqrt(2) * g2 + gd + 2 * U64
    err_closed = np.abs(scores - closed[:, None]).max(axis=1)
    err_matrix = np.abs(scores - matrix[:, None]).max(axis=1)
    err_spread = np.ptp(scores, axis=1)
    title, diff, form = place.relative
    rows = []
    for name, err, bound in (
        (f"closed form g(q, k, {diff})", err_closed, b_apply + b_closed),
        (f"matrix form {form}", err_matrix, b_apply + b_matrix),
        (f"spread over pairs with equal {diff}", err_spread, 2 * b_apply),
    ):
        rows.append(Comparison(name, float(err.max()), float((err / scale).max()), bound, "score scale sigma"))
    return Report(f"{title}, {dtype} ({place.describe(seq_len)})", tuple(rows))


def _expm_error(m, theta_i, theta_max) -> np.ndarray:
    """Bound on the entries of expm(m A) minus the exact rotation (the "Accuracy" page)."""
    norm = abs(m) * theta_max
    squarings = 4 * max(1.0, norm / _THETA_13)  # 2**s, ceil and one extra squaring included
    p = np.polynomial.Polynomial(_PADE_13)
    kappa = p(_THETA_13) / abs(p(1j * _THETA_13))
    pade = 2 * _gamma(27) * kappa + 2 * _gamma(3)
    return 2 * U64 * abs(m) * np.asarray(theta_i) + squarings * (pade + _gamma(2))


def check_rotation(
    cfg: RopeConfig, positions: Sequence = (0, 1, 7, 100, 4095), *, seq_len: int | None = None, seed: int = 0
) -> Report:
    """Check the rotation matrices of ``positions``: two constructions, orthogonality, group, apply.

    Parameters
    ----------
    cfg : RopeConfig
        The configuration.
    positions : sequence of int or float
        The positions ``m`` to check (every pair of them for the group property).
    seq_len : int, optional
        Sequence length for the variants that depend on it; defaults to ``max(positions) + 1``.
    seed : int
        Seed of the random vectors given to :func:`numrope.apply_rope`.

    Returns
    -------
    Report
        Comparisons: block_diag vs expm, ``R^T R = I``, ``det R = 1``,
        ``R_m^T R_n = R_{n-m}``, and float64 ``apply_rope(x, m) = a R_m x``, each relative to
        the natural scale (entries of a rotation are at most 1; ``a |x_pair|`` for apply).

    Raises
    ------
    TypeError, ValueError
        For a bad configuration or position (see :func:`exact_rotation_matrix`).

    Notes
    -----
    The bounds come from the error analysis on the "Accuracy" page: cos and sin of the exact
    angle within :func:`cos_sin_error`, ``expm`` within its scaling-and-squaring bound,
    rounding of the 2-term sums in the matrix products.

    Examples
    --------
    >>> import numrope
    >>> from numrope.checks.identity import check_rotation
    >>> check_rotation(numrope.RopeConfig(head_dim=16, layout="interleaved")).passed
    True
    """
    return _rotation(_OnePosition(cfg), positions, seq_len, seed)


def _rotation(place, positions, seq_len, seed) -> Report:
    """:func:`check_rotation` for tokens placed by ``place`` (an :class:`_OnePosition`)."""
    import scipy.linalg

    import numrope

    cfg = place.cfg
    points = place.points(positions)
    if not points:
        raise ValueError("positions must not be empty")
    if seq_len is None and cfg.depends_on_seq_len:
        seq_len = int(max(place.size(p) for p in points)) + 1
    theta = cfg.inv_freq(seq_len)
    r, d = cfg.rotary_dim, cfg.head_dim
    order = _pair_order(cfg)
    pair_of = np.empty(d, dtype=np.int64)
    pair_of[order] = np.concatenate([np.repeat(np.arange(cfg.n_pairs), 2), np.full(d - r, -1)])
    rotary = pair_of >= 0
    theta_row = np.where(rotary, theta[np.maximum(pair_of, 0)], 0.0)  # theta of each feature

    mats = {p: place.matrix(p, seq_len) for p in points}
    rng = np.random.default_rng(seed)
    a = cfg.attention_scaling
    g2 = _gamma(2)
    worst = {key: [0.0, 0.0, 0.0] for key in ("expm", "orth", "det", "group", "apply")}  # error, relative, bound

    def record(key, err, rel, bound):
        w = worst[key]
        w[0], w[1], w[2] = max(w[0], float(err)), max(w[1], float(rel)), max(w[2], float(bound))

    eta_feature = 2 * U64 + math.sqrt(2) * 4 * U64  # float64 apply_rope, per feature (see check_relative)
    for p, rm in mats.items():
        # per feature row; pass-through rows are exact
        eps = np.where(rotary, cos_sin_error(place.per_row(p, pair_of) * theta_row), 0.0)
        expm_err = _expm_error(place.size(p), theta_row, theta.max())
        bound = (eps + expm_err)[:, None]
        diff = np.abs(scipy.linalg.expm(place.exponent(p, seq_len)) - rm)
        record("expm", diff.max(), (diff / bound).max(), 1.0)
        eps_max = float(eps.max())
        orth = np.abs(rm.T @ rm - np.eye(d)).max()
        record("orth", orth, orth, 2 * math.sqrt(2) * eps_max + 2 * eps_max**2 + g2)
        det = abs(scipy.linalg.det(rm) - 1.0)
        n = cfg.n_pairs
        record("det", det, det, n * (2 * math.sqrt(2) * eps_max + 2 * eps_max**2) * 1.001 + _gamma(3 * n + d))
        x = rng.standard_normal((1, 1, 1, d))
        got = numrope.apply_rope(x, cfg, place.apply_positions(p), seq_len=seq_len)[0, 0, 0]
        want = rm @ x[0, 0, 0]
        want[order[:r]] *= a  # the rotary features (not the ones around them)
        norms = a * np.hypot(x[0, 0, 0][order[0:r:2]], x[0, 0, 0][order[1:r:2]])
        diff = np.abs(got - want)
        rel = np.zeros(d)
        rel[rotary] = diff[rotary] / norms[pair_of[rotary]]
        rel[~rotary] = np.where(diff[~rotary] == 0, 0.0, np.inf)  # copied on both sides: exact
        record("apply", diff.max(), rel.max(), eta_feature + math.sqrt(2) * eps_max + g2 + U64)
        for p2, rn in mats.items():
            delta = place.difference(p2, p)
            err = np.abs(rm.T @ rn - place.matrix(delta, seq_len)).max()
            eps2 = float(cos_sin_error(place.size(p2) * theta.max()))
            eps3 = float(cos_sin_error(place.size(delta) * theta.max()))
            record("group", err, err, math.sqrt(2) * (eps_max + eps2) + g2 + eps3)
    expm, group, apply = place.rotation
    names = {
        "expm": (f"block_diag = {expm}", "entry bound (ratio)"),
        "orth": ("R^T R = I", "entries"),
        "det": ("det R = 1", "1"),
        "group": (group, "entries"),
        "apply": (apply, "a |x_pair|"),
    }
    rows = tuple(Comparison(names[k][0], w[0], w[1], w[2], names[k][1]) for k, w in worst.items())
    return Report(f"rotation matrices at {place.label(points)} ({place.describe(seq_len)})", rows)
