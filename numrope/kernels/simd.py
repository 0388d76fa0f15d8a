"""Pairs rotated a 64-byte vector at a time, written as LLVM vector code.

LLVM vectorises the kernels' pair loops itself, but each vectorised loop first checks at run time that
``out`` does not overlap ``x`` or the table, which it cannot know, and runs its scalar loop where they
do: in place, always (float32 (1, 4096, 32, 128) in place: 6.3 ms, against 2.5 ms here). Out of place the
checks and the walk to the vector loop take some forty instructions a head's row, as many as its vector
work. The functions here are straight-line code, one vector of pairs each, with nothing to check: every
load precedes every store, so they are right in place too. float32 and float64, with a table of the same
dtype, the arithmetic of the general loops operation for operation (each product and sum rounded on its
own, no fused multiply-add), so the bits are theirs. Addresses are byte addresses.
"""

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic, overload

#: Bytes in one vector of pairs' first (or second) features.
VECTOR = 64
_UP = np.uintp
_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)


def _float(fp):
    return ir.FloatType() if fp.bitwidth == 32 else ir.DoubleType()


def _vector_ops(builder, fp):
    lanes = VECTOR // (fp.bitwidth // 8)
    vec = ir.VectorType(_float(fp), lanes)
    align = fp.bitwidth // 8

    def load(address):
        return builder.load(builder.inttoptr(address, vec.as_pointer()), align=align)

    def store(value, address):
        builder.store(value, builder.inttoptr(address, vec.as_pointer()), align=align)

    return lanes, load, store


def _rotated(builder, x0, x1, c, s):
    """x0 c - x1 s, x1 c + x0 s: two products and a sum each, rounded one at a time (no fused multiply-add)."""
    first = builder.fsub(builder.fmul(x0, c), builder.fmul(x1, s))
    return first, builder.fadd(builder.fmul(x1, c), builder.fmul(x0, s))


def _float_like(like):
    return isinstance(like, types.Float) and like.bitwidth in (32, 64)


@intrinsic
def half_pairs(typingctx, dst, src, cos, sin, half_bytes, like):
    """Rotate the pairs (i, i + half) for one vector of i: features at ``src`` and ``src + half_bytes``, their
    cos and sin at ``cos`` and ``sin``, results to ``dst`` and ``dst + half_bytes``."""
    if not _float_like(like):
        return None

    def codegen(context, builder, signature, args):
        dst, src, cos, sin, half_bytes, _ = args
        _, load, store = _vector_ops(builder, like)
        lo, hi = _rotated(builder, load(src), load(builder.add(src, half_bytes)), load(cos), load(sin))
        store(lo, dst)
        store(hi, builder.add(dst, half_bytes))
        return context.get_dummy_value()

    return types.void(types.uintp, types.uintp, types.uintp, types.uintp, types.uintp, like), codegen


@intrinsic
def interleaved_pairs(typingctx, dst, src, cos, sin, like):
    """Rotate the pairs (2i, 2i + 1) for one vector of i: two vectors of features at ``src``, their cos and sin
    at ``cos`` and ``sin``, results to two vectors at ``dst``. The features are split into evens and odds and
    joined back by two shuffles each way."""
    if not _float_like(like):
        return None

    def codegen(context, builder, signature, args):
        dst, src, cos, sin, _ = args
        lanes, load, store = _vector_ops(builder, like)
        step = ir.Constant(ir.IntType(64), VECTOR)
        mask = lambda picks: ir.Constant(ir.VectorType(ir.IntType(32), lanes), picks)  # noqa: E731
        a, b = load(src), load(builder.add(src, step))
        x0 = builder.shuffle_vector(a, b, mask([2 * k for k in range(lanes)]))
        x1 = builder.shuffle_vector(a, b, mask([2 * k + 1 for k in range(lanes)]))
        lo, hi = _rotated(builder, x0, x1, load(cos), load(sin))
        store(builder.shuffle_vector(lo, hi, mask([k // 2 + (k % 2) * lanes for k in range(lanes)])), dst)
        joined = [lanes // 2 + k // 2 + (k % 2) * lanes for k in range(lanes)]
        store(builder.shuffle_vector(lo, hi, mask(joined)), builder.add(dst, step))
        return context.get_dummy_value()

    return types.void(types.uintp, types.uintp, types.uintp, types.uintp, like), codegen


def vectors_apply(x, out, cos, sin, sign):
    """Whether :func:`rotate_vectors` serves these types: float32 or float64 data, a table of that dtype,
    forwards (``sign`` None). A compile-time constant in compiled code, and False in Python
    (``NUMBA_DISABLE_JIT``), where the intrinsics cannot run."""
    return False


@overload(vectors_apply, inline="always")
def _vectors_apply_impl(x, out, cos, sin, sign):
    applies = isinstance(x.dtype, types.Float) and x.dtype == out.dtype == cos.dtype == sin.dtype
    applies = applies and isinstance(sign, (types.NoneType, types.Omitted))
    return lambda x, out, cos, sin, sign: applies


def rotate_vectors(x, out, b, s, h, at, cos, sin, p, interleaved):
    """``numrope.kernels.cpu._rotate_head`` a vector of pairs at a time, layout code 5 half and 6
    interleaved, where :func:`vectors_apply`; the launcher gives these codes only to contiguous rows and table
    rows whose half is a multiple of a vector's lanes (:func:`vector_code`)."""


@overload(rotate_vectors, inline="always")
def _rotate_vectors_impl(x, out, b, s, h, at, cos, sin, p, interleaved):
    if not (isinstance(x.dtype, types.Float) and x.dtype == out.dtype == cos.dtype == sin.dtype):
        return lambda x, out, b, s, h, at, cos, sin, p, interleaved: None  # not reached: see vectors_apply

    def impl(x, out, b, s, h, at, cos, sin, p, interleaved):
        size = _UP(x.itemsize)
        row_bytes = _UP(cos.shape[1]) * size  # the bytes of each feature of the pairs: half the rotary part's
        tb, ts, th, o = at
        src = _UP(x.ctypes.data) + _UP(b) * _UP(x.strides[0]) + _UP(s) * _UP(x.strides[1]) + _UP(h) * _UP(x.strides[2])
        dst = _UP(out.ctypes.data) + _UP(tb) * _UP(out.strides[0]) + _UP(ts) * _UP(out.strides[1])
        dst += _UP(th) * _UP(out.strides[2]) + _UP(o) * size
        c = _UP(cos.ctypes.data) + _UP(p) * _UP(cos.strides[0])
        sn = _UP(sin.ctypes.data) + _UP(p) * _UP(sin.strides[0])
        like = x[0, 0, 0, 0]
        if interleaved == 5:
            for k in range(_UP(0), row_bytes, _UP(VECTOR)):
                half_pairs(dst + k, src + k, c + k, sn + k, row_bytes, like)
        else:
            for k in range(_UP(0), row_bytes, _UP(VECTOR)):
                interleaved_pairs(dst + _UP(2) * k, src + _UP(2) * k, c + k, sn + k, like)

    return impl


def vector_code(code, x4, target4, cos, sin):
    """Layout code 5 for the half layout (0, or 4 where rows are not written in order) and 6 for the interleaved
    one (1), where :func:`rotate_vectors` applies: float32 or float64 with a table of the same dtype, rows
    and table rows contiguous, and half a multiple of a vector's lanes; ``code`` otherwise, and always
    without the JIT."""
    dtype = x4.dtype
    if not (code == 0 or code == 1 or (code == 4 and dtype == _F32)) or numba.config.DISABLE_JIT:
        return code
    size = dtype.itemsize
    if (
        (dtype != _F32 and dtype != _F64)
        or cos.dtype != dtype
        or sin.dtype != dtype
        or target4.dtype != dtype
        or cos.shape[-1] % (VECTOR // size)
        or x4.strides[3] != size
        or target4.strides[3] != size
        or cos.strides[-1] != size
        or sin.strides[-1] != size
    ):
        return code
    return 6 if code == 1 else 5
