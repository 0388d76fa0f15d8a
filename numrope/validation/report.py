"""The reports of a comparison: findings, one array's report and a q/k pair's."""

from __future__ import annotations

import dataclasses
import math

import numpy as np


@dataclasses.dataclass(frozen=True)
class Finding:
    """One finding of a diagnosis.

    Attributes
    ----------
    kind : str
        ``"layout"``, ``"base"``, ``"offset"``, ``"attention_scaling"``, ``"rotary_dim"``,
        ``"direction"``, ``"scaling"``, ``"position_precision"``, ``"frequency_precision"``,
        ``"batch_rows"``, ``"swapped"``, ``"precision"``; where none of these explains the error,
        the signatures the angles show (``"position_zero"``, ``"positions"``, ``"frequencies"``,
        ``"angle_precision"``, ``"norm_ratio"``, and the kinds above); ``"unexplained"`` when
        neither does.
    message : str
        One or two sentences for a person.
    details : dict
        What was found, e.g. ``{"base": 10000.0}`` or ``{"offset": 1}``.
    """

    kind: str
    message: str
    details: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "message": self.message, **_jsonable(self.details)}


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else str(value)
    return value


@dataclasses.dataclass(frozen=True, repr=False)
class RopeReport:
    """The result of :func:`compare`. ``str(report)`` is a readable report; ``to_dict()`` a JSON-able one.

    Attributes
    ----------
    ok : bool
        Every element within its bound (:func:`numrope.testing.error_bound`) and none NaN.
    shape : tuple
        The shape compared.
    precision : str
        The precision of ``actual`` (``"bfloat16"``, ``"float16"``, ``"float32"``, ``"float64"``).
    n_outside : int
        How many elements are outside their bound.
    max_abs_error : float
        Largest ``|actual - expected|`` over all elements; not the verdict's measure, which weighs
        each element's error against its own bound (see ``worst``).
    max_rel_error : float
        Largest error relative to the norm of the element's pair (its magnitude before rounding
        errors could cancel it).
    max_ulp_error : float
        Largest error in ulps of ``precision`` at the pair's norm.
    worst : dict
        The element furthest outside (or closest to) its bound by the measure of the verdict,
        ``ratio``: the larger of its error over its bound and its pair's norm error over what
        rounding allows (``measure`` says which, ``"element"`` or ``"pair norm"``; for the latter
        also ``pair_norm`` and ``expected_pair_norm``). Also ``index`` into ``actual``, ``batch``
        (index over the batch axes), ``position``, ``head`` (index over the head axes: those
        between sequence and head_dim, or the one before the sequence axis in
        ``(batch, heads, seq, head_dim)``), ``feature``, ``pair`` (``None`` for a feature that
        passes through), ``actual``, ``expected``, ``error`` and ``bound``. Empty for empty inputs.
    positions, error_by_position : numpy.ndarray
        The distinct positions, and the largest relative error at each.
    tolerance : dict
        ``rtol``, ``atol`` and ``float32_angles`` as used, and ``atol_matters``: whether ``atol``
        was given or makes up at least half of some element's bound (the text shows it only then).
    diagnosis : tuple of Finding
        Empty when ``ok``; otherwise the common mistakes that explain the error, or one finding
        of kind ``"unexplained"``.
    notes : tuple of Finding
        Remarks: a ``"precision"`` note on an accepted result whose error grows with position as
        float32 angles explain; an ``"angle_limit"`` note where positions reach the point from which
        float32 angles carry no information (only each pair's norm is checked beyond it).
    n_nonfinite : int
        How many elements of ``actual`` are NaN or infinite (each is outside its bound).
    angles : dict or None
        On a mismatch, what the angle analysis (:mod:`numrope.validation.angles`) recovered from
        the angles each pair received, per pair: ``theta_expected`` and ``theta`` (the
        configuration's frequency and the one received), ``theta_ratio``, ``theta_stderr``,
        ``phase_at_zero``, ``angle_residual``, ``gain`` (against ``gain_expected``, the attention
        factor) and ``frequencies``, the verdict on them (None when they agree). ``str(report)``
        shows them as a table where they differ.
    """

    ok: bool
    shape: tuple
    precision: str
    n_outside: int
    max_abs_error: float
    max_rel_error: float
    max_ulp_error: float
    worst: dict
    positions: np.ndarray
    error_by_position: np.ndarray
    tolerance: dict
    diagnosis: tuple
    notes: tuple
    config: str
    n_nonfinite: int = 0
    angles: dict | None = None

    def to_dict(self, max_positions: int = 64) -> dict:
        """A JSON-able dict; the error against position is binned to at most ``max_positions`` rows."""
        return _jsonable(
            {
                "ok": self.ok,
                "shape": list(self.shape),
                "dtype": self.precision,
                "config": self.config,
                "n_outside": self.n_outside,
                "n_nonfinite": self.n_nonfinite,
                "max_abs_error": self.max_abs_error,
                "max_rel_error": self.max_rel_error,
                "max_ulp_error": self.max_ulp_error,
                "worst": self.worst,
                "tolerance": self.tolerance,
                "error_by_position": [list(r) for r in _binned(self.positions, self.error_by_position, max_positions)],
                "diagnosis": [f.to_dict() for f in self.diagnosis],
                "notes": [f.to_dict() for f in self.notes],
                "angles": self.angles,
            }
        )

    def __repr__(self):
        kinds = ", ".join(f.kind for f in self.diagnosis)
        return f"<RopeReport ok={self.ok} max_abs_error={self.max_abs_error:.3g} diagnosis=[{kinds}]>"

    def __str__(self):
        return "\n".join(self._lines())

    def _lines(self, title="RoPE", diagnosis=True):
        size = math.prod(self.shape)
        if size == 0:
            return [f"{title.rstrip(':')}: nothing to compare, shape {tuple(self.shape)} holds no elements"]
        w = self.worst
        if self.ok:
            head = f"{title} match: all {size:,} elements within tolerance (the closest to its bound reaches "
            head += f"{w['ratio']:.2g} of it)"
        else:
            worst = "is NaN or infinite" if not math.isfinite(w["ratio"]) else f"is {w['ratio']:.3g} times its bound"
            head = f"{title} mismatch: {self.n_outside:,} of {size:,} elements outside tolerance (the worst {worst})"
        lines = [head, f"  actual: {self.precision} {tuple(self.shape)}; cfg: {self.config}"]
        if self.n_nonfinite:
            lines.append(f"  actual holds {self.n_nonfinite:,} NaN or infinite values")
        lines.append("  tolerance: " + _tolerance_text(self.tolerance))
        lines += _worst_lines(w, self.ok)
        lines.append(
            f"  largest errors over all elements, each also judged against its own bound: {self.max_abs_error:.3g} "
            f"absolute, {self.max_rel_error:.3g} of the pair's norm, {self.max_ulp_error:.3g} {self.precision} ulps"
        )
        rows = _binned(self.positions, self.error_by_position, 8)
        if rows:
            lines.append("  largest error relative to the pair's norm, by position:")
            width = max(len(_position(p)) for row in rows for p in row[:2])
            lines += [f"    {_position(lo):>{width}} .. {_position(hi):<{width}}  {err:.3g}" for lo, hi, err in rows]
        for label, findings in (("diagnosis", self.diagnosis if diagnosis else ()), ("notes", self.notes)):
            if findings:
                lines.append(f"  {label}:")
                lines += [f"    - {f.kind}: {f.message}" for f in findings]
        if self.angles:
            from numrope.validation.angles import table_lines

            lines += table_lines(self.angles)
        return lines


def _position(p: float) -> str:
    return f"{int(p):,}" if float(p).is_integer() else f"{p:g}"


def _tolerance_text(tol) -> str:
    """The bound in words; atol only where it decides some element's bound (or was given)."""
    angles = "float32 angles' error, growing with position" if tol["float32_angles"] else "float64 angles' error"
    atol = f"atol {tol['atol']:.3g} + " if tol.get("atol_matters", True) else ""
    return f"error <= {atol}|pair| * (rtol {tol['rtol']:.3g} + {angles}) per element; pair norms kept within rounding"


def _index(index) -> str:
    return str(index[0]) if len(index) == 1 else str(tuple(index))


def _worst_lines(w, ok) -> list:
    where = [f"position {_position(w['position'])}"]
    if w.get("batch"):
        where.insert(0, f"batch {_index(w['batch'])}")
    if w["head"]:
        where.append(f"head {_index(w['head'])}")
    where.append(f"feature {w['feature']}" + (f" (pair {w['pair']})" if w["pair"] is not None else " (passes through)"))
    label = "closest to its bound" if ok else "furthest outside its bound"
    lines = [
        f"  {label}: element {tuple(w['index'])}, {', '.join(where)}: actual {w['actual']:.6g}, "
        f"expected {w['expected']:.6g}, error {w['error']:.3g}, bound {w['bound']:.3g}"
    ]
    if w.get("measure") == "pair norm":
        lines.append(
            f"    its pair's norm is {w['pair_norm']:.6g}, expected {w['expected_pair_norm']:.6g}: "
            f"{w['ratio']:.3g} times what rounding allows (a rotation keeps the norm)"
        )
    return lines


def _binned(positions, errors, n_bins):
    """Rows (first position, last position, max error) over at most n_bins groups of positions."""
    if positions.size == 0:
        return []
    groups = np.array_split(np.arange(positions.size), min(n_bins, positions.size))
    return [(float(positions[g[0]]), float(positions[g[-1]]), float(errors[g].max())) for g in groups if g.size]


def _config_text(cfg) -> str:
    text = f"head_dim={cfg.head_dim}, base={cfg.base:g}, rotary_dim={cfg.rotary_dim}, layout={cfg.layout!r}"
    if cfg.scaling is not None:
        text += f", scaling={cfg.scaling!r}"
    if getattr(cfg, "axes", None) is not None:
        text += f", axes={cfg.axes!r}"
    return text


@dataclasses.dataclass(frozen=True, repr=False)
class QKReport:
    """The result of :func:`compare_qk`: a :class:`RopeReport` for each of q and k and a joint diagnosis.

    Attributes
    ----------
    ok : bool
        Both match.
    q, k : RopeReport
        The reports for queries and keys.
    diagnosis : tuple of Finding
        ``"swapped"`` when each output is the other input rotated; otherwise the findings of
        both reports, their messages prefixed by ``q:`` or ``k:``.
    """

    q: RopeReport
    k: RopeReport
    diagnosis: tuple

    @property
    def ok(self) -> bool:
        return self.q.ok and self.k.ok

    @property
    def max_abs_error(self) -> float:
        return max(self.q.max_abs_error, self.k.max_abs_error)

    def to_dict(self, max_positions: int = 64) -> dict:
        return {
            "ok": self.ok,
            "max_abs_error": self.max_abs_error,
            "diagnosis": [f.to_dict() for f in self.diagnosis],
            "q": self.q.to_dict(max_positions),
            "k": self.k.to_dict(max_positions),
        }

    def __repr__(self):
        kinds = ", ".join(f.kind for f in self.diagnosis)
        return f"<QKReport ok={self.ok} max_abs_error={self.max_abs_error:.3g} diagnosis=[{kinds}]>"

    def __str__(self):
        lines = self.q._lines("queries:", diagnosis=False) + self.k._lines("keys:", diagnosis=False)
        if self.diagnosis:
            lines.append("diagnosis:")
            lines += [f"  - {f.kind}: {f.message}" for f in self.diagnosis]
        return "\n".join(lines)
