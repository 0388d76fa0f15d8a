"""The common mistakes of a RoPE implementation, each a generator of candidate explanations.

Every hypothesis takes the judge and the mistakes assumed so far (none, or one other for the
search of two at once) and yields :class:`~numrope.validation.mistakes.Mistakes` with its own
mistake added, its parameter estimated from the output under the mistakes assumed: an offset is
read from the angles in the layout and direction assumed, a base from the angle steps between
neighbouring positions (which no offset changes), a factor from the norms (which no rotation
changes). The judge accepts or rejects each.
"""

from __future__ import annotations

import math

import numpy as np

from numrope.validation.angles import TWO_PI, effective_positions, received, wrap
from numrope.validation.mistakes import Mistakes, replace
from numrope.validation.tolerance import default_rtol

_PAIRS = {
    "half": "i and i + rotary_dim/2",
    "interleaved": "2i and 2i + 1",
    "interleaved_in_half_out": "2i and 2i + 1 into i and i + rotary_dim/2",
}


def layout(judge, m):
    cfg = m.cfg
    other = "half" if cfg.layout == "interleaved" else "interleaved"
    cand = replace(cfg, layout=other)
    if cand is None:
        return
    what = "half and interleaved layouts are swapped" if cfg.layout != "interleaved_in_half_out" else "wrong layout"
    yield m.with_(
        "layout",
        f"{what}: the output pairs features {_PAIRS[other]} "
        f"(layout={other!r}), but cfg pairs {_PAIRS[cfg.layout]} (layout={cfg.layout!r}). Fix the layout, "
        "or convert the q/k weights between the layouts (numrope.validation.convert.permute_qk_weights).",
        {"layout": other},
        cfg=cand,
    )


def direction(judge, m):
    if not m.flip and not m.swap:
        yield m.with_(
            "direction",
            "the rotation goes the wrong way: the output matches rotating by minus the angle "
            "(the sign of sin flipped, or the inverse rotation applied)",
            {"mistake": "inverse"},
            flip=True,
        )
        yield m.with_(
            "direction",
            "cos and sin are swapped: the output matches x0 sin - x1 cos, x1 sin + x0 cos",
            {"mistake": "cos_sin_swapped"},
            swap=True,
        )


def _gain_ratio(case, cfg):
    """|actual| / |x| over the rotating features (a rotation keeps the norm): the gain received."""
    rot = np.zeros(cfg.head_dim, bool)
    rot[cfg.rotary_offset : cfg.rotary_offset + cfg.rotary_dim] = True
    with np.errstate(over="ignore", invalid="ignore"):
        got = np.sqrt(np.sum(case.actual[..., rot] ** 2))
    want = np.sqrt(np.sum(case.x[..., rot] ** 2))
    return got / want if want > 0 else math.nan


def attention_scaling(judge, m):
    case, cfg = judge.case, m.cfg
    a = cfg.attention_scaling
    expected = (1.0 / a if case.inverse and not m.flip else a) * m.scale
    factor = _gain_ratio(case, cfg) / expected
    if not math.isfinite(factor) or abs(factor - 1) <= 2 * default_rtol(case.precision):
        return
    candidates = []
    if abs(a - 1) > 1e-6:
        candidates += [(1 / a, "missing"), (a, "doubled")]
    candidates += [(float(f"{factor:.4g}"), "factor"), (factor, "factor")]
    for scale, mistake in candidates:
        message, details = scaling_message(mistake, a, scale, cfg), {"mistake": mistake, "factor": scale}
        for scale_all in (False, True):
            yield m.with_("attention_scaling", message, details, scale=m.scale * scale, scale_all=scale_all)


def _whose(cfg):
    """Where cfg's attention factor comes from, in words ("" for none)."""
    s = cfg.scaling if cfg is not None else None
    if s is None or abs(cfg.attention_scaling - 1) <= 1e-12:
        return ""
    if getattr(s, "rope_type", "") == "yarn":
        if s.attention_scaling is not None:
            return " (YaRN's attention_factor of the config)"
        if s.mscale and s.mscale_all_dim:
            return f" (YaRN's mscale ratio for factor {s.factor:g})"
        return f" (YaRN's 0.1 ln(s) + 1 for s = {s.factor:g})"
    if getattr(s, "rope_type", "") == "longrope":
        return " (LongRoPE's attention factor)"
    return f" ({type(s).__name__}'s attention factor)"


def scaling_message(mistake, a, scale, cfg=None):
    if mistake == "missing":
        return (
            f"the attention scaling {a:.6g}{_whose(cfg)} is missing: the rotated features are {scale:.6g} times the "
            "expected "
            "(cos and sin not multiplied by it; a framework that folds it into the softmax scale instead has the "
            "same q.k but not the same rotated q and k)"
        )
    if mistake == "doubled":
        return (
            f"the attention scaling {a:.6g}{_whose(cfg)} is applied twice: the rotated features are {scale:.6g} "
            "times too large"
        )
    return f"the rotated features are {scale:.6g} times the expected (cfg's attention scaling is {a:.6g})"


def rotary_dim(judge, m):
    case, cfg = judge.case, m.cfg
    changed = ~(np.abs(case.actual - case.x) <= default_rtol(case.precision) * np.abs(case.x)).all(axis=(0, 1))
    last = int(np.flatnonzero(changed)[-1]) + 1 if changed.any() else 0
    detected = last + (last % 2)
    d = cfg.head_dim
    options = [detected + 2 * k for k in range(5)] + [d, d // 2, d // 4, 3 * d // 4, cfg.rotary_dim // 2]
    for r in dict.fromkeys(options):
        if r <= 0 or r % 2 or r > d or r == cfg.rotary_dim:
            continue
        cand = replace(cfg, rotary_dim=r)
        if cand is not None:
            yield m.with_(
                "rotary_dim",
                f"the output rotates the first {r} features (rotary_dim={r}), but cfg has rotary_dim="
                f"{judge.cfg.rotary_dim} (partial rotary: partial_rotary_factor = {r / d:g})",
                {"rotary_dim": r},
                cfg=cand,
            )


def estimate_offset(case, cfg, m=None, rec=None):
    """The constant ``c`` such that the output is rotated for positions ``pos + c`` (None if not found)."""
    m = Mistakes(cfg) if m is None else m
    theta = m.frequencies(case)
    rec = received(case, m.cfg, flip=m.flip, swap=m.swap) if rec is None else rec
    w = rec.weight
    delta = np.angle((w * np.exp(1j * wrap(rec.phi - m.positions(case)[:, None] * theta))).sum(axis=0))
    usable = theta > 0
    if not usable.any():
        return None
    order = np.flatnonzero(usable)[np.argsort(theta[usable])]
    c = delta[order[0]] / theta[order[0]]
    for i in order[1:]:  # lowest frequency first: each pair resolves the next one's turns
        c = (delta[i] + TWO_PI * np.round((c * theta[i] - delta[i]) / TWO_PI)) / theta[i]
    return float(c)


def offset(judge, m):
    case = judge.case
    c = estimate_offset(case, m.cfg, m, judge.received(m))
    if c is None or not np.isfinite(c) or abs(c) < 0.25:
        return
    for value in dict.fromkeys((float(round(c)), float(f"{c:.6g}"), c)):
        if value == 0:
            continue
        shown = int(value) if value == round(value) else value
        yield m.with_(
            "offset",
            f"positions are off by {shown:+g}: the output matches positions + {shown:g} "
            "(an off-by-one, a KV-cache or padding offset applied twice or not at all)",
            {"offset": shown},
            shift=m.shift + value,
        )


def estimate_base(case, cfg, m=None, rec=None):
    """The base the output's rotation angles were formed with (None if it cannot be estimated)."""
    m = Mistakes(cfg) if m is None else m
    rec = received(case, m.cfg, flip=m.flip, swap=m.swap) if rec is None else rec
    pos = m.positions(case)
    order = np.argsort(pos, kind="stable")
    p, phi = pos[order], rec.phi[order]
    gaps = np.diff(p)
    if not (gaps > 0).any():
        return None
    g = gaps[gaps > 0].min()
    steps = np.flatnonzero(np.isclose(gaps, g))
    theta = np.angle(np.exp(1j * wrap(phi[steps + 1] - phi[steps])).mean(axis=0)) / g
    cfg = m.cfg
    length = m.length(case)
    e = np.arange(theta.size) * 2 / cfg.rotary_dim
    # the variant's own change of each frequency, taken out (at cfg's base: close enough to start from)
    unscaled = replace(cfg, scaling=None)
    try:
        change = cfg.inv_freq(length) / unscaled.inv_freq()
    except (ValueError, ArithmeticError, AttributeError):
        change = np.ones(theta.size)
    # a step of g positions aliases the fast pairs: from the slowest pair on, keep those that still turn
    # faster than the one before and by less than a quarter turn per step
    ok = theta > 0
    if g * max(1.0, float(np.max(change))) >= math.pi:  # no frequency above 1 radian: a step below pi never aliases
        ok = np.zeros(theta.size, bool)
        prev = 0.0
        for i in range(theta.size - 1, -1, -1):
            if not (prev < theta[i] and theta[i] * g < math.pi / 2):
                break
            ok[i], prev = True, theta[i]
    kept = ok & np.isclose(change, 1.0)
    use = kept if kept[1:].sum() >= 2 else ok
    if use.sum() < 2:
        return None
    slope, _ = np.polyfit(e[use], np.log(theta[use] / change[use]), 1)
    log_base = -slope
    for _ in range(6):  # Gauss-Newton on log(base) over every token and pair, each pair's phase at 0 free
        if not abs(log_base) < 700:  # no float64 base: the angles follow no base
            return None
        base = math.exp(log_base)
        c0, c1 = replace(cfg, base=base), replace(cfg, base=base * (1 + 1e-7))
        if c0 is None or c1 is None:
            return None
        try:
            t0, t1 = c0.inv_freq(length), c1.inv_freq(length)
        except (ValueError, ArithmeticError):
            return None
        residual = wrap(phi - p[:, None] * t0)
        residual = wrap(
            residual - np.angle(np.exp(1j * residual).sum(axis=0))
        )  # an offset turns each pair by a constant
        slope_m = p[:, None] * (t1 - t0) / math.log1p(1e-7)
        keep = (np.abs(residual) < 1.0) & (kept if use is kept else True)  # scaled pairs may be the other mistake
        n = np.maximum(keep.sum(axis=0), 1)
        slope_m = (slope_m - (slope_m * keep).sum(axis=0) / n) * keep
        denominator = np.sum(slope_m**2)
        if denominator == 0:
            break
        log_base += np.sum(residual * slope_m) / denominator
        if not abs(log_base) < 700:
            return None
    return math.exp(log_base)


def base(judge, m):
    case, cfg = judge.case, m.cfg
    b = estimate_base(case, cfg, m, judge.received(m))
    if b is None or not math.isfinite(b) or b <= 0 or abs(b / cfg.base - 1) < 1e-6:
        return
    for value in dict.fromkeys([float(f"{b:.{n}g}") for n in (1, 2, 3, 4, 6, 8)] + [b]):
        cand = replace(cfg, base=value)
        if cand is None or value == cfg.base:
            continue
        try:
            cand.inv_freq(m.length(case))
        except (ValueError, ArithmeticError):
            continue
        yield m.with_(
            "base",
            f"the frequency base is wrong: the output matches base={value:.8g} (the simplest value that "
            f"matches; {b:.7g} estimated from the rotation angles), but cfg has base={judge.cfg.base:g} "
            "(rope_theta in Hugging Face configs)",
            {"base": value, "estimated": b},
            cfg=cand,
        )


# -- positions and frequencies held in a narrow float ----------------------------------------------

NARROW = ("bfloat16", "float16", "float32")
_LARGEST = {"bfloat16": 3.0e38, "float16": 65504.0, "float32": 3.0e38}


def rounded_positions(pos, precision):
    from numrope.validation.emulate import round_to

    return round_to(pos, precision).astype(np.float64)


def position_precision(judge, m):
    """Positions rounded to a narrow float before the angles are formed (8191 becomes 8192 in bfloat16)."""
    pos = m.positions(judge.case)
    reach = np.abs(pos).max(initial=0.0)
    for precision in NARROW:
        if reach >= min(2.0**31, _LARGEST[precision]):  # beyond float16's range positions become inf
            continue
        rounded = rounded_positions(pos, precision)
        changed = rounded != pos
        if not changed.any():
            continue
        first = int(np.flatnonzero(changed)[np.argmin(np.abs(pos[changed]))])
        example = f"position {pos[first]:,.0f} becomes {rounded[first]:,.0f}"
        yield m.with_(
            "position_precision",
            f"the positions are rounded to {precision} before the angles are formed ({example}; from "
            f"{_exact_up_to(precision):,} on neighbouring positions get the same angles): position_ids cast "
            f"to the model's dtype, or an autocast matmul. Form positions in int64 or float32 (float64 "
            "beyond 2**24)",
            {"precision": precision, "example": [float(pos[first]), float(rounded[first])]},
            pos=rounded,
            shift=0.0,
        )


def _exact_up_to(precision):
    from numrope._interop import MANTISSA_BITS

    return 2 ** (MANTISSA_BITS[precision] + 1)


def frequency_precision(judge, m):
    """The frequencies rounded to bfloat16 or float16 (an inv_freq buffer cast with the model's weights)."""
    from numrope.validation.emulate import round_to

    theta = m.frequencies(judge.case)
    for precision in ("bfloat16", "float16"):
        if not (np.abs(theta) < _LARGEST[precision]).all():
            continue
        rounded = round_to(theta, precision).astype(np.float64)
        if (rounded == theta).all():
            continue
        yield m.with_(
            "frequency_precision",
            f"the frequencies are rounded to {precision} (relative error up to "
            f"{np.nanmax(np.abs(rounded / theta - 1)):.2g}; the angle error grows with the position): an "
            f"inv_freq buffer cast to {precision} with the model's weights (model.to({precision})). Keep "
            "inv_freq in float32",
            {"precision": precision},
            theta=rounded,
        )


# -- batch rows rotated for other positions ----------------------------------------------------------


def batch_rows(judge, m):
    """Rows of a batch rotated for positions of another row, or with their offsets lost or wrong."""
    case = judge.case
    rows = getattr(case, "rows", None)
    if rows is None or np.unique(rows).size < 2:
        return
    pos = m.positions(case)
    candidates = []
    first = getattr(case, "first_row_pos", None)
    if first is not None and (first != case.pos).any():
        candidates.append(
            (
                first + (pos - case.pos),
                "every row is rotated for the positions of the first row (its offset used for every row): a "
                "kernel that reads the positions or offsets without the batch stride",
                "first_row",
            )
        )
    steps = getattr(case, "steps", None)
    if steps is not None and (steps != case.pos).any():
        candidates.append(
            (
                steps.astype(np.float64) + (pos - case.pos),
                "every row is rotated for positions 0 .. S-1: the per-sequence offsets (seqlen_offsets, an array "
                "offset) are ignored",
                "offsets_ignored",
            )
        )
    eff, res = effective_positions(judge.received(m), m.frequencies(case))
    good = np.isfinite(res) & (res < 0.3)
    if good.any():
        shifts = {}
        for r in np.unique(rows):
            sel = good & (rows == r)
            if sel.any():
                shifts[int(r)] = float(np.round(np.median(eff[sel] - pos[sel])))
        if any(shifts.values()) and len(set(shifts.values())) > 1:
            delta = np.array([shifts.get(int(r), 0.0) for r in rows])
            listed = ", ".join(f"row {r}: {v:+g}" for r, v in list(shifts.items())[:8] if v)
            candidates.append(
                (
                    pos + delta,
                    f"the rows are rotated for positions off by a different amount each ({listed}): per-sequence "
                    "offsets applied to the wrong rows, or applied to some rows only",
                    "row_offsets",
                )
            )
    for new_pos, message, mistake in candidates:
        yield m.with_("batch_rows", message, {"mistake": mistake}, pos=new_pos, shift=0.0)
