"""The angles each pair received: what an output's rotation did, recovered from the input and the output.

A rotation keeps every pair's norm, so from an input pair ``x`` and its output ``y`` the angle
the pair received is ``arg(y) - arg(x)`` (with the pairing of the layout in question) and the
gain it received is ``|y| / |x|``, whatever the implementation did wrong. Fitting the angles
against the position, pair by pair, recovers the frequency each pair turned with (the slope)
and where its phase starts (the angle at position 0); reading them token by token, with the
configuration's frequencies, recovers the position each token was rotated for. These name what
no list of hypotheses can: which band of frequencies is off, positions rounded to a narrow
float, angles formed in too few bits, batch rows rotated differently from one another.

Everything here is plain NumPy in float64 on the ``(tokens, heads, head_dim)`` arrays of a
comparison (:mod:`numrope.validation.case`).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

TWO_PI = 2 * math.pi


def wrap(angle):
    """``angle`` reduced to ``[-pi, pi)``."""
    return (angle + math.pi) % TWO_PI - math.pi


@dataclasses.dataclass(frozen=True)
class Received:
    """What each token's pairs received, the heads combined.

    Attributes
    ----------
    pos : numpy.ndarray
        ``(T,)`` the positions the tokens should have had.
    phi : numpy.ndarray
        ``(T, P)`` the angle received, forward positive, in ``[-pi, pi)``.
    weight : numpy.ndarray
        ``(T, P)`` ``sum_h |x_pair|**2``: how much signal the angle rests on (0: none).
    gain : numpy.ndarray
        ``(T, P)`` ``sqrt(sum_h |y_pair|**2 / sum_h |x_pair|**2)`` (NaN where ``x`` is 0).
    """

    pos: np.ndarray
    phi: np.ndarray
    weight: np.ndarray
    gain: np.ndarray


def received(case, cfg, *, flip=False, swap=False) -> Received:
    """The angles and gains each pair of ``case`` received, paired as ``cfg`` pairs.

    ``flip`` reads the angles of the opposite direction; ``swap`` those of an output with cos
    and sin exchanged (``pi/2 - angle``). For an inverse case (``case.inverse``) the forward
    angle is read, so that a correct output gives ``m theta_i`` either way.
    """
    j0, j1 = cfg.pair_indices(output=case.inverse)  # read; the inverse reads where the forward map writes
    k0, k1 = cfg.pair_indices(output=not case.inverse)  # written
    x0, x1 = case.x[..., j0], case.x[..., j1]
    y0, y1 = case.actual[..., k0], case.actual[..., k1]
    with np.errstate(over="ignore", invalid="ignore"):
        cross = np.nansum(x0 * y1 - x1 * y0, axis=1)
        dot = np.nansum(x0 * y0 + x1 * y1, axis=1)
        phi = np.arctan2(cross, dot)
        weight = np.sum(x0 * x0 + x1 * x1, axis=1)
        out = np.nansum(y0 * y0 + y1 * y1, axis=1)
        gain = np.where(weight > 0, np.sqrt(out / np.where(weight > 0, weight, 1.0)), np.nan)
    if case.inverse != bool(flip):
        phi = -phi
    if swap:
        phi = wrap(math.pi / 2 - phi)
    return Received(pos=case.pos, phi=phi, weight=weight, gain=gain)


def pair_maps(case, cfg):
    """The 2x2 map each token's pair went through, fitted over the heads: ``(M (T, P, 2, 2), misfit (T, P))``.

    RoPE turns every head's pair of a token by the same cos and sin, so ``y_h = M x_h`` for every
    head ``h`` with one ``M``: ``a [[c, -s], [s, c]]`` for a correct rotation. With three heads or
    more the map is overdetermined and its misfit (the residual over ``|y|``, root mean square)
    says whether the output is a linear map of the input at all. None with fewer than 3 heads.
    """
    H = case.x.shape[1]
    if H < 3:
        return None
    j0, j1 = cfg.pair_indices(output=case.inverse)
    k0, k1 = cfg.pair_indices(output=not case.inverse)
    X = np.stack([case.x[..., j0], case.x[..., j1]], axis=-1)  # (T, H, P, 2)
    Y = np.stack([case.actual[..., k0], case.actual[..., k1]], axis=-1)
    X, Y = np.moveaxis(X, 1, 2), np.moveaxis(Y, 1, 2)  # (T, P, H, 2)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        A = np.einsum("tphi,tphj->tpij", X, X)
        B = np.einsum("tphi,tphj->tpij", X, Y)
        ok = np.abs(np.linalg.det(A)) > 1e-12 * np.einsum("tpii->tp", A) ** 2
        A = np.where(ok[..., None, None], A, np.eye(2))
        Mt = np.linalg.solve(A, B)  # y_h = x_h Mt, so M = Mt^T
        R = Y - np.einsum("tphi,tpij->tphj", X, Mt)
        # over |y|, or a trace of |x| where the output is zero (a zero map fits it exactly)
        scale = np.maximum(np.sum(Y**2, axis=(2, 3)), 1e-24 * np.sum(X**2, axis=(2, 3)))
        misfit = np.sqrt(np.sum(R**2, axis=(2, 3)) / scale)
    misfit = np.where(ok & np.isfinite(misfit), misfit, np.inf)
    return np.swapaxes(Mt, -1, -2), misfit


# -- the frequencies, pair by pair ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FrequencyFit:
    """A line ``angle = theta_i m + phase0_i`` fitted to each pair's angles.

    Attributes
    ----------
    theta : numpy.ndarray
        ``(P,)`` the recovered frequency (radians per position); NaN where the positions do
        not determine it (fewer than two distinct positions).
    sigma : numpy.ndarray
        ``(P,)`` its standard error.
    phase0 : numpy.ndarray
        ``(P,)`` the fitted angle at position 0, in ``[-pi, pi)``.
    residual : numpy.ndarray
        ``(P,)`` the root-mean-square angle left after the fit: small where a line explains the
        pair's angles.
    span : float
        The range of positions fitted.
    step : float
        The smallest step between positions: a frequency is known only modulo ``2 pi / step``
        (the recovered one is the alias nearest the expected frequency).
    """

    theta: np.ndarray
    sigma: np.ndarray
    phase0: np.ndarray
    residual: np.ndarray
    span: float
    step: float = 1.0

    def resolved(self, theta_ref):
        """Per pair: whether the step between positions determines the frequency without aliasing."""
        top = np.maximum(np.abs(theta_ref), np.abs(np.nan_to_num(self.theta)))
        return top * self.step < 0.9 * math.pi


def _by_position(rec):
    """The angles of tokens that share a position combined (weighted circular mean): (m, phi, weight)."""
    m, inverse = np.unique(rec.pos, return_inverse=True)
    inverse = inverse.reshape(-1)
    z = np.zeros((m.size, rec.phi.shape[1]), complex)
    np.add.at(z, inverse, rec.weight * np.exp(1j * rec.phi))
    w = np.zeros((m.size, rec.phi.shape[1]))
    np.add.at(w, inverse, rec.weight)
    return m, np.angle(z), w


def fit_frequencies(rec: Received, theta_ref: np.ndarray) -> FrequencyFit:
    """Fit each pair's angle against the position, unwrapping by the expected angle.

    The slope is first read from positions one smallest step apart (which cannot alias while
    the step turns a pair by less than pi), then refined on ever wider ranges of positions,
    each unwrapped by the line fitted to the range before it, so that the slope is known to
    the precision that the whole range of positions gives.
    """
    n_pairs = theta_ref.size
    m, phi, w = _by_position(rec)
    nan = np.full(n_pairs, np.nan)
    if m.size < 2:
        return FrequencyFit(nan, nan, nan, nan, 0.0, math.inf)
    gaps = np.diff(m)
    g = gaps.min()
    steps = np.flatnonzero(np.isclose(gaps, g, rtol=1e-9, atol=0.0))
    step = wrap(phi[steps + 1] - phi[steps] - g * theta_ref)
    theta = theta_ref + np.angle(np.exp(1j * step).sum(axis=0)) / g
    x = m - m[0]
    first = x <= max(8 * g, x[min(3, x.size - 1)])
    c = np.angle((w[first] * np.exp(1j * wrap(phi[first] - x[first, None] * theta))).sum(axis=0))
    width = max(x[first].max(), g)
    while True:
        sel = x <= width
        xs = x[sel]
        pred = theta * xs[:, None] + c
        u = pred + wrap(phi[sel] - pred)
        if np.ptp(xs) > 0:
            xm = xs.mean()
            dx = xs - xm
            theta = (dx[:, None] * (u - u.mean(axis=0))).sum(axis=0) / (dx * dx).sum()
            c = u.mean(axis=0) - theta * xm
        if width >= x[-1]:
            break
        width *= 2
    res = wrap(phi - (theta * x[:, None] + c))
    rms = np.sqrt(np.mean(res**2, axis=0))
    dx = x - x.mean()
    sigma = rms / math.sqrt(max((dx * dx).sum(), 1e-300))
    phase0 = wrap(c - theta * m[0])
    return FrequencyFit(theta=theta, sigma=sigma, phase0=phase0, residual=rms, span=float(x[-1]), step=float(g))


# -- the positions, token by token ------------------------------------------------------------


def effective_positions(rec: Received, theta: np.ndarray):
    """The position each token was rotated for, read with the frequencies ``theta``.

    Each pair's angle gives the position modulo its wavelength; lowest frequency first, every
    pair resolves the turns of the next. Returns ``(positions (T,), residual (T,))``: the
    residual is the root-mean-square angle no single position explains (small where the
    frequencies are right and the token was rotated for one position).
    """
    usable = (theta > 0) & np.isfinite(theta)
    T = rec.phi.shape[0]
    if not usable.any():
        return rec.pos.copy(), np.full(T, np.nan)
    w = wrap(rec.phi - rec.pos[:, None] * theta)
    order = np.flatnonzero(usable)[np.argsort(theta[usable])]
    delta = w[:, order[0]] / theta[order[0]]
    for i in order[1:]:
        delta = (w[:, i] + TWO_PI * np.round((delta * theta[i] - w[:, i]) / TWO_PI)) / theta[i]
    eff = rec.pos + delta
    res = wrap(rec.phi[:, usable] - eff[:, None] * theta[usable])
    weight = rec.weight[:, usable]
    with np.errstate(invalid="ignore", divide="ignore"):
        rms = np.sqrt((weight * res**2).sum(axis=1) / weight.sum(axis=1))
    return eff, rms


# -- what the frequencies say ------------------------------------------------------------------


def frequency_tolerance(fit: FrequencyFit, theta_ref: np.ndarray) -> np.ndarray:
    """How far a recovered frequency may be from ``theta_ref`` before it differs: 6 standard errors,
    and at least a millionth of the frequency (float32 frequencies differ from float64 ones by 1e-7)."""
    return 6 * fit.sigma + 1e-6 * np.abs(theta_ref) + 1e-12


def classify(fit: FrequencyFit, theta_ref: np.ndarray, rotary_dim: int) -> dict | None:
    """Which frequencies differ from ``theta_ref`` and how: None when none does (or none is known).

    Returns a dict with ``band``: ``"none_past"`` (no rotation from pair ``k`` on: a
    rotary_dim of ``2k``), ``"low"`` (only the low-frequency pairs from ``k`` on: a Llama 3 or
    YaRN parameter), ``"constant"`` (every pair by one ratio: linear scaling), ``"power_law"``
    (the ratio a power of the pair index: the base, with ``base`` estimated), or ``"pairs"``
    (others); with ``pairs`` (the indices that differ), ``first`` (k) and ``ratio`` (recovered
    over expected, per pair).
    """
    known = np.isfinite(fit.theta) & np.isfinite(fit.sigma) & (fit.residual < 0.5)  # a line explains the angles
    if not known.any():
        return None
    tol = frequency_tolerance(fit, theta_ref)
    off = known & (np.abs(fit.theta - theta_ref) > tol)
    if not off.any():
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(theta_ref != 0, fit.theta / theta_ref, np.nan)
    idx = np.flatnonzero(off)
    k = int(idx[0])
    out = {"pairs": idx.tolist(), "first": k, "ratio": ratio}
    tail = np.arange(k, theta_ref.size)
    contiguous = bool(off[k:][known[k:]].all())
    still = known & (np.abs(fit.theta) <= 6 * fit.sigma + 1e-12)
    if contiguous and k > 0 and still[tail][known[tail]].all():
        return {**out, "band": "none_past", "rotary_dim": 2 * k}
    rel = ratio[known & (theta_ref > 0) & (fit.theta > 0) & fit.resolved(theta_ref)]
    if rel.size >= 2 and np.ptp(rel) <= 1e-3 * np.abs(rel).max() and off[known].all():
        return {**out, "band": "constant", "factor": float(1 / np.median(rel))}
    use = known & (theta_ref > 0) & (fit.theta > 0) & fit.resolved(theta_ref)
    if use.sum() >= 3 and k <= 1:  # pair 0 turns with 1 radian per position whatever the base
        i = np.flatnonzero(use)
        e = 2 * i / rotary_dim
        slope, icpt = np.polyfit(e, np.log(fit.theta[i]), 1)
        resid = np.log(fit.theta[i]) - (slope * e + icpt)
        if np.abs(resid).max() < 0.01 and abs(icpt) < 0.01 and slope < 0:
            return {**out, "band": "power_law", "base": float(math.exp(-slope))}
    if contiguous and k > 0:
        return {**out, "band": "low"}
    return {**out, "band": "pairs"}


@dataclasses.dataclass(frozen=True)
class Analysis:
    """The angle analysis of a comparison: recovered frequencies, positions and gains.

    Attributes
    ----------
    theta_expected, theta, sigma, phase0, residual : numpy.ndarray
        Per pair: the configuration's frequency and the fit (:class:`FrequencyFit`).
    gain_expected : float
        The attention factor the configuration folds into cos and sin.
    gain : numpy.ndarray
        Per pair, the median gain received.
    positions, expected_positions, position_residual : numpy.ndarray
        Per token of the sample: the position each was rotated for, the one it should have
        been, and the angle no single position explains.
    frequencies : dict or None
        :func:`classify`'s verdict on the frequencies.
    """

    theta_expected: np.ndarray
    theta: np.ndarray
    sigma: np.ndarray
    phase0: np.ndarray
    residual: np.ndarray
    gain_expected: float
    gain: np.ndarray
    positions: np.ndarray
    expected_positions: np.ndarray
    position_residual: np.ndarray
    frequencies: dict | None
    span: float

    @property
    def frequencies_differ(self) -> bool:
        return self.frequencies is not None

    def to_dict(self) -> dict:
        """The analysis per pair, JSON-able (NaN as ``None``)."""
        freq = None
        if self.frequencies is not None:
            freq = {k: v for k, v in self.frequencies.items() if k != "ratio"}
        return {
            "theta_expected": _listed(self.theta_expected),
            "theta": _listed(self.theta),
            "theta_ratio": _listed(_ratio(self.theta, self.theta_expected)),
            "theta_stderr": _listed(self.sigma),
            "phase_at_zero": _listed(self.phase0),
            "angle_residual": _listed(self.residual),
            "gain_expected": float(self.gain_expected),
            "gain": _listed(self.gain),
            "frequencies": freq,
            "positions_fitted": float(self.span),
        }


def _ratio(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b != 0, a / b, np.nan)


def _listed(a):
    return [float(v) if math.isfinite(v) else None for v in np.asarray(a, dtype=np.float64).tolist()]


def analyse(case, cfg, *, flip=False, swap=False, theta=None, gain=None, pos=None) -> Analysis:
    """The angle analysis of ``case`` paired as ``cfg`` pairs, against ``cfg``'s frequencies (or ``theta``),
    the tokens taken at their positions (or at ``pos``, the positions they were rotated for)."""
    theta_ref = cfg.inv_freq(case.seq_len) if theta is None else theta
    rec = received(case, cfg, flip=flip, swap=swap)
    if pos is not None:
        rec = dataclasses.replace(rec, pos=np.asarray(pos, dtype=np.float64))
    fit = fit_frequencies(rec, theta_ref)
    eff, pres = effective_positions(rec, theta_ref)
    a = cfg.attention_scaling if gain is None else gain
    with np.errstate(invalid="ignore"):
        per_pair = np.nanmedian(np.where(rec.weight > 0, rec.gain, np.nan), axis=0) if rec.gain.size else np.array([])
    return Analysis(
        theta_expected=theta_ref,
        theta=fit.theta,
        sigma=fit.sigma,
        phase0=fit.phase0,
        residual=fit.residual,
        gain_expected=float(a),
        gain=per_pair,
        positions=eff,
        expected_positions=rec.pos,
        position_residual=pres,
        frequencies=classify(fit, theta_ref, cfg.rotary_dim),
        span=fit.span,
    )


# -- the table in a report ---------------------------------------------------------------------


def _groups(ratio, differs, max_rows):
    """Runs of pairs with the same verdict and nearly the same ratio, at most ``max_rows`` of them."""
    n = ratio.size
    for tol in (1e-3, 1e-2, 0.05, 0.2, 1.0, np.inf):
        runs, start = [], 0
        for i in range(1, n + 1):
            if i == n or differs[i] != differs[start] or not _close(ratio[i], ratio[start], tol):
                runs.append((start, i - 1))
                start = i
        if len(runs) <= max_rows:
            return runs
    return runs  # pragma: no cover - the last tolerance joins every run of one verdict


def _close(a, b, tol):
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.isfinite(a) == math.isfinite(b)
    return abs(a - b) <= tol * max(abs(a), abs(b), 1e-300)


def _span(values, lo, hi, fmt="{:.4g}"):
    a, b = values[lo], values[hi]
    text = [("-" if not math.isfinite(v) else fmt.format(v)) for v in (a, b)]
    return text[0] if lo == hi or text[0] == text[1] else f"{text[0]} .. {text[1]}"


def table_lines(angles: dict, max_rows: int = 10) -> list:
    """The recovered frequencies against the configuration's, as lines of a report (empty when they agree)."""
    freq = angles.get("frequencies")
    if not freq:
        return []
    expected = np.array([np.nan if v is None else v for v in angles["theta_expected"]])
    theta = np.array([np.nan if v is None else v for v in angles["theta"]])
    ratio = _ratio(theta, expected)
    differs = np.zeros(expected.size, bool)
    differs[freq["pairs"]] = True
    rows = [("pairs", "theta (cfg)", "theta (received)", "received / cfg", "")]
    for lo, hi in _groups(ratio, differs, max_rows):
        rows.append(
            (
                f"{lo}" if lo == hi else f"{lo}-{hi}",
                _span(expected, lo, hi),
                _span(theta, lo, hi),
                _span(ratio, lo, hi, "{:.4g}"),
                "differs" if differs[lo] else "",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  frequencies each pair received (fitted to its angles against the position) against cfg's:"]
    lines += ["    " + "  ".join(f"{c:<{w}}" for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return lines
