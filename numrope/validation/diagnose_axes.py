"""Comparing multi-axis RoPE (M-RoPE, 2-D vision RoPE): the coordinates of a case, and the mistakes
that explain a mismatch.

:func:`numrope.validation.compare` takes coordinate vectors for a configuration with ``axes``
(:mod:`numrope.axes`). The bound on each element is that of plain RoPE at the token's largest
coordinate: pair ``i`` turns by ``m[axis[i]] theta_i`` with ``|m[axis[i]]| <= max_a |m_a|``, so
angles formed in float32 are off by no more than there. A mismatch is then tested against the
mistakes of multi-axis RoPE, each a prediction in plain NumPy float64:

* the sections dropped: plain RoPE of one coordinate (``t``), what a config with ``mrope_section``
  read as plain RoPE gives; text tokens agree, image tokens do not;
* the sections in the wrong order (``mrope_section`` permuted) or the axes swapped (``h`` and ``w``);
* contiguous sections where interleaved ones are meant (Qwen2-VL's layout for Qwen3-VL's), and the
  reverse; Pixtral's even/odd frequency split where the axial one is meant, and the reverse;
* the pair layout swapped (GLM-4.1V's adjacent pairs for GLM-4.5V's halves), the direction.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from numrope import axes as _axes
from numrope.validation import diagnose as _diagnose
from numrope.validation.report import Finding

__all__ = ["diagnose", "predict"]


def predict(case, cfg, coords=None, *, inverse=None):
    """The output of rotating ``case.x`` by ``cfg`` (with ``axes``) at ``coords`` (n_axes, T), in float64."""
    coords = case.coords if coords is None else coords
    inverse = case.inverse if inverse is None else inverse
    theta = cfg.inv_freq(case.seq_len)
    angle = coords[cfg.axes.axis_index].T * theta  # (T, P)
    if inverse:
        angle = -angle
    a = cfg.attention_scaling
    if inverse:
        a = 1.0 / a
    c, s = (a * np.cos(angle))[:, None, :], (a * np.sin(angle))[:, None, :]
    j0, j1 = cfg.pair_indices(output=inverse)  # the inverse reads where the forward map writes
    k0, k1 = cfg.pair_indices(output=not inverse)
    x0, x1 = case.x[..., j0], case.x[..., j1]
    out = case.x.copy()
    out[..., k0] = x0 * c - x1 * s
    out[..., k1] = x1 * c + x0 * s
    return out


def _finding(mistake, message, **details):
    return Finding("axes", message, {"mistake": mistake, **details})


def _with(cfg, axis_map=None, **changes):
    try:
        return dataclasses.replace(cfg, axes=cfg.axes if axis_map is None else axis_map, **changes)
    except (TypeError, ValueError):
        return None


def _candidates(cfg):
    """(mistake, cfg', coords' or None, message) for each mistake to test, most common first."""
    m = cfg.axes
    n = len(m)
    names = m.names
    counts = m.counts()
    out = []
    # every pair reading one axis: the axis map dropped (plain RoPE of that coordinate)
    for a, name in enumerate(names):
        single = _axes.AxisMap([a] * n, m.freq, names)
        what = "the t coordinate" if name == "t" else f"the {name} coordinate alone"
        out.append(
            (
                "dropped",
                _with(cfg, single),
                f"the output is plain RoPE of {what}: the axis map is dropped (a config with mrope_section read as "
                f"plain RoPE rotates every pair by the {name} coordinate; text tokens, whose coordinates are all "
                "equal, agree, image and video tokens do not)",
                {"axis": name},
            )
        )
    is_sectioned = len(names) == 3 and m.freq == tuple(range(n)) and _safe(lambda: _axes.sectioned(counts, names)) == m
    is_interleaved = (
        len(names) == 3 and m.freq == tuple(range(n)) and _safe(lambda: _axes.interleaved(counts, n, names)) == m
    )
    if is_sectioned:
        for order in itertools.permutations(counts):
            if order != counts:
                cand = _safe(lambda order=order: _axes.sectioned(order, names))
                out.append(
                    (
                        "order",
                        _with(cfg, cand),
                        f"mrope_section is in the wrong order: the output has sections {list(order)}, cfg "
                        f"{list(counts)} (axes {', '.join(names)})",
                        {"sections": list(order)},
                    )
                )
        out.append(
            (
                "interleaving",
                _with(cfg, _safe(lambda: _axes.interleaved(counts, n, names))),
                f"the output interleaves the axes pair by pair (Qwen3-VL's M-RoPE, {', '.join(names)} repeating) "
                "where cfg has contiguous sections (Qwen2-VL's)",
                {"expected": "sectioned", "found": "interleaved"},
            )
        )
    if is_interleaved and not is_sectioned:
        out.append(
            (
                "interleaving",
                _with(cfg, _safe(lambda: _axes.sectioned(counts, names))),
                f"the output has contiguous sections {list(counts)} (Qwen2-VL's M-RoPE) where cfg interleaves the "
                "axes pair by pair (Qwen3-VL's)",
                {"expected": "interleaved", "found": "sectioned"},
            )
        )
    # the axes swapped (which coordinate each group of pairs reads)
    for perm in itertools.permutations(range(len(names))):
        if perm != tuple(range(len(names))):
            relabelled = _axes.AxisMap([perm[a] for a in m.axis], m.freq, names)
            if relabelled != m:
                swapped = ", ".join(f"{names[a]}->{names[perm[a]]}" for a in range(len(names)) if perm[a] != a)
                out.append(
                    (
                        "swapped",
                        _with(cfg, relabelled),
                        f"the coordinate axes are swapped ({swapped})",
                        {"swapped": swapped},
                    )
                )
    if len(names) == 2 and n % 2 == 0:
        axial, pixtral = _axes.axial(n, names), _axes.pixtral(n, names)
        if m == axial:
            out.append(
                (
                    "frequencies",
                    _with(cfg, pixtral),
                    "the output splits the frequencies even/odd between the "
                    "axes (Pixtral's 2-D RoPE) where cfg gives both axes the same ones (the axial map)",
                    {},
                )
            )
        elif m == pixtral:
            out.append(
                (
                    "frequencies",
                    _with(cfg, axial),
                    "the output gives both axes the same frequencies (the "
                    "axial map) where cfg splits them even/odd (Pixtral's 2-D RoPE)",
                    {},
                )
            )
    other = "interleaved" if cfg.layout == "half" else "half"
    out.append(
        (
            "layout",
            _with(cfg, layout=other),
            f"the pair layout is swapped: the output pairs features as "
            f"layout={other!r} (with the same axis map), cfg has layout={cfg.layout!r}",
            {"layout": other},
        )
    )
    return [c for c in out if c[1] is not None]


def _safe(build):
    try:
        return build()
    except ValueError:
        return None


def diagnose(case, cfg, *, rtol=None, atol=None):
    """The findings that explain a mismatching multi-axis case (a list, never empty)."""
    judge = _diagnose._Judge(case, cfg, rtol, atol)
    findings, seen = [], {(cfg.axes, cfg.layout)}
    for mistake, cand, message, details in _candidates(cfg):
        if (cand.axes, cand.layout) in seen:  # the same prediction under another name
            continue
        seen.add((cand.axes, cand.layout))
        if judge.explains(cand, predict(case, cand)):
            findings.append(_finding(mistake, message, **details))
    if judge.explains(cfg, predict(case, cfg, inverse=not case.inverse)):
        findings.append(
            Finding(
                "direction",
                "the rotation goes the wrong way: the output matches rotating by minus the angle",
                {"mistake": "inverse"},
            )
        )
    if findings:
        return findings
    return _diagnose._precision(judge, cfg) or [_diagnose._unexplained(judge, cfg)]
