"""Comparing arrays larger than memory: :func:`numrope.validation.compare` chunk by chunk, in bounded memory.

:func:`compare` hands its inputs here when they are large (more than :data:`STREAM_ELEMENTS`
elements), memory-mapped (``np.load(path, mmap_mode="r")``, ``np.memmap``) or Dask arrays. The
report is the one the in-memory comparison gives, merged across chunks of tokens:

* counts (elements outside their bound, NaN and infinite outputs) are summed, the largest errors
  are maxima, and the worst element is the first one with the largest ratio to its bound, with its
  index into the whole array;
* the error by position is kept per token (one number per token, not per element) and reduced
  over the distinct positions at the end, as in memory;
* the diagnosis runs on the sample the in-memory comparison draws (:func:`numrope.validation.diagnose.sample`:
  runs of positions across the range, the worst token and head included), read back from the
  inputs after the pass, so it sees the same tokens and heads.

A chunk holds about :data:`CHUNK_ELEMENTS` elements; the comparison's float64 temporaries for it
(the input, the output and numrope's result, errors, bounds and ratios) take about 20 times that
in bytes, whatever the size of the inputs. Pages of memory-mapped inputs that a chunk has read are
handed back to the operating system after it (``madvise(MADV_DONTNEED)`` on read-only and shared
mappings), so the resident memory does not grow with the file either. Per token the pass keeps a
few float64 numbers (positions, the largest error and ratio), ``H * head_dim / 3`` times less than
the inputs.

Dask arrays are read slice by slice (``np.asarray`` of each slice computes only the blocks it
touches: a block larger than a chunk is computed once per chunk it overlaps).
"""

from __future__ import annotations

import dataclasses
import math
import mmap
import sys

import numpy as np

from numrope._checks import check_config, check_positions, check_seq_axis
from numrope._interop import MANTISSA_BITS, as_numpy, precision_name
from numrope.cache import default_seq_len
from numrope.validation import diagnose as _diagnose
from numrope.validation.case import Case, prepare, ulp
from numrope.validation.report import RopeReport, _config_text
from numrope.validation.tolerance import _check_tolerance, default_atol, default_rtol, pair_norms, verdict_ratios

__all__ = ["CHUNK_ELEMENTS", "STREAM_ELEMENTS", "compare_chunked", "wants_streaming"]

#: Inputs with more elements than this are compared chunk by chunk (about 1.6 GB of float64
#: temporaries in memory at once otherwise).
STREAM_ELEMENTS = 1 << 23
#: Elements per chunk: about 20 float64 temporaries of this many elements are alive at once (~80 MB).
CHUNK_ELEMENTS = 1 << 19


def _is_dask(a) -> bool:
    return type(a).__module__.startswith("dask.") and hasattr(a, "chunks") and hasattr(a, "map_blocks")


def _mapping(a):
    """The mmap a NumPy array's memory comes from, if that is safe to hand back (not copy-on-write)."""
    if getattr(a, "mode", "c") not in ("r", "r+", "readonly", "readwrite"):
        return None  # a private (copy-on-write) mapping would lose the caller's changes
    while a is not None:
        if isinstance(a, mmap.mmap):
            return a
        found = getattr(a, "_mmap", None)
        if isinstance(found, mmap.mmap):
            return found
        a = getattr(a, "base", None)
    return None


def wants_streaming(actual, x, cfg) -> bool:
    """Whether :func:`compare` should stream: large, memory-mapped or Dask inputs of a single-axis configuration."""
    if getattr(cfg, "axes", None) is not None:  # coordinate vectors: compared in memory
        return False
    arrays = (actual, x)
    if any(_is_dask(a) for a in arrays):
        return True
    if not all(isinstance(a, np.ndarray) for a in arrays):
        return False
    if any(a.size == 0 for a in arrays):
        return False
    return any(isinstance(a, np.memmap) or _mapping(a) is not None or a.size > STREAM_ELEMENTS for a in arrays)


class _Source:
    """An input read as ``(tokens, heads, head_dim)`` rows, a range or a set of tokens at a time."""

    def __init__(self, a, name):
        if not (isinstance(a, np.ndarray) or _is_dask(a)):
            a = as_numpy(a, name).array  # PyTorch, JAX, lists: in memory already
        dtype = np.dtype(a.dtype)
        self.precision = precision_name(dtype) or ""
        if self.precision not in MANTISSA_BITS:
            raise TypeError(f"{name} must hold floats (bfloat16, float16, float32 or float64), got dtype {dtype}")
        self.a, self.name, self.shape = a, name, tuple(int(n) for n in a.shape)
        self.mapping = _mapping(a) if isinstance(a, np.ndarray) else None

    def layout(self, ax):
        self.ax = ax
        self.lead = self.shape[: ax + 1]  # the axes tokens run over, sequence last (C order)
        self.heads = math.prod(self.shape[ax + 1 : -1])

    def rows(self, t0, t1):
        """Tokens ``t0 .. t1 - 1`` as a NumPy array ``(t1 - t0, heads, head_dim)`` of the input's dtype."""
        seq = self.lead[-1]
        pieces = []
        t = t0
        while t < t1:
            row, s = divmod(t, seq)
            stop = min(t1, (row + 1) * seq)
            index = np.unravel_index(row, self.lead[:-1]) if len(self.lead) > 1 else ()
            piece = np.asarray(self.a[(*(int(i) for i in index), slice(s, s + stop - t))])
            pieces.append(piece.reshape(stop - t, self.heads, self.shape[-1]))
            t = stop
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

    def tokens(self, tokens):
        """The given (sorted) tokens' rows, read run by run of consecutive tokens."""
        if tokens.size == 0:
            return self.rows(0, 0)
        breaks = np.flatnonzero(np.diff(tokens) != 1) + 1
        runs = np.split(tokens, breaks)
        return np.concatenate([self.rows(int(r[0]), int(r[-1]) + 1) for r in runs])

    def release(self):
        """Hand the mapped pages read so far back to the operating system (they stay in its file cache)."""
        if self.mapping is not None and hasattr(mmap, "MADV_DONTNEED"):
            try:
                self.mapping.madvise(mmap.MADV_DONTNEED)
            except (OSError, ValueError):  # closed, or a platform that refuses: only memory is at stake
                self.mapping = None


class _Rows:
    """``(tokens, heads, head_dim)`` float64 rows read on indexing with ``np.ix_`` picks: what the diagnosis
    sample reads of ``actual``, ``x`` and numrope's result."""

    def __init__(self, read, shape):
        self._read, self.shape = read, shape

    def __getitem__(self, pick):
        tokens, heads, features = (np.ravel(p) for p in pick)
        rows = self._read(tokens)
        return rows[np.ix_(np.arange(tokens.size), heads, features)]


class _Maxima:
    """Stands for the ratio array in :func:`numrope.validation.diagnose.sample`: its maxima per token and per head."""

    def __init__(self, by_token, by_head):
        self._by = {(1, 2): by_token, (0, 2): by_head}

    def max(self, axis):
        return self._by[tuple(axis)]


class _Shifted:
    """An array of one chunk indexed by global token numbers (``[t, ...]`` with ``t`` from ``start``)."""

    def __init__(self, a, start):
        self._a, self._start = a, start

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        return self._a[(key[0] - self._start, *key[1:])]


class _Bar:
    """A one-line progress bar on stderr, redrawn in place."""

    def __init__(self, total, enabled):
        self.total, self.done, self.enabled = total, 0, enabled

    def step(self, n):
        self.done += n
        if self.enabled:
            filled = 24 * self.done // max(self.total, 1)
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (24 - filled)}] {self.done:,}/{self.total:,} tokens compared")
            sys.stderr.flush()

    def close(self):
        if self.enabled:
            sys.stderr.write("\r" + " " * 72 + "\r")
            sys.stderr.flush()


@dataclasses.dataclass
class _Totals:
    """What the chunks add up to."""

    n_outside: int = 0
    n_nonfinite: int = 0
    max_abs: float = 0.0
    max_rel: float = 0.0
    max_ulp: float = 0.0
    best: float = -1.0
    worst: dict = dataclasses.field(default_factory=dict)
    atol_matters: bool = False
    strict_outside: bool = False


def compare_chunked(
    actual,
    x,
    cfg,
    positions=None,
    *,
    worst_element,
    by_position,
    seq_axis=-3,
    rtol=None,
    atol=None,
    float32_angles=False,
    inverse=False,
    seq_len=None,
    diagnose=True,
    chunk_elements=None,
    progress=None,
):
    """:func:`numrope.validation.compare`, reading the inputs chunk by chunk: the same report in bounded memory.

    Called by :func:`numrope.validation.compare`, which passes the two pieces of its own report it
    shares with this one (this module does not import it: it imports this one).

    Parameters
    ----------
    actual, x, cfg, positions, seq_axis, rtol, atol, float32_angles, inverse, seq_len, diagnose
        As for :func:`numrope.validation.compare`. ``actual`` and ``x`` may be memory-mapped NumPy
        arrays or Dask arrays, larger than memory; ``positions`` (one per token) is read whole.
    worst_element : callable
        ``worst_element(case, cfg, t, h, j, err, bound, element, norm)``: the report's ``worst`` dict
        for element ``(t, h, j)`` of a ``(tokens, heads, head_dim)`` case.
    by_position : callable
        ``by_position(pos, token_err)``: the distinct positions and the largest error at each.
    chunk_elements : int, optional
        Elements per chunk (default :data:`CHUNK_ELEMENTS`); a chunk holds at least one token.
    progress : bool, optional
        Draw a progress bar on stderr; by default when stderr is a terminal.

    Returns
    -------
    RopeReport
        As :func:`numrope.validation.compare` returns for the same inputs in memory.

    Raises
    ------
    NotImplementedError
        For a multi-axis configuration (``cfg.axes``): compared in memory only.
    TypeError, ValueError
        As :func:`numrope.validation.compare`.

    Examples
    --------
    Memory-mapped inputs are compared chunk by chunk; the report is the in-memory one:

    >>> import os, tempfile, numpy as np, numrope
    >>> from numrope.validation import compare
    >>> cfg = numrope.RopeConfig(head_dim=16)
    >>> x = np.random.default_rng(0).standard_normal((2, 64, 4, 16)).astype(np.float32)
    >>> wrong = numrope.apply_rope(x, cfg, 1)  # positions off by one
    >>> folder = tempfile.mkdtemp()
    >>> np.save(os.path.join(folder, "x.npy"), x), np.save(os.path.join(folder, "wrong.npy"), wrong)
    (None, None)
    >>> mapped = [np.load(os.path.join(folder, f), mmap_mode="r") for f in ("wrong.npy", "x.npy")]
    >>> streamed = compare(*mapped, cfg)
    >>> streamed.ok, [f.kind for f in streamed.diagnosis]
    (False, ['offset'])
    >>> streamed.to_dict() == compare(wrong, x, cfg).to_dict()
    True
    """
    check_config(cfg)
    if cfg.axes is not None:
        raise NotImplementedError("comparing multi-axis (coordinate) RoPE chunk by chunk; compare it in memory")
    rtol = _check_tolerance("rtol", rtol)
    atol = _check_tolerance("atol", atol)
    float32_angles, diagnose, inverse = bool(float32_angles), bool(diagnose), bool(inverse)
    a, xs = _Source(actual, "actual"), _Source(x, "x")
    if a.shape != xs.shape:
        raise ValueError(f"actual and x must have the same shape, got {a.shape} and {xs.shape}")
    if len(xs.shape) < 2 or xs.shape[-1] != cfg.head_dim:
        raise ValueError(f"x's last axis must be head_dim={cfg.head_dim}, got shape {xs.shape}")
    ax = check_seq_axis(seq_axis, len(xs.shape), "x")
    if seq_len is not None and (isinstance(seq_len, bool) or not isinstance(seq_len, (int, np.integer))):
        raise TypeError(f"seq_len must be an int, got {type(seq_len).__name__}")
    if positions is not None and not isinstance(positions, (int, np.integer)):
        positions = as_numpy(positions, "positions").array
    if isinstance(positions, (int, np.integer)) and not isinstance(positions, bool):
        last = int(positions) + xs.shape[ax] - 1
        if not (-(2**63) <= int(positions) and last < 2**63):
            raise ValueError(f"positions {int(positions)} .. {last} do not fit in int64 (-2**63 .. 2**63 - 1)")
    pos = check_positions(positions, xs.shape, ax)
    for s in (a, xs):
        s.layout(ax)
    pos_t = np.broadcast_to(pos, xs.lead).reshape(-1)  # one position per token
    if seq_len is None and cfg.depends_on_seq_len:
        seq_len = default_seq_len(pos)  # over the whole array, as in memory
    n_tokens, heads, head_dim = pos_t.size, xs.heads, cfg.head_dim
    if n_tokens * heads * head_dim == 0:
        raise ValueError(f"nothing to compare: shape {xs.shape} holds no elements; compare it in memory")
    per_chunk = max(1, int(chunk_elements or CHUNK_ELEMENTS) // max(heads * head_dim, 1))
    kw = {"rtol": rtol, "atol": atol}
    rtol_used = default_rtol(a.precision) if rtol is None else rtol
    atol_used = default_atol(a.precision) if atol is None else atol

    token_rel = np.zeros(n_tokens)  # the report's relative error, largest per token
    token_growth = np.zeros(n_tokens)  # the same with 0 where a pair's norm is 0 (the precision note's)
    token_ratio = np.zeros(n_tokens)
    head_ratio = np.zeros(max(heads, 1))
    totals = _Totals()
    bar = _Bar(n_tokens, sys.stderr.isatty() if progress is None else bool(progress))
    try:
        for t0 in range(0, n_tokens, per_chunk):
            t1 = min(n_tokens, t0 + per_chunk)
            case = _chunk_case(a, xs, cfg, pos_t, t0, t1, seq_len, inverse)
            _add_chunk(
                case,
                cfg,
                t0,
                totals,
                token_rel,
                token_growth,
                token_ratio,
                head_ratio,
                xs,
                ax,
                a.precision,
                worst_element,
                float32_angles=float32_angles,
                atol_used=atol_used,
                **kw,
            )
            del case
            for s in (a, xs):
                s.release()
            bar.step(t1 - t0)
    finally:
        bar.close()

    skeleton = _skeleton(a, xs, cfg, pos_t, seq_len, inverse, ax)
    diagnosis, notes, angles = (), [], None
    ok = totals.n_outside == 0
    if ok and float32_angles and totals.strict_outside:
        notes.append(_diagnose.float32_note(skeleton, token_growth[:, None, None], np.ones((n_tokens, 1, 1))))
    elif not ok and diagnose:
        sample = _diagnose.sample(skeleton, _Maxima(token_ratio, head_ratio))
        found, analysis = _diagnose.diagnose_with_angles(sample, cfg, **kw)
        diagnosis, angles = tuple(found), None if analysis is None else analysis.to_dict()
    if float32_angles:
        limit = _diagnose.angle_limit_note(skeleton, cfg)
        if limit is not None:
            notes.append(limit)
    for s in (a, xs):
        s.release()
    positions_seen, by_pos = by_position(pos_t, token_rel)
    return RopeReport(
        ok=ok,
        shape=xs.shape,
        precision=a.precision,
        n_outside=totals.n_outside,
        max_abs_error=totals.max_abs,
        max_rel_error=totals.max_rel,
        max_ulp_error=totals.max_ulp,
        worst=totals.worst,
        positions=positions_seen,
        error_by_position=by_pos,
        tolerance={
            "rtol": float(rtol_used),
            "atol": float(atol_used),
            "float32_angles": float32_angles,
            "atol_matters": atol is not None or totals.atol_matters,
        },
        diagnosis=diagnosis,
        notes=tuple(notes),
        config=_config_text(cfg),
        n_nonfinite=totals.n_nonfinite,
        angles=angles,
    )


def _chunk_case(a, xs, cfg, pos_t, t0, t1, seq_len, inverse):
    """The comparison's case for tokens ``t0 .. t1 - 1``: numrope's float64 result at their positions."""
    rows = xs.rows(t0, t1)
    bad = ~np.isfinite(rows)
    if bad.any():  # located in the whole array (prepare would give the index in the chunk)
        t, h, j = np.unravel_index(int(np.argmax(bad)), bad.shape)
        where = (*np.unravel_index(t0 + int(t), xs.lead), *np.unravel_index(int(h), xs.shape[xs.ax + 1 : -1]), int(j))
        raise ValueError(
            f"x holds NaN or infinite values (the first at index {tuple(int(i) for i in where)}; compared chunk by "
            "chunk, not counted further): RoPE of a non-finite input has no reference to compare with"
        )
    try:
        return prepare(a.rows(t0, t1), rows, cfg, pos_t[t0:t1], seq_axis=0, seq_len=seq_len, inverse=inverse)
    except ValueError as exc:  # say where in the whole array, not in the chunk
        raise ValueError(f"{exc} (in tokens {t0:,} .. {t1 - 1:,} of the sequence-major token order)") from None


def _add_chunk(
    case,
    cfg,
    t0,
    totals,
    token_rel,
    token_growth,
    token_ratio,
    head_ratio,
    xs,
    ax,
    precision,
    worst_element,
    *,
    float32_angles,
    atol_used,
    rtol,
    atol,
):
    """Fold one chunk's errors into the totals and the per-token and per-head maxima."""
    kw = {"rtol": rtol, "atol": atol}
    err, bound, element, norm = verdict_ratios(
        case.actual, case.expected, case.pos, case.theta, cfg, precision, float32_angles=float32_angles, **kw
    )
    ratio = np.maximum(element, norm)
    totals.n_outside += int((ratio > 1).sum())
    totals.n_nonfinite += int((~np.isfinite(case.actual)).sum())
    norms = pair_norms(case.expected, cfg)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rel = np.where(norms > 0, err / norms, np.where(err > 0, np.inf, 0.0))
        growth = np.where(norms > 0, err / norms, 0.0)
    ulps = err / ulp(norms, precision)
    t1 = t0 + case.x.shape[0]
    token_rel[t0:t1] = rel.max(axis=(1, 2))
    token_growth[t0:t1] = growth.max(axis=(1, 2))
    token_ratio[t0:t1] = ratio.max(axis=(1, 2))
    np.maximum(head_ratio, ratio.max(axis=(0, 2)), out=head_ratio)
    totals.max_abs = max(totals.max_abs, float(err.max(initial=0.0)))
    totals.max_rel = max(totals.max_rel, float(rel.max(initial=0.0)))
    totals.max_ulp = max(totals.max_ulp, float(ulps.max(initial=0.0)))
    totals.atol_matters = totals.atol_matters or bool((2 * atol_used >= bound).any())
    if float32_angles and not totals.strict_outside:
        strict = verdict_ratios(
            case.actual, case.expected, case.pos, case.theta, cfg, precision, float32_angles=False, **kw
        )
        totals.strict_outside = bool((np.maximum(strict[2], strict[3]) > 1).any())
    flat = int(np.argmax(ratio))
    if ratio.reshape(-1)[flat] > totals.best:  # strictly: the first of equal ratios, as np.argmax over all
        t, h, j = np.unravel_index(flat, ratio.shape)
        totals.best = float(ratio.reshape(-1)[flat])
        whole = _WholeCase(xs.shape, ax, case, t0)
        shifted = [_Shifted(v, t0) for v in (err, bound, element, norm)]
        totals.worst = worst_element(whole, cfg, t0 + int(t), int(h), int(j), *shifted)


class _WholeCase:
    """What ``_worst`` reads of a case, for one chunk placed in the whole array."""

    def __init__(self, shape, seq_axis, case, t0):
        self.shape, self.seq_axis = shape, seq_axis
        self.pos, self.actual, self.expected = (_Shifted(v, t0) for v in (case.pos, case.actual, case.expected))


def _skeleton(a, xs, cfg, pos_t, seq_len, inverse, ax):
    """The whole comparison as a Case whose arrays are read on demand (for the diagnosis sample and the notes)."""
    from numrope.apply import apply_rope

    shape3 = (pos_t.size, xs.heads, cfg.head_dim)

    def expected(tokens):
        rows = xs.tokens(tokens).astype(np.float64)
        return apply_rope(rows, cfg, pos_t[tokens], seq_axis=0, inverse=inverse, seq_len=seq_len)

    return Case(
        shape=xs.shape,
        seq_axis=ax,
        actual=_Rows(lambda tokens: as_numpy(a.tokens(tokens), "actual").array.astype(np.float64), shape3),
        x=_Rows(lambda tokens: xs.tokens(tokens).astype(np.float64), shape3),
        expected=_Rows(expected, shape3),
        pos=pos_t.astype(np.float64),
        theta=cfg.inv_freq(seq_len),
        precision=a.precision,
        seq_len=seq_len,
        inverse=inverse,
    )
