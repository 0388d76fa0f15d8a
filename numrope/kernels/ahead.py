"""Software prefetch of the rows a kernel reaches next: the lines ``AHEAD`` bytes past the row it rotates, of ``x`` to
read and, into ``out=``, of ``out`` to write.

A rotation into ``out=`` reads every line of ``x`` and, before it writes a line of ``out``, reads that too (the
store's read for ownership). The hardware prefetchers follow both streams, but on one thread they do not keep the
memory busy while the vector kernels compute. Bare loops over (1, 4096, 32, 128), the half layout, a float32 table,
into ``out=``, one thread, on the Xeon, as shares of the copy floor (``python scripts/prefetch_ahead.py``, two runs):
float16 0.91 - 0.99 without prefetches, 1.05 - 1.07 with both 16 rows (4 KiB) ahead; bfloat16 0.93 - 0.94 against
1.05; float32 0.88 - 0.96 against 1.25 - 1.26. In place the line read is the line written: a write prefetch there
made float16 half rows slower than none (1.46 - 1.65 of the floor against 1.59 - 1.73); a read prefetch left them
level, bfloat16's 5% slower (1.39 - 1.46 against 1.47 - 1.54), and took float32 from 1.78 - 2.02 to 2.54 - 2.76 (each
run alternately with the kernel without, in one process, by a scratch harness). Used by the lean kernel
(:mod:`numrope.kernels.step`) only, in two of its three loops (see there): in the general kernels' token loop the
end-to-end call and the BHSD layout ran slower with it (float16 end to end 0.49 - 0.50 of its floor against 0.61 -
0.70, BHSD 0.31 - 0.35 against 0.38 - 0.40).

A prefetch is a hint: it changes no result and never faults; a row ahead past an array's end is not prefetched.
"""

import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic, overload

from numrope.kernels.simd import _row_at

_UP = np.uintp
#: Bytes between the row rotated and the row prefetched: 16 rows of a float16 head of 128, 8 of float32. Over 2 to 32
#: float16 rows ahead, 16 and 32 gave the most (1.05 - 1.07 of the floor; 1.02 - 1.03 at 4 rows, 1.03 - 1.06 at 8).
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


def prefetch_ahead(x, out, b, s, h):
    """Prefetch the lines ``AHEAD`` bytes past row ``(b, s, h)`` of the 4-D arrays ``x`` (to read) and, unless it is
    ``x``, ``out`` (to write), as many as the row has, where they lie within the arrays. Compiled code only: this
    Python body, which runs under ``NUMBA_DISABLE_JIT``, does nothing, as a hint may."""


@overload(prefetch_ahead, inline="always")
def _prefetch_ahead_impl(x, out, b, s, h):
    def impl(x, out, b, s, h):
        row = _UP(x.shape[3]) * _UP(x.itemsize)
        src = _row_at(x, b, s, h) + _UP(AHEAD)
        dst = _row_at(out, b, s, h) + _UP(AHEAD)
        if src + row <= _UP(x.ctypes.data) + _UP(x.size) * _UP(x.itemsize):
            for j in range(_UP(0), row, _UP(_LINE)):
                _prefetch_to_read(src + j)
        if dst != src and dst + row <= _UP(out.ctypes.data) + _UP(out.size) * _UP(out.itemsize):
            for j in range(_UP(0), row, _UP(_LINE)):
                _prefetch_to_write(dst + j)

    return impl
