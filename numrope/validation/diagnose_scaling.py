"""The mistakes of long-context scaling: a variant forgotten, another variant used, a parameter off.

Each candidate is a configuration with another ``scaling``: none (the output matches the
unscaled configuration), another variant with the same factor (linear where dynamic NTK was
meant, and the reverse), or the same variant with one parameter changed (YaRN's factor or
original context, its ``beta_fast``/``beta_slow``, Llama 3's factor, ``low_freq_factor``,
``high_freq_factor`` or original context, LongRoPE's short factors where the long ones were
meant), and for the variants that depend on the sequence length, another length. There are
hundreds; they are ranked by how many pairs' frequencies, as recovered from the angles each pair
received (:mod:`numrope.validation.angles`), they fail to match, and only the few closest are
predicted and judged.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from numrope.cache import default_seq_len
from numrope.validation.angles import fit_frequencies, frequency_tolerance
from numrope.validation.hypotheses import _gain_ratio
from numrope.validation.mistakes import replace
from numrope.variants import NTK, DynamicNTK, Linear, Llama3, LongRoPE, YaRN

NAMES = {
    "linear": "linear",
    "ntk": "NTK",
    "dynamic": "dynamic NTK",
    "yarn": "YaRN",
    "longrope": "LongRoPE",
    "llama3": "Llama 3",
}
CONTEXTS = (2048, 4096, 8192, 16384, 32768, 65536, 131072)
MAX_JUDGED = 4


def _name(s):
    return "no" if s is None else NAMES.get(s.rope_type, s.rope_type)


def _describe(s):
    if s is None:
        return "no scaling"
    keys = [f.name for f in dataclasses.fields(s) if f.name not in ("short_factor", "long_factor")]
    values = [(k, getattr(s, k)) for k in keys]
    shown = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in values if v is not None)
    return f"{_name(s)}({shown})"


def _variant(cls, **kw):
    try:
        return cls(**kw)
    except (TypeError, ValueError):
        return None


def _original(s):
    for key in ("original_max_position_embeddings", "max_position_embeddings"):
        value = getattr(s, key, None)
        if value:
            return int(value)
    return None


def _contexts(length):
    out = list(CONTEXTS)
    if length:
        out += [length // 4, length // 2, length * 2, length * 4]
    return [n for n in dict.fromkeys(out) if n and n > 0]


def _factors(f, estimated):
    out = [f / 2, f * 2, f / 4, f * 4, f / 8, f * 8] if f else []
    out += [float(f"{e:.3g}") for e in estimated if e and math.isfinite(e) and e > 1]
    return [v for v in dict.fromkeys(out) if v > 0 and v != f]


def _changed(s, **changes):
    try:
        return dataclasses.replace(s, **changes)
    except (TypeError, ValueError):
        return None


def candidates(cfg, estimated=()):
    """``(scaling, mistake, what)`` for every alternative to ``cfg.scaling``; ``what`` names a changed parameter."""
    s = cfg.scaling
    out = []
    if s is not None:
        out.append((None, "missing", None))
    f = getattr(s, "factor", None)
    L0 = _original(s) if s is not None else None
    # another variant with the same factor
    for f_used in [f] if f else [e for e in estimated if e and math.isfinite(e) and e > 1][:2]:
        for L in [L0] if L0 else list(CONTEXTS):
            others = [
                _variant(Linear, factor=f_used),
                _variant(NTK, factor=f_used),
                _variant(DynamicNTK, factor=f_used, max_position_embeddings=L),
                _variant(YaRN, factor=f_used, original_max_position_embeddings=L),
                _variant(
                    Llama3, factor=f_used, low_freq_factor=1.0, high_freq_factor=4.0, original_max_position_embeddings=L
                ),
            ]
            for o in others:
                if s is None and isinstance(o, (NTK, DynamicNTK)):
                    continue  # a base of its own: the base hypothesis names it
                if o is not None and (s is None or type(o) is not type(s)):
                    out.append((o, "variant", None))
    if s is None:
        return out
    # the same variant, one parameter changed
    if f and not isinstance(s, LongRoPE):
        out += [(_changed(s, factor=v), "parameter", "factor") for v in _factors(f, estimated)]
    for key in ("original_max_position_embeddings", "max_position_embeddings"):
        value = getattr(s, key, None)
        if value:
            out += [(_changed(s, **{key: n}), "parameter", key) for n in _contexts(int(value)) if n != value]
    if isinstance(s, YaRN):
        for fast, slow in ((32.0, 1.0), (16.0, 1.0), (64.0, 1.0), (32.0, 2.0), (8.0, 1.0), (32.0, 0.5)):
            if (fast, slow) != (s.beta_fast, s.beta_slow):
                out.append((_changed(s, beta_fast=fast, beta_slow=slow), "parameter", "beta_fast/beta_slow"))
        out.append((_changed(s, truncate=not s.truncate), "parameter", "truncate"))
    if isinstance(s, Llama3):
        for low, high in ((1.0, 4.0), (1.0, 2.0), (2.0, 4.0), (1.0, 8.0), (2.0, 8.0), (0.5, 4.0), (1.0, 16.0)):
            if (low, high) != (s.low_freq_factor, s.high_freq_factor):
                out.append(
                    (
                        _changed(s, low_freq_factor=low, high_freq_factor=high),
                        "parameter",
                        "low_freq_factor/high_freq_factor",
                    )
                )
    if isinstance(s, LongRoPE) and s.short_factor != s.long_factor:
        out.append((_changed(s, long_factor=s.short_factor), "parameter", "short_factor for long_factor"))
        out.append((_changed(s, short_factor=s.long_factor), "parameter", "long_factor for short_factor"))
    return [(c, mistake, what) for c, mistake, what in out if c is not None or mistake == "missing"]


def _message(cfg, used, mistake, what, length=None):
    s = cfg.scaling
    if mistake == "missing":
        return (
            f"the {_name(s)} scaling is missing: the output matches the unscaled frequencies (rope_scaling / "
            f"rope_parameters not read or not applied), but cfg has {_describe(s)}"
        )
    if mistake == "variant":
        where = f"where cfg has {_describe(s)}" if s is not None else "where cfg has none"
        return f"the scaling variant is wrong: the output matches {_describe(used)} {where}"
    if mistake == "seq_len":
        return (
            f"the {_name(s)} frequencies were evaluated for a sequence length of {length:,}, not the "
            f"{what:,} compared here: frameworks choose it differently (the longest position seen, the "
            "maximum model length, a cache size); pass seq_len to match"
        )
    shown = {
        "factor": ("factor", s, used),
        "beta_fast/beta_slow": ("beta_fast/beta_slow", s, used),
    }.get(what)
    if what in ("short_factor for long_factor", "long_factor for short_factor"):
        picked = "short" if what.startswith("short") else "long"
        return (
            f"LongRoPE's {picked} factors are used where the {'long' if picked == 'short' else 'short'} ones are "
            "meant: the sequence length that picks them (original_max_position_embeddings) is compared with "
            "another length than numrope's"
        )
    if shown is not None and what == "factor":
        return f"the {_name(s)} scaling's factor is {used.factor:g}, but cfg has factor={s.factor:g}"
    keys = [k.strip() for k in what.split("/")]
    was = ", ".join(f"{k}={getattr(s, k)}" for k in keys)
    now = ", ".join(f"{k}={getattr(used, k)}" for k in keys)
    return f"the {_name(s)} scaling's parameters are off: the output matches {now}, but cfg has {was}"


def _dynamic_lengths(cfg, theta_fit, length):
    """Sequence lengths a dynamic variant may have been evaluated at: from the last pair's frequency, and more."""
    s = cfg.scaling
    out = []
    if isinstance(s, DynamicNTK):
        L0, a = s.max_position_embeddings, s.factor
        unscaled = dataclasses.replace(cfg, scaling=None).inv_freq()
        k = unscaled[-1] / theta_fit[-1] if theta_fit[-1] > 0 else math.nan
        if math.isfinite(k) and k > 1:
            out.append(round((k + a - 1) * L0 / a))
        out += [L0, int(L0 * a), 2 * L0, 4 * L0]
    elif isinstance(s, LongRoPE):
        L0 = s.original_max_position_embeddings
        out += [L0, L0 + 1, s.max_position_embeddings or 0]
    return [n for n in dict.fromkeys(out) if n and n > 0 and n != length]


def scaling(judge, m):
    """The scaling candidates closest to the frequencies the pairs received, as mistakes to judge."""
    case, cfg = judge.case, m.cfg
    length = m.length(case)
    own = length if length is not None else default_seq_len(case.pos)  # as numrope picks it for a variant that needs it
    theta_now = m.frequencies(case)
    fit = fit_frequencies(judge.received(m), theta_now)
    known = np.isfinite(fit.theta) & fit.resolved(theta_now)
    if known.sum() < 2:
        return
    tol = frequency_tolerance(fit, theta_now)

    def misses(theta):
        return int((known & (np.abs(theta - fit.theta) > np.maximum(tol, frequency_tolerance(fit, theta)))).sum())

    now = misses(theta_now)
    gain = _gain_ratio(case, cfg) / m.scale  # the attention factor received (its inverse for an inverse rotation)
    if case.inverse and not m.flip and gain > 0:
        gain = 1.0 / gain

    def off_gain(c):  # of candidates that match as many pairs, the one whose attention factor is received first
        a = c.attention_scaling
        return abs(math.log(a / gain)) if gain > 0 and math.isfinite(gain) else 0.0

    if now == 0:
        return
    unscaled = dataclasses.replace(cfg, scaling=None).inv_freq()
    ratio = fit.theta[known] / unscaled[known]
    estimated = (1 / ratio.min(), 1 / np.median(ratio)) if (ratio > 0).all() else ()
    ranked = []
    for s, mistake, what in candidates(cfg, estimated):
        cand = replace(cfg, scaling=s)
        if cand is None:
            continue
        try:
            theta = cand.inv_freq(own if cand.depends_on_seq_len else None)
        except (ValueError, ArithmeticError):
            continue
        if theta.shape == theta_now.shape and np.isfinite(theta).all():
            miss = misses(theta)
            if miss < now:
                ranked.append((miss, off_gain(cand), len(ranked), cand, mistake, what, None))
    if cfg.depends_on_seq_len:
        for n in _dynamic_lengths(cfg, fit.theta, length):
            theta = cfg.inv_freq(n)
            miss = misses(theta)
            if miss < now:
                ranked.append((miss, off_gain(cfg), len(ranked), cfg, "seq_len", length, n))
    ranked.sort(key=lambda r: r[:3])
    for _, _, _, cand, mistake, what, n in ranked[:MAX_JUDGED]:
        used = cand.scaling
        message = _message(judge.cfg if mistake != "seq_len" else cfg, used, mistake, what, n)
        details = {"mistake": mistake, "scaling": _describe(used)}
        if what and mistake == "parameter":
            details["parameter"] = what
        changes = {"cfg": cand}
        if cand.depends_on_seq_len and length is None:
            changes["seq_len"] = own
        if mistake == "seq_len":
            details = {"mistake": "seq_len", "seq_len": n, "compared_seq_len": length}
            changes = {"seq_len": n}
        yield m.with_("scaling", message, details, **changes)
