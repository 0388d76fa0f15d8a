"""The diagnosis behind :func:`numrope.validation.compare`: which common mistakes explain a mismatch.

Each hypothesis (:mod:`numrope.validation.hypotheses`, the scaling ones in
:mod:`numrope.validation.diagnose_scaling`) predicts the output under one mistake, estimating
its parameter from the data where it has one, and is reported only if the output then matches
within the tolerance, with float32 angles allowed. When no single mistake explains the output,
the ones that explain it two at a time are searched (layout and offset, base and scaling, offset
and direction, ...): the second mistake's parameter is estimated with the first assumed, and each
pair is screened on a small part of the case before the whole is judged, so the search stays
within a few times the cost of the single hypotheses. When nothing explains it, the angles each
pair received (:mod:`numrope.validation.angles`) name the signature of the bug
(:mod:`numrope.validation.signatures`). Predictions are plain NumPy in float64 on
``(tokens, heads, head_dim)`` arrays.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np

from numrope._checks import heads_before_seq
from numrope.validation import diagnose_scaling, hypotheses, signatures
from numrope.validation.angles import analyse
from numrope.validation.case import Case
from numrope.validation.hypotheses import estimate_base, estimate_offset  # noqa: F401 - part of this module's API
from numrope.validation.mistakes import Judge, Mistakes, replace, subcase
from numrope.validation.report import Finding
from numrope.validation.tolerance import (
    default_rtol,
    pair_norms,
    uninformative_from,
    unit_roundoff,
)

_Judge = Judge  # the name numrope.validation.diagnose_axes uses


def _finding(kind, message, **details):
    return Finding(kind, message, details)


@dataclasses.dataclass(frozen=True)
class Sample(Case):
    """A case with, per token, its batch row, its index along the sequence and the first row's position there."""

    rows: np.ndarray | None = None
    steps: np.ndarray | None = None
    first_row_pos: np.ndarray | None = None


def _with_rows(case):
    T = case.x.shape[0]
    seq = case.shape[case.seq_axis] if case.shape else T
    lead = np.arange(T) // max(seq, 1)
    steps = np.arange(T) % max(seq, 1)
    if heads_before_seq(len(case.shape), case.seq_axis):  # (*batch, heads, seq, head_dim): heads are not rows
        lead = lead // case.shape[case.seq_axis - 1]
    fields = {f.name: getattr(case, f.name) for f in dataclasses.fields(Case)}
    return Sample(**fields, rows=lead, steps=steps, first_row_pos=case.pos[steps])


def sample(case, ratio, n_tokens=512, n_heads=8):
    """A smaller case for the diagnosis: runs of consecutive positions across the range, the worst token included."""
    case = _with_rows(case) if not isinstance(case, Sample) else case
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
    return subcase(case, tokens, heads)


def predict(case, cfg, *, pos=None, inverse=None, swap=False, scale=1.0, scale_all=False):
    """The output of rotating ``case.x`` under ``cfg`` with the given changes."""
    from numrope.validation.mistakes import predict as _predict

    flip = False if inverse is None else bool(inverse) != case.inverse
    shift_pos = None if pos is None else np.asarray(pos, dtype=np.float64)
    return _predict(case, Mistakes(cfg, pos=shift_pos, flip=flip, swap=swap, scale=scale, scale_all=scale_all))


def _wrap(angle):
    return (angle + math.pi) % (2 * math.pi) - math.pi


def _replace(cfg, **changes):
    return replace(cfg, **changes)


def growth_by_token(err, norms):
    """Each token's largest error relative to its pair's norm (0 where that norm is 0), from ``(T, H, D)`` arrays."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.where(norms > 0, err / norms, 0.0).max(axis=(1, 2))


def _growth(case, rel):
    """(max relative error over the first and the last quarter of the positions, both position ranges), from
    each token's largest relative error ``rel``."""
    order = np.argsort(case.pos, kind="stable")
    quarter = max(order.size // 4, 1)
    first, last = order[:quarter], order[-quarter:]
    return float(rel[first].max()), float(rel[last].max()), float(case.pos[first].max()), float(case.pos[last].min())


def float32_note(case, token_growth):
    """The note for an output accepted only because float32 angles were allowed (``token_growth``: each token's
    :func:`growth_by_token`)."""
    early, late, p_early, p_late = _growth(case, token_growth)
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
        early, late, p_early, p_late = _growth(case, growth_by_token(err, pair_norms(pred, cfg)))
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
    early, late, p_early, p_late = _growth(case, growth_by_token(err, norms))
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


#: The hypotheses, each tried alone; the order is that of the findings.
HYPOTHESES = (
    hypotheses.layout,
    hypotheses.direction,
    hypotheses.attention_scaling,
    hypotheses.rotary_dim,
    hypotheses.offset,
    hypotheses.base,
    diagnose_scaling.scaling,
    hypotheses.position_precision,
    hypotheses.frequency_precision,
    hypotheses.batch_rows,
)

#: The two hypotheses that can explain the same frequencies (NTK scaling is a base of its own).
FREQUENCY_KINDS = {"base": hypotheses.base, "scaling": diagnose_scaling.scaling}

#: Two at a time, in this order: a mistake that changes how the angles are read (the pairing, the
#: direction) or which frequencies turn comes before one whose parameter is estimated from them.
PAIR_ORDER = (
    hypotheses.layout,
    hypotheses.direction,
    hypotheses.rotary_dim,
    hypotheses.base,
    diagnose_scaling.scaling,
    hypotheses.frequency_precision,
    hypotheses.position_precision,
    hypotheses.batch_rows,
    hypotheses.attention_scaling,
    hypotheses.offset,
)

#: At most this many candidates of the first mistake of a pair (its most likely values first).
FIRST_OF_PAIR = 4


def _first_of_pair(test, judge, start):
    if test is hypotheses.base:  # the estimate itself, to 6 digits, stands for the value in a pair
        found = list(test(judge, start))
        said = [m.findings[-1].details for m in found]
        est = [m for m, d in zip(found, said, strict=True) if d["base"] == float(f"{d['estimated']:.6g}")]
        return (est or found[-1:])[:1]
    return list(itertools.islice(test(judge, start), FIRST_OF_PAIR))


def _singles(judge, start):
    found = []
    order = HYPOTHESES
    if start.cfg.depends_on_seq_len:  # there another base is the variant at another length: said as such
        order = tuple(sorted(HYPOTHESES, key=lambda h: h is hypotheses.base))
    for test in order:
        if {test, *(FREQUENCY_KINDS[k] for m in found for k in m.kinds if k in FREQUENCY_KINDS)} >= {
            hypotheses.base,
            diagnose_scaling.scaling,
        }:
            continue  # the same frequencies, said once
        for m in test(judge, start):
            if judge.accepts(m):
                found.append(m)
                break
    return found


def _pairs(judge, start):
    for i, first in enumerate(PAIR_ORDER):
        for m1 in _first_of_pair(first, judge, start):
            for second in PAIR_ORDER[i + 1 :]:
                for m2 in second(judge, m1):
                    if judge.accepts(m2):
                        return m2
    return None


def _angles_of(judge, cfg, m=None):
    """The angle analysis under the pairing and direction of ``m``, against ``cfg``'s frequencies."""
    case = judge.case
    pos = None if m is None or "offset" in m.kinds else m.positions(case)  # an offset moves no frequency
    if m is None or m.cfg.rotary_dim != cfg.rotary_dim:
        pairing = cfg
        flip = swap = False
    else:
        pairing = replace(cfg, layout=m.cfg.layout) or cfg
        flip, swap = m.flip, m.swap
    try:
        return analyse(case, pairing, flip=flip, swap=swap, theta=cfg.inv_freq(case.seq_len), pos=pos)
    except (ValueError, FloatingPointError, ArithmeticError):  # pragma: no cover - degenerate inputs
        return None


def diagnose_with_angles(case, cfg, *, rtol=None, atol=None):
    """``(findings, analysis)``: the findings that explain a mismatching case (never empty), and the
    angle analysis (:class:`numrope.validation.angles.Analysis`, None where it cannot be made)."""
    judge = Judge(case, cfg, rtol, atol)
    start = Mistakes(cfg)
    singles = _singles(judge, start)
    if singles:
        return [f for m in singles for f in m.findings], _angles_of(judge, cfg, singles[0])
    precision = _precision(judge, cfg)
    if precision:
        return precision, _angles_of(judge, cfg)
    both = _pairs(judge, start)
    if both is not None:
        return list(both.findings), _angles_of(judge, cfg, both)
    an = _angles_of(judge, cfg)
    found = signatures.signatures(judge, cfg, an) if an is not None else []
    return (found or [_unexplained(judge, cfg)]), an


def diagnose(case, cfg, *, rtol=None, atol=None):
    """The findings that explain a mismatching case (a list, never empty)."""
    return diagnose_with_angles(case, cfg, rtol=rtol, atol=atol)[0]
