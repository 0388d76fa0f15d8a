"""Streaming stores: outputs larger than the last-level cache written around the caches.

A store to a line that is not in cache first reads the line from memory (read for ownership), so a
rotation into an output that does not fit in cache moves three bytes over the memory bus for every two
it needs: ``x`` read, ``out`` read, ``out`` written. A streaming (non-temporal) store writes a whole
64-byte line without reading it. Measured on one thread of the benchmark machine (Zen 4), (1, 4096, 32,
128) with a table and ``out=``, as shares of the copy floor (a copy by plain stores): float32 half layout
0.84 - 0.91 by plain stores, 0.96 - 1.07 streamed; float64 half 1.13 -> 1.39 - 1.42, interleaved
1.45 - 1.48 -> 1.62 - 1.67; float32 interleaved 0.83 - 0.94 either way (``scripts/streaming_stores.py``,
docs/benchmarks.md).

Streaming stores take whole, aligned lines, and numrope's kernels store one element at a time. A
kernel that streams rotates each head's row into one of three line-aligned slots of a per-chunk
buffer, and streams it a row later, once its stores have reached the cache. Where rows start
``shift`` bytes into a line of ``out``, each line of ``out`` is loaded from ``shift`` bytes before
the row's place in the buffer: the end of the row before, in the slot before (or, for the first slot,
a guard line holding the end of the third). Only the first partial line of a chunk of tokens and the
last partial line of its last row are stored plainly (:func:`stream_row`, :func:`flush`). Rows must
follow each other in memory for that (a C-contiguous output), unless each starts on a line
(:func:`plan`).

Streaming is worth it only where the output would be evicted before it is read again anyway: outputs of
at least :data:`MIN_BYTES`, the size of the last-level cache, at most :data:`CAP_BYTES`, and not outputs made
for the call (:func:`plan`). It is used on x86-64 only, the machines it was measured on, and never with
``NUMBA_DISABLE_JIT``.
"""

import glob
import platform

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from numrope.kernels.jit import njit

#: Bytes in a cache line, the unit of a streaming store.
LINE = 64
_UP = np.uintp
_LINE = _UP(LINE)


def _last_level_cache(default=32 << 20):
    """The size in bytes of this machine's largest cache as Linux reports it, or ``default``."""
    sizes = []
    for path in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*/size"):
        try:
            with open(path) as fh:
                text = fh.read().strip()
            sizes.append(int(text[:-1]) << {"K": 10, "M": 20, "G": 30}[text[-1]])
        except (OSError, ValueError, KeyError, IndexError):
            continue
    return max(sizes, default=default)


#: The most :data:`MIN_BYTES` may be. A virtual machine's share of a large shared L3 is not the size Linux reports
#: for it: on two vCPUs of an Intel Xeon reporting 480 MiB, streaming was the faster from 64 MiB outputs on (float32
#: and float64, both layouts: 1.20 - 1.47 of the copy floor against 0.74 - 1.08 by plain stores), and at 32 MiB not
#: in the half layout (float32 0.99 - 1.07 against 0.99 - 1.29, float64 1.09 against 1.37;
#: ``scripts/streaming_threshold.py``, docs/benchmarks.md).
CAP_BYTES = 64 << 20
#: Outputs of at least this many bytes are streamed: the last-level cache would not hold them.
MIN_BYTES = min(_last_level_cache(), CAP_BYTES)
#: Outputs of smaller elements are not streamed: float16 and bfloat16's conversions bound the kernel on one thread,
#: and the row buffer's traffic is then not hidden (Zen 4: (1, 4096, 32, 128) half layout 0.76 -> 0.60 of the
#: copy floor; docs/benchmarks.md for the Xeon, where the interleaved layout gained).
MIN_ITEMSIZE = 4
#: Whether kernels may stream here: x86-64, where the streaming stores and the fence were measured.
AVAILABLE = platform.machine().lower() in ("x86_64", "amd64")


@intrinsic
def _store_line(typingctx, dst, src):
    """Copy 64 bytes from address ``src`` to the line at address ``dst`` (line-aligned) by a streaming store."""

    def codegen(context, builder, signature, args):
        line = ir.VectorType(ir.IntType(64), LINE // 8)
        dst_ptr = builder.inttoptr(args[0], line.as_pointer())
        src_ptr = builder.inttoptr(args[1], line.as_pointer())
        store = builder.store(builder.load(src_ptr, align=1), dst_ptr, align=LINE)
        store.set_metadata("nontemporal", builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)]))
        return context.get_dummy_value()

    return types.void(types.uintp, types.uintp), codegen


@intrinsic
def _fence(typingctx):
    """A full memory fence: streaming stores are weakly ordered, and other threads read ``out`` after the kernel."""

    def codegen(context, builder, signature, args):
        builder.fence("seq_cst")
        return context.get_dummy_value()

    return types.void(), codegen


@njit(inline="always")
def buffer_start(lines):
    """The first element of ``lines`` (a C-contiguous ``(chunks, 1, 1, width)`` buffer) on a line boundary."""
    return ((_LINE - (_UP(lines.ctypes.data) & (_LINE - _UP(1)))) & (_LINE - _UP(1))) // _UP(lines.itemsize)


@njit(inline="always")
def row_at(out, lines, start, n):
    """Where in ``lines[c]`` the kernel puts the chunk's row number ``n``: after a guard line, in slot ``n % 3``.

    Three slots, because row ``n`` is computed while row ``n - 1`` waits to be streamed, which needs the
    end of row ``n - 2``."""
    size = _UP(lines.itemsize)
    return start + (_LINE + (_UP(n) % _UP(3)) * _UP(out.shape[3]) * size) // size


@njit(inline="always")
def stream_row(out, b, s, h, lines, c, start, shift, n):
    """Write row ``(b, s, h)``, the chunk's row number ``n``, to ``out`` from its slot (:func:`row_at`).

    Called a row after the kernel filled the slot, so that the row's stores have reached the cache: a
    line loaded straight after the several stores that wrote it waits for them (the store buffer cannot
    forward them to one load). Whole lines of ``out`` go by streaming stores. With ``shift`` (the byte
    at which each row starts within a line of ``out``), a row's first line begins with the last
    ``shift`` bytes of the row before it, which lie just before its slot: the slot before, or, for slot
    0, the guard line, where the end of slot 2 is copied. The chunk's first row stores its first
    partial line plainly (``n`` 0), and :func:`flush` the last row's last.
    """
    size = _UP(lines.itemsize)
    row_bytes = _UP(out.shape[3]) * size
    here = row_at(out, lines, start, n)
    dst = _UP(out.ctypes.data) + _UP(b) * _UP(out.strides[0]) + _UP(s) * _UP(out.strides[1])
    dst += _UP(h) * _UP(out.strides[2]) - shift
    src = _UP(lines.ctypes.data) + (_UP(c) * _UP(lines.shape[3]) + here) * size - shift
    first_whole = _UP(0)
    if shift and n == 0:
        for k in range((_LINE - shift) // size):
            out[b, s, h, k] = lines[c, 0, 0, here + k]
        first_whole = _UP(1)
    for k in range(first_whole, row_bytes // _LINE):
        _store_line(dst + _LINE * k, src + _LINE * k)
    if shift and _UP(n) % _UP(3) == _UP(2):
        lead = shift // size
        for k in range(lead):
            lines[c, 0, 0, start + _LINE // size - lead + k] = lines[c, 0, 0, here + row_bytes // size - lead + k]


@njit(inline="always")
def flush(out, b, s, h, lines, c, start, shift, n):
    """Finish a chunk whose last row, number ``n``, is ``(b, s, h)``: stream it, store its last partial line and
    fence the chunk's streaming stores."""
    stream_row(out, b, s, h, lines, c, start, shift, n)
    size = _UP(lines.itemsize)
    here = row_at(out, lines, start, n)
    for k in range(_UP(out.shape[3]) - shift // size, _UP(out.shape[3])):
        out[b, s, h, k] = lines[c, 0, 0, here + k]
    _fence()


def plan(x4, out4, chunks, new=False):
    """``(lines, shift)`` for a kernel streaming into the 4-D ``out4`` in ``chunks`` chunks of tokens, or None
    where it should store plainly.

    Not into an output made for the call (``new``): its pages are first touched by the kernel's stores, and the
    operating system zeroes each page it hands out through the cache, so that a streaming store would then
    evict a line just written. On two vCPUs of an Intel Xeon, ``apply_rope(x, cfg)`` of (1, 4096, 32, 128)
    float32 into a new array took 21.8 ms streamed and 15.6 ms by plain stores (``scripts/streaming_threshold.py``).

    Streaming needs rows (``out4[b, s, h]``, contiguous) of whole lines, and either every row starting on a
    line boundary (any strides that are multiples of a line) or rows that follow each other in memory in
    the kernels' order (token by token, head by head: a C-contiguous ``out4``), so that each row's last
    partial line is completed by the next. ``lines`` is the per-chunk row buffer :func:`stream_row` reads.
    """
    if new or not AVAILABLE or numba.config.DISABLE_JIT or out4.nbytes < MIN_BYTES:
        return None
    size = out4.itemsize
    if size < MIN_ITEMSIZE:
        return None
    row_bytes = out4.shape[3] * size
    if out4.strides[3] != size or row_bytes % LINE or np.may_share_memory(x4, out4):
        return None
    shift = out4.ctypes.data % LINE
    if shift % size:  # an unaligned array (a view at an odd byte offset): no element starts a line
        return None
    aligned = all(stride % LINE == 0 for stride, n in zip(out4.strides[:3], out4.shape[:3], strict=True) if n > 1)
    if not (out4.flags.c_contiguous or (shift == 0 and aligned)):
        return None
    # a guard line, three slots of a row, and room to start on a line boundary; whole lines, so every
    # chunk's buffer starts at the same offset within a line
    width = (3 * row_bytes + 2 * LINE) // size
    return np.empty((chunks, 1, 1, width), out4.dtype), shift
