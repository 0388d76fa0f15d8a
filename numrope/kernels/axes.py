"""Numba CPU kernel of multi-axis RoPE: the per-token cos/sin table. Private: it trusts its callers.

Multi-axis RoPE needs no rotation kernel of its own: each token's pair ``i`` turns by the angle its
coordinate on axis ``axis[i]`` has in a table with one row per coordinate value, so the per-token
table is a gather, ``out[t, i] = table[rows[axis[i], t], i]``, and the rotation kernels of
:mod:`numrope.kernels.cpu` read it through the identity index. The gather copies bits (float16
tables arrive as their uint16 patterns), so the values are those of the table.
"""

import numba
import numpy as np

from numrope.kernels.jit import jit_twins, use_parallel


def _gather(cos, sin, rows, axis, cos_out, sin_out):
    """``cos_out[t, i] = cos[rows[axis[i], t], i]``, and the same for sin; parallel over tokens."""
    n_pairs = axis.shape[0]
    for t in numba.prange(rows.shape[1]):
        for i in range(n_pairs):
            p = rows[axis[i], t]
            cos_out[t, i] = cos[p, i]
            sin_out[t, i] = sin[p, i]


gather_parallel, gather_serial = jit_twins(_gather)


def gather(cos, sin, rows, axis):
    """The per-token tables for checked ``rows`` (n_axes, T) int64 into ``cos``/``sin`` (n_rows, n_pairs)."""
    n_tokens, n_pairs = rows.shape[1], axis.shape[0]
    cos_out = np.empty((n_tokens, n_pairs), cos.dtype)
    sin_out = np.empty_like(cos_out)
    if cos_out.size == 0:
        return cos_out, sin_out
    bits = cos.dtype.char == "e"  # Numba has no float16 on the CPU: copy the bit patterns
    args = (
        np.ascontiguousarray(cos.view(np.uint16) if bits else cos),
        np.ascontiguousarray(sin.view(np.uint16) if bits else sin),
        np.ascontiguousarray(rows, dtype=np.int64),
        np.ascontiguousarray(axis, dtype=np.int64),
        cos_out.view(np.uint16) if bits else cos_out,
        sin_out.view(np.uint16) if bits else sin_out,
    )
    (gather_parallel if use_parallel(cos_out.size) else gather_serial)(*args)
    return cos_out, sin_out
