"""The diagnosis behind :func:`numrope.validation.compare`: which common mistake explains a mismatch.

Each hypothesis predicts the output under one mistake (estimating its parameter from the data
where it has one) and is reported only if the output then matches within the tolerance, with
float32 angles allowed. Predictions are plain NumPy in float64 on ``(tokens, heads, head_dim)``
arrays.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np

from numrope.validation.report import Finding
from numrope.validation.tolerance import (
    default_rtol,
    pair_norms,
    uninformative_from,
    unit_roundoff,
    verdict_ratios,
)

_TWO_PI = 2 * math.pi


def _finding(kind, message, **details):
    return Finding(kind, message, details)


def sample(case, ratio, n_tokens=512, n_heads=8):
    """A smaller case for the diagnosis: runs of consecutive positions across the range, the worst token included."""
    T, H, _ = case.x.shape
    if T > n_tokens:
        order = np.argsort(case.pos, kind="stable")
        run = 4
        starts = np.linspace(0, T - run, n_tokens // run - 2).astype(np.int64)
        worst = int(np.argmax(ratio.max(axis=(1, 2))))
        where = int(np.flatnonzero(order == worst)[0])
        starts = np.append(starts, [min(max(where - 1, 0), T - run), 0])
        tokens = np.unique(order[(starts[:, None] + np.arange(run)).reshape(-1)])
    else:
        tokens = np.arange(T)
    if H > n_heads:
        worst_head = int(np.argmax(ratio.max(axis=(0, 2))))
        heads = np.unique(np.append(np.linspace(0, H - 1, n_heads - 1).astype(np.int64), worst_head))
    else:
        heads = np.arange(H)
    pick = np.ix_(tokens, heads, np.arange(case.x.shape[2]))
    coords = None if case.coords is None else case.coords[:, tokens]  # multi-axis coordinates
    pos = case.pos[tokens]
    return dataclasses.replace(
        case, actual=case.actual[pick], x=case.x[pick], expected=case.expected[pick], pos=pos, coords=coords
    )


def predict(case, cfg, *, pos=None, inverse=None, swap=False, scale=1.0, scale_all=False):
    """The output of rotating ``case.x`` under ``cfg`` with the given changes."""
    pos = case.pos if pos is None else pos
    inverse = case.inverse if inverse is None else inverse
    theta = cfg.inv_freq(case.seq_len)
    angle = pos[:, None] * theta
    if inverse:
        angle = -angle
    if swap:
        angle = math.pi / 2 - angle
    a = cfg.attention_scaling * scale
    c, s = (a * np.cos(angle))[:, None, :], (a * np.sin(angle))[:, None, :]
    j0, j1 = cfg.pair_indices()
    x0, x1 = case.x[..., j0], case.x[..., j1]
    out = case.x.copy()
    out[..., j0] = x0 * c - x1 * s
    out[..., j1] = x1 * c + x0 * s
    if scale_all:
        out[..., cfg.rotary_dim :] *= scale
    return out


class _Judge:
    def __init__(self, case, cfg, rtol, atol):
        self.case, self.cfg, self.rtol, self.atol = case, cfg, rtol, atol

    def explains(self, cfg, pred, *, pos=None, float32_angles=True, table=None):
        """Whether the actual output matches ``pred`` within the tolerance."""
        case = self.case
        pos = case.pos if pos is None else pos
        theta = cfg.inv_freq(case.seq_len)
        rtol = self.rtol if self.rtol is not None else default_rtol(case.precision, table)
        kw = {"float32_angles": float32_angles, "rtol": rtol, "atol": self.atol}
        _, _, element, norm = verdict_ratios(case.actual, pred, pos, theta, cfg, case.precision, **kw)
        return bool((element <= 1).all() and (norm <= 1).all())


def _replace(cfg, **changes):
    try:
        return dataclasses.replace(cfg, **changes)
    except (TypeError, ValueError):
        return None


def _wrap(angle):
    return (angle + math.pi) % _TWO_PI - math.pi


def measured_angles(case, cfg):
    """The rotation angle from x to actual of each token's pairs, (tokens, n_pairs), forward positive."""
    j0, j1 = cfg.pair_indices()
    x0, x1 = case.x[..., j0], case.x[..., j1]
    y0, y1 = case.actual[..., j0], case.actual[..., j1]
    cross = (x0 * y1 - x1 * y0).sum(axis=1)
    dot = (x0 * y0 + x1 * y1).sum(axis=1)
    phi = np.arctan2(cross, dot)
    return -phi if case.inverse else phi


# -- the hypotheses ---------------------------------------------------------------------------


def _layout(judge, cfg):
    other = "interleaved" if cfg.layout == "half" else "half"
    cand = _replace(cfg, layout=other)
    if cand is not None and judge.explains(cand, predict(judge.case, cand)):
        pairs = {"half": "i and i + rotary_dim/2", "interleaved": "2i and 2i + 1"}
        return _finding(
            "layout",
            f"half and interleaved layouts are swapped: the output pairs features {pairs[other]} "
            f"(layout={other!r}), but cfg pairs {pairs[cfg.layout]} (layout={cfg.layout!r}). Fix the layout, "
            "or convert the q/k weights between the layouts (numrope.validation.convert.permute_qk_weights).",
            layout=other,
        )
    return None


def _direction(judge, cfg):
    case = judge.case
    if judge.explains(cfg, predict(case, cfg, inverse=not case.inverse)):
        return _finding(
            "direction",
            "the rotation goes the wrong way: the output matches rotating by minus the angle "
            "(the sign of sin flipped, or the inverse rotation applied)",
            mistake="inverse",
        )
    if judge.explains(cfg, predict(case, cfg, swap=True)):
        return _finding(
            "direction",
            "cos and sin are swapped: the output matches x0 sin - x1 cos, x1 sin + x0 cos",
            mistake="cos_sin_swapped",
        )
    return None


def _attention_scaling(judge, cfg):
    case = judge.case
    rot = np.zeros(cfg.head_dim, bool)
    rot[: cfg.rotary_dim] = True
    got = np.sqrt(np.sum(case.actual[..., rot] ** 2))
    want = np.sqrt(np.sum(case.expected[..., rot] ** 2))
    if not (want > 0 and np.isfinite(got)):
        return None
    factor = got / want
    if abs(factor - 1) <= 2 * default_rtol(case.precision):
        return None
    a = cfg.attention_scaling
    candidates = []
    if abs(a - 1) > 1e-6:
        candidates += [(1 / a, "missing"), (a, "doubled")]
    candidates.append((float(f"{factor:.4g}"), "factor"))
    candidates.append((factor, "factor"))
    for scale, mistake in candidates:
        for scale_all in (False, True):
            if judge.explains(cfg, predict(case, cfg, scale=scale, scale_all=scale_all)):
                return _finding("attention_scaling", _scaling_message(mistake, a, scale), mistake=mistake, factor=scale)
    return None


def _scaling_message(mistake, a, scale):
    if mistake == "missing":
        return (
            f"the attention scaling {a:.6g} is missing: the rotated features are {scale:.6g} times the expected "
            "(cos and sin not multiplied by it; a framework that folds it into the softmax scale instead has the "
            "same q.k but not the same rotated q and k)"
        )
    if mistake == "doubled":
        return f"the attention scaling {a:.6g} is applied twice: the rotated features are {scale:.6g} times too large"
    return f"the rotated features are {scale:.6g} times the expected (cfg's attention scaling is {a:.6g})"


def _rotary_dim(judge, cfg):
    case = judge.case
    changed = ~(np.abs(case.actual - case.x) <= default_rtol(case.precision) * np.abs(case.x)).all(axis=(0, 1))
    last = int(np.flatnonzero(changed)[-1]) + 1 if changed.any() else 0
    detected = last + (last % 2)
    d = cfg.head_dim
    options = [detected + 2 * k for k in range(5)] + [d, d // 2, d // 4, 3 * d // 4, cfg.rotary_dim // 2]
    for r in dict.fromkeys(options):
        if r <= 0 or r % 2 or r > d or r == cfg.rotary_dim:
            continue
        cand = _replace(cfg, rotary_dim=r)
        if cand is not None and judge.explains(cand, predict(case, cand)):
            return _finding(
                "rotary_dim",
                f"the output rotates the first {r} features (rotary_dim={r}), but cfg has rotary_dim="
                f"{cfg.rotary_dim} (partial rotary: partial_rotary_factor = {r / d:g})",
                rotary_dim=r,
            )
    return None


def estimate_offset(case, cfg):
    """The constant ``c`` such that the output is rotated for positions ``pos + c`` (None if not found)."""
    theta = cfg.inv_freq(case.seq_len)
    phi = measured_angles(case, cfg)
    delta = np.angle(np.exp(1j * _wrap(phi - case.pos[:, None] * theta)).mean(axis=0))
    usable = theta > 0
    if not usable.any():
        return None
    order = np.argsort(theta)[usable[np.argsort(theta)]]
    c = delta[order[0]] / theta[order[0]]
    for i in order[1:]:  # lowest frequency first: each pair resolves the next one's turns
        c = (delta[i] + _TWO_PI * np.round((c * theta[i] - delta[i]) / _TWO_PI)) / theta[i]
    return float(c)


def _offset(judge, cfg):
    case = judge.case
    c = estimate_offset(case, cfg)
    if c is None or not np.isfinite(c) or abs(c) < 0.25:
        return None
    for value in dict.fromkeys((float(round(c)), float(f"{c:.6g}"), c)):
        if value == 0:
            continue
        if judge.explains(cfg, predict(case, cfg, pos=case.pos + value), pos=case.pos + value):
            shown = int(value) if value == round(value) else value
            return _finding(
                "offset",
                f"positions are off by {shown:+g}: the output matches positions + {shown:g} "
                "(an off-by-one, a KV-cache or padding offset applied twice or not at all)",
                offset=shown,
            )
    return None


def estimate_base(case, cfg):
    """The base the output's rotation angles were formed with (None if it cannot be estimated)."""
    phi = measured_angles(case, cfg)
    order = np.argsort(case.pos, kind="stable")
    m, p = case.pos[order], phi[order]
    gaps = np.diff(m)
    if not (gaps > 0).any():
        return None
    g = gaps[gaps > 0].min()
    steps = np.flatnonzero(np.isclose(gaps, g))
    theta = np.angle(np.exp(1j * _wrap(p[steps + 1] - p[steps])).mean(axis=0)) / g
    e = np.arange(theta.size) * 2 / cfg.rotary_dim
    ok = theta > 0
    if ok.sum() < 2:
        return None
    slope, _ = np.polyfit(e[ok], np.log(theta[ok]), 1)
    log_base = -slope
    for _ in range(6):  # Gauss-Newton on log(base) over every token and pair
        base = math.exp(log_base)
        c0, c1 = _replace(cfg, base=base), _replace(cfg, base=base * (1 + 1e-7))
        if c0 is None or c1 is None:
            return None
        t0, t1 = c0.inv_freq(case.seq_len), c1.inv_freq(case.seq_len)
        residual = _wrap(p - m[:, None] * t0)
        slope_m = m[:, None] * (t1 - t0) / math.log1p(1e-7)
        keep = np.abs(residual) < 1.0
        denominator = np.sum(slope_m**2 * keep)
        if denominator == 0:
            break
        log_base += np.sum(residual * slope_m * keep) / denominator
        if not math.isfinite(log_base):
            return None
    return math.exp(log_base)


def _base(judge, cfg):
    case = judge.case
    b = estimate_base(case, cfg)
    if b is None or not math.isfinite(b) or b <= 0 or abs(b / cfg.base - 1) < 1e-6:
        return None
    for value in dict.fromkeys([float(f"{b:.{n}g}") for n in (1, 2, 3, 4, 6, 8)] + [b]):
        cand = _replace(cfg, base=value)
        if cand is not None and value != cfg.base and judge.explains(cand, predict(case, cand)):
            return _finding(
                "base",
                f"the frequency base is wrong: the output matches base={value:.8g} (the simplest value that "
                f"matches; {b:.7g} estimated from the rotation angles), but cfg has base={cfg.base:g} "
                "(rope_theta in Hugging Face configs)",
                base=value,
                estimated=b,
            )
    return None


def _growth(case, err, norms):
    """(max relative error over the first and the last quarter of the positions, both position ranges)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rel = np.where(norms > 0, err / norms, 0.0).max(axis=(1, 2))
    order = np.argsort(case.pos, kind="stable")
    quarter = max(order.size // 4, 1)
    first, last = order[:quarter], order[-quarter:]
    return float(rel[first].max()), float(rel[last].max()), float(case.pos[first].max()), float(case.pos[last].min())


def float32_note(case, err, norms):
    """The note for an output accepted only because float32 angles were allowed."""
    early, late, p_early, p_late = _growth(case, err, norms)
    return _finding(
        "precision",
        f"within float32-angle precision: the error grows with position (max relative error {early:.2g} "
        f"at positions up to {p_early:g}, {late:.2g} from {p_late:g} on), as angles m*theta formed in float32 "
        "explain (Hugging Face transformers, vLLM, llama.cpp form them so); not a bug in the rotation",
        angles="float32",
    )


def angle_limit_note(case, cfg):
    """The note for positions where float32 angles carry no information (None where there are none)."""
    start = uninformative_from(case.theta, cfg, unit_roundoff("float32"))
    reach = float(np.abs(case.pos).max(initial=0.0))
    lost = start <= reach
    if not lost.any():
        return None
    first = int(np.argmin(start))
    return _finding(
        "angle_limit",
        f"float32 angles carry no information from position {start[first]:,.0f} on: there the angle error that "
        f"float32 allows for pair {first} reaches pi, and every pair's does from {start.max():,.0f} on. "
        f"{int(lost.sum())} of {start.size} pairs pass that point within the positions compared (up to "
        f"{reach:,.0f}): beyond it only their norm is checked, not their rotation (float32_angles=False checks it)",
        uninformative_from=float(start[first]),
        all_uninformative_from=float(start.max()),
        pairs_checked_by_norm_only=int(lost.sum()),
    )


def _precision(judge, cfg):
    case = judge.case
    pred = case.expected
    if judge.explains(cfg, pred):  # only the float32-angle allowance separates it from a match
        err = np.abs(case.actual - pred)
        early, late, p_early, p_late = _growth(case, err, pair_norms(pred, cfg))
        return [
            _finding(
                "precision",
                f"not a bug in the rotation: the error grows with position (max relative error {early:.2g} at "
                f"positions up to {p_early:g}, {late:.2g} from {p_late:g} on) within what angles formed in float32 "
                "explain, as in Hugging Face transformers, vLLM and llama.cpp; float32_angles=True "
                "(numrope validate --float32-angles) accepts it",
                angles="float32",
            )
        ]
    for table in ("float16", "bfloat16"):
        if unit_roundoff(table) > unit_roundoff(case.precision) and judge.explains(cfg, pred, table=table):
            return [
                _finding(
                    "precision",
                    f"the error is what cos and sin rounded to {table} before the multiply give (a cos/sin cache "
                    f"kept in the model's dtype, as vLLM keeps it); with {case.precision} inputs this costs "
                    f"accuracy, but the rotation is right",
                    table=table,
                )
            ]
    return []


def _unexplained(judge, cfg):
    case = judge.case
    err = np.abs(case.actual - case.expected)
    norms = pair_norms(case.expected, cfg)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rel = np.where(norms > 0, err / norms, np.where(err > 0, np.inf, 0.0))
    bad_features = np.flatnonzero(rel.max(axis=(0, 1)) > 4 * default_rtol(case.precision))
    early, late, p_early, p_late = _growth(case, err, norms)
    hints = [f"max relative error {early:.2g} at positions up to {p_early:g}, {late:.2g} from {p_late:g} on"]
    if 0 < bad_features.size < cfg.head_dim:
        hints.append(f"wrong features: {_ranges(bad_features)} of {cfg.head_dim}")
    if not np.isfinite(case.actual).all():
        hints.append("the output holds NaN or infinite values")
    return _finding(
        "unexplained",
        "no single common mistake explains the error (" + "; ".join(hints) + ")",
        bad_features=bad_features.tolist(),
    )


def _ranges(indices):
    runs, start = [], indices[0]
    for prev, cur in itertools.pairwise(indices):
        if cur != prev + 1:
            runs.append((start, prev))
            start = cur
    runs.append((start, indices[-1]))
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)


HYPOTHESES = (_layout, _direction, _attention_scaling, _rotary_dim, _offset, _base)


def diagnose(case, cfg, *, rtol=None, atol=None):
    """The findings that explain a mismatching case (a list, never empty)."""
    judge = _Judge(case, cfg, rtol, atol)
    findings = [f for test in HYPOTHESES if (f := test(judge, cfg)) is not None]
    if not findings:
        findings = _precision(judge, cfg)
    return findings or [_unexplained(judge, cfg)]
