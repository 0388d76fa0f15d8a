"""A comparison's report, added up over ranges of tokens: the whole case at once in memory, chunk by chunk streamed.

:func:`numrope.validation.compare` folds its one in-memory case into a :class:`Tally`;
:func:`numrope.validation.stream.compare_chunked` folds one chunk of tokens at a time. Either way
the counts are summed, the largest errors are maxima, the worst element is the first one with the
largest ratio to its bound (located in the whole array), and the error by position is kept per
token and reduced over the distinct positions at the end, so the two give the same report.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from numrope._checks import heads_before_seq
from numrope.validation import diagnose as _diagnose
from numrope.validation import diagnose_axes as _diagnose_axes
from numrope.validation.case import ulp
from numrope.validation.report import RopeReport, _config_text
from numrope.validation.tolerance import _check_tolerance, default_atol, default_rtol, pair_norms, verdict_ratios


@dataclasses.dataclass(frozen=True)
class Options:
    """The checked options of one comparison: the keywords of :func:`numrope.validation.compare`, in its
    order, which says what each means; less ``offsets`` (turned into positions before)."""

    seq_axis: int = -3
    rtol: float | None = None
    atol: float | None = None
    float32_angles: bool = False
    inverse: bool = False
    seq_len: int | None = None
    diagnose: bool = True

    def __post_init__(self):
        # seq_axis and seq_len are checked against the arrays, where the comparison reads them
        for name in ("rtol", "atol"):
            object.__setattr__(self, name, _check_tolerance(name, getattr(self, name)))
        for name in ("float32_angles", "inverse", "diagnose"):
            object.__setattr__(self, name, bool(getattr(self, name)))

    @classmethod
    def names(cls):
        return {f.name for f in dataclasses.fields(cls)}


def refuse_unknown(caller, keywords, known):
    """A TypeError naming the keywords in ``keywords`` that ``caller`` does not take (those not in ``known``)."""
    unknown = set(keywords) - set(known)
    if unknown:
        raise TypeError(f"{caller}() got unexpected keyword arguments {sorted(unknown)}")


class _Shifted:
    """An array of one chunk indexed by global token numbers (``[t, ...]`` with ``t`` from ``start``)."""

    def __init__(self, a, start):
        self._a, self._start = a, start

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        return self._a[(key[0] - self._start, *key[1:])]


class _WholeCase:
    """What :func:`_worst` reads of a case, for a chunk of tokens placed in the whole array."""

    def __init__(self, shape, seq_axis, case, t0):
        self.shape, self.seq_axis = shape, seq_axis
        self.pos, self.actual, self.expected = (_Shifted(v, t0) for v in (case.pos, case.actual, case.expected))


class _Maxima:
    """Stands for the ratio array in :func:`numrope.validation.diagnose.sample`: its maxima per token and per head."""

    def __init__(self, by_token, by_head):
        self._by = {(1, 2): by_token, (0, 2): by_head}

    def max(self, axis):
        return self._by[tuple(axis)]


class Tally:
    """The report of a comparison of ``(tokens, heads, head_dim)`` arrays, added up chunk by chunk of tokens.

    ``pos`` holds each token's position; ``heads`` is the number of heads per token.
    """

    def __init__(self, cfg, precision, pos, heads, options):
        self.cfg, self.precision, self.pos, self.options = cfg, precision, pos, options
        self.rtol = default_rtol(precision) if options.rtol is None else options.rtol
        self.atol = default_atol(precision) if options.atol is None else options.atol
        n_tokens = pos.size
        self.token_rel = np.zeros(n_tokens)  # the report's relative error, largest per token
        self.token_growth = np.zeros(n_tokens)  # the same with 0 where a pair's norm is 0 (the precision note's)
        self.token_ratio = np.zeros(n_tokens)
        self.head_ratio = np.zeros(max(heads, 1))
        self.size = self.n_outside = self.n_nonfinite = 0
        self.max_abs = self.max_rel = self.max_ulp = 0.0
        self.best, self.worst = -1.0, {}
        self.atol_matters = self.strict_outside = False

    def _ratios(self, case, float32_angles):
        """``(err, bound, element ratio, pair-norm ratio)``: an element passes when both ratios are at most 1."""
        o = self.options
        kw = {"float32_angles": float32_angles, "rtol": o.rtol, "atol": o.atol}
        return verdict_ratios(case.actual, case.expected, case.pos, case.theta, self.cfg, self.precision, **kw)

    def add(self, case, t0, shape, seq_axis):
        """Fold in the tokens ``t0 ..`` of ``case``, a chunk of the comparison of arrays of ``shape``."""
        if case.actual.size == 0:
            return
        err, bound, element, norm = self._ratios(case, self.options.float32_angles)
        ratio = np.maximum(element, norm)
        self.size += ratio.size
        self.n_outside += int((ratio > 1).sum())
        self.n_nonfinite += int((~np.isfinite(case.actual)).sum())
        norms = pair_norms(case.expected, self.cfg)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            rel = np.where(norms > 0, err / norms, np.where(err > 0, np.inf, 0.0))
        ulps = err / ulp(norms, self.precision)
        t1 = t0 + case.actual.shape[0]
        self.token_rel[t0:t1] = rel.max(axis=(1, 2))
        self.token_growth[t0:t1] = _diagnose.growth_by_token(err, norms)
        self.token_ratio[t0:t1] = ratio.max(axis=(1, 2))
        np.maximum(self.head_ratio, ratio.max(axis=(0, 2)), out=self.head_ratio)
        self.max_abs = max(self.max_abs, float(err.max(initial=0.0)))
        self.max_rel = max(self.max_rel, float(rel.max(initial=0.0)))
        self.max_ulp = max(self.max_ulp, float(ulps.max(initial=0.0)))
        self.atol_matters = self.atol_matters or bool((2 * self.atol >= bound).any())
        # the float64-angle verdict, for the note on an output that float32 angles alone let pass
        if self.options.float32_angles and not self.strict_outside and self.n_outside == 0:
            strict = self._ratios(case, False)
            self.strict_outside = bool((np.maximum(strict[2], strict[3]) > 1).any())
        flat = int(np.argmax(ratio))
        if ratio.reshape(-1)[flat] > self.best:  # strictly: the first of equal ratios, as np.argmax over all
            t, h, j = np.unravel_index(flat, ratio.shape)
            self.best = float(ratio.reshape(-1)[flat])
            whole = _WholeCase(shape, seq_axis, case, t0)
            shifted = [_Shifted(v, t0) for v in (err, bound, element, norm)]
            self.worst = _worst(whole, self.cfg, t0 + int(t), int(h), int(j), *shifted)

    def report(self, case):
        """The report, once every token is in; ``case`` is the whole comparison, read for the diagnosis and notes."""
        cfg, o = self.cfg, self.options
        diagnosis, notes, angles = (), [], None
        ok = self.n_outside == 0
        if ok and o.float32_angles and self.strict_outside:
            notes.append(_diagnose.float32_note(case, self.token_growth))
        elif not ok and o.diagnose:
            sample = _diagnose.sample(case, _Maxima(self.token_ratio, self.head_ratio))
            if case.coords is None:  # the findings, and the angles each pair received (numrope.validation.angles)
                found, analysis = _diagnose.diagnose_with_angles(sample, cfg, rtol=o.rtol, atol=o.atol)
                diagnosis, angles = tuple(found), None if analysis is None else analysis.to_dict()
            else:  # multi-axis: its own mistakes
                diagnosis = tuple(_diagnose_axes.diagnose(sample, cfg, rtol=o.rtol, atol=o.atol))
        if o.float32_angles and self.size:
            limit = _diagnose.angle_limit_note(case, cfg)
            if limit is not None:
                notes.append(limit)
        positions, by_pos = np.unique(self.pos, return_inverse=True)
        error_by_position = np.zeros(positions.size)
        np.maximum.at(error_by_position, by_pos.reshape(-1), self.token_rel)
        return RopeReport(
            ok=ok,
            shape=tuple(case.shape),
            precision=self.precision,
            n_outside=self.n_outside,
            max_abs_error=self.max_abs,
            max_rel_error=self.max_rel,
            max_ulp_error=self.max_ulp,
            worst=self.worst,
            positions=positions,
            error_by_position=error_by_position,
            tolerance={
                "rtol": float(self.rtol),
                "atol": float(self.atol),
                "float32_angles": o.float32_angles,
                "atol_matters": o.atol is not None or self.atol_matters,
            },
            diagnosis=diagnosis,
            notes=tuple(notes),
            config=_config_text(cfg),
            n_nonfinite=self.n_nonfinite,
            angles=angles,
        )


def in_memory(case, cfg, options):
    """The report of a case held in memory: a tally of one chunk, the whole case."""
    tally = Tally(cfg, case.precision, case.pos, case.actual.shape[1], options)
    tally.add(case, 0, case.shape, case.seq_axis)
    return tally.report(case)


def _worst(case, cfg, t, h, j, err, bound, element, norm):
    """The report's ``worst`` dict for element ``(t, h, j)`` of a ``(tokens, heads, head_dim)`` case."""
    lead, seq = case.shape[: case.seq_axis], case.shape[case.seq_axis]
    heads = case.shape[case.seq_axis + 1 : -1]
    lead_index = np.unravel_index(t // seq, lead) if lead else ()
    head_index = np.unravel_index(h, heads) if heads else ()
    index = (*(int(i) for i in lead_index), int(t % seq), *(int(i) for i in head_index), int(j))
    batch_index = tuple(int(i) for i in lead_index)
    if not heads and heads_before_seq(len(case.shape), case.seq_axis):  # (*batch, heads, seq, head_dim)
        batch_index, head_index = batch_index[:-1], batch_index[-1:]
    j0, j1 = cfg.pair_indices(output=True)
    pair = int(np.flatnonzero(j0 == j)[0]) if j in j0 else (int(np.flatnonzero(j1 == j)[0]) if j in j1 else None)
    out = {
        "index": index,
        "batch": batch_index,
        "position": float(case.pos[t]),
        "head": tuple(int(i) for i in head_index),
        "feature": int(j),
        "pair": pair,
        "actual": float(case.actual[t, h, j]),
        "expected": float(case.expected[t, h, j]),
        "error": float(err[t, h, j]),
        "bound": float(bound[t, h, j]),
        "ratio": float(max(element[t, h, j], norm[t, h, j])),
        "measure": "element",
    }
    if pair is not None and norm[t, h, j] > element[t, h, j]:
        a, e = case.actual[t, h], case.expected[t, h]
        out["measure"] = "pair norm"
        with np.errstate(over="ignore", invalid="ignore"):
            out["pair_norm"] = float(np.hypot(a[j0[pair]], a[j1[pair]]))
        out["expected_pair_norm"] = float(np.hypot(e[j0[pair]], e[j1[pair]]))
    return out
