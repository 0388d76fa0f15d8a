"""Numba CPU kernel of multi-axis RoPE: the per-token cos/sin table. Private: it trusts its callers.

Multi-axis RoPE needs no rotation kernel of its own: each token's pair ``i`` turns by the angle its
coordinate on axis ``axis[i]`` has in a table with one row per coordinate value, so the per-token
table is a gather, ``out[t, i] = table[rows[axis[i], t], i]``, and the rotation kernels of
:mod:`numrope.kernels.cpu` read it through the identity index. The gather copies bits (float16
tables arrive as their uint16 patterns), so the values are those of the table.

Each token's row starts as a whole row of the table, that of its coordinate on the axis with the
most pairs (a contiguous copy LLVM vectorises); the pairs of the other axes are then patched in,
and only where the token's coordinate on that axis differs. A text token, whose coordinates are
all equal, is one row copy. Indices are unsigned so that LLVM drops the negative-index wraparound
(as in :mod:`numrope.kernels.cpu`).
"""

import threading

import numba
import numpy as np

from numrope.kernels.jit import jit_twins, use_parallel

_UP = np.uintp

#: The gather moves a few bytes per element: below this many elements a parallel launch costs more
#: than it saves (measured on two busy cores: 4096 tokens x 64 pairs gather in 0.3 ms serially,
#: and the threads' start and barrier cost more than that).
PARALLEL_MIN_ELEMENTS = 1 << 21


def _gather(cos, sin, rows, base, order, offsets, cos_out, sin_out):
    """``out[t, i] = table[rows[axis[i], t], i]``: the row of axis ``base``, then the other axes' pairs.

    ``order[offsets[a]:offsets[a + 1]]`` are the pairs of axis ``a``.
    """
    n_pairs = _UP(cos.shape[1])
    n_axes = rows.shape[0]
    for t in numba.prange(rows.shape[1]):
        p0 = _UP(rows[base, t])
        for i in range(n_pairs):
            cos_out[t, i] = cos[p0, i]
            sin_out[t, i] = sin[p0, i]
        for a in range(n_axes):
            p = _UP(rows[a, t])
            if a == base or p == p0:
                continue
            for j in range(_UP(offsets[a]), _UP(offsets[a + 1])):
                i = _UP(order[j])
                cos_out[t, i] = cos[p, i]
                sin_out[t, i] = sin[p, i]


gather_parallel, gather_serial = jit_twins(_gather)


def pairs_by_axis(axis, n_axes):
    """``(order, offsets, base)``: the pairs grouped by axis (stable), where each axis' group starts,
    and the axis with the most pairs."""
    axis = np.asarray(axis, dtype=np.int64)
    counts = np.bincount(axis, minlength=n_axes)
    order = np.argsort(axis, kind="stable").astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return order, offsets, int(np.argmax(counts))


#: Per-token tables up to this many bytes each are written into scratch memory kept per thread.
#: A fresh array's first write faults in every page: for 4096 tokens x 64 pairs that took 0.75 ms,
#: seven times the gather itself and a sixth of the rotation that follows.
SCRATCH_MAX_BYTES = 1 << 24

_scratch = threading.local()


def _tables(n_tokens, n_pairs, dtype):
    """Two (n_tokens, n_pairs) arrays of ``dtype``: views of this thread's scratch where they fit.

    Only the call that asks for them may use them: the next call on the same thread overwrites them.
    """
    n = n_tokens * n_pairs
    dtype = np.dtype(dtype)
    if n * dtype.itemsize > SCRATCH_MAX_BYTES:
        return np.empty((n_tokens, n_pairs), dtype), np.empty((n_tokens, n_pairs), dtype)
    held = getattr(_scratch, "tables", {})
    pair = held.get(dtype)
    if pair is None or pair[0].size < n:
        pair = (np.empty(n, dtype), np.empty(n, dtype))
        held[dtype] = pair
        _scratch.tables = held
    return pair[0][:n].reshape(n_tokens, n_pairs), pair[1][:n].reshape(n_tokens, n_pairs)


def gather(cos, sin, rows, axis, *, keep=False):
    """The per-token tables for checked ``rows`` (n_axes, T) int64 into ``cos``/``sin`` (n_rows, n_pairs).

    The tables are this thread's scratch memory (see :data:`SCRATCH_MAX_BYTES`), valid until the
    thread's next call, for the rotation that reads them; ``keep=True`` gives new arrays instead,
    for a caller that reads them later (Dask's lazy chunks).
    """
    n_tokens, n_pairs = rows.shape[1], axis.shape[0]
    if keep:
        cos_out, sin_out = np.empty((n_tokens, n_pairs), cos.dtype), np.empty((n_tokens, n_pairs), cos.dtype)
    else:
        cos_out, sin_out = _tables(n_tokens, n_pairs, cos.dtype)
    if cos_out.size == 0:
        return cos_out, sin_out
    bits = cos.dtype.char == "e"  # Numba has no float16 on the CPU: copy the bit patterns

    def native(a):
        return a.view(np.uint16) if bits else a

    order, offsets, base = pairs_by_axis(axis, rows.shape[0])
    parallel = cos_out.size >= PARALLEL_MIN_ELEMENTS and use_parallel(cos_out.size)
    (gather_parallel if parallel else gather_serial)(
        np.ascontiguousarray(native(cos)),
        np.ascontiguousarray(native(sin)),
        np.ascontiguousarray(rows, dtype=np.int64),
        base,
        order,
        offsets,
        native(cos_out),
        native(sin_out),
    )
    return cos_out, sin_out
