"""Numba CPU kernels that rotate feature pairs. Private: they trust their callers completely.

Arrays arrive as 4-D views ``(batch, seq, heads, head_dim)``; ``idx[b or 0, s]`` is the table row of
token ``(b, s)``. float16 arrays arrive as their uint16 bit patterns (Numba has no float16 on the
CPU): ``_widen`` turns them into float32 exactly through a lookup table and ``_narrow`` rounds back
to nearest even.
"""

import numba
import numpy as np
from numba.core import types
from numba.extending import overload

from numrope._parallel import jit_twins
from numrope._sincos import _cos_sin

F16_TO_F32 = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32)


@numba.njit(inline="always", cache=True)
def _f32_to_f16_bits(value):
    """IEEE binary16 bit pattern nearest to a float32 (ties to even; overflow to infinity)."""
    bits = np.uint32(np.float32(value).view(np.uint32))
    sign = np.uint16((bits >> np.uint32(16)) & np.uint32(0x8000))
    bits &= np.uint32(0x7FFFFFFF)
    if bits >= 0x7F800000:  # inf, or NaN kept quiet
        return sign | np.uint16(0x7E00 if bits > 0x7F800000 else 0x7C00)
    if bits >= 0x477FF000:  # >= 65520 rounds to infinity
        return sign | np.uint16(0x7C00)
    if bits < 0x33000000:  # <= 2**-25 rounds to zero
        return sign
    if bits < 0x38800000:  # float16 subnormal: count units of 2**-24
        shift = np.uint32(126) - (bits >> np.uint32(23))
        mant = (bits & np.uint32(0x7FFFFF)) | np.uint32(0x800000)
        r = mant >> shift
        rem = mant & ((np.uint32(1) << shift) - np.uint32(1))
        halfway = np.uint32(1) << (shift - np.uint32(1))
        if rem > halfway or (rem == halfway and (r & np.uint32(1))):
            r += np.uint32(1)
        return sign | np.uint16(r)
    r = (bits - np.uint32(0x38000000)) >> np.uint32(13)  # rebias exponent 127 -> 15
    rem = bits & np.uint32(0x1FFF)
    if rem > 0x1000 or (rem == 0x1000 and (r & np.uint32(1))):
        r += np.uint32(1)  # a carry into the exponent is the correct rounding
    return sign | np.uint16(r)


def _widen(value, lut):
    """A stored element as a number: float16 bit patterns through the lookup table, floats as they are."""


@overload(_widen, inline="always")
def _widen_impl(value, lut):
    if isinstance(value, types.Integer):
        return lambda value, lut: lut[value]
    return lambda value, lut: value


def _narrow(value, like):
    """A number as an element like ``like`` (a stored element): float16 bit patterns rounded to nearest even."""


@overload(_narrow)
def _narrow_impl(value, like):
    if isinstance(like, types.Integer):
        return lambda value, like: _f32_to_f16_bits(value)
    return lambda value, like: value


@numba.njit(inline="always", cache=True)
def _rotate_row(xr, orow, cos, sin, sign, interleaved, lut):
    """Rotate the pairs of one head's features ``xr`` into ``orow``.

    Two loops rather than one with a selected index, and the half layout's halves as separate
    views: LLVM vectorises the loop only when each array is indexed by ``i`` alone (with
    ``xr[i + half]`` it cannot prove the halves' loads and stores independent).
    """
    half = cos.shape[0]
    like = orow[0]  # a scalar, not the array: no reference counting per element
    if interleaved:
        for i in range(half):
            c = cos[i]
            sn = sign * sin[i]
            x0 = _widen(xr[2 * i], lut)
            x1 = _widen(xr[2 * i + 1], lut)
            orow[2 * i] = _narrow(x0 * c - x1 * sn, like)
            orow[2 * i + 1] = _narrow(x1 * c + x0 * sn, like)
    else:
        x_lo, x_hi = xr[:half], xr[half : 2 * half]
        o_lo, o_hi = orow[:half], orow[half : 2 * half]
        for i in range(half):
            c = cos[i]
            sn = sign * sin[i]
            x0 = _widen(x_lo[i], lut)
            x1 = _widen(x_hi[i], lut)
            o_lo[i] = _narrow(x0 * c - x1 * sn, like)
            o_hi[i] = _narrow(x1 * c + x0 * sn, like)


@numba.njit(inline="always", cache=True)
def _rotate_token(x, out, b, s, cos, sin, sign, interleaved, copy_tail, lut):
    """Rotate every head of token (b, s) by the angles whose cos/sin rows are given."""
    for h in range(x.shape[2]):
        xr = x[b, s, h]
        orow = out[b, s, h]
        _rotate_row(xr, orow, cos, sin, sign, interleaved, lut)
        if copy_tail:
            for j in range(2 * cos.shape[0], xr.shape[0]):
                orow[j] = xr[j]


def _rotate(x, out, cos, sin, idx, sign, interleaved, copy_tail, lut):
    """out = x rotated pair by pair; token (b, s) uses table row ``idx[b or 0, s]``.

    Pairs are (2i, 2i+1) if ``interleaved`` else (i, i + half). For each:
    ``out[j0], out[j1] = x0 c - x1 s, x1 c + x0 s`` with ``s`` times ``sign`` (+1, or -1 to rotate
    backwards), in the table's dtype. ``copy_tail`` copies the features past the rotary part
    (False when ``out`` is ``x``).
    """
    n_s = x.shape[1]
    per_row = idx.shape[0] > 1
    for t in numba.prange(x.shape[0] * n_s):
        b = t // n_s
        s = t - b * n_s
        p = idx[b if per_row else 0, s]
        _rotate_token(x, out, b, s, cos[p], sin[p], sign, interleaved, copy_tail, lut)


def _rotate_at(x, out, positions, inv_freq, scale, proto, sign, interleaved, copy_tail, lut, n_chunks):
    """As ``_rotate``, each token's cos/sin computed on the fly from ``positions[b or 0, s]``.

    One pass over x: the angle arithmetic overlaps the memory traffic instead of preceding it.
    cos/sin are rounded to ``proto``'s dtype, as a table of that dtype would be. Tokens are split
    into ``n_chunks`` contiguous chunks, each with its own scratch rows.
    """
    n_s = x.shape[1]
    n_tokens = x.shape[0] * n_s
    half = inv_freq.shape[0]
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
                cos[i] = scale * c
                sin[i] = scale * sn
            _rotate_token(x, out, b, s, cos, sin, sign, interleaved, copy_tail, lut)
            s += 1
            if s == n_s:
                s = 0
                b += 1


# Every setting is an argument (none a closure constant or global): Numba's disk cache then
# serves each compiled specialisation to later processes.
rotate_parallel, rotate_serial = jit_twins(_rotate)
rotate_at_parallel, rotate_at_serial = jit_twins(_rotate_at)
