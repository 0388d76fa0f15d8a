"""Pairs rotated a vector at a time, written as LLVM vector code.

LLVM vectorises the kernels' pair loops itself, but each vectorised loop first checks at run time that
``out`` does not overlap ``x`` or the table, which it cannot know, and runs its scalar loop where they
do: in place, always. (1, 4096, 32, 128) with a table, in place, one thread: float32 6.3 ms against 2.5
here, float16 11.9 against 1.7, bfloat16 17.9 against 2.8. Out of place the checks and the walk to the
vector loop take some forty instructions a head's row, as many as its vector work. The functions here are
straight-line code, one vector of pairs each (32 pairs, 16 of float64: one or two cache lines of first
features; 8 for the rest of a row, such as a head of 80 or 96, and 16 first in bfloat16), with nothing to check:
every load precedes every store, so they are right in place too.

Elements as the CPU kernels see them (:mod:`numrope.kernels.cpu`): float32 and float64, float16 as uint16
bit patterns, bfloat16 as int16 ones. The arithmetic is the general loops', operation for operation, so
the bits are theirs: float16 and bfloat16 widened exactly to float32 (float16 by LLVM's ``fpext``, which
needs the hardware conversions, :func:`numrope.kernels.half.target_converts_half`), each product and sum
rounded on its own (no fused multiply-add), and rounded back to nearest even (float16 by ``fptrunc``,
bfloat16 by :func:`numrope.kernels.half.f32_to_bf16_bits_ir`, the steps of ``f32_to_bf16_bits``). Tables
are of the data's dtype, or float32 for the 2-byte dtypes. Addresses are byte addresses.
"""

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic, overload, register_jitable

from numrope.kernels.half import BFLOAT16_IN_HARDWARE, f32_to_bf16_bits_ir, target_converts_half
from numrope.kernels.jit import njit

_UP = np.uintp
_I16, _I32 = ir.IntType(16), ir.IntType(32)
#: Whether float16 has vector kernels here: LLVM's half conversions, compiled to hardware instructions.
HALF_IN_HARDWARE = target_converts_half()


def _kind(t):
    """The element kind of a Numba scalar type: "f32", "f64", "f16" (uint16 bits), "bf16" (int16 bits) or None."""
    if isinstance(t, types.Float) and t.bitwidth in (32, 64):
        return f"f{t.bitwidth}"
    if t == types.uint16 and HALF_IN_HARDWARE:
        return "f16"
    if t == types.int16:
        return "bf16"
    return None


def _pairs_kinds(like, table_like):
    """(data kind, table kind) where the vector functions take them, else None."""
    data, table = _kind(like), _kind(table_like)
    if data is None or table is None or not (table == data or (table == "f32" and data in ("f16", "bf16"))):
        return None
    return data, table


_SIZES = {"f32": 4, "f64": 8, "f16": 2, "bf16": 2}


def pairs_per_vector(itemsize):
    """Pairs in one vector: 32 (16 of float64), two lines of first features or one; with 16 float32 pairs a
    vector (one line), the float32 half layout ran at 0.78 - 0.81 of the copy floor against 0.86 - 0.89."""
    return min(32, 128 // itemsize)


#: Pairs in the vectors that rotate the rest of a row past its whole vectors (layout codes 7 and 8,
#: :func:`rotate_tails`), such as a head of 80 or 96. Not float64: in the half layout in place, head 80, it
#: went from 5.7 - 5.9 to 6.3 - 6.4 ms with them (two passes over each token's rows).
TAIL_PAIRS = 8
_TAILED = ("f32", "f16", "bf16")
#: The kinds that take tails in place only, where LLVM's loops run scalar: one thread, the half layout with a
#: table, head 80 / 96, in place float16 7.5 / 8.9 -> 1.4 / 1.6 ms, but into ``out=`` 1.4 / 1.7 -> 1.6 / 2.5 ms.
_TAILED_IN_PLACE = ("f16",)
#: The kinds whose tails start with one vector of 16 pairs where 16 are left (head 96), then take 8 at a time:
#: bfloat16 into ``out=`` at head 96, 2.7 ms by 8-pair tails, 2.05 - 2.14 this way, 2.2 - 2.4 by LLVM's loop.
_WIDE_TAILED = ("bf16",)


def _lanes(kind):
    return pairs_per_vector(_SIZES[kind])


def _tail_lanes(kind):
    return TAIL_PAIRS


def _u32(lanes, value):
    return ir.Constant(ir.VectorType(_I32, lanes), [value] * lanes)


def _load(builder, address, kind, lanes):
    """A vector of ``lanes`` elements of ``kind`` from ``address``, as float32 (float64 for "f64")."""
    stored = {"f32": ir.FloatType(), "f64": ir.DoubleType()}.get(kind, _I16)
    value = builder.load(builder.inttoptr(address, ir.VectorType(stored, lanes).as_pointer()), align=_SIZES[kind])
    if kind == "f16":
        halves = builder.bitcast(value, ir.VectorType(ir.HalfType(), lanes))
        return builder.fpext(halves, ir.VectorType(ir.FloatType(), lanes))
    if kind == "bf16":  # the upper half of a float32
        wide = builder.shl(builder.zext(value, ir.VectorType(_I32, lanes)), _u32(lanes, 16))
        return builder.bitcast(wide, ir.VectorType(ir.FloatType(), lanes))
    return value


def _narrow(builder, value, kind, lanes):
    """Float vector ``value`` as elements of ``kind``, rounded to nearest even (2-byte kinds as i16 bits)."""
    if kind == "f16":
        return builder.bitcast(builder.fptrunc(value, ir.VectorType(ir.HalfType(), lanes)), ir.VectorType(_I16, lanes))
    if kind == "bf16":
        return f32_to_bf16_bits_ir(builder, value)
    return value


_LINE = 64  # bytes in a cache line
#: An empty asm statement that may read and write memory: LLVM moves no store across it.
_BARRIER = ir.InlineAsm(ir.FunctionType(ir.VoidType(), []), "", "~{memory}", side_effect=True)


def _store(builder, value, address, kind, lanes, in_order=False):
    """Store float vector ``value`` at ``address`` as elements of ``kind``, rounded to nearest even; ``in_order``: a
    cache line at a time, in the order of the addresses (each store followed by :data:`_BARRIER`)."""
    value = _narrow(builder, value, kind, lanes)
    size = _SIZES[kind]
    per_line = _LINE // size if in_order else lanes
    for k in range(0, lanes, per_line):
        piece = value
        if per_line < lanes:
            piece = builder.shuffle_vector(
                value, value, ir.Constant(ir.VectorType(_I32, per_line), list(range(k, k + per_line)))
            )
        at = builder.add(address, ir.Constant(address.type, k * size)) if k else address
        builder.store(piece, builder.inttoptr(at, piece.type.as_pointer()), align=size)
        if in_order:
            builder.call(_BARRIER, [])


def _from_words(builder, words, lanes):
    """bfloat16 pairs read as little-endian 32-bit words (feature 2i in a word's low half), as two float32 vectors:
    no shuffles, each half of a word being the upper half of its float32."""
    floats = ir.VectorType(ir.FloatType(), lanes)
    low = builder.shl(words, _u32(lanes, 16))
    high = builder.and_(words, _u32(lanes, 0xFFFF0000))
    return builder.bitcast(low, floats), builder.bitcast(high, floats)


def _to_words(builder, low, high, kind, lanes):
    """Float32 vectors of first and second features rounded to ``kind`` and joined into 32-bit words."""
    low, high = _narrow(builder, low, kind, lanes), _narrow(builder, high, kind, lanes)
    alternate = ir.Constant(ir.VectorType(_I32, 2 * lanes), [k // 2 + (k % 2) * lanes for k in range(2 * lanes)])
    mixed = builder.shuffle_vector(low, high, alternate)
    return builder.bitcast(mixed, ir.VectorType(_I32, lanes))


def _rotated(builder, x0, x1, c, s):
    """x0 c - x1 s, x1 c + x0 s: two products and a sum each, rounded one at a time (no fused multiply-add)."""
    first = builder.fsub(builder.fmul(x0, c), builder.fmul(x1, s))
    return first, builder.fadd(builder.fmul(x1, c), builder.fmul(x0, s))


def _half_pairs(lanes_of, in_order=False):
    @intrinsic
    def half_pairs(typingctx, dst, src, cos, sin, half_bytes, like, table_like):
        kinds = _pairs_kinds(like, table_like)
        if kinds is None:
            return None
        data, table = kinds
        lanes = lanes_of(data)

        def codegen(context, builder, signature, args):
            dst, src, cos, sin, half_bytes = args[:5]
            x0, x1 = _load(builder, src, data, lanes), _load(builder, builder.add(src, half_bytes), data, lanes)
            lo, hi = _rotated(builder, x0, x1, _load(builder, cos, table, lanes), _load(builder, sin, table, lanes))
            _store(builder, lo, dst, data, lanes, in_order)
            _store(builder, hi, builder.add(dst, half_bytes), data, lanes, in_order)
            return context.get_dummy_value()

        signature = types.void(types.uintp, types.uintp, types.uintp, types.uintp, types.uintp, like, table_like)
        return signature, codegen

    return half_pairs


#: half_pairs(dst, src, cos, sin, half_bytes, like, table_like): rotate the pairs (i, i + half) for one vector
#: of i: features at ``src`` and ``src + half_bytes``, their cos and sin at ``cos`` and ``sin``, results to
#: ``dst`` and ``dst + half_bytes``; elements like ``like``, the table's like ``table_like``. half_tail: the
#: same for :data:`TAIL_PAIRS` pairs, half_tail16 for twice as many.
half_pairs, half_tail = _half_pairs(_lanes), _half_pairs(_tail_lanes)
#: half_pairs2: :data:`half_pairs` for two vectors of pairs, whose results are stored line by line in the order of
#: the addresses (:func:`rotate_half_in_order`).
half_pairs2 = _half_pairs(lambda kind: 2 * _lanes(kind), in_order=True)
half_tail16 = _half_pairs(lambda kind: 2 * TAIL_PAIRS)


def _interleaved_pairs(lanes_of):
    @intrinsic
    def interleaved_pairs(typingctx, dst, src, cos, sin, like, table_like):
        kinds = _pairs_kinds(like, table_like)
        if kinds is None:
            return None
        data, table = kinds
        lanes = lanes_of(data)
        step = lanes * like.bitwidth // 8

        def codegen(context, builder, signature, args):
            dst, src, cos, sin = args[:4]
            if data == "bf16":  # pairs as words
                words = ir.VectorType(_I32, lanes).as_pointer()
                x0, x1 = _from_words(builder, builder.load(builder.inttoptr(src, words), align=2), lanes)
                lo, hi = _rotated(builder, x0, x1, _load(builder, cos, table, lanes), _load(builder, sin, table, lanes))
                builder.store(_to_words(builder, lo, hi, data, lanes), builder.inttoptr(dst, words), align=2)
                return context.get_dummy_value()
            next_step = ir.Constant(ir.IntType(64), step)

            def mask(picks):
                return ir.Constant(ir.VectorType(_I32, lanes), picks)

            a, b = _load(builder, src, data, lanes), _load(builder, builder.add(src, next_step), data, lanes)
            x0 = builder.shuffle_vector(a, b, mask([2 * k for k in range(lanes)]))
            x1 = builder.shuffle_vector(a, b, mask([2 * k + 1 for k in range(lanes)]))
            lo, hi = _rotated(builder, x0, x1, _load(builder, cos, table, lanes), _load(builder, sin, table, lanes))
            first = builder.shuffle_vector(lo, hi, mask([k // 2 + (k % 2) * lanes for k in range(lanes)]))
            second = builder.shuffle_vector(lo, hi, mask([lanes // 2 + k // 2 + (k % 2) * lanes for k in range(lanes)]))
            _store(builder, first, dst, data, lanes)
            _store(builder, second, builder.add(dst, next_step), data, lanes)
            return context.get_dummy_value()

        return types.void(types.uintp, types.uintp, types.uintp, types.uintp, like, table_like), codegen

    return interleaved_pairs


#: interleaved_pairs(dst, src, cos, sin, like, table_like): rotate the pairs (2i, 2i + 1) for one vector of i:
#: two vectors of features at ``src``, their cos and sin at ``cos`` and ``sin``, results to two vectors at
#: ``dst``. The features (float16 widened first) are split into evens and odds and joined back by two shuffles each
#: way; bfloat16 pairs are read as 32-bit words, split by shifts and joined back by one shuffle of the rounded halves.
#: float16 as words took 0.68 - 0.77 of the copy floor on the Xeon (``numrope bench``'s prefill, (1, 4096, 32, 128),
#: out=, one thread), widened first 0.86 - 0.92: splitting words costs a two-uop ``vpmovdw`` per vector there.
#: interleaved_tail: the same for :data:`TAIL_PAIRS` pairs, interleaved_tail16 for twice as many.
interleaved_pairs, interleaved_tail = _interleaved_pairs(_lanes), _interleaved_pairs(_tail_lanes)
interleaved_tail16 = _interleaved_pairs(lambda kind: 2 * TAIL_PAIRS)


@njit(inline="always")
def _row_at(a, b, s, h):
    """The byte address of row ``a[b, s, h]`` of a 4-D array."""
    return _UP(a.ctypes.data) + _UP(b) * _UP(a.strides[0]) + _UP(s) * _UP(a.strides[1]) + _UP(h) * _UP(a.strides[2])


@njit(inline="always")
def _table_row_at(t, p):
    """The byte address of row ``t[p]`` of a 2-D table."""
    return _UP(t.ctypes.data) + _UP(p) * _UP(t.strides[0])


@intrinsic
def interleaved_swapped(typingctx, dst, src, cos2, sin2, like):
    """Rotate the pairs (2i, 2i + 1) of one vector of 2-byte features at ``src`` into ``dst``, without splitting them:
    ``x * cos2 + swapped(x) * sin2``, the features of each pair swapped in their lanes (one in-lane shuffle), with
    float32 tables of a token's cos and sin laid out as the features are, each value twice and the sines of the
    first features negated (:func:`rotate_interleaved_swapped`). The bits are :data:`interleaved_pairs`': ``a c +
    b (-s)`` is ``a c - b s`` exactly. Results stored a line at a time, in order."""
    data = _kind(like)
    if data not in ("f16", "bf16"):
        return None
    lanes = 2 * _lanes(data)  # features: a vector of pairs

    def codegen(context, builder, signature, args):
        dst, src, cos2, sin2 = args[:4]
        x = _load(builder, src, data, lanes)
        swapped = builder.shuffle_vector(x, x, ir.Constant(ir.VectorType(_I32, lanes), [k ^ 1 for k in range(lanes)]))
        c, sn = _load(builder, cos2, "f32", lanes), _load(builder, sin2, "f32", lanes)
        _store(builder, builder.fadd(builder.fmul(x, c), builder.fmul(swapped, sn)), dst, data, lanes, True)
        return context.get_dummy_value()

    return types.void(types.uintp, types.uintp, types.uintp, types.uintp, like), codegen


def swapped_applies(x):
    """Whether :func:`rotate_interleaved_swapped` serves x's elements (float16 where the CPU converts it, bfloat16): a
    compile-time constant, False in Python."""
    return False


@overload(swapped_applies, inline="always")
def _swapped_applies_impl(x):
    applies = _kind(x.dtype) in ("f16", "bf16")
    return lambda x: applies


def rotate_interleaved_swapped(x, out, b, s, h, cos2, sin2):
    """Layout code 6 (the interleaved layout, whole vectors) for head ``h`` of token ``(b, s)`` into ``out[b, s, h]``
    by :data:`interleaved_swapped`, with the token's float32 tables ``cos2`` and ``sin2`` of twice the pairs (cos and
    sin of pair ``i`` at ``2i`` and ``2i + 1``, the sine at ``2i`` negated), built once for all heads."""


@overload(rotate_interleaved_swapped, inline="always")
def _rotate_interleaved_swapped_impl(x, out, b, s, h, cos2, sin2):
    if _kind(x.dtype) not in ("f16", "bf16"):
        return lambda x, out, b, s, h, cos2, sin2: None  # not reached: see swapped_applies

    def impl(x, out, b, s, h, cos2, sin2):
        size = _UP(x.itemsize)
        src, dst = _row_at(x, b, s, h), _row_at(out, b, s, h)
        c, sn = _UP(cos2.ctypes.data), _UP(sin2.ctypes.data)
        features = _UP(cos2.shape[0])
        step = _UP(2) * _lanes_of(x[0, 0, 0, 0])
        for j in range(_UP(0), features, step):
            interleaved_swapped(dst + j * size, src + j * size, c + j * _UP(4), sn + j * _UP(4), x[0, 0, 0, 0])

    return impl


def vectors_apply(x, out, cos, sin, sign):
    """Whether :func:`rotate_vectors` serves these types (forwards, ``sign`` None): a compile-time constant in
    compiled code, and False in Python (``NUMBA_DISABLE_JIT``), where the intrinsics cannot run."""
    return False


def _applying_kinds(x, out, cos, sin, sign):
    """The (data, table) kinds where the vector functions serve these array types and sign, else None."""
    if x.dtype != out.dtype or cos.dtype != sin.dtype or not isinstance(sign, (types.NoneType, types.Omitted)):
        return None
    return _pairs_kinds(x.dtype, cos.dtype)


@overload(vectors_apply, inline="always")
def _vectors_apply_impl(x, out, cos, sin, sign):
    applies = _applying_kinds(x, out, cos, sin, sign) is not None
    return lambda x, out, cos, sin, sign: applies


def tails_apply(x, out, cos, sin, sign):
    """Whether :func:`rotate_tails` serves these types: :func:`vectors_apply` and not float64. A compile-time
    constant, so that float64's kernels are compiled as before, without the tails' branch."""
    return False


@overload(tails_apply, inline="always")
def _tails_apply_impl(x, out, cos, sin, sign):
    kinds = _applying_kinds(x, out, cos, sin, sign)
    applies = kinds is not None and kinds[0] in _TAILED
    return lambda x, out, cos, sin, sign: applies


def _lanes_of(like):
    """:func:`pairs_per_vector` for elements like ``like``, a compile-time constant."""
    return _UP(pairs_per_vector(like.itemsize))


@overload(_lanes_of, inline="always")
def _lanes_of_impl(like):
    lanes = _UP(pairs_per_vector(like.bitwidth // 8))
    return lambda like: lanes


def rotate_vectors(x, out, b, s, h, at, cos, sin, p, interleaved):
    """``numrope.kernels.cpu._rotate_head`` a vector of pairs at a time, layout code 5 half and 6 interleaved
    (7 and 8: the whole vectors of rows with a tail), where :func:`vectors_apply`; the launchers give these
    codes only where :func:`vector_code` does."""


@overload(rotate_vectors, inline="always")
def _rotate_vectors_impl(x, out, b, s, h, at, cos, sin, p, interleaved):
    kinds = _pairs_kinds(x.dtype, cos.dtype)
    if kinds is None:
        return lambda x, out, b, s, h, at, cos, sin, p, interleaved: None  # not reached: see vectors_apply
    tailed = kinds[0] in _TAILED

    def impl(x, out, b, s, h, at, cos, sin, p, interleaved):
        size = _UP(x.itemsize)
        table_size = _UP(cos.itemsize)
        half = _UP(cos.shape[1])
        tb, ts, th, o = at
        src, dst = _row_at(x, b, s, h), _row_at(out, tb, ts, th) + _UP(o) * size
        c, sn = _table_row_at(cos, p), _table_row_at(sin, p)
        like = x[0, 0, 0, 0]
        table_like = cos[0, 0]
        lanes = _lanes_of(like)
        whole = half - half % lanes if tailed else half  # the rest, if any, by rotate_tails after the heads
        if interleaved == 5 or interleaved == 7:
            for i in range(_UP(0), whole, lanes):
                half_pairs(
                    dst + i * size,
                    src + i * size,
                    c + i * table_size,
                    sn + i * table_size,
                    half * size,
                    like,
                    table_like,
                )
        else:
            for i in range(_UP(0), whole, lanes):
                j = _UP(2) * i * size
                interleaved_pairs(dst + j, src + j, c + i * table_size, sn + i * table_size, like, table_like)

    return impl


def rotate_half_in_order(x, out, b, s, h, cos, sin, p):
    """:func:`rotate_vectors` for layout code 5 (the half layout, whole vectors) into ``out[b, s, h]``, the lines of a
    row stored in the order of their addresses: two vectors of pairs at a time where the row's pairs are a multiple
    of two vectors (:data:`half_pairs2`), and so the first features' lines, then the second features'.

    Vector by vector, a row of 64 pairs of float16 stores its lines in the order 0, 2, 1, 3, and LLVM's scheduler
    may swap the two of each call. Bare loops that wrote an array other than the copy floor's ran faster in order on
    the Xeon; written into the floor's ``out``, and in the lean kernel with prefetches of the rows ahead, the two
    orders run level (``scripts/store_order.py``; docs/benchmarks.md, the thirteenth pass). For the lean kernel
    (:mod:`numrope.kernels.step`), in a loop of its own: inside the general kernels' loops, where every layout shares
    the registers, the end-to-end call and the BHSD layout ran slower with it."""


@overload(rotate_half_in_order, inline="always")
def _rotate_half_in_order_impl(x, out, b, s, h, cos, sin, p):
    if _pairs_kinds(x.dtype, cos.dtype) is None:
        return lambda x, out, b, s, h, cos, sin, p: None  # not reached: layout code 5 is given only where they apply

    def impl(x, out, b, s, h, cos, sin, p):
        half = _UP(cos.shape[1])
        lanes = _lanes_of(x[0, 0, 0, 0])
        if half % (_UP(2) * lanes) != _UP(0):
            rotate_vectors(x, out, b, s, h, (b, s, h, _UP(0)), cos, sin, p, 5)
            return
        size = _UP(x.itemsize)
        table_size = _UP(cos.itemsize)
        src, dst = _row_at(x, b, s, h), _row_at(out, b, s, h)
        c, sn = _table_row_at(cos, p), _table_row_at(sin, p)
        for i in range(_UP(0), half, _UP(2) * lanes):
            half_pairs2(
                dst + i * size,
                src + i * size,
                c + i * table_size,
                sn + i * table_size,
                half * size,
                x[0, 0, 0, 0],
                cos[0, 0],
            )

    return impl


_TAIL = _UP(TAIL_PAIRS)


def rotate_tails(x, out, b, s, cos, sin, p, interleaved):
    """The pairs past the whole vectors of every head of token (b, s), :data:`TAIL_PAIRS` at a time (bfloat16: one
    vector of twice that first, where as many are left): layout code 7 half, 8 interleaved (by plain stores).
    After the token's heads, not after each: a tail loop inside the heads' loop, even where it never runs, made
    the float32 half layout at head 128 run at 0.89 - 0.90 of the copy floor instead of 0.97, and float32 in
    place at 3.6 - 3.7 ms instead of 2.9 - 3.05 (see ``numrope.kernels.cpu._rotate_token``)."""


@overload(rotate_tails, inline="always")
def _rotate_tails_impl(x, out, b, s, cos, sin, p, interleaved):
    kinds = _pairs_kinds(x.dtype, cos.dtype)
    if kinds is None or kinds[0] not in _TAILED:
        return lambda x, out, b, s, cos, sin, p, interleaved: None  # not reached: see vector_code
    wide = kinds[0] in _WIDE_TAILED

    def impl(x, out, b, s, cos, sin, p, interleaved):
        size = _UP(x.itemsize)
        table_size = _UP(cos.itemsize)
        half = _UP(cos.shape[1])
        like = x[0, 0, 0, 0]
        table_like = cos[0, 0]
        whole = half - half % _lanes_of(like)
        first = whole + _UP(2) * _TAIL if wide and half - whole >= _UP(2) * _TAIL else whole
        w, t = whole * size, whole * table_size
        c, sn = _table_row_at(cos, p), _table_row_at(sin, p)
        token = _UP(b) * _UP(x.strides[0]) + _UP(s) * _UP(x.strides[1])
        out_token = _UP(b) * _UP(out.strides[0]) + _UP(s) * _UP(out.strides[1])
        for h in range(_UP(x.shape[2])):
            src = _UP(x.ctypes.data) + token + h * _UP(x.strides[2])
            dst = _UP(out.ctypes.data) + out_token + h * _UP(out.strides[2])
            if first != whole:  # one vector of 16 pairs first, at byte w of the row and t of the table row
                if interleaved == 7:
                    half_tail16(dst + w, src + w, c + t, sn + t, half * size, like, table_like)
                else:
                    interleaved_tail16(dst + _UP(2) * w, src + _UP(2) * w, c + t, sn + t, like, table_like)
            if interleaved == 7:
                for i in range(first, half, _TAIL):
                    half_tail(
                        dst + i * size,
                        src + i * size,
                        c + i * table_size,
                        sn + i * table_size,
                        half * size,
                        like,
                        table_like,
                    )
            else:
                for i in range(first, half, _TAIL):
                    j = _UP(2) * i * size
                    interleaved_tail(dst + j, src + j, c + i * table_size, sn + i * table_size, like, table_like)

    return impl


# Left to LLVM to inline: inlined by Numba, float32 in place at head 128 (no tail) took 3.5 ms instead of 2.8
@njit
def token_tails(x, out, b, s, cos, sin, p, interleaved):
    """:func:`rotate_tails`, for ``numrope.kernels.cpu._rotate_token`` after a token's heads, where
    :func:`tails_apply` and the layout code is 7 or 8."""
    rotate_tails(x, out, b, s, cos, sin, p, interleaved)


# The (data, table) dtypes of the kernels' views that _pairs_kinds takes, for the launchers: one source
_CANDIDATES = [np.dtype(t) for t in (np.float32, np.float64, np.uint16, np.int16)]
_VECTOR_DTYPES = {
    data: tuple(t for t in _CANDIDATES if _pairs_kinds(numba.from_dtype(data), numba.from_dtype(t)) is not None)
    for data in _CANDIDATES
}


#: The kernels' 2-byte views whose interleaved rows with a table take the vector kernels, not the words kernel
#: (``numrope.kernels.cpu._rotate_words``): bfloat16 rounded by the CPU's conversion, and float16 where the CPU
#: converts it. bfloat16, one thread, (1, 4096, 32, 128), out= and in place: 2.38 - 2.44 and 1.70 ms against the words
#: kernel's 2.66 - 2.68 and 2.15 (Zen 4); rounded by arithmetic the vector kernels are the slower, 2.97 and 2.72 ms.
#: float16 on the Xeon, widened before its split (:data:`interleaved_pairs`): out= 0.86 - 0.92 of the copy floor
#: against 0.68 - 0.77, in place 1.85 - 1.93 ms against 3.0; split as words in the vectors it had been the slower on
#: Zen 4, 2.89 - 3.09 and 2.28 - 2.37 against 2.33 - 2.60 and 1.89 - 1.93. Widened first, not measured on Zen 4.
WORDS_IN_VECTORS = tuple(
    np.dtype(t) for t, fast in ((np.int16, BFLOAT16_IN_HARDWARE), (np.uint16, HALF_IN_HARDWARE)) if fast
)


def _same_data(a, b):
    """Whether two of the kernels' views are the same elements (in place)."""
    return a.__array_interface__["data"][0] == b.__array_interface__["data"][0] and a.strides == b.strides


@register_jitable
def _code_for(code, half, lanes, tails, same, streamed):
    """The layout code for rows of ``half`` pairs, vectors of ``lanes`` pairs and tails as ``tails`` has them (0
    none, 1 everywhere, 2 in place only; ``same``: in place): :func:`vector_code`'s rule, in Python and in
    compiled code (:func:`step_code`)."""
    if half % lanes == 0:
        return 6 if code == 1 else 5
    if tails != 0 and half % TAIL_PAIRS == 0 and not streamed and (tails == 1 or same):
        return 8 if code == 1 else 7
    return code


def _tails_of(kind):
    """:func:`_code_for`'s ``tails`` for a data kind."""
    return 0 if kind not in _TAILED else 2 if kind in _TAILED_IN_PLACE else 1


#: :func:`_code_for`'s ``tails`` for the kernels' views, by dtype (:data:`_TAILED`, :data:`_TAILED_IN_PLACE`)
_TAILS_BY_DTYPE = {t: _tails_of(_kind(numba.from_dtype(t))) for t in _CANDIDATES}


def vector_code(code, x4, target4, cos, sin, streamed=False):
    """Layout code 5 for the half layout (0, or 4 where rows are not written in order) and 6 for the interleaved
    one (1), where :func:`rotate_vectors` applies: the kernels' views (:mod:`numrope.kernels.cpu`) of a dtype
    and table dtype it takes, rows and table rows contiguous, and half a multiple of a vector's lanes. 7 and 8
    where rows of float32 or bfloat16 (of float16, in place only) end in a tail of whole :data:`TAIL_PAIRS`
    (:func:`rotate_tails`), unless the kernel writes by streaming stores (``streamed``), which write each
    head's row before the token's tails. ``code`` otherwise, and always without the JIT."""
    dtype = x4.dtype
    # code 4 in float64 writes rows in order, each half in turn (numrope.kernels.cpu._in_order): kept
    if not (code == 0 or code == 1 or (code == 4 and dtype.char != "d")) or numba.config.DISABLE_JIT:
        return code
    size = dtype.itemsize
    if (
        cos.dtype not in _VECTOR_DTYPES.get(dtype, ())
        or sin.dtype != cos.dtype
        or target4.dtype != dtype
        or x4.strides[3] != size
        or target4.strides[3] != size
        or cos.strides[-1] != cos.itemsize
        or sin.strides[-1] != sin.itemsize
    ):
        return code
    half, lanes = cos.shape[-1], pairs_per_vector(size)
    tails = _TAILS_BY_DTYPE.get(dtype, 0)
    same = tails == 2 and half % lanes != 0 and _same_data(x4, target4)
    return _code_for(code, half, lanes, tails, same, streamed)


def step_code(x, out, cos, sin, code, same):
    """:func:`vector_code` in compiled code, for the kernels' arrays ``x``, ``out`` and tables ``cos`` and
    ``sin`` (forwards, plain stores), ``code`` 0 or 1 and ``same`` whether ``out`` is ``x``: the decoding step's
    (:mod:`numrope.kernels.step`). ``code`` without the JIT."""
    return code


@overload(step_code, inline="always")
def _step_code_impl(x, out, cos, sin, code, same):
    kinds = _applying_kinds(x, out, cos, sin, types.none)
    # float64 keeps LLVM's loops: a decoding step (1, 1, 32, 128) into out= took 2.8 us by the vectors against
    # 2.1, and in place as long either way
    if kinds is None or kinds[0] == "f64":
        return lambda x, out, cos, sin, code, same: code
    lanes, tails = _UP(_lanes(kinds[0])), _tails_of(kinds[0])

    def impl(x, out, cos, sin, code, same):
        if x.strides[3] != x.itemsize or out.strides[3] != out.itemsize:
            return code
        if cos.strides[1] != cos.itemsize or sin.strides[1] != sin.itemsize:
            return code
        return _code_for(code, _UP(cos.shape[1]), lanes, tails, same, False)

    return impl
