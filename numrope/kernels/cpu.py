"""Numba CPU kernels that rotate feature pairs. Private: they trust their callers completely.

Arrays arrive as 4-D views ``(batch, seq, heads, head_dim)``; ``idx[b or 0, s]`` is the table row of
token ``(b, s)``. float16 arrays (data and tables) arrive as their uint16 bit patterns and bfloat16 arrays as
their int16 bit patterns (Numba has neither type on the CPU; the signedness tells them apart): ``_widen`` turns
them into float32 exactly and ``_narrow`` rounds back to nearest even (see :mod:`numrope.kernels.half`).
"""

import math
import sys

import numba
import numpy as np
from numba.core import types
from numba.extending import overload

from numrope.kernels import stream
from numrope.kernels.half import bf16_bits_to_f32, f16_bits_to_f32, f32_to_bf16_bits, f32_to_f16_bits, f64_to_bf16_bits
from numrope.kernels.jit import jit_twins, njit, read_only, use_parallel, wide_vectors
from numrope.kernels.simd import WORDS_IN_VECTORS, rotate_vectors, tails_apply, token_tails, vector_code, vectors_apply
from numrope.kernels.sincos import (
    _FAR_TWIN,
    NEAR_LIMIT,
    _any_far,
    _cos_sin,
    _far_entries,
    _top_frequency,
    cos_sin_table_far_parallel,
    cos_sin_table_far_serial,
    cos_sin_table_parallel,
    cos_sin_table_serial,
    far_twin,
)
from numrope.kernels.stream import buffer_start, flush, row_at, stream_row


def _widen(value):
    """A stored element as a number: float16 (uint16) and bfloat16 (int16) bit patterns as float32, floats as
    they are."""
    if isinstance(value, np.uint16):
        return f16_bits_to_f32(value)
    if isinstance(value, np.int16):
        return bf16_bits_to_f32(value.view(np.uint16))
    return value


@overload(_widen, inline="always")
def _widen_impl(value):
    if value == types.uint16:
        return lambda value: f16_bits_to_f32(value)
    if value == types.int16:
        return lambda value: bf16_bits_to_f32(np.uint16(value))  # the same bits
    return lambda value: value


def _narrow(value, like):
    """A float32 as an element like ``like`` (a stored element): float16 or bfloat16 bit patterns rounded to
    nearest even."""
    if isinstance(like, np.uint16):
        return f32_to_f16_bits(np.float32(value))
    if isinstance(like, np.int16):
        return f32_to_bf16_bits(np.float32(value)).view(np.int16)
    return value


@overload(_narrow, inline="always")
def _narrow_impl(value, like):
    if like == types.uint16:
        return lambda value, like: f32_to_f16_bits(value)
    if like == types.int16:
        return lambda value, like: np.int16(f32_to_bf16_bits(value))  # the same bits
    return lambda value, like: value


def _in_order(like):
    """Whether the half layout writes each row in order, in two passes, for elements like ``like``.

    In one pass a row is read and written as two streams, ``i`` and ``i + half``; in two passes
    each half of the output is written in turn, the second pass reading the row again from L1 and
    doubling the arithmetic. Measured on one thread, (1, 4096, 32, 128) with a table: float64
    0.85 -> 1.15 of the copy floor; float32 the same within the noise (0.92 - 1.05 either way);
    float16 0.92 -> 0.80, its conversions already bounding the kernel. So float64 only.
    """
    return isinstance(like, np.float64)


@overload(_in_order, inline="always")
def _in_order_impl(like):
    in_order = like == types.float64
    return lambda like: in_order


# Indices are unsigned (uintp) where Numba cannot see they are non-negative: a signed index gets
# a negative-index wraparound select that keeps LLVM from vectorising. The rows are addressed as
# x[b, s, h, i], never through views such as x[b, s, h]: each view costs an atomic reference count
# update, which dominated small calls and contended between threads.
_UP = np.uintp


@njit(inline="always")
def _signed(value, sign):
    """``sign * value``, or ``value`` for a ``None`` sign (compiled without the multiplication)."""
    return value if sign is None else sign * value


@njit(inline="always")
def _rotate_head(x, out, b, s, h, at, cos, sin, p, sign, interleaved, copy_tail):
    """Rotate the pairs of head ``h`` of token ``(b, s)`` by table row ``p`` of cos/sin (``sign`` None: forwards)
    into ``out[at[0], at[1], at[2], at[3]:]``."""
    half = _UP(cos.shape[1])
    tb, ts, th, o = at
    like = out[0, 0, 0, 0]  # a scalar of out's element type, for _narrow
    if interleaved >= 5 and vectors_apply(x, out, cos, sin, sign):
        rotate_vectors(x, out, b, s, h, at, cos, sin, p, interleaved)
    elif interleaved == 2 or interleaved == 3:  # pairs read from one layout and written to the other
        for i in range(half):
            c = _widen(cos[p, i])
            sn = _signed(_widen(sin[p, i]), sign)
            if interleaved == 2:
                j0, j1, k0, k1 = _UP(2) * i, _UP(2) * i + _UP(1), i, i + half
            else:
                j0, j1, k0, k1 = i, i + half, _UP(2) * i, _UP(2) * i + _UP(1)
            x0 = _widen(x[b, s, h, j0])
            x1 = _widen(x[b, s, h, j1])
            out[tb, ts, th, o + k0] = _narrow(x0 * c - x1 * sn, like)
            out[tb, ts, th, o + k1] = _narrow(x1 * c + x0 * sn, like)
    elif interleaved == 1 or interleaved == 6 or interleaved == 8:
        for i in range(half):
            c = _widen(cos[p, i])
            sn = _signed(_widen(sin[p, i]), sign)
            j0 = _UP(2) * i
            j1 = j0 + _UP(1)
            x0 = _widen(x[b, s, h, j0])
            x1 = _widen(x[b, s, h, j1])
            out[tb, ts, th, o + j0] = _narrow(x0 * c - x1 * sn, like)
            out[tb, ts, th, o + j1] = _narrow(x1 * c + x0 * sn, like)
    elif interleaved == 4 and _in_order(like):  # out apart from x: each half of the row in turn
        for i in range(half):
            c = _widen(cos[p, i])
            sn = _signed(_widen(sin[p, i]), sign)
            out[tb, ts, th, o + i] = _narrow(_widen(x[b, s, h, i]) * c - _widen(x[b, s, h, i + half]) * sn, like)
        for i in range(half):
            c = _widen(cos[p, i])
            sn = _signed(_widen(sin[p, i]), sign)
            out[tb, ts, th, o + i + half] = _narrow(_widen(x[b, s, h, i + half]) * c + _widen(x[b, s, h, i]) * sn, like)
    else:
        for i in range(half):
            c = _widen(cos[p, i])
            sn = _signed(_widen(sin[p, i]), sign)
            j = i + half
            x0 = _widen(x[b, s, h, i])
            x1 = _widen(x[b, s, h, j])
            out[tb, ts, th, o + i] = _narrow(x0 * c - x1 * sn, like)
            out[tb, ts, th, o + j] = _narrow(x1 * c + x0 * sn, like)
    if copy_tail:
        for j in range(_UP(2) * half, _UP(x.shape[3])):
            out[tb, ts, th, o + j] = x[b, s, h, j]


# Left to LLVM to inline. Inlined by Numba, a function whose loop takes arrays costs an atomic reference count update
# per array, iteration and direction in the serial twins (the parallel ones lose them to the parfor pass's copy
# propagation): the serial float16 kernel took 6.3 ms where the parallel one, on one thread, took 2.3.
# (``_rotate_token_to`` stays inlined by Numba: left to LLVM, it made ``apply_rope(x, cfg)`` three times slower.)
@njit
def _rotate_token(x, out, b, s, cos, sin, p, sign, interleaved, copy_tail):
    """Rotate every head of token (b, s) by table row ``p`` of cos/sin, then copy the heads' tails.

    The tails are copied head by head after the token, not after each head's rotation: a tail loop
    behind each head's, even one that never runs, made the float16 half kernel 10 - 25% slower on
    one thread (2.35 -> 2.9 ms for (1, 4096, 32, 128); ``scripts/kernel_variants.py``).
    """
    for h in range(_UP(x.shape[2])):
        _rotate_head(x, out, b, s, h, (b, s, h, _UP(0)), cos, sin, p, sign, interleaved, False)
    if tails_apply(x, out, cos, sin, sign) and interleaved >= 7:
        token_tails(x, out, b, s, cos, sin, p, interleaved)  # where _rotate_head rotated whole vectors
    if copy_tail:
        _copy_tails(x, out, b, s, _UP(2) * _UP(cos.shape[1]))


@njit  # left to LLVM to inline, as _rotate_token
def _copy_tails(x, out, b, s, start):
    """Copy features ``start:`` of every head of token (b, s), the part past the rotary one, from x to out."""
    for h in range(_UP(x.shape[2])):
        for j in range(start, _UP(x.shape[3])):
            out[b, s, h, j] = x[b, s, h, j]


@njit(inline="always")
def _rotate_token_to(x, out, b, s, cos, sin, p, sign, interleaved, copy_tail, lines, c, start, shift, n):
    """``_rotate_token``, by plain stores (``lines`` None) or by streaming stores through chunk ``c``'s row
    buffer (see :mod:`numrope.kernels.stream`), where each row is streamed a row after it was computed;
    ``n``: the chunk's rows so far. Returns the rows so far after this token."""
    if lines is None:
        _rotate_token(x, out, b, s, cos, sin, p, sign, interleaved, copy_tail)
        return n
    for h in range(_UP(x.shape[2])):
        at = (c, 0, 0, row_at(out, lines, start, n))
        if copy_tail:  # the tail loop only where it runs (see _rotate_token)
            _rotate_head(x, lines, b, s, h, at, cos, sin, p, sign, interleaved, True)
        else:
            _rotate_head(x, lines, b, s, h, at, cos, sin, p, sign, interleaved, False)
        if n:
            pb, ps, ph = _row_before(x, b, s, h)
            stream_row(out, pb, ps, ph, lines, c, start, shift, n - 1)
        n += 1
    return n


@njit(inline="always")
def _row_before(x, b, s, h):
    """The row before row (b, s, h) in the kernels' order, head by head within a token, token by token."""
    if h:
        return b, s, h - _UP(1)
    if s:
        return b, s - 1, _UP(x.shape[2]) - _UP(1)
    return b - 1, x.shape[1] - 1, _UP(x.shape[2]) - _UP(1)


@njit(inline="always")
def _chunk(c, n_chunks, x):
    """Chunk ``c`` of ``n_chunks`` of x's tokens: its first token, one past its last, and the first's (b, s)."""
    n_s = x.shape[1]
    n_tokens = x.shape[0] * n_s
    start = c * n_tokens // n_chunks
    b = start // n_s
    return start, (c + 1) * n_tokens // n_chunks, b, start - b * n_s


@njit(inline="always")
def _next_token(x, b, s):
    """The token after (b, s) in x."""
    s += 1
    if s == x.shape[1]:
        return b + 1, 0
    return b, s


@njit(inline="always")
def _end_chunk(x, out, b, s, lines, c, start, shift, n):
    """After a chunk of ``n`` rows whose last token precedes (b, s): stream its last row (see ``_rotate_token_to``)."""
    if lines is not None and n:
        pb, ps, ph = _row_before(x, b, s, _UP(0))
        flush(out, pb, ps, ph, lines, c, start, shift, n - 1)


def _rotate(x, out, cos, sin, idx, sign, interleaved, copy_tail, n_chunks, lines, shift):
    """out = x rotated pair by pair; token (b, s) uses table row ``idx[b or 0, s]``.

    Pairs are (2i, 2i+1) if ``interleaved`` is 1 and (i, i + half) if it is 0; 2 reads (2i, 2i+1) and writes
    (i, i + half), 3 the reverse (``out`` must then not be ``x``); 4 is 0 for an ``out`` apart from ``x``;
    5 and 6 are 0 and 1 a vector of pairs at a time (:mod:`numrope.kernels.simd`, for the dtypes it takes; and
    the launchers pick them), 7 and 8 the same for rows that end in a tail of smaller vectors. For each:
    ``out[j0], out[j1] = x0 c - x1 s, x1 c + x0 s`` with ``s`` times ``sign`` (+1, or -1 to rotate
    backwards; None: no multiplication), in the wider of the table's and x's dtypes (float16 counting as
    float32). The launcher passes None and rotates backwards by the negated sines, which gives the same bits
    (``x1 (-s)`` is ``-(x1 s)`` exactly) with one multiplication fewer per pair: up to 10% of the float16
    kernel's time on one thread.
    ``copy_tail`` copies the features past the rotary part (False when ``out`` is ``x``). Tokens are split
    into ``n_chunks`` contiguous chunks; ``lines`` and ``shift`` are :func:`numrope.kernels.stream.plan`'s
    (``lines`` None: plain stores).
    """
    per_row = idx.shape[0] > 1
    start = buffer_start(lines) if lines is not None else _UP(0)
    for c in numba.prange(n_chunks):
        first, stop, b, s = _chunk(c, n_chunks, x)
        n = 0
        for _ in range(first, stop):
            p = idx[b if per_row else 0, s]
            n = _rotate_token_to(x, out, b, s, cos, sin, p, sign, interleaved, copy_tail, lines, c, start, shift, n)
            b, s = _next_token(x, b, s)
        _end_chunk(x, out, b, s, lines, c, start, shift, n)


def _rotate_at(x, out, positions, inv_freq, scale, proto, sign, interleaved, copy_tail, n_chunks, lines, shift):
    """As ``_rotate``, each token's cos/sin computed on the fly from ``positions[b or 0, s]``.

    One pass over x: the angle arithmetic overlaps the memory traffic instead of preceding it.
    cos/sin are rounded to ``proto``'s dtype, as a table of that dtype would be; ``proto`` has
    shape (1, half), the shape of each chunk's scratch table. Returns whether it wrote out: the common
    compilation returns False, having written nothing, where some angle is far (see
    :func:`numrope.kernels.sincos.far_twin`).
    """
    half = _UP(inv_freq.shape[0])
    per_row = positions.shape[0] > 1
    if not _FAR_TWIN:  # few positions (one per token): their largest, then a vectorised count
        m_max = 0.0
        for r in range(positions.shape[0]):
            for s in range(positions.shape[1]):
                m_max = max(m_max, abs(positions[r, s]))
        if _any_far(m_max, inv_freq):
            return False
    top = _top_frequency(inv_freq) if _FAR_TWIN else 0.0
    start = buffer_start(lines) if lines is not None else _UP(0)
    for c in numba.prange(n_chunks):
        wide_vectors()  # the angles' loop eight float64 at a time
        cos = np.empty_like(proto)
        sin = np.empty_like(proto)
        first, stop, b, s = _chunk(c, n_chunks, x)
        n = 0
        for _ in range(first, stop):
            m = positions[b if per_row else 0, s]
            for i in range(half):
                cs, sn = _cos_sin(m, inv_freq[i])
                cos[0, i] = scale * cs
                sin[0, i] = scale * sn
            if _FAR_TWIN:
                if abs(m) * top >= NEAR_LIMIT:
                    _far_entries(m, inv_freq, scale, cos, sin, 0)
            if sign < 0:  # backwards: the token's sines negated here, once, not multiplied by the sign per head
                for i in range(half):
                    sin[0, i] = -sin[0, i]
            n = _rotate_token_to(x, out, b, s, cos, sin, 0, None, interleaved, copy_tail, lines, c, start, shift, n)
            b, s = _next_token(x, b, s)
        _end_chunk(x, out, b, s, lines, c, start, shift, n)
    return True


def _rotate_words(x, out, xw, ow, cos, sin, idx, sign, copy_tail):
    """As ``_rotate`` in the interleaved layout for float16 or bfloat16 bit patterns, each pair read and
    written as one uint32 word: ``xw`` and ``ow`` are uint32 views of the rotary parts of ``x`` and ``out``
    (little-endian: feature 2i in a word's low half); ``x`` and ``out`` serve the tail copy.

    Split and joined with shifts, the pairs need none of the shuffles that LLVM's interleaved loads and
    stores of 2-byte elements take, which made this layout's loop the slowest of the 2-byte ones.
    """
    n_s = x.shape[1]
    per_row = idx.shape[0] > 1
    half = _UP(cos.shape[1])
    like = out[0, 0, 0, 0]  # a scalar of out's element type, for _narrow
    for t in numba.prange(x.shape[0] * n_s):
        b = t // n_s
        s = t - b * n_s
        p = idx[b if per_row else 0, s]
        for h in range(_UP(x.shape[2])):
            for i in range(half):
                c = _widen(cos[p, i])
                sn = _signed(_widen(sin[p, i]), sign)
                w = xw[b, s, h, i]
                x0 = _widen(_half_word(w, like))
                x1 = _widen(_half_word(w >> np.uint32(16), like))
                r0 = _bits32(_narrow(x0 * c - x1 * sn, like))
                r1 = _bits32(_narrow(x1 * c + x0 * sn, like))
                ow[b, s, h, i] = r0 | (r1 << np.uint32(16))
        if copy_tail:  # after the token's heads, as in _rotate_token
            _copy_tails(x, out, b, s, _UP(2) * half)


def _half_word(word, like):
    """The low 16 bits of a uint32 as an element like ``like`` (uint16 float16 bits, or int16 bfloat16 bits)."""
    return np.uint16(word & 0xFFFF) if isinstance(like, np.uint16) else np.uint16(word & 0xFFFF).view(np.int16)


@overload(_half_word, inline="always")
def _half_word_impl(word, like):
    if like == types.int16:
        return lambda word, like: np.int16(np.uint16(word))  # the same bits
    return lambda word, like: np.uint16(word)


@njit(inline="always")
def _bits32(element):
    """A 2-byte element's bits, zero-extended to a uint32."""
    return np.uint32(np.uint16(element))


# Every setting is an argument (none a closure constant or global): Numba's disk cache then
# serves each compiled specialisation to later processes.
rotate_parallel, rotate_serial = jit_twins(_rotate)
rotate_at_parallel, rotate_at_serial = jit_twins(_rotate_at)
rotate_words_parallel, rotate_words_serial = jit_twins(_rotate_words)
rotate_at_far_parallel, rotate_at_far_serial = jit_twins(far_twin(_rotate_at))


def _round_bf16(src, dst):
    """dst[n] = the bfloat16 bit pattern (as int16) nearest to float64 src[n], rounded once."""
    for n in numba.prange(src.size):
        dst[n] = np.int16(f64_to_bf16_bits(src[n]))  # the same bits


round_bf16_parallel, round_bf16_serial = jit_twins(_round_bf16)


# The launchers: views, twin choice and float16/bfloat16 bit views, for arguments the callers have checked.

_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)
_SIGNS = {dtype: (dtype.type(1.0), dtype.type(-1.0)) for dtype in (_F32, _F64)}
# The kernels' view of each 2-byte float, by type character: "e" float16, "E" ml_dtypes.bfloat16 (the
# checked dtypes have no other "E").
_BITS = {"e": np.uint16, "E": np.int16}


def round_f64_into(out, wide):
    """Round float64 ``wide`` once into ``out`` (float16 or bfloat16) of the same shape."""
    if out.dtype.char == "e":
        np.copyto(out, wide)  # NumPy rounds float64 to float16 once, to nearest even
        return out
    # bfloat16: NumPy's (ml_dtypes') cast rounds through float32, twice
    src = np.ascontiguousarray(wide, dtype=_F64).reshape(-1)
    bits = np.empty(src.size, np.int16)
    (round_bf16_parallel if use_parallel(src.size) else round_bf16_serial)(src, bits)
    np.copyto(out, bits.view(out.dtype).reshape(out.shape))
    return out


def compute_dtype(*arrays) -> np.dtype:
    """float64 if any array is float64, else float32 (float16 is computed in float32)."""
    for a in arrays:
        if a.dtype.char == "d":
            return _F64
    return _F32


def cos_sin_table(positions, inv_freq, scale, dtype):
    """``scale * cos/sin(positions[..., None] * inv_freq)`` in ``dtype``, for checked positions of any shape."""
    flat = positions.reshape(-1).astype(np.float64, copy=False)
    kernel_dtype = np.float64 if dtype.char in _BITS else dtype
    cos = np.empty((flat.size, inv_freq.size), dtype=kernel_dtype)
    sin = np.empty_like(cos)
    parallel = use_parallel(cos.size)
    kernel = cos_sin_table_parallel if parallel else cos_sin_table_serial
    if not kernel(flat, inv_freq, scale, cos, sin):  # some angle is far: the far compilation
        (cos_sin_table_far_parallel if parallel else cos_sin_table_far_serial)(flat, inv_freq, scale, cos, sin)
    shape = positions.shape + (inv_freq.size,)
    if dtype.char == "E":
        return round_f64_into(np.empty(shape, dtype), cos), round_f64_into(np.empty(shape, dtype), sin)
    # float16 is rounded once, from float64: Numba has no float16 on the CPU.
    return cos.astype(dtype, copy=False).reshape(shape), sin.astype(dtype, copy=False).reshape(shape)


def _as_4d(a, seq_axis):
    """A (batch, seq, heads, head_dim) view of a, or None where only a copy would do."""
    if a.ndim == 4 and seq_axis == 1:
        return a
    shape = (math.prod(a.shape[:seq_axis]), a.shape[seq_axis], math.prod(a.shape[seq_axis + 1 : -1]), a.shape[-1])
    if a.flags.c_contiguous:
        return a.reshape(shape)
    try:
        return np.reshape(a, shape, copy=False)
    except ValueError:
        return None


def _views(x, out, ax):
    """4-D kernel views (x4, target, copy_tail, copy_back) of x and of where to write.

    ``target`` is a view of ``out``, or, where out's strides admit no 4-D view, a scratch array that
    ``copy_back`` says to copy into ``out`` afterwards. ``copy_tail`` is False only in place.
    """
    x4, out4 = _as_4d(x, ax), _as_4d(out, ax)
    if x4 is None:
        x4 = _as_4d(np.ascontiguousarray(x), ax)
    if out4 is None:
        return read_only(x4), np.empty(x4.shape, out.dtype), True, True
    return read_only(x4), out4, out is not x, False


def _native(a):
    """Arrays as the kernels take them: float16 (data or tables) as uint16 bit patterns, bfloat16 as int16."""
    bits = _BITS.get(a.dtype.char)
    return a if bits is None else a.view(bits)


def _layout_code(layout, inverse):
    """The kernels' pair layout: 0 half, 1 interleaved (a bool ``interleaved`` is one of these), 2 read
    interleaved and write half (``"interleaved_in_half_out"``), 3 the reverse, its inverse and transpose.

    The launchers turn 0 into 4, half with ``out`` apart from ``x``, where rows may be written in order
    (:func:`_in_order`); in place, each pair must be read before either of its features is written."""
    if isinstance(layout, str):
        code = _LAYOUT_CODES[layout]
    elif isinstance(layout, (bool, np.bool_)):
        code = int(layout)
    else:
        return int(layout)  # a code already
    return 3 if code == 2 and inverse else code


_LAYOUT_CODES = {"half": 0, "interleaved": 1, "interleaved_in_half_out": 2}


def _apart(code, x4, target4):
    """The layout code for the kernel: 4 for the half layout where ``target4`` shares no memory with ``x4``."""
    return 4 if code == 0 and not np.may_share_memory(x4, target4) else code


def _rotary_views(x4, target, copy_tail, offset):
    """The views from feature ``offset`` on (the rotary part and what follows), the features before it
    copied where out is not x."""
    if not offset:
        return x4, target
    if copy_tail:
        target[..., :offset] = x4[..., :offset]
    return x4[..., offset:], target[..., offset:]


_LITTLE = sys.byteorder == "little"


def _words(x4, target4, half):
    """uint32 views of the rotary parts of 2-byte ``x4`` and ``target4`` (one word a pair), or None where the
    pairs are not whole words of contiguous features (or the machine is big-endian)."""
    if not _LITTLE or x4.strides[3] != 2 or target4.strides[3] != 2:
        return None
    try:
        return x4[..., : 2 * half].view(np.uint32), target4[..., : 2 * half].view(np.uint32)
    except ValueError:  # strides NumPy cannot view in words
        return None


def _tail(copy_tail, x4, pairs):
    """The kernels' ``copy_tail``: whether features follow the rotary part and must be copied. The kernels
    skip an empty tail, but not its loop's cost (see ``_rotate_token``)."""
    return copy_tail and x4.shape[3] > 2 * pairs


def _stores(x4, target4, parallel, new):
    """The kernels' ``n_chunks, lines, shift``: chunks of tokens (four per thread, for balance), and how to store
    (:func:`numrope.kernels.stream.plan`, ``new`` its; ``lines`` None: plain stores)."""
    n_chunks = min(x4.shape[0] * x4.shape[1], 4 * numba.get_num_threads()) if parallel else 1
    # The serial twins store plainly: their streaming path keeps atomic reference count updates in its row
    # loop, which the parallel twins lose to the parfor pass, and took 18.5 ms where plain stores took 4.5
    # (float32 (1, 4096, 32, 128) into out=; asv_benchmarks bench_apply.Twins).
    streaming = stream.plan(x4, target4, n_chunks, new) if parallel else None
    if streaming is None:
        return n_chunks, None, _UP(0)
    return n_chunks, streaming[0], _UP(streaming[1])


def rotate(x, out, ax, interleaved, cos, sin, idx, inverse, offset=0, new=False):
    """Rotate checked x into checked out (which may be x) using a table; ``ax`` is x's sequence axis.

    ``interleaved``: the layout (a bool, or a ``RopeConfig.layout``); ``offset``: the first rotating feature;
    ``new``: whether ``out`` was made for this call (then never streamed into: :func:`numrope.kernels.stream.plan`).
    """
    if x.size == 0:
        return out
    interleaved = _layout_code(interleaved, inverse)
    if interleaved >= 2 and np.shares_memory(x, out):
        x = x.copy()  # the pairs move: every feature must be read before any is written
    if x.dtype.char in _BITS and cos.dtype.char == "d":
        # float64 arithmetic for float16 or bfloat16 data: the kernels round to those from float32
        # only, so rotate a float64 copy and round it once into out
        wide = x.astype(_F64)
        return round_f64_into(out, rotate(wide, wide, ax, interleaved, cos, sin, idx, inverse, offset))
    x4, target, copy_tail, copy_back = _views(x, out, ax)
    parallel = use_parallel(x.size)
    kernel = rotate_parallel if parallel else rotate_serial
    if inverse:  # backwards by the negated sines (see _rotate)
        sin = np.negative(sin)
    # bit-pattern views for the kernel; ``target`` keeps its dtype for the copy back
    x4, target4 = _native(x4), _native(target)
    cos, sin, idx = read_only(_native(cos)), read_only(_native(sin)), read_only(idx)
    x4, target4 = _rotary_views(x4, target4, copy_tail, offset)
    interleaved = _apart(interleaved, x4, target4)
    copy_tail = _tail(copy_tail, x4, cos.shape[-1])
    stores = _stores(x4, target4, parallel, new or copy_back)
    code = vector_code(interleaved, x4, target4, cos, sin, stores[1] is not None)
    # 2-byte pairs: the words kernel, unless the vector kernels are faster (simd.WORDS_IN_VECTORS)
    words = interleaved == 1 and x.dtype.char in _BITS and not (code == 6 and x4.dtype in WORDS_IN_VECTORS)
    words = _words(x4, target4, cos.shape[-1]) if words else None
    if words is not None:
        (rotate_words_parallel if kernel is rotate_parallel else rotate_words_serial)(
            x4, target4, *words, cos, sin, idx, None, copy_tail
        )
    else:
        kernel(x4, target4, cos, sin, idx, None, code, copy_tail, *stores)
    if copy_back:
        np.copyto(out, target.reshape(out.shape))
    return out


def rotate_at(x, out, ax, interleaved, positions, inv_freq, scale, inverse, offset=0, new=False):
    """Rotate checked x into checked out, computing each token's cos/sin in the same pass.

    ``positions`` has one row per 4-D batch row of x (or a single row); ``interleaved``, ``offset`` and ``new`` as
    for :func:`rotate`.
    """
    if x.size == 0:
        return out
    interleaved = _layout_code(interleaved, inverse)
    if interleaved >= 2 and np.shares_memory(x, out):
        x = x.copy()  # the pairs move: every feature must be read before any is written
    x4, target, copy_tail, copy_back = _views(x, out, ax)
    parallel = use_parallel(x.size)
    kernel = rotate_at_parallel if parallel else rotate_at_serial
    dtype = compute_dtype(x)
    proto = np.empty((1, inv_freq.size), dtype)
    sign = _SIGNS[dtype][inverse]
    positions = read_only(positions.astype(np.float64, copy=False))
    x4, target4 = _rotary_views(_native(x4), _native(target), copy_tail, offset)
    interleaved = _apart(interleaved, x4, target4)
    copy_tail = _tail(copy_tail, x4, inv_freq.size)
    stores = _stores(x4, target4, parallel, new or copy_back)
    interleaved = vector_code(interleaved, x4, target4, proto, proto, stores[1] is not None)
    args = (x4, target4, positions, inv_freq, scale, proto, sign, interleaved, copy_tail, *stores)
    if not kernel(*args):  # some angle is far: the far compilation (nothing was written)
        (rotate_at_far_parallel if parallel else rotate_at_far_serial)(*args)
    if copy_back:
        np.copyto(out, target.reshape(out.shape))
    return out
