"""The measurement: where each framework's RoPE is run, on what, and how each row's verdict is reached.

For every model the framework is run on *segments*: sequences whose context is 4k, 32k, 128k and
1M positions (those shorter than the model's context) and the model's whole context, each with
positions on a geometric grid from 0 to the end of its context (so a variant that depends on
the sequence length, LongRoPE's short and long factors, sees each length), and one decoding step:
a single token at the last position, through the framework's decoding path where it has one.
Queries and keys are seeded random normal values rounded to the precision the framework computes
in; every framework sees the same values. Each output is judged by :func:`numrope.validation.compare_qk`
against numrope's float64 result, with float32 angles allowed (the tolerance of
:func:`numrope.validation.error_bound`).
"""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np

from numrope.conformance.adapters._base import Unsupported
from numrope.conformance.catalogue import NAMED_CONTEXTS

#: Contexts below the model's own at which a prefill segment is run.
CONTEXTS = (4096, 32768, 131072, 1048576)
#: Query and key heads per token (grouped-query attention: fewer key heads).
Q_HEADS, K_HEADS = 2, 1


@dataclasses.dataclass(frozen=True)
class Segment:
    """One call of the framework: its positions, and the decoding offset for a decoding step."""

    label: str
    length: int  # the context: positions are below it
    positions: np.ndarray
    offset: int | None = None

    @property
    def max_position(self) -> int:
        return int(self.positions.max())


def grid(length: int, n: int) -> np.ndarray:
    """``n`` distinct positions below ``length`` (all of them if fewer): 0 to 3, a geometric grid, the last two.

    Every segment of a run has the same number of tokens, so that a framework that compiles per
    shape (JAX) compiles once per model and precision.

    Examples
    --------
    >>> from numrope.conformance.measure import grid
    >>> grid(4096, 12).tolist()
    [0, 1, 2, 3, 4, 14, 50, 329, 1161, 4093, 4094, 4095]
    >>> grid(4096, 12).size, grid(5, 12).tolist()
    (12, [0, 1, 2, 3, 4])
    """
    if length <= n:
        return np.arange(length, dtype=np.int64)
    ends = np.asarray([0, 1, 2, 3, length - 2, length - 1], dtype=np.int64)
    want, m = n - ends.size, n
    while True:
        inner = np.unique(np.round(np.geomspace(4, length - 3, m)).astype(np.int64))
        if inner.size >= want:
            break
        m *= 2
    inner = inner[np.round(np.linspace(0, inner.size - 1, want)).astype(np.int64)]
    return np.union1d(ends, inner)


def segments(context: int, quick: bool = False) -> list[Segment]:
    """The prefill segments and the decoding step for a model whose context is ``context`` positions."""
    n = 12 if quick else 40
    lengths = [c for c in ((4096,) if quick else CONTEXTS) if c < context] + [context]
    out = [Segment(_label(c), c, grid(c, n)) for c in lengths]
    out.append(Segment("decode", context, np.array([context - 1], dtype=np.int64), offset=context - 1))
    return out


def _label(length: int) -> str:
    for name, value in NAMED_CONTEXTS.items():
        if value == length:
            return name
    return f"{length}"


def inputs(seed: int, model_name: str, segment_index: int, seq: int, head_dim: int, dtype: str):
    """Seeded queries ``(1, seq, 2, head_dim)`` and keys ``(1, seq, 1, head_dim)``, rounded to ``dtype``."""
    from numrope.validation.emulate import round_to

    rng = np.random.default_rng([seed, zlib.crc32(model_name.encode()), segment_index])
    q = rng.standard_normal((1, seq, Q_HEADS, head_dim))
    k = rng.standard_normal((1, seq, K_HEADS, head_dim))
    return round_to(q, dtype), round_to(k, dtype)


def judged(out: np.ndarray, dtype: str):
    """The framework's output as an array whose dtype sets the tolerance, and the precision it is judged in.

    A framework that returns float32 for low-precision inputs is judged as float32 (its values then
    need not be exact in ``dtype``).
    """
    from numrope.validation.emulate import round_to

    out = np.asarray(out, dtype=np.float32)
    if dtype == "float32" or not np.array_equal(round_to(out, dtype), out, equal_nan=True):
        return out, "float32"
    if dtype == "float16":
        return out.astype(np.float16), dtype
    try:
        import ml_dtypes
    except ImportError:
        try:
            import torch
        except ImportError:
            raise Unsupported("judging bfloat16 output needs ml_dtypes (pip install ml-dtypes)") from None
        return torch.from_numpy(out).to(torch.bfloat16), dtype
    return out.astype(ml_dtypes.bfloat16), dtype


def _position_bins(report, bins):
    """Largest relative error per power-of-two position bin: {bin upper edge: error}."""
    for positions, errors in (
        (report.q.positions, report.q.error_by_position),
        (report.k.positions, report.k.error_by_position),
    ):
        edges = np.maximum(1, 2 ** np.ceil(np.log2(np.maximum(positions, 1) + 1))).astype(np.int64)
        for edge, err in zip(edges.tolist(), errors.tolist(), strict=True):
            bins[edge] = max(bins.get(edge, 0.0), float(err))


def measure(adapter, state, model, cfg, dtype, segs, seed):
    """Run one framework on one model in one precision; returns the row (a dict, see :func:`run`)."""
    from numrope.validation import compare_qk

    worst, kinds, messages, bins, at, remarks = 0.0, [], [], {}, {}, set()
    measured, skipped, ok, judged_as, decode_error = [], [], True, set(), None
    for index, seg in enumerate(segs):
        if adapter.max_position is not None and seg.max_position > adapter.max_position:
            skipped.append(seg.label)
            continue
        q, k = inputs(seed, model.name, index, seg.positions.size, cfg.head_dim, dtype)
        try:
            aq, ak = adapter.rotate(state, q, k, seg.positions, dtype, seg.offset)
        except Unsupported:
            raise
        except (Exception, SystemExit) as exc:  # the framework's own code failed (or exited) on this input
            ok = False
            kinds.append("error")
            messages.append(f"{seg.label}: {type(exc).__name__}: {_one_line(exc)}")
            measured.append(seg.max_position)
            continue
        (jq, precision), (jk, _) = judged(aq, dtype), judged(ak, dtype)
        judged_as.add(precision)
        report = compare_qk(jq, jk, q, k, cfg, seg.positions, float32_angles=True)
        rel = max(report.q.max_rel_error, report.k.max_rel_error)
        worst = max(worst, rel)
        measured.append(seg.max_position)
        _position_bins(report, bins)
        if seg.offset is not None:
            decode_error = rel
        elif seg.label in NAMED_CONTEXTS:
            at[seg.label] = rel
        remarks.update(f.kind for r in (report.q, report.k) for f in r.notes)
        if not report.ok:
            ok = False
            for finding in report.diagnosis:
                kinds.append(finding.kind)
                messages.append(f"{seg.label}: {finding.message}")
    if not measured:
        raise Unsupported(f"{adapter.label} holds positions up to {adapter.max_position:,} only")
    return {
        "max_position": int(max(measured)),
        "max_rel_error": float(worst),
        "ok": bool(ok),
        "diagnosis": sorted(set(kinds)),
        "messages": _unique(messages),
        "error_at": {name: at.get(name) for name in NAMED_CONTEXTS},
        "decode_rel_error": decode_error,
        "remarks": sorted(remarks),
        "judged_as": sorted(judged_as),
        "segments_skipped": skipped,
        "error_by_position": [[edge, bins[edge]] for edge in sorted(bins)],
    }


def _unique(items):
    seen = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen[:4]


def _one_line(exc) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else ""
