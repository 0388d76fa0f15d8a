"""Numba CPU kernels that rotate feature pairs. Private: they trust their callers completely.

Arrays arrive as 4-D views ``(batch, seq, heads, head_dim)``; ``idx[b or 0, s]`` is the table row of
token ``(b, s)``. float16 arrays (data and tables) arrive as their uint16 bit patterns (Numba has no float16 on the
CPU): ``_widen`` turns them into float32 exactly and ``_narrow`` rounds back to nearest even
(see :mod:`numrope._half`).
"""

import numba
import numpy as np
from numba.core import types
from numba.extending import overload

from numrope._half import f16_bits_to_f32, f32_to_f16_bits
from numrope._parallel import jit_twins
from numrope._sincos import _cos_sin


def _widen(value):
    """A stored element as a number: float16 bit patterns as float32, floats as they are."""


@overload(_widen, inline="always")
def _widen_impl(value):
    if isinstance(value, types.Integer):
        return lambda value: f16_bits_to_f32(value)
    return lambda value: value


def _narrow(value, like):
    """A number as an element like ``like`` (a stored element): float16 bit patterns rounded to nearest even."""


@overload(_narrow, inline="always")
def _narrow_impl(value, like):
    if isinstance(like, types.Integer):
        return lambda value, like: f32_to_f16_bits(value)
    return lambda value, like: value


# Indices are unsigned (uintp) where Numba cannot see they are non-negative: a signed index gets
# a negative-index wraparound select that keeps LLVM from vectorising. The rows are addressed as
# x[b, s, h, i], never through views such as x[b, s, h]: each view costs an atomic reference count
# update, which dominated small calls and contended between threads.
_UP = np.uintp


@numba.njit(inline="always", cache=True)
def _rotate_head(x, out, b, s, h, cos, sin, p, sign, interleaved, copy_tail):
    """Rotate the pairs of head ``h`` of token ``(b, s)`` by table row ``p`` of cos/sin."""
    half = _UP(cos.shape[1])
    like = out[0, 0, 0, 0]  # a scalar of out's element type, for _narrow
    if interleaved:
        for i in range(half):
            c = _widen(cos[p, i])
            sn = sign * _widen(sin[p, i])
            j0 = _UP(2) * i
            j1 = j0 + _UP(1)
            x0 = _widen(x[b, s, h, j0])
            x1 = _widen(x[b, s, h, j1])
            out[b, s, h, j0] = _narrow(x0 * c - x1 * sn, like)
            out[b, s, h, j1] = _narrow(x1 * c + x0 * sn, like)
    else:
        for i in range(half):
            c = _widen(cos[p, i])
            sn = sign * _widen(sin[p, i])
            j = i + half
            x0 = _widen(x[b, s, h, i])
            x1 = _widen(x[b, s, h, j])
            out[b, s, h, i] = _narrow(x0 * c - x1 * sn, like)
            out[b, s, h, j] = _narrow(x1 * c + x0 * sn, like)
    if copy_tail:
        for j in range(_UP(2) * half, _UP(x.shape[3])):
            out[b, s, h, j] = x[b, s, h, j]


@numba.njit(inline="always", cache=True)
def _rotate_token(x, out, b, s, cos, sin, p, sign, interleaved, copy_tail):
    """Rotate every head of token (b, s) by table row ``p`` of cos/sin."""
    for h in range(_UP(x.shape[2])):
        _rotate_head(x, out, b, s, h, cos, sin, p, sign, interleaved, copy_tail)


def _rotate(x, out, cos, sin, idx, sign, interleaved, copy_tail):
    """out = x rotated pair by pair; token (b, s) uses table row ``idx[b or 0, s]``.

    Pairs are (2i, 2i+1) if ``interleaved`` else (i, i + half). For each:
    ``out[j0], out[j1] = x0 c - x1 s, x1 c + x0 s`` with ``s`` times ``sign`` (+1, or -1 to rotate
    backwards), in the wider of the table's and x's dtypes (float16 counting as float32).
    ``copy_tail`` copies the features past the rotary part (False when ``out`` is ``x``).
    """
    n_s = x.shape[1]
    per_row = idx.shape[0] > 1
    for t in numba.prange(x.shape[0] * n_s):
        b = t // n_s
        s = t - b * n_s
        p = idx[b if per_row else 0, s]
        _rotate_token(x, out, b, s, cos, sin, p, sign, interleaved, copy_tail)


def _rotate_at(x, out, positions, inv_freq, scale, proto, sign, interleaved, copy_tail, n_chunks):
    """As ``_rotate``, each token's cos/sin computed on the fly from ``positions[b or 0, s]``.

    One pass over x: the angle arithmetic overlaps the memory traffic instead of preceding it.
    cos/sin are rounded to ``proto``'s dtype, as a table of that dtype would be; ``proto`` has
    shape (1, half), the shape of each chunk's scratch table. Tokens are split into ``n_chunks``
    contiguous chunks.
    """
    n_s = x.shape[1]
    n_tokens = x.shape[0] * n_s
    half = _UP(inv_freq.shape[0])
    per_row = positions.shape[0] > 1
    for chunk in numba.prange(n_chunks):
        cos = np.empty_like(proto)
        sin = np.empty_like(proto)
        start = chunk * n_tokens // n_chunks
        stop = (chunk + 1) * n_tokens // n_chunks
        b = start // n_s
        s = start - b * n_s
        for _ in range(start, stop):
            m = positions[b if per_row else 0, s]
            for i in range(half):
                c, sn = _cos_sin(m, inv_freq[i])
                cos[0, i] = scale * c
                sin[0, i] = scale * sn
            _rotate_token(x, out, b, s, cos, sin, 0, sign, interleaved, copy_tail)
            s += 1
            if s == n_s:
                s = 0
                b += 1


# Every setting is an argument (none a closure constant or global): Numba's disk cache then
# serves each compiled specialisation to later processes.
rotate_parallel, rotate_serial = jit_twins(_rotate)
rotate_at_parallel, rotate_at_serial = jit_twins(_rotate_at)
