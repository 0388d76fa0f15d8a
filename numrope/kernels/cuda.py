"""numba.cuda kernels for the cos/sin table and the rotation. Private: they trust their callers completely.

Imported by :mod:`numrope.cuda` on first use only, so that ``import numrope`` needs no CUDA. No
kernel has an eager signature (one would need a driver at import time); each compiles on its first
launch for the argument types it gets.

Work layout. The rotation kernels see 4-D views ``(batch, seq, heads, head_dim)`` and run blocks of
``(tx, ty, tz)`` threads: ``x`` runs over rotating pairs, ``y`` over heads and ``z`` over tokens,
and block ``k`` holds tokens ``k * tz .. k * tz + tz - 1``. Neighbouring threads of a warp touch
neighbouring features of one head, so loads and stores are coalesced. Each thread loads the cos and
sin of its pair once per token and uses them for every head it rotates (queries and keys alike in
the q/k kernel). The one integer division, token -> (batch, seq), is done once per thread, outside
the loops. float16 and bfloat16 values are widened to float32 for the arithmetic; bfloat16 arrays
arrive as their uint16 bit patterns.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
from numba import cuda

from numrope.kernels import sincos
from numrope.kernels.half import bf16_bits_to_f32, f32_to_bf16_bits, f64_to_bf16_bits
from numrope.kernels.sincos import _cos_sin_any

SIMULATED = bool(cuda.config.ENABLE_CUDASIM)

if not SIMULATED:  # the simulator runs the CPU compilation of _cos_sin_any, primitives included
    from numba.cuda.extending import overload

    @overload(sincos._exact_prod, target="cuda", inline="always")
    def _exact_prod_cuda(a, b):
        # NVVM contracts a * b + c into an FMA by default, which breaks Dekker's splitting; an
        # explicit FMA gives the exact low part in one instruction.
        def impl(a, b):
            p = a * b
            return p, cuda.fma(a, b, -p)

        return impl

    @overload(sincos._mul_add, target="cuda", inline="always")
    def _mul_add_cuda(a, b, c):
        return lambda a, b, c: cuda.fma(a, b, c)

    @overload(sincos._round_half_even, target="cuda", inline="always")
    def _round_half_even_cuda(x):
        return lambda x: float(round(x))  # Python's round: half to even, as np.rint


@numba.njit(inline="always")
def _half_pair(i, half, backward):
    return i, i + half, i, i + half


@numba.njit(inline="always")
def _interleaved_pair(i, half, backward):
    return 2 * i, 2 * i + 1, 2 * i, 2 * i + 1


@numba.njit(inline="always")
def _interleaved_in_half_out_pair(i, half, backward):
    # read (2i, 2i + 1), write (i, i + half); the inverse and the transpose the other way round
    if backward:
        return i, i + half, 2 * i, 2 * i + 1
    return 2 * i, 2 * i + 1, i, i + half


#: Per layout: pair ``i`` -> the features it is read from (j0, j1) and written to (k0, k1).
_PAIRS = {
    "half": _half_pair,
    "interleaved": _interleaved_pair,
    "interleaved_in_half_out": _interleaved_in_half_out_pair,
}


@numba.njit(inline="always")
def _same(value):
    return value


@cuda.jit
def table(positions, start, inv_freq, scale, cos, sin):
    """cos[n, i], sin[n, i] = scale * cos/sin(m_n * inv_freq[i]) with m_n = positions[n], or start + n
    where ``positions`` is empty. Blocks of (tx, ty): x over pairs, y over rows. Each entry takes the
    near or the far path of the exact cos/sin by its own angle (a branch, where the CPU kernels have
    two compilations: a warp diverges only where its angles straddle 2**32)."""
    n = cuda.blockIdx.x * cuda.blockDim.y + cuda.threadIdx.y
    if n >= cos.shape[0]:
        return
    if positions.shape[0] > 0:
        m = positions[n]
    else:
        m = np.float64(start + n)
    i = cuda.threadIdx.x
    while i < inv_freq.shape[0]:
        c, s = _cos_sin_any(m, inv_freq[i])
        cos[n, i] = scale * c
        sin[n, i] = scale * s
        i += cuda.blockDim.x


_LOADS = {"float": None, "bf16": bf16_bits_to_f32}
_STORES = {"float": _same, "bf16": f32_to_bf16_bits}


@functools.cache
def _heads(layout, io, wide, offset=0):
    """Device functions that rotate pair ``i`` of one token in every head ``h0, h0 + dh, ...``, and copy
    the features outside the rotary part (``offset .. offset + 2 half - 1``)."""
    pair = _PAIRS[layout]
    load = _LOADS[io] or wide
    store = _STORES[io]

    @cuda.jit(device=True)
    def rotate_heads(x, out, b, s, i, half, c, sn, h0, dh, backward):
        j0, j1, k0, k1 = pair(i, half, backward)
        h = h0
        while h < x.shape[2]:
            x0 = load(x[b, s, h, offset + j0])
            x1 = load(x[b, s, h, offset + j1])
            out[b, s, h, offset + k0] = store(x0 * c - x1 * sn)
            out[b, s, h, offset + k1] = store(x1 * c + x0 * sn)
            h += dh

    @cuda.jit(device=True)
    def copy_tail(x, out, b, s, j0, dj, h0, dh, half):
        # the n-th feature outside the rotary part: n before it, n + 2 half from it on
        j = j0
        while j < x.shape[3] - 2 * half:
            f = j if j < offset else j + 2 * half
            h = h0
            while h < x.shape[2]:
                out[b, s, h, f] = x[b, s, h, f]
                h += dh
            j += dj

    return rotate_heads, copy_tail


@cuda.jit(device=True)
def _token(n_b, n_s, idx, offset, row_stride):
    """(b, s, table row) of this thread's token; b == n_b past the last token."""
    t = cuda.blockIdx.x * cuda.blockDim.z + cuda.threadIdx.z
    b = t // n_s
    s = t - b * n_s
    if b >= n_b:
        return n_b, s, offset
    if idx.shape[1] == 0:
        return b, s, offset + b * row_stride + s
    if idx.shape[0] > 1:
        return b, s, idx[b, s]
    return b, s, idx[0, s]


@functools.cache
def rotate(layout, io_q, io_k, wide, offset=0):
    """The kernel rotating queries and keys of the same tokens in one launch, or one array alone:
    ``k`` with no heads (a view of ``q`` with none) makes its loops empty.

    Arguments: ``q, q_out, k, k_out`` 4-D; ``cos, sin`` (rows, pairs); token ``(b, s)`` reads row
    ``idx[b or 0, s]``, or ``offset + b * row_stride + s`` where ``idx`` has no columns; ``inverse``
    negates sin; ``tail_q``/``tail_k`` copy the features past the rotary part. ``wide`` is the
    arithmetic's type (np.float32 or np.float64). ``layout`` and ``offset`` are those of the RopeConfig;
    for ``"interleaved_in_half_out"`` the outputs must not be the inputs (the pairs move between features).
    """
    rotate_q, copy_q = _heads(layout, io_q, wide, offset)
    rotate_k, copy_k = _heads(layout, io_k, wide, offset)

    @cuda.jit
    def kernel(q, q_out, k, k_out, cos, sin, idx, offset, row_stride, inverse, tail_q, tail_k):
        n_b, n_s = q.shape[0], q.shape[1]
        b, s, p = _token(n_b, n_s, idx, offset, row_stride)
        if b >= n_b:
            return
        half = cos.shape[1]
        tx, dx = cuda.threadIdx.x, cuda.blockDim.x
        ty, dy = cuda.threadIdx.y, cuda.blockDim.y
        i = tx
        while i < half:
            c = wide(cos[p, i])
            sn = -wide(sin[p, i]) if inverse else wide(sin[p, i])
            rotate_q(q, q_out, b, s, i, half, c, sn, ty, dy, inverse)
            rotate_k(k, k_out, b, s, i, half, c, sn, ty, dy, inverse)
            i += dx
        if tail_q:
            copy_q(q, q_out, b, s, tx, dx, ty, dy, half)
        if tail_k:
            copy_k(k, k_out, b, s, tx, dx, ty, dy, half)

    return kernel


@cuda.jit
def gather_axes_kernel(cos, sin, rows, axis, cos_out, sin_out):
    """cos_out[n, i] = cos[rows[axis[i], n], i], the same for sin: multi-axis RoPE's per-token table
    (:mod:`numrope._axes`), a copy of the values. Blocks of (tx, ty): x over pairs, y over tokens."""
    n = cuda.blockIdx.x * cuda.blockDim.y + cuda.threadIdx.y
    if n >= cos_out.shape[0]:
        return
    i = cuda.threadIdx.x
    while i < cos_out.shape[1]:
        p = rows[axis[i], n]
        cos_out[n, i] = cos[p, i]
        sin_out[n, i] = sin[p, i]
        i += cuda.blockDim.x


def gather_axes(cos, sin, rows, axis, threads_per_block):
    """Device per-token tables from device ``cos``/``sin`` (n_rows, n_pairs) at checked host ``rows`` (n_axes, T)."""
    n_tokens, n_pairs = rows.shape[1], axis.shape[0]
    cos_out = cuda.device_array((n_tokens, n_pairs), cos.dtype)
    sin_out = cuda.device_array((n_tokens, n_pairs), cos.dtype)
    if n_tokens and n_pairs:
        tx, _, per_block = block_shape(n_pairs, 1, threads_per_block)
        gather_axes_kernel[(n_tokens + per_block - 1) // per_block, (tx, per_block)](
            cos,
            sin,
            cuda.to_device(np.ascontiguousarray(rows, dtype=np.int64)),
            cuda.to_device(np.ascontiguousarray(axis, dtype=np.int64)),
            cos_out,
            sin_out,
        )
    return cos_out, sin_out


def _pow2_at_most(n):
    return 1 << (max(int(n), 1).bit_length() - 1)


def _pow2_at_least(n):
    return 1 << (max(int(n), 1) - 1).bit_length()


def block_shape(n_pairs, n_heads, threads_per_block):
    """(tx, ty, tz) threads: pairs, heads, tokens; a product of powers of two within the budget."""
    budget = _pow2_at_most(threads_per_block)
    tx = min(_pow2_at_least(n_pairs), budget)
    ty = min(_pow2_at_least(n_heads), budget // tx)
    return tx, ty, budget // (tx * ty)


@cuda.jit
def round_to_bf16(src, dst):
    """dst[n] = the bfloat16 bit pattern (uint16) nearest to float64 src[n], rounded once; 1-D arrays."""
    n = cuda.grid(1)
    if n < src.shape[0]:
        dst[n] = f64_to_bf16_bits(src[n])


@cuda.jit
def widen_bf16(src, dst):
    """dst[n] = the float32 value of bfloat16 bit pattern src[n] (exact); 1-D arrays."""
    n = cuda.grid(1)
    if n < src.shape[0]:
        dst[n] = bf16_bits_to_f32(src[n])
