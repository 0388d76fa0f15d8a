"""The rotation matrix of RoPE with exact angles, built two independent ways (scipy-free NumPy).

* :func:`exact_rotation_matrix` -- ``R_{Theta,m}`` of RoFormer (Su et al. 2021, eq. 15), as a
  block diagonal of 2 x 2 rotations or as the matrix exponential of :func:`generator`;
* :func:`exact_angle_cos_sin` and :func:`cos_sin_error` -- cos/sin of the exact product ``m * theta``
  and the bound on their error.

Unlike :func:`numrope.reference.rope_matrix`, these matrices are pure rotations: no attention
scaling, and angles formed exactly.
"""

from __future__ import annotations

import math

import numpy as np

from numrope.config import RopeConfig

U64 = 2.0**-53  # unit roundoff of float64


NUMPY_TRIG_ULPS = 4  # NumPy's float64 cos/sin are accurate to 4 ulp (its vectorised routines' bound)


# Scaling and squaring (Al-Mohy and Higham 2009): Pade degree 13 is used for ||X||_1 <= THETA_13.
_THETA_13 = 5.371920351148152


_PADE_13 = (
    64764752532480000.0,
    32382376266240000.0,
    7771770303897600.0,
    1187353796428800.0,
    129060195264000.0,
    10559470521600.0,
    670442572800.0,
    33522128640.0,
    1323241920.0,
    40840800.0,
    960960.0,
    16380.0,
    182.0,
    1.0,
)


def _gamma(n: int, u: float = U64) -> float:
    """Higham's gamma_n = n u / (1 - n u): the bound on n successive relative roundings."""
    return n * u / (1.0 - n * u)


def _check_cfg(cfg):
    if not isinstance(cfg, RopeConfig):
        raise TypeError(f"cfg must be a numrope.RopeConfig, got {type(cfg).__name__}")
    if cfg.layout == "interleaved_in_half_out":
        raise NotImplementedError(
            "layout 'interleaved_in_half_out' reads pairs at (2i, 2i+1) and writes them at (i, i + d/2): the "
            "interleaved rotation followed by a fixed permutation, not a rotation of one feature basis; check the "
            "'interleaved' layout, which turns every pair alike"
        )


def _check_position(m, name="m") -> float:
    if isinstance(m, (bool, np.bool_)) or not isinstance(m, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(m).__name__} {m!r}")
    m = float(m)
    if not math.isfinite(m):
        raise ValueError(f"{name} must be finite, got {m}")
    if abs(m) >= 2.0**52:
        raise ValueError(f"{name} must be below 2**52 in magnitude, got {m:g}")
    return m


def _two_prod(a, b):
    """(p, e) with p + e == a * b exactly (Dekker's product with Veltkamp's split)."""
    p = a * b
    t = 134217729.0 * a
    ah = t - (t - a)
    al = a - ah
    t = 134217729.0 * b
    bh = t - (t - b)
    bl = b - bh
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def exact_angle_cos_sin(m, theta):
    """cos and sin of the exact product ``m * theta``, in plain NumPy float64.

    The product is split exactly into ``h + l`` (Dekker), and ``cos(h + l) = cos h - l sin h``,
    ``sin(h + l) = sin h + l cos h`` to first order in ``l``. Each value is within
    :func:`cos_sin_error` of the exact one.
    """
    h, low = _two_prod(np.asarray(m, dtype=np.float64), np.asarray(theta, dtype=np.float64))
    c, s = np.cos(h), np.sin(h)
    return c - low * s, s + low * c


def cos_sin_error(angle) -> np.ndarray:
    """Bound on ``|cos - exact|`` and ``|sin - exact|`` of :func:`exact_angle_cos_sin` at ``angle``.

    ``(2 lambda + 1) u (1 + |l|) + u + l**2 / 2`` with ``lambda`` = :data:`NUMPY_TRIG_ULPS` (one
    ulp of a value at most 1 is at most ``2u``), ``|l| <= u |angle|`` the low part of the angle,
    and ``l**2 / 2`` the truncated second-order term.
    """
    low = U64 * np.abs(np.asarray(angle, dtype=np.float64))
    return (2 * NUMPY_TRIG_ULPS + 1) * U64 * (1 + low) + U64 + low**2 / 2


def _pair_order(cfg) -> np.ndarray:
    """Feature index of each row of the block-diagonal matrix: pair by pair, then pass-through."""
    first, second = cfg.pair_indices()
    passing = np.setdiff1d(np.arange(cfg.head_dim), np.concatenate([first, second]))  # around the rotary part
    return np.concatenate([np.stack([first, second], axis=1).ravel(), passing])


def generator(cfg: RopeConfig, seq_len: int | None = None) -> np.ndarray:
    """The skew-symmetric generator ``A`` with ``R_{Theta,m} = expm(m A)``.

    Parameters
    ----------
    cfg : RopeConfig
        The RoPE configuration.
    seq_len : int, optional
        Sequence length for the scaling variants that depend on it (dynamic NTK, LongRoPE).

    Returns
    -------
    numpy.ndarray
        float64 ``(head_dim, head_dim)`` matrix, zero except ``A[j1, j0] = theta_i`` and
        ``A[j0, j1] = -theta_i`` for each pair ``(j0, j1)`` of the layout.

    Notes
    -----
    The rotation by ``m theta`` in a plane is ``exp(m theta J)`` with ``J = [[0, -1], [1, 0]]``;
    ``A`` is the direct sum of the ``theta_i J`` in the layout's pair order.

    Examples
    --------
    >>> import numrope
    >>> from numrope.checks.matrices import generator
    >>> a = generator(numrope.RopeConfig(head_dim=4, layout="interleaved"))
    >>> a.tolist()
    [[0.0, -1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, -0.01], [0.0, 0.0, 0.01, 0.0]]
    """
    _check_cfg(cfg)
    theta = cfg.inv_freq(seq_len)
    order = _pair_order(cfg)
    j0, j1 = order[0 : cfg.rotary_dim : 2], order[1 : cfg.rotary_dim : 2]
    a = np.zeros((cfg.head_dim, cfg.head_dim))
    a[j1, j0] = theta
    a[j0, j1] = -theta
    return a


def exact_rotation_matrix(cfg: RopeConfig, m, *, method: str = "block_diag", seq_len: int | None = None) -> np.ndarray:
    """The rotation ``R_{Theta,m}`` of position ``m``: a ``head_dim x head_dim`` orthogonal matrix.

    Parameters
    ----------
    cfg : RopeConfig
        The RoPE configuration (layout, rotary part, scaling variant).
    m : int or float
        The position.
    method : {"block_diag", "expm"}, default "block_diag"
        ``"block_diag"``: :func:`scipy.linalg.block_diag` of the 2 x 2 rotations by
        ``m * theta_i``, permuted into the layout's pair order, identity on the pass-through
        features; cos and sin of the exact product ``m * theta_i`` (:func:`exact_angle_cos_sin`).
        ``"expm"``: :func:`scipy.linalg.expm` of ``m * A`` with ``A`` the :func:`generator`.
    seq_len : int, optional
        Sequence length for the scaling variants that depend on it (dynamic NTK, LongRoPE).

    Returns
    -------
    numpy.ndarray
        float64 ``(head_dim, head_dim)`` rotation. It does not include ``cfg.attention_scaling``:
        :func:`numrope.apply_rope` at position ``m`` computes ``attention_scaling * R_m x`` on
        the rotary features and copies the others.

    Raises
    ------
    TypeError
        If ``cfg`` is not a RopeConfig or ``m`` is not a real number.
    ValueError
        If ``m`` is not finite or not below ``2**52`` in magnitude, or ``method`` is unknown.

    Notes
    -----
    RoFormer (Su et al. 2021), eq. 15: ``R_{Theta,m} = diag(R(m theta_1), ..., R(m theta_{d/2}))``
    with ``R(phi) = [[cos phi, -sin phi], [sin phi, cos phi]]``, in the interleaved pair order;
    the half layout is the same matrix with rows and columns permuted. The block-diagonal
    entries are within :func:`cos_sin_error` of the exact ones. ``expm`` forms ``m * A`` in
    float64 (angles off by ``u |m theta_i|``) and its scaling and squaring loses about
    ``2**s`` times its Pade error for ``s`` squarings; the "Accuracy" page bounds both.

    Examples
    --------
    >>> import numpy as np, numrope
    >>> from numrope.checks.matrices import exact_rotation_matrix
    >>> cfg = numrope.RopeConfig(head_dim=4, layout="interleaved")
    >>> r = exact_rotation_matrix(cfg, 1)
    >>> r[:2, :2].round(6).tolist()  # the first pair turns by 1 radian
    [[0.540302, -0.841471], [0.841471, 0.540302]]
    >>> bool(np.allclose(r, exact_rotation_matrix(cfg, 1, method="expm"), rtol=0, atol=1e-14))
    True
    """
    import scipy.linalg

    _check_cfg(cfg)
    m = _check_position(m)
    if method == "expm":
        return scipy.linalg.expm(m * generator(cfg, seq_len))
    if method != "block_diag":
        raise ValueError(f"method must be 'block_diag' or 'expm', got {method!r}")
    c, s = exact_angle_cos_sin(m, cfg.inv_freq(seq_len))
    blocks = [np.array([[ci, -si], [si, ci]]) for ci, si in zip(c, s, strict=True)]
    blocks.append(np.eye(cfg.head_dim - cfg.rotary_dim))
    b = scipy.linalg.block_diag(*blocks)
    order = _pair_order(cfg)
    r = np.empty_like(b)
    r[np.ix_(order, order)] = b
    return r
