"""Software prefetch of the rows a kernel reaches next: the lines ``AHEAD`` bytes past the row it rotates, of ``x`` to
read and of ``out`` to write.

A rotation into ``out=`` reads every line of ``x`` and, before it writes a line of ``out``, reads that too (the
store's read for ownership). The hardware prefetchers follow both streams, but on one thread they did not keep up
with the vector kernels: bare loops over (1, 4096, 32, 128), a float32 table, one thread, on the Xeon, ran at 0.93 -
0.97 of the copy floor for float16 and bfloat16 without prefetches and 1.02 - 1.11 with both (``python
scripts/prefetch_ahead.py``). A prefetch is a hint: it changes no result and never faults, so a row ahead that lies
past the arrays' ends (the last rows) is simply not prefetched.
"""

import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from numrope.kernels.jit import njit
from numrope.kernels.simd import _row_at

_UP = np.uintp
#: Bytes between the row rotated and the row prefetched: 16 rows of a float16 head of 128, 8 of float32. Over 2 to 32
#: float16 rows ahead, 16 gave the most (1.09 - 1.11 of the floor against 1.04 - 1.05 at 4 and 8).
AHEAD = 4096
_LINE = 64


def _prefetch_of(write):
    """An intrinsic prefetching the cache line at a byte address into every level, to read (0) or to write (1)."""

    @intrinsic
    def prefetch(typingctx, address):
        def codegen(context, builder, signature, args):
            byte = ir.IntType(8).as_pointer()
            i32 = ir.IntType(32)
            llvm_prefetch = builder.module.declare_intrinsic(
                "llvm.prefetch", [byte], ir.FunctionType(ir.VoidType(), [byte, i32, i32, i32])
            )
            # (address, read or write, locality 3: keep in every level, data cache)
            pointer = builder.inttoptr(args[0], byte)
            builder.call(llvm_prefetch, [pointer, i32(write), i32(3), i32(1)])
            return context.get_dummy_value()

        return types.void(types.uintp), codegen

    return prefetch


_prefetch_to_read, _prefetch_to_write = _prefetch_of(0), _prefetch_of(1)


@njit(inline="always")
def prefetch_ahead(x, out, b, s, h):
    """Prefetch the lines ``AHEAD`` bytes past row ``(b, s, h)`` of the 4-D arrays ``x`` (to read) and ``out`` (to
    write), as many as the row has, where they lie within the arrays."""
    row = _UP(x.shape[3]) * _UP(x.itemsize)
    src = _row_at(x, b, s, h) + _UP(AHEAD)
    dst = _row_at(out, b, s, h) + _UP(AHEAD)
    if src + row <= _UP(x.ctypes.data) + _UP(x.size) * _UP(x.itemsize):
        for j in range(_UP(0), row, _UP(_LINE)):
            _prefetch_to_read(src + j)
    if dst + row <= _UP(out.ctypes.data) + _UP(out.size) * _UP(out.itemsize):
        for j in range(_UP(0), row, _UP(_LINE)):
            _prefetch_to_write(dst + j)
