"""RoFormer's long-term decay (section 3.4.3): the bound on the attention score against distance."""

from __future__ import annotations

import itertools
import math

import numpy as np

from numrope.checks.matrices import _check_cfg, _gamma, cos_sin_error, exact_angle_cos_sin
from numrope.checks.report import Comparison, Report, _describe
from numrope.config import RopeConfig


def decay_bound(cfg: RopeConfig, distances, *, seq_len: int | None = None) -> np.ndarray:
    """RoFormer's relative upper bound on the attention score at relative distance ``m - n``.

    Parameters
    ----------
    cfg : RopeConfig
        The configuration; its ``inv_freq`` (scaled, if a variant is set) gives the ``theta_j``.
    distances : array_like of float
        Relative distances ``D = m - n``.
    seq_len : int, optional
        Sequence length for the variants that depend on it.

    Returns
    -------
    numpy.ndarray
        float64 array of ``distances``' shape: ``(1 / (d/2)) sum_{j=1}^{d/2} |S_j|`` with
        ``S_j = sum_{k=0}^{j-1} exp(i D theta_k)`` and ``d = rotary_dim``.

    Raises
    ------
    TypeError
        If ``cfg`` is not a RopeConfig.
    ValueError
        If a distance is not finite.

    Notes
    -----
    RoFormer (Su et al. 2021), section 3.4.3. With ``h_j = q~_j conj(k~_j)`` and
    ``h_{d/2} = 0``, Abel summation gives
    ``|sum_j h_j exp(i D theta_j)| <= max_j |h_{j+1} - h_j| sum_{j=1}^{d/2} |S_j|``; the paper
    plots ``sum |S_j|`` divided by ``d/2``, which decays as ``D`` grows. At ``D = 0``,
    ``S_j = j`` and the bound is ``(d/2 + 1) / 2``.

    Examples
    --------
    >>> import numrope
    >>> from numrope.checks.decay import decay_bound
    >>> cfg = numrope.RopeConfig(head_dim=128)
    >>> decay_bound(cfg, [0, 10, 100, 1000]).round(2).tolist()
    [32.5, 17.95, 10.23, 4.47]
    """
    _check_cfg(cfg)
    dist = np.asarray(distances, dtype=np.float64)
    if not np.isfinite(dist).all():
        raise ValueError("distances must be finite")
    c, s = exact_angle_cos_sin(dist[..., None], cfg.inv_freq(seq_len))
    partial = np.abs(np.cumsum(c, axis=-1) + 1j * np.cumsum(s, axis=-1))
    return partial.mean(axis=-1)


def check_decay(
    cfg: RopeConfig, *, max_distance: int = 4096, n_vectors: int = 64, seq_len: int | None = None, seed: int = 0
) -> Report:
    """Check RoFormer's long-term decay: the bound itself and the inequality it states.

    Parameters
    ----------
    cfg : RopeConfig
        The configuration (its rotary part and frequencies).
    max_distance : int, default 4096
        Distances ``0 .. max_distance`` are examined.
    n_vectors : int, default 64
        Random ``(q, k)`` pairs for the inequality.
    seq_len : int, optional
        Sequence length for the variants that depend on it.
    seed : int
        Seed of the random draws.

    Returns
    -------
    Report
        Comparisons: the value at distance 0 against ``(d/2 + 1) / 2``; the Abel-summation
        inequality ``|g(q, k, D)| <= max_j |h_{j+1} - h_j| sum |S_j|`` for every distance and
        random pair (error = how far the left side exceeds the right, relative to the right);
        and the decaying trend (the means over ``[1, 10)``, ``[10, 100)`` and ``[100, 1000)``
        must decrease; the error is the largest ratio of a later mean to an earlier one, bound 1).
        Further out the bound levels off, where the partial sums ``S_j`` behave like random walks.

    Raises
    ------
    TypeError
        If ``cfg`` is not a RopeConfig.
    ValueError
        If ``max_distance`` is less than 1000.

    Examples
    --------
    >>> import numrope
    >>> from numrope.checks.decay import check_decay
    >>> check_decay(numrope.RopeConfig(head_dim=64)).passed
    True
    """
    _check_cfg(cfg)
    if max_distance < 1000:
        raise ValueError(f"max_distance must be at least 1000 to see the trend, got {max_distance}")
    n = cfg.n_pairs
    dist = np.arange(max_distance + 1, dtype=np.float64)
    bound = decay_bound(cfg, dist, seq_len=seq_len)
    at_zero = (n + 1) / 2
    err0 = abs(bound[0] - at_zero)
    rows = [Comparison("bound at distance 0 = (d/2+1)/2", err0, err0 / at_zero, _gamma(2 * n), "(d/2+1)/2")]

    rng = np.random.default_rng(seed)
    h = rng.standard_normal((n_vectors, n)) + 1j * rng.standard_normal((n_vectors, n))
    theta = cfg.inv_freq(seq_len)
    c, s = exact_angle_cos_sin(dist[:, None], theta)
    e = c + 1j * s  # (D, pairs)
    lhs = np.abs(h @ e.T)  # (vectors, D)
    step = np.abs(np.diff(np.concatenate([h, np.zeros((n_vectors, 1))], axis=1), axis=1)).max(axis=1)
    rhs = step[:, None] * bound[None, :] * n
    excess = np.maximum(lhs - rhs, 0.0)
    # both sides are sums of n terms, each with cos/sin off by cos_sin_error: ~ (gamma_n + eps) each
    eps = float(cos_sin_error(max_distance * theta.max()))
    rel_b = (_gamma(n + 1) + math.sqrt(2) * eps) * n**2 + _gamma(3)
    rows.append(Comparison("|g| <= max|h_j+1 - h_j| sum|S_j|", excess.max(), (excess / rhs).max(), rel_b, "rhs"))

    # decade means over [1, 10), [10, 100), [100, 1000): the bound falls, then levels off
    means = [bound[lo:hi].mean() for lo, hi in ((1, 10), (10, 100), (100, 1000))]
    ratio = max(b / a for a, b in itertools.pairwise(means))
    rows.append(Comparison("decaying trend (later/earlier decade mean)", ratio, ratio, 1.0, "1"))
    return Report(f"long-term decay ({_describe(cfg, seq_len)})", tuple(rows))
