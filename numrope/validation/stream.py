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

import math
import mmap
import sys

import numpy as np

from numrope._checks import check_config, check_positions, check_seq_axis
from numrope._interop import MANTISSA_BITS, as_numpy, precision_name
from numrope.cache import default_seq_len
from numrope.validation.case import Case, prepare
from numrope.validation.tally import Options, Tally

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


def compare_chunked(actual, x, cfg, positions=None, *, options=None, chunk_elements=None, progress=None):
    """:func:`numrope.validation.compare`, reading the inputs chunk by chunk: the same report in bounded memory.

    Called by :func:`numrope.validation.compare` with the options it checked; the report is added
    up as the in-memory one is (:class:`numrope.validation.tally.Tally`), a chunk of tokens at a time.

    Parameters
    ----------
    actual, x, cfg, positions
        As for :func:`numrope.validation.compare`. ``actual`` and ``x`` may be memory-mapped NumPy
        arrays or Dask arrays, larger than memory; ``positions`` (one per token) is read whole.
    options : numrope.validation.tally.Options, optional
        The other keywords of :func:`numrope.validation.compare` (``seq_axis``, ``rtol``, ``atol``,
        ``float32_angles``, ``inverse``, ``seq_len``, ``diagnose``); by default its defaults.
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
    options = Options() if options is None else options
    seq_axis, seq_len, inverse = options.seq_axis, options.seq_len, options.inverse
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
    tally = Tally(cfg, a.precision, pos_t, heads, options)
    bar = _Bar(n_tokens, sys.stderr.isatty() if progress is None else bool(progress))
    try:
        for t0 in range(0, n_tokens, per_chunk):
            t1 = min(n_tokens, t0 + per_chunk)
            tally.add(_chunk_case(a, xs, cfg, pos_t, t0, t1, seq_len, inverse), t0, xs.shape, ax)
            for s in (a, xs):
                s.release()
            bar.step(t1 - t0)
    finally:
        bar.close()
    report = tally.report(_skeleton(a, xs, cfg, pos_t, seq_len, inverse, ax))  # the diagnosis reads a sample
    for s in (a, xs):
        s.release()
    return report


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
