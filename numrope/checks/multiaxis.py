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

from numrope.checks.identity import _OnePosition, _relative, _rotation
from numrope.checks.identity import sinusoidal_absolute as _sinusoidal_1d
from numrope.checks.matrices import _check_cfg, _check_position, _pair_order
from numrope.checks.matrices import exact_angle_cos_sin as _exact_cos_sin
from numrope.checks.report import Report, _describe
from numrope.config import RopeConfig

__all__ = ["check_relative", "check_rotation", "exact_rotation_matrix", "sinusoidal_absolute"]


def _check_axes(cfg):
    _check_cfg(cfg)
    if cfg.axes is None:
        raise ValueError("cfg has one axis (axes=None): use numrope.checks.identity")


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
    return _relative(_Coordinates(cfg), dtype, n_vectors, n_shifts, max_position, seq_len, encoding, seed)


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
    return _rotation(_Coordinates(cfg), positions, seq_len, seed)


class _Coordinates(_OnePosition):
    """Tokens at coordinate vectors ``p``: pair ``i`` turns by ``p[axis[i]] theta_i``."""

    relative = ("relative-position identity per axis", "p-p'", "q^T R(p'-p) k")
    rotation = ("expm(sum p_a A_a)", "R(p)^T R(p') = R(p'-p)", "apply_rope(x, p) = a R(p) x")
    check = staticmethod(_check_axes)

    def describe(self, seq_len) -> str:
        return f"{_describe(self.cfg, seq_len)}, axes {self.cfg.axes!r}"

    def differences(self, rng, n_vectors, max_position):
        """Draw ``v`` moves axis ``v % (n_axes + 1)`` alone, or every axis at once."""
        n_axes = self.cfg.n_axes
        dist = rng.integers(-(max_position - 1), max_position, (n_vectors, n_axes))
        for v in range(n_vectors):
            alone = v % (n_axes + 1)
            if alone < n_axes:
                keep = dist[v, alone]
                dist[v] = 0
                dist[v, alone] = keep
        return dist

    def encoding_positions(self, m):
        return np.moveaxis(m.reshape(-1, self.cfg.n_axes), 1, 0)[:, :, None]  # (n_axes, N, 1)

    def turns(self, dist):
        return dist[:, self.cfg.axes.axis_index]

    def matrix(self, p, seq_len):
        return exact_rotation_matrix(self.cfg, p, seq_len=seq_len)

    def points(self, positions) -> list:
        """Each int ``m`` as a text token ``(m, .., m)`` and a mixed (image-like) vector; sequences
        are taken as coordinate vectors."""
        out = []
        for p in positions:
            if np.ndim(p) == 0:
                m = _check_position(p, "positions")
                out.append((m,) * self.cfg.n_axes)
                out.append(tuple(float(math.floor(m * f)) for f in (1.0, 0.7, 0.3, 0.9)[: self.cfg.n_axes]))
            else:
                out.append(tuple(_check_position(c, "positions") for c in p))
        return list(dict.fromkeys(out))

    def label(self, points) -> str:
        return f"{len(points)} coordinate vectors"

    def size(self, p) -> float:
        return float(np.abs(p).max())

    def per_row(self, p, pair_of):
        axis_row = np.where(pair_of >= 0, self.cfg.axes.axis_index[np.maximum(pair_of, 0)], 0)
        return np.abs(np.asarray(p)[axis_row])

    def exponent(self, p, seq_len):
        """``sum_a p_a A_a``, its entries ``p[axis[i]] theta_i`` rounded once."""
        cfg = self.cfg
        order = _pair_order(cfg)
        j0, j1 = order[0 : cfg.rotary_dim : 2], order[1 : cfg.rotary_dim : 2]
        g = np.zeros((cfg.head_dim, cfg.head_dim))
        angle = np.asarray(p)[cfg.axes.axis_index] * cfg.inv_freq(seq_len)
        g[j1, j0] = angle
        g[j0, j1] = -angle
        return g

    def apply_positions(self, p):
        return np.asarray(p, dtype=np.float64).reshape(-1, 1, 1)

    def difference(self, p2, p):
        return np.asarray(p2) - np.asarray(p)
