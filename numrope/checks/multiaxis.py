"""Numerical proofs for multi-axis RoPE: the score depends only on the coordinate differences, axis by
axis, and the rotation is the block-diagonal matrix of those angles (scipy, independently built).

A token at coordinates ``p = (p_0, ..., p_{n-1})`` rotates pair ``i`` by ``p[axis[i]] theta_i``
(:mod:`numrope.axes`), so with ``R(p)`` the block-diagonal rotation

    ``<R(p) q, R(p') k> = q^T R(p' - p) k = g(q, k, p - p')``

for every coordinate vector: the relative-position property of RoFormer (Su et al. 2021,
section 3.2), holding in each axis separately and jointly (Qwen2-VL, Wang et al. 2024, section 2.1,
builds M-RoPE on it). :func:`check_relative` and :func:`check_rotation` take the arguments of
their namesakes in :mod:`numrope.checks.identity` and return the same comparisons for coordinate
vectors, each against the same error bounds; ``numrope verify --config`` runs them for a
multi-axis configuration. :func:`sinusoidal_absolute` is the counter-example they must reject.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from numrope.checks.identity import _expm_error
from numrope.checks.identity import sinusoidal_absolute as _sinusoidal_1d
from numrope.checks.matrices import U64, _check_cfg, _check_position, _gamma, _pair_order, cos_sin_error
from numrope.checks.matrices import exact_angle_cos_sin as _exact_cos_sin
from numrope.checks.report import Comparison, Report, _apply_bound_coefficient, _describe
from numrope.config import RopeConfig

__all__ = ["check_relative", "check_rotation", "exact_rotation_matrix", "sinusoidal_absolute"]


def _check_axes(cfg):
    _check_cfg(cfg)
    if cfg.axes is None:
        raise ValueError("cfg has one axis (axes=None): use numrope.checks.identity")


def _title(cfg, seq_len):
    return f"{_describe(cfg, seq_len)}, axes {cfg.axes!r}"


def exact_rotation_matrix(cfg: RopeConfig, coords, *, method: str = "block_diag", seq_len: int | None = None):
    """The rotation ``R(p)`` of a token at coordinates ``p``: a ``head_dim x head_dim`` orthogonal matrix.

    Parameters
    ----------
    cfg : RopeConfig
        A multi-axis configuration (``axes`` set).
    coords : sequence of float
        The token's coordinates, one per axis.
    method : {"block_diag", "expm"}, default "block_diag"
        ``"block_diag"``: :func:`scipy.linalg.block_diag` of the 2 x 2 rotations by
        ``p[axis[i]] theta_i`` (cos and sin of the exact products), permuted into the layout's
        pair order. ``"expm"``: :func:`scipy.linalg.expm` of ``sum_a p_a A_a``, ``A_a`` the
        skew-symmetric generator of the pairs that read axis ``a`` (they commute: the sum's
        exponential is the product of the axes' rotations).
    seq_len : int, optional
        For the scaling variants that depend on it.

    Returns
    -------
    numpy.ndarray
        float64 ``(head_dim, head_dim)``, without the attention factor.

    Examples
    --------
    >>> import numpy as np, numrope
    >>> from numrope.checks.multiaxis import exact_rotation_matrix
    >>> cfg = numrope.RopeConfig(8, axes=numrope.axes.sectioned([2, 1, 1]))
    >>> r = exact_rotation_matrix(cfg, (0, 1, 2))
    >>> bool(np.allclose(r, exact_rotation_matrix(cfg, (0, 1, 2), method="expm"), atol=1e-14))
    True
    >>> bool(np.allclose(r[:2, :2], np.eye(2)))  # pair 0 reads t = 0
    True
    """
    import scipy.linalg

    _check_axes(cfg)
    p = np.array([_check_position(c, "coords") for c in coords], dtype=np.float64)
    if p.shape != (cfg.n_axes,):
        raise ValueError(f"coords must have one value per axis ({cfg.n_axes}: {cfg.axes.names}), got {len(p)}")
    theta = cfg.inv_freq(seq_len)
    axis = cfg.axes.axis_index
    order = _pair_order(cfg)
    if method == "expm":
        a = np.zeros((cfg.head_dim, cfg.head_dim))
        j0, j1 = order[0 : cfg.rotary_dim : 2], order[1 : cfg.rotary_dim : 2]
        for k in range(cfg.n_axes):  # sum_a p_a A_a, one generator per axis
            gen = np.zeros_like(a)
            mine = axis == k
            gen[j1[mine], j0[mine]] = theta[mine]
            gen[j0[mine], j1[mine]] = -theta[mine]
            a += p[k] * gen
        return scipy.linalg.expm(a)
    if method != "block_diag":
        raise ValueError(f"method must be 'block_diag' or 'expm', got {method!r}")
    c, s = _exact_cos_sin(p[axis], theta)
    blocks = [np.array([[ci, -si], [si, ci]]) for ci, si in zip(c, s, strict=True)]
    blocks.append(np.eye(cfg.head_dim - cfg.rotary_dim))
    b = scipy.linalg.block_diag(*blocks)
    r = np.empty_like(b)
    r[np.ix_(order, order)] = b
    return r


def sinusoidal_absolute(x, positions, *, seq_axis: int = -3, base: float = 10000.0):
    """The additive sinusoidal encoding of each token's first coordinate: not relative, rejected by the checks.

    ``positions`` are coordinate vectors ``(n_axes, *batch, S)``; the encoding is
    :func:`numrope.checks.identity.sinusoidal_absolute` of row 0.
    """
    return _sinusoidal_1d(x, np.asarray(positions)[0], seq_axis=seq_axis, base=base)


def _differences(rng, n_vectors, n_axes, max_position):
    """Coordinate differences: draw ``v`` moves axis ``v % (n_axes + 1)`` alone, or every axis at once."""
    dist = rng.integers(-(max_position - 1), max_position, (n_vectors, n_axes))
    for v in range(n_vectors):
        alone = v % (n_axes + 1)
        if alone < n_axes:
            keep = dist[v, alone]
            dist[v] = 0
            dist[v, alone] = keep
    return dist


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
    """Check ``<f(q, p), f(k, p')> = g(q, k, p - p')`` for random vectors and coordinate vectors.

    For each of ``n_vectors`` random pairs ``(q, k)`` and a random coordinate difference ``D``
    (one axis moving alone, in turn, or all of them), the score is computed at ``n_shifts``
    random coordinate pairs ``p = p' + D`` through :func:`numrope.apply_rope` (or ``encoding``) and
    compared with the closed form ``a**2 Re sum_i q~_i conj(k~_i) exp(i D[axis[i]] theta_i)``, the
    matrix form ``a**2 q^T R(-D) k`` (:func:`exact_rotation_matrix`, scipy) and itself (the spread
    over equal ``D``).

    Parameters
    ----------
    cfg : RopeConfig
        A multi-axis configuration.
    dtype, n_vectors, n_shifts, max_position, seq_len, seed
        As for :func:`numrope.checks.identity.check_relative`; each coordinate is drawn from
        ``0 .. max_position - 1``.
    encoding : callable, optional
        ``encoding(x, positions) -> array`` with ``x`` of shape ``(N, 1, 1, head_dim)`` and
        coordinates of shape ``(n_axes, N, 1)``; defaults to ``numrope.apply_rope``.

    Returns
    -------
    Report
        The three comparisons of :func:`numrope.checks.identity.check_relative`, with its bounds
        (the angles ``D[axis[i]] theta_i`` bounded by ``max |D| max theta``).

    Examples
    --------
    >>> import numrope
    >>> from numrope.checks.multiaxis import check_relative, sinusoidal_absolute
    >>> cfg = numrope.RopeConfig(64, 1e6, axes=numrope.axes.sectioned([8, 12, 12]))
    >>> check_relative(cfg).passed, check_relative(cfg, encoding=sinusoidal_absolute).passed
    (True, False)
    """
    import numrope

    _check_axes(cfg)
    for name, value in (("n_vectors", n_vectors), ("n_shifts", n_shifts), ("max_position", max_position)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if n_shifts < 2:
        raise ValueError(f"n_shifts must be at least 2 (the spread needs two positions), got {n_shifts}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float16, np.float32, np.float64):
        raise ValueError(f"dtype must be float16, float32 or float64, got {dtype}")
    if seq_len is None and cfg.depends_on_seq_len:
        seq_len = int(max_position)
    if encoding is None:

        def encoding(x, positions):
            return numrope.apply_rope(x, cfg, positions, seq_len=seq_len)

    rng = np.random.default_rng(seed)
    d, r, n_axes = cfg.head_dim, cfg.rotary_dim, cfg.n_axes
    a = cfg.attention_scaling
    theta = cfg.inv_freq(seq_len)
    axis = cfg.axes.axis_index
    q = rng.standard_normal((n_vectors, d)).astype(dtype).astype(np.float64)
    k = rng.standard_normal((n_vectors, d)).astype(dtype).astype(np.float64)
    dist = _differences(rng, n_vectors, n_axes, max_position)  # (v, axes)
    lo, hi = np.maximum(0, dist), np.minimum(max_position, max_position + dist)
    m = lo[:, None, :] + (rng.random((n_vectors, n_shifts, n_axes)) * (hi - lo)[:, None, :]).astype(np.int64)
    nn = m - dist[:, None, :]

    def encode(v, coords):
        x = np.broadcast_to(v[:, None, :], (n_vectors, n_shifts, d)).astype(dtype).reshape(-1, 1, 1, d)
        at = np.moveaxis(coords.reshape(-1, n_axes), 1, 0)[:, :, None]  # (n_axes, N, 1)
        return np.asarray(encoding(x, at), dtype=np.float64).reshape(n_vectors, n_shifts, d)

    scores = np.einsum("vsd,vsd->vs", encode(q, m), encode(k, nn))
    order = _pair_order(cfg)
    j0, j1 = order[0:r:2], order[1:r:2]
    rho = np.hypot(q[:, j0], q[:, j1]) * np.hypot(k[:, j0], k[:, j1])
    scale = a * a * rho.sum(axis=1) + np.abs(q[:, r:] * k[:, r:]).sum(axis=1)
    c, s = _exact_cos_sin(dist[:, axis].astype(np.float64), theta[None, :])
    wr = q[:, j0] * k[:, j0] + q[:, j1] * k[:, j1]
    wi = q[:, j1] * k[:, j0] - q[:, j0] * k[:, j1]
    closed = a * a * (wr * c - wi * s).sum(axis=1) + (q[:, r:] * k[:, r:]).sum(axis=1)
    matrix = np.empty(n_vectors)
    for v in range(n_vectors):
        rot = exact_rotation_matrix(cfg, -dist[v].astype(np.float64), seq_len=seq_len)[:r, :r]
        matrix[v] = a * a * (q[v, :r] @ (rot @ k[v, :r])) + q[v, r:] @ k[v, r:]
    eps_cs = float(cos_sin_error(np.abs(dist).max() * theta.max()))
    g2, gd = _gamma(2), _gamma(d)
    b_apply = _apply_bound_coefficient(cfg, dtype)
    b_closed = max(math.sqrt(2) * eps_cs + (1 + math.sqrt(2)) * g2 + _gamma(cfg.n_pairs) + 2 * U64, gd + U64)
    b_matrix = 2 * eps_cs + math.sqrt(2) * g2 + gd + 2 * U64
    rows = []
    for name, err, bound in (
        ("closed form g(q, k, p-p')", np.abs(scores - closed[:, None]).max(axis=1), b_apply + b_closed),
        ("matrix form q^T R(p'-p) k", np.abs(scores - matrix[:, None]).max(axis=1), b_apply + b_matrix),
        ("spread over pairs with equal p-p'", np.ptp(scores, axis=1), 2 * b_apply),
    ):
        rows.append(Comparison(name, float(err.max()), float((err / scale).max()), bound, "score scale sigma"))
    return Report(f"relative-position identity per axis, {dtype} ({_title(cfg, seq_len)})", tuple(rows))


def _coordinate_vectors(cfg, positions):
    """Each position as coordinates: an int ``m`` gives ``(m, .., m)`` (a text token) and a mixed
    vector (an image token's); sequences are taken as coordinate vectors."""
    out = []
    for p in positions:
        if np.ndim(p) == 0:
            m = _check_position(p, "positions")
            out.append((m,) * cfg.n_axes)
            out.append(tuple(float(math.floor(m * f)) for f in (1.0, 0.7, 0.3, 0.9)[: cfg.n_axes]))
        else:
            out.append(tuple(_check_position(c, "positions") for c in p))
    return list(dict.fromkeys(out))


def check_rotation(
    cfg: RopeConfig, positions: Sequence = (0, 1, 7, 100, 4095), *, seq_len: int | None = None, seed: int = 0
) -> Report:
    """Check the rotation matrices of coordinate vectors: two constructions, orthogonality, group, apply.

    Parameters
    ----------
    cfg : RopeConfig
        A multi-axis configuration.
    positions : sequence
        Coordinate vectors, or ints ``m``: each stands for the text token ``(m, ..., m)`` and an
        image-like token with different coordinates per axis.
    seq_len, seed
        As for :func:`numrope.checks.identity.check_rotation`.

    Returns
    -------
    Report
        The comparisons of :func:`numrope.checks.identity.check_rotation`: block_diag vs expm,
        ``R^T R = I``, ``det R = 1``, ``R(p)^T R(p') = R(p' - p)``, ``apply_rope(x, p) = a R(p) x``.

    Examples
    --------
    >>> import numrope
    >>> from numrope.checks.multiaxis import check_rotation
    >>> check_rotation(numrope.RopeConfig(16, axes=numrope.axes.axial(8))).passed
    True
    """
    import scipy.linalg

    import numrope

    _check_axes(cfg)
    coords = _coordinate_vectors(cfg, positions)
    if not coords:
        raise ValueError("positions must not be empty")
    if seq_len is None and cfg.depends_on_seq_len:
        seq_len = int(max(abs(c) for p in coords for c in p)) + 1
    theta = cfg.inv_freq(seq_len)
    r, d = cfg.rotary_dim, cfg.head_dim
    order = _pair_order(cfg)
    pair_of = np.empty(d, dtype=np.int64)
    pair_of[order] = np.concatenate([np.repeat(np.arange(cfg.n_pairs), 2), np.full(d - r, -1)])
    rotary = pair_of >= 0
    theta_row = np.where(rotary, theta[np.maximum(pair_of, 0)], 0.0)
    axis_row = np.where(rotary, cfg.axes.axis_index[np.maximum(pair_of, 0)], 0)
    mats = {p: exact_rotation_matrix(cfg, p, seq_len=seq_len) for p in coords}
    rng = np.random.default_rng(seed)
    a = cfg.attention_scaling
    g2 = _gamma(2)
    worst = {key: [0.0, 0.0, 0.0] for key in ("expm", "orth", "det", "group", "apply")}

    def record(key, err, rel, bound):
        w = worst[key]
        w[0], w[1], w[2] = max(w[0], float(err)), max(w[1], float(rel)), max(w[2], float(bound))

    for p, rm in mats.items():
        pv = np.asarray(p)
        eps = np.where(rotary, cos_sin_error(np.abs(pv[axis_row]) * theta_row), 0.0)
        bound = (eps + _expm_error(float(np.abs(pv).max()), theta_row, theta.max()))[:, None]
        diff = np.abs(scipy.linalg.expm(_generator_sum(cfg, pv, theta, order)) - rm)
        record("expm", diff.max(), (diff / bound).max(), 1.0)
        eps_max = float(eps.max())
        orth = np.abs(rm.T @ rm - np.eye(d)).max()
        record("orth", orth, orth, 2 * math.sqrt(2) * eps_max + 2 * eps_max**2 + g2)
        det = abs(scipy.linalg.det(rm) - 1.0)
        n = cfg.n_pairs
        record("det", det, det, n * (2 * math.sqrt(2) * eps_max + 2 * eps_max**2) * 1.001 + _gamma(3 * n + d))
        x = rng.standard_normal((1, 1, 1, d))
        got = numrope.apply_rope(x, cfg, pv.reshape(-1, 1, 1), seq_len=seq_len)[0, 0, 0]
        want = rm @ x[0, 0, 0]
        want[:r] *= a
        norms = a * np.hypot(x[0, 0, 0][order[0:r:2]], x[0, 0, 0][order[1:r:2]])
        err = np.abs(got - want)
        rel = np.zeros(d)
        rel[rotary] = err[rotary] / norms[pair_of[rotary]]
        rel[~rotary] = np.where(err[~rotary] == 0, 0.0, np.inf)
        record("apply", err.max(), rel.max(), 2 * U64 + math.sqrt(2) * 4 * U64 + math.sqrt(2) * eps_max + g2 + U64)
        for p2, rn in mats.items():
            delta = np.asarray(p2) - pv
            e = np.abs(rm.T @ rn - exact_rotation_matrix(cfg, delta, seq_len=seq_len)).max()
            eps2 = float(cos_sin_error(np.abs(p2).max() * theta.max()))
            eps3 = float(cos_sin_error(np.abs(delta).max() * theta.max()))
            record("group", e, e, math.sqrt(2) * (eps_max + eps2) + g2 + eps3)
    names = {
        "expm": ("block_diag = expm(sum p_a A_a)", "entry bound (ratio)"),
        "orth": ("R^T R = I", "entries"),
        "det": ("det R = 1", "1"),
        "group": ("R(p)^T R(p') = R(p'-p)", "entries"),
        "apply": ("apply_rope(x, p) = a R(p) x", "a |x_pair|"),
    }
    rows = tuple(Comparison(names[k][0], w[0], w[1], w[2], names[k][1]) for k, w in worst.items())
    return Report(f"rotation matrices at {len(coords)} coordinate vectors ({_title(cfg, seq_len)})", rows)


def _generator_sum(cfg, p, theta, order):
    """``sum_a p_a A_a`` with exact-looking float64 entries ``p[axis[i]] theta_i`` (rounded once)."""
    j0, j1 = order[0 : cfg.rotary_dim : 2], order[1 : cfg.rotary_dim : 2]
    g = np.zeros((cfg.head_dim, cfg.head_dim))
    angle = p[cfg.axes.axis_index] * theta
    g[j1, j0] = angle
    g[j0, j1] = -angle
    return g
