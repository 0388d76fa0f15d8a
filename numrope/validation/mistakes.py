"""Candidate explanations of a mismatch and the judge that accepts or rejects them.

A :class:`Mistakes` is what an implementation may have done instead of ``cfg``: another
configuration (layout, base, rotary_dim, scaling), positions shifted or replaced, the direction
flipped, cos and sin swapped, a gain, other frequencies. :func:`predict` computes the output it
gives, in plain NumPy float64; :class:`Judge` says whether the output under test matches it
within the tolerance (float32 angles allowed, as every hypothesis of the diagnosis allows them).
One or two mistakes combine in one ``Mistakes``, so that two errors at once are tested as one
prediction.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from numrope.validation.report import Finding
from numrope.validation.tolerance import default_rtol, verdict_ratios

_UNSET = object()


@dataclasses.dataclass(frozen=True, eq=False)
class Mistakes:
    """What an implementation did instead of ``cfg``, and the findings that say so.

    ``cfg`` is the configuration it used; ``pos`` replaces the positions (before ``shift`` is
    added); ``flip`` turns the other way, ``swap`` exchanges cos and sin; ``scale`` multiplies the
    rotated features (and, with ``scale_all``, the ones that pass through); ``theta`` replaces
    the frequencies; ``seq_len`` is the sequence length the frequencies were evaluated at.
    """

    cfg: object
    shift: float = 0.0
    pos: np.ndarray | None = None
    flip: bool = False
    swap: bool = False
    scale: float = 1.0
    scale_all: bool = False
    theta: np.ndarray | None = None
    seq_len: object = _UNSET
    findings: tuple = ()
    kinds: frozenset = frozenset()

    def with_(self, kind, message, details, **changes):
        """These mistakes and one more of ``kind``, said by a :class:`Finding` of ``message`` and ``details``."""
        finding = Finding(kind, message, details)
        return dataclasses.replace(self, findings=(*self.findings, finding), kinds=self.kinds | {kind}, **changes)

    def positions(self, case):
        base = case.pos if self.pos is None else self.pos
        return base + self.shift if self.shift else base

    def length(self, case):
        return case.seq_len if self.seq_len is _UNSET else self.seq_len

    def frequencies(self, case):
        return self.cfg.inv_freq(self.length(case)) if self.theta is None else self.theta


def predict(case, m: Mistakes) -> np.ndarray:
    """The output of rotating ``case.x`` with the mistakes ``m``, float64, shape of ``case.x``."""
    cfg = m.cfg
    theta = m.frequencies(case)
    angle = m.positions(case)[:, None] * theta
    backwards = case.inverse != m.flip
    if backwards:
        angle = -angle
    if m.swap:
        angle = math.pi / 2 - angle
    a = cfg.attention_scaling
    gain = (1.0 / a if case.inverse and not m.flip else a) * m.scale
    c, s = (gain * np.cos(angle))[:, None, :], (gain * np.sin(angle))[:, None, :]
    j0, j1 = cfg.pair_indices(output=case.inverse)  # the inverse reads where the forward map writes
    k0, k1 = cfg.pair_indices(output=not case.inverse)
    x0, x1 = case.x[..., j0], case.x[..., j1]
    out = case.x.copy()
    out[..., k0] = x0 * c - x1 * s
    out[..., k1] = x1 * c + x0 * s
    if m.scale_all:
        out[..., : cfg.rotary_offset] *= m.scale
        out[..., cfg.rotary_offset + cfg.rotary_dim :] *= m.scale
    return out


def subcase(case, tokens=None, heads=None):
    """``case`` restricted to some tokens and heads (the multi-axis coordinates and batch rows follow)."""
    tokens = np.arange(case.x.shape[0]) if tokens is None else tokens
    heads = np.arange(case.x.shape[1]) if heads is None else heads
    pick = np.ix_(tokens, heads, np.arange(case.x.shape[2]))
    changes = {"actual": case.actual[pick], "x": case.x[pick], "expected": case.expected[pick], "pos": case.pos[tokens]}
    if getattr(case, "coords", None) is not None:
        changes["coords"] = case.coords[:, tokens]
    for name in ("rows", "steps", "first_row_pos"):  # a diagnosis sample's batch rows
        if getattr(case, name, None) is not None:
            changes[name] = getattr(case, name)[tokens]
    return dataclasses.replace(case, **changes)


class Judge:
    """Says whether the output of a case matches a prediction within the tolerance.

    ``screen`` checks a small part of the case first (at most 48 tokens and 2 heads): a
    necessary condition, since the full check holds every element to the same bound, so a
    candidate it rejects is rejected without the cost of the full check.
    """

    def __init__(self, case, cfg, rtol, atol):
        self.case, self.cfg, self.rtol, self.atol = case, cfg, rtol, atol
        self._received = {}
        T, H, _ = case.x.shape
        tokens = np.unique(np.linspace(0, T - 1, min(T, 48)).astype(np.int64))
        heads = np.unique(np.linspace(0, H - 1, min(H, 2)).astype(np.int64))
        self.small = subcase(case, tokens, heads) if (tokens.size < T or heads.size < H) else case
        self._small_index = (tokens, heads)

    def received(self, m: Mistakes):
        """The angles the pairs received, paired and turned as ``m`` says (kept for the next candidate)."""
        from numrope.validation.angles import received

        key = (m.cfg.layout, m.cfg.rotary_dim, m.flip, m.swap)
        if key not in self._received:
            self._received[key] = received(self.case, m.cfg, flip=m.flip, swap=m.swap)
        return self._received[key]

    def explains(self, cfg, pred, *, pos=None, float32_angles=True, table=None):
        """Whether the actual output matches ``pred`` within the tolerance."""
        return _within(self.case, cfg, pred, pos, cfg.inv_freq(self.case.seq_len), self, float32_angles, table)

    def accepts(self, m: Mistakes, *, table=None) -> bool:
        """Whether the mistakes ``m`` explain the output: the small part first, then all of it."""
        if self.small is not self.case:
            small = m if m.pos is None else dataclasses.replace(m, pos=m.pos[self._small_index[0]])
            if not self._check(self.small, small, table):
                return False
        return self._check(self.case, m, table)

    def _check(self, case, m, table):
        pred = predict(case, m)
        return _within(case, m.cfg, pred, m.positions(case), m.frequencies(case), self, True, table)


def _within(case, cfg, pred, pos, theta, judge, float32_angles, table):
    pos = case.pos if pos is None else pos
    rtol = judge.rtol if judge.rtol is not None else default_rtol(case.precision, table)
    kw = {"float32_angles": float32_angles, "rtol": rtol, "atol": judge.atol}
    _, _, element, norm = verdict_ratios(case.actual, pred, pos, theta, cfg, case.precision, **kw)
    return bool((element <= 1).all() and (norm <= 1).all())


def replace(cfg, **changes):
    """``cfg`` with ``changes``, or None where they make no valid configuration."""
    try:
        return dataclasses.replace(cfg, **changes)
    except (TypeError, ValueError, ArithmeticError):
        return None
