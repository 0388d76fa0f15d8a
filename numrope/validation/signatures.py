"""What the angles say when no mistake, nor two, explains an output: the signatures of common bugs.

Each reads the angle analysis (:mod:`numrope.validation.angles`) of the case, paired and turned
as the configuration says, and names a pattern that bug reports of RoPE implementations show
again and again:

* position 0 not left unchanged: every correct RoPE leaves it as it is, so a table or its
  indexing is wrong;
* neighbouring positions receiving the same angles: positions held in bfloat16 or float16;
* tokens rotated for other positions than theirs, with no single offset;
* an error that depends on the batch row and not on the position (row 0 right, the others
  wrong): a kernel's batch indexing;
* frequencies that differ in one band only (a long-context scaling parameter), by a power law
  (the base), or not at all past some pair (rotary_dim);
* an angle error that grows with the angle, largest on pair 0: angles or cos/sin formed in too
  few bits, or sin and cos without range reduction;
* a pair norm that is not kept, or kept times a constant other than the attention factor.
"""

from __future__ import annotations

import math

import numpy as np

from numrope.validation.angles import pair_maps, received, wrap
from numrope.validation.mistakes import Mistakes, predict, subcase
from numrope.validation.report import Finding
from numrope.validation.tolerance import default_rtol, unit_roundoff, verdict_ratios


def _ranges(indices):
    indices = sorted(int(i) for i in indices)
    if not indices:
        return ""
    runs, start, prev = [], indices[0], indices[0]
    for cur in indices[1:]:
        if cur != prev + 1:
            runs.append((start, prev))
            start = cur
        prev = cur
    runs.append((start, prev))
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)


def _token_ok(judge, cfg):
    """Per token of the case: whether the output matches numrope's within the tolerance (float32 angles allowed)."""
    case = judge.case
    theta = cfg.inv_freq(case.seq_len)
    rtol = judge.rtol if judge.rtol is not None else default_rtol(case.precision)
    kw = {"float32_angles": True, "rtol": rtol, "atol": judge.atol}
    _, _, element, norm = verdict_ratios(case.actual, case.expected, case.pos, theta, cfg, case.precision, **kw)
    return (element <= 1).all(axis=(1, 2)) & (norm <= 1).all(axis=(1, 2))


def position_zero(judge, cfg, an):
    case = judge.case
    at0 = np.flatnonzero(case.pos == 0)
    if not at0.size:
        return None
    sub = subcase(case, at0)
    pred = predict(sub, Mistakes(cfg))
    rtol = judge.rtol if judge.rtol is not None else default_rtol(case.precision)
    kw = {"float32_angles": True, "rtol": rtol, "atol": judge.atol}
    theta = cfg.inv_freq(case.seq_len)
    _, _, element, norm = verdict_ratios(sub.actual, pred, sub.pos, theta, cfg, sub.precision, **kw)
    if (element <= 1).all() and (norm <= 1).all():
        return None
    maps = pair_maps(sub, cfg)
    if maps is not None and not (maps[1] <= _misfit_tolerance(case)).all():
        return None  # not a map of x by some cos and sin: no table gives it
    rec = received(sub, cfg)
    if maps is None and not (np.nanmax(rec.gain) - np.nanmin(rec.gain) <= 4 * rtol * np.nanmax(rec.gain)):
        return None
    phi = np.abs(rec.phi)
    eff = an.positions[at0]
    res = an.position_residual[at0]
    gain = np.nanmedian(rec.gain) / (1.0 / cfg.attention_scaling if case.inverse else cfg.attention_scaling)
    if np.isfinite(res).all() and (res < 0.2).all() and np.all(np.abs(eff - np.round(eff)) < 0.1):
        p = int(np.round(np.median(eff)))
        how = f"it is rotated as position {p} (the table read {abs(p)} row{'s' if abs(p) != 1 else ''} off)"
    elif np.all(np.abs(phi - math.pi / 2) < 0.05):
        how = "every pair is turned by a quarter turn (cos and sin exchanged in the table)"
    elif abs(gain - 1) > 0.01 and np.nanmax(phi) < 0.05:
        how = f"it is not turned but its norm is {gain:.4g} times the expected"
    else:
        how = f"its pairs are turned by up to {np.nanmax(phi):.3g} radians (pair {int(np.nanargmax(phi.max(axis=0)))})"
    return Finding(
        "position_zero",
        "position 0 is not left unchanged: every correct RoPE leaves it as it is (cos 0 = 1, sin 0 = 0, times the "
        f"attention factor), but here {how}: the cos/sin table or the way it is indexed is wrong",
        {"max_angle": float(np.nanmax(phi)), "gain": float(gain)},
    )


def batch_rows(judge, cfg, an):
    case = judge.case
    rows = getattr(case, "rows", None)
    if rows is None or np.unique(rows).size < 2:
        return None
    ok = _token_ok(judge, cfg)
    good, bad = [], []
    for r in np.unique(rows):
        (good if ok[rows == r].all() else bad).append(int(r))
    if not good or not bad:
        return None
    rec = received(case, cfg)
    expected_gain = 1.0 / cfg.attention_scaling if case.inverse else cfg.attention_scaling
    sel = np.isin(rows, bad)
    gain = np.nanmedian(rec.gain[sel]) / expected_gain
    res = an.position_residual[sel]
    dev = (an.positions - an.expected_positions)[sel]
    first = getattr(case, "first_row_pos", None)
    if not np.isfinite(gain) or gain < 0.05:
        how = "their rotated features are (nearly) zero: never written"
    elif np.isfinite(res).all() and np.median(res) < 0.2:
        as_first = first is not None and (first[sel] != case.pos[sel]).any()
        if as_first and np.allclose(an.positions[sel], first[sel], atol=0.25):
            how = "they are rotated for the first row's positions"
        else:
            shifts = sorted({float(np.round(d)) for d in dev})
            how = f"they are rotated for positions off by {', '.join(f'{s:+g}' for s in shifts[:6])}"
    else:
        how = "not by any shift of the positions: the data of one row is mixed with another's"
    return Finding(
        "batch_rows",
        f"the error depends on the batch row, not on the position: row{'s' if len(good) > 1 else ''} "
        f"{_ranges(good)} match{'' if len(good) > 1 else 'es'}, row{'s' if len(bad) > 1 else ''} {_ranges(bad)} "
        f"do{'' if len(bad) > 1 else 'es'} not ({how}): a kernel's batch indexing (a stride, offset or position "
        "computed for the first row only)",
        {"good_rows": good, "bad_rows": bad, "gain": float(gain) if np.isfinite(gain) else None},
    )


def positions(judge, cfg, an):
    """Tokens rotated for other positions: rounded to a narrow float where neighbours collide."""
    from numrope.validation.hypotheses import NARROW, rounded_positions

    res = an.position_residual
    if an.frequencies is not None and position_view(an) != "positions":
        return None  # frequencies off by a factor read as positions off by it: the frequencies say it
    good = np.isfinite(res) & (res < 0.2)
    if good.sum() < max(2, res.size // 2):
        return None
    pos, eff = an.expected_positions, an.positions
    dev = eff - pos
    moved = good & (np.abs(dev) > 0.25)
    if not moved.any():
        return None
    # neighbours: positions one apart that received the same angles
    order = np.argsort(pos, kind="stable")
    p, e, g = pos[order], eff[order], good[order]
    one = (np.diff(p) == 1) & g[1:] & g[:-1]
    same = one & (np.abs(np.diff(e)) < 0.25)
    for precision in NARROW:
        match = np.abs(rounded_positions(pos[good], precision) - eff[good]) < 0.25
        if same.any() and match.mean() > 0.95:
            i = int(np.flatnonzero(same)[0])
            return Finding(
                "position_precision",
                f"neighbouring positions receive the same angles ({p[i]:,.0f} and {p[i + 1]:,.0f} are both rotated as "
                f"{e[i]:,.0f}): the positions are rounded to {precision} before the angles are formed (position_ids "
                "in the model's dtype, or an autocast matmul)",
                {"precision": precision, "example": [float(p[i]), float(p[i + 1]), float(e[i])]},
            )
    worst = np.flatnonzero(moved)[np.argsort(-np.abs(dev[moved]))][:3]
    examples = ", ".join(f"{pos[t]:,.0f} as {eff[t]:,.6g}" for t in worst)
    return Finding(
        "positions",
        f"{int(moved.sum())} of {int(good.sum())} tokens are rotated for other positions than theirs, not by one "
        f"offset ({examples}): the positions reaching the kernel differ from those given (a gather, a cache index "
        f"or a cast); the angles are otherwise right",
        {"tokens": int(moved.sum()), "largest_shift": float(np.abs(dev[moved]).max())},
    )


def position_view(an):
    """``"positions"`` where every token's angles fit one position with cfg's frequencies (so the frequencies are
    right, whatever a line through shuffled positions says), ``"scaled"`` where that position is the token's times
    one factor (frequencies off by a constant factor), None where the angles fit no single position."""
    res = an.position_residual
    fits = np.isfinite(res) & (res < 0.05)
    if fits.mean() < 0.9:
        return None
    pos, eff = an.expected_positions[fits], an.positions[fits]
    if np.allclose(eff, pos, atol=0.25):
        return None
    nonzero = np.abs(pos) > 0
    if nonzero.sum() >= 2:
        c = np.median(eff[nonzero] / pos[nonzero])
        if np.allclose(eff, c * pos, atol=0.25, rtol=1e-6):
            return "scaled"
    return "positions"


def frequencies(judge, cfg, an):
    freq = an.frequencies
    if freq is None or position_view(an) == "positions":
        return None
    ratio = freq["ratio"]
    k, n = freq["first"], ratio.size
    rounded = _rounded_frequencies(an)
    if rounded is not None:
        return Finding(
            "frequency_precision",
            f"the frequencies each pair received are cfg's rounded to {rounded} (received/cfg from "
            f"{np.nanmin(ratio):.6g} to {np.nanmax(ratio):.6g}): an inv_freq buffer cast to {rounded} with the "
            "model's weights, or frequencies formed in the model's dtype. Keep inv_freq in float32",
            {"precision": rounded},
        )
    band = freq["band"]
    details = {"band": band, "pairs": freq["pairs"]}
    if band == "none_past":
        message = (
            f"no pair from pair {k} on turns: the output rotates the first {2 * k} features (rotary_dim={2 * k}), "
            f"cfg has rotary_dim={cfg.rotary_dim}"
        )
        details["rotary_dim"] = 2 * k
    elif band == "low":
        tail = ratio[k:][np.isfinite(ratio[k:])]
        message = (
            f"only the low-frequency pairs {k}-{n - 1} turn with other frequencies than cfg's (received/cfg from "
            f"{tail.min():.4g} to {tail.max():.4g}, {ratio[-1]:.4g} on the last pair): a long-context scaling "
            "parameter is off (Llama 3's factor, low_freq_factor, high_freq_factor or original context; YaRN's "
            "factor, original context or beta_fast/beta_slow), or the scaling is missing or not meant"
        )
        details["last_ratio"] = float(ratio[-1])
    elif band == "power_law":
        message = (
            f"every frequency differs by a power of the pair index: they were formed with base {freq['base']:.6g}, "
            f"cfg has base={cfg.base:g} (rope_theta)"
        )
        details["base"] = freq["base"]
    elif band == "constant":
        message = (
            f"every frequency is {1 / freq['factor']:.4g} times cfg's: linear scaling (position interpolation) by "
            f"{freq['factor']:.4g} applied where cfg has none, or the other way round"
        )
        details["factor"] = freq["factor"]
    else:
        finite = ratio[freq["pairs"]][np.isfinite(ratio[freq["pairs"]])]
        span = f" (received/cfg from {finite.min():.4g} to {finite.max():.4g})" if finite.size else ""
        message = f"pairs {_ranges(freq['pairs'])} turn with other frequencies than cfg's{span}"
    return Finding("frequencies", message + "; the table of received frequencies shows them", details)


def _rounded_frequencies(an):
    """The narrow float the received frequencies are the configuration's rounded to, if any."""
    from numrope.validation.emulate import round_to

    known = np.isfinite(an.theta) & (an.residual < 0.5)
    tol = 6 * an.sigma + 1e-6 * np.abs(an.theta_expected) + 1e-12
    for precision in ("bfloat16", "float16"):
        rounded = round_to(an.theta_expected, precision).astype(np.float64)
        if (rounded != an.theta_expected).any() and (np.abs(an.theta - rounded)[known] <= tol[known]).all():
            return precision
    return None


def angle_precision(judge, cfg, an):
    """An angle error proportional to the angle: angles formed in few bits, or sin/cos without range reduction."""
    if position_view(an) == "positions":
        return None  # exact angles, for other positions
    case = judge.case
    theta = cfg.inv_freq(case.seq_len)
    rec = received(case, cfg)
    A = np.abs(rec.pos[:, None] * theta)
    E = np.abs(wrap(rec.phi - rec.pos[:, None] * theta))
    use = (rec.weight > 0) & (A > 0)
    if use.sum() < 16:
        return None
    a, e = A[use], E[use]
    top = a >= np.quantile(a, 0.9)
    low = a <= np.quantile(a, 0.3)
    if not low.any() or not top.any():
        return None
    e_top, e_low = np.sqrt(np.mean(e[top] ** 2)), np.sqrt(np.mean(e[low] ** 2))
    a_top, a_low = np.median(a[top]), np.median(a[low])
    if not (e_top > 5 * max(e_low, 1e-12) and a_top > 5 * a_low):
        return None
    u = float(np.quantile(e[top] / a[top], 0.9))  # rounding errors spread up to the unit roundoff
    slope = math.log(e_top / max(e_low, 1e-300)) / math.log(a_top / a_low)
    if not (0.5 <= slope <= 1.5) or u < 4 * unit_roundoff("float32"):
        return None
    bits = -math.log2(u)
    names = {8: "bfloat16", 11: "float16"}
    near = min(names, key=lambda b: abs(b - bits))
    like = f", as angles formed in {names[near]} give" if abs(near - bits) < 1.5 else ""
    worst_pair = int(np.argmax(np.where(rec.weight > 0, E, 0).max(axis=0)))
    return Finding(
        "angle_precision",
        f"the angle error grows with the angle m*theta_i, largest on pair {worst_pair} at the largest positions: "
        f"about {u:.2g} of the angle (some {bits:.0f} bits{like}): the angles or the cos/sin table are formed in "
        "too low a precision, or sin and cos are evaluated without range reduction (fast-math __sinf/__cosf, "
        "metal::fast). Form m*theta in float32 at least (float64 for long contexts) and use accurate sin/cos",
        {"relative_angle_error": u, "bits": bits, "worst_pair": worst_pair},
    )


def norm_ratio(judge, cfg, an):
    """The pair norms: kept times a constant other than the attention factor, or not kept at all."""
    case = judge.case
    rec = received(case, cfg)
    expected = 1.0 / cfg.attention_scaling if case.inverse else cfg.attention_scaling
    g = (rec.gain / expected)[rec.weight > 0]
    g = g[np.isfinite(g)]
    if g.size < 4:
        return None
    med = float(np.median(g))
    if med < 0.05:
        return None  # an output of zeros: no factor
    spread = float(np.median(np.abs(g - med)))
    tol = max(4 * default_rtol(case.precision), 1e-3)
    if spread <= tol and abs(med - 1) > tol:
        hint = ""
        ratio = med * expected
        if ratio > 1:
            s = math.exp((ratio - 1) / 0.1)
            if 1.5 < s < 1e4:
                hint = f" ({ratio:.4g} is YaRN's 0.1 ln(s) + 1 for s = {s:.3g})"
        return Finding(
            "norm_ratio",
            f"every rotated pair's norm is {med:.4g} times the expected (cfg's attention factor is "
            f"{cfg.attention_scaling:.4g}){hint}: an attention factor applied where none is meant, applied twice, "
            "or missing",
            {"mistake": "constant", "ratio": med},
        )
    maps = pair_maps(case, cfg)
    if spread > tol and maps is not None:
        M, misfit = maps
        linear = misfit <= _misfit_tolerance(case)
        if linear.mean() < 0.9:
            return None  # not cos and sin applied to x: nothing a table explains
        M = M[linear] / expected
        rot = np.hypot((M[:, 0, 0] + M[:, 1, 1]) / 2, (M[:, 1, 0] - M[:, 0, 1]) / 2)
        other = np.hypot((M[:, 0, 0] - M[:, 1, 1]) / 2, (M[:, 1, 0] + M[:, 0, 1]) / 2)
        lo, hi = np.quantile(rot, [0.05, 0.95])
        if np.median(other) <= 0.05 * np.median(rot):
            how = (
                f"cos**2 + sin**2 ranges from {lo**2:.3g} to {hi**2:.3g} where it is 1 (times the attention factor "
                "squared): cos and sin do not come from one angle (one of them read from another row or column of "
                "a cos/sin table, or from past its end)"
            )
        else:
            how = (
                "the two features of a pair are not given the same cos and the same sin: the map is not a rotation "
                "(the halves of a pair taken from different columns of the table)"
            )
        return Finding(
            "norm_ratio",
            f"the pairs' norms are not kept, where a rotation keeps them: the output is the input times some cos "
            f"and sin, but {how}",
            {"mistake": "varies", "low": float(lo), "high": float(hi)},
        )
    return None


def _misfit_tolerance(case):
    return 4 * default_rtol(case.precision) + 1e-9


SIGNATURES = (position_zero, batch_rows, positions, frequencies, angle_precision, norm_ratio)

#: The signatures that read the output as a rotation of the input: they say nothing of an output
#: whose pair norms are not kept (up to one constant factor).
OF_ROTATIONS = (position_zero, positions, frequencies, angle_precision)


def rotation_like(case, cfg) -> bool:
    """Whether at least 90% of the pairs keep their norm (up to one common factor) to within 2%."""
    rec = received(case, cfg)
    g = rec.gain[(rec.weight > 0) & np.isfinite(rec.gain)]
    if g.size == 0 or not np.median(g) > 0:
        return False
    return bool(np.mean(np.abs(g / np.median(g) - 1) <= 0.02) >= 0.9)


def signatures(judge, cfg, an):
    """Every signature the analysis ``an`` of the judge's case shows."""
    rotation = rotation_like(judge.case, cfg)
    tests = [t for t in SIGNATURES if rotation or t not in OF_ROTATIONS]
    return [f for test in tests if (f := test(judge, cfg, an)) is not None]
