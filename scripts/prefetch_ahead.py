"""Rows rotated with or without software prefetches of the rows ahead: float16, bfloat16 and float32, (1, 4096, 32,
128), the half layout, a float32 table, into ``out=``, one thread, CPU time, as shares of the copy floor
(``numrope bench``'s schedule: each loop timed in rounds of its own with the floor).

Bare Numba loops over the tokens and heads, each row by ``numrope.kernels.simd.rotate_half_in_order``, the lean
kernel's: ``none`` prefetches nothing; ``N rows`` prefetches, before each row, the lines N rows past it in ``x`` (to
read) and in ``out`` (to write), as ``numrope.kernels.ahead.prefetch_ahead`` does ``AHEAD`` bytes past it. Then
numrope's own call. Each loop is checked against numrope's bits first.

    python scripts/prefetch_ahead.py [dtype ...]      (default: float16 bfloat16 float32)
"""

import sys
import time

import numba
import numpy as np

import numrope
from numrope.cli.bench.timing import parallel_copy, time_calls
from numrope.kernels.ahead import _prefetch_to_read, _prefetch_to_write
from numrope.kernels.simd import rotate_half_in_order

U = np.uintp
DISTANCES = (2, 4, 8, 16, 32)  # rows ahead


@numba.njit
def rotate(x, out, cos, sin, rows_ahead):
    row = U(x.shape[3] * x.itemsize)
    src, dst = U(x.ctypes.data), U(out.ctypes.data)
    n_rows = U(x.shape[1] * x.shape[2])
    for s in range(x.shape[1]):
        for h in range(x.shape[2]):
            ahead = U(s * x.shape[2] + h) + U(rows_ahead)
            if rows_ahead and ahead < n_rows:
                for j in range(U(0), row, U(64)):
                    _prefetch_to_read(src + ahead * row + j)
                    _prefetch_to_write(dst + ahead * row + j)
            rotate_half_in_order(x, out, 0, s, h, cos, sin, s)


BITS = {"float16": np.uint16, "bfloat16": np.int16, "float32": np.float32}


def measure(name):
    if name == "bfloat16":
        import ml_dtypes

        dtype = np.dtype(ml_dtypes.bfloat16)
    else:
        dtype = np.dtype(name)
    cfg = numrope.RopeConfig(128)
    x = np.random.default_rng(0).standard_normal((1, 4096, 32, 128), dtype=np.float32).astype(dtype)
    out = np.empty_like(x)  # every loop writes it, as the floor does: another array would time another cache state
    bits, out_bits = x.view(BITS[name]), out.view(BITS[name])
    cos, sin = numrope.rope_cache(cfg, 4096, dtype=np.float32)
    expected = numrope.apply_rope(x, cfg, cache=(cos, sin)).view(np.uint8)
    calls = {}
    for rows in (0, *DISTANCES):
        out[...] = 0
        rotate(bits, out_bits, cos, sin, rows)
        if not np.array_equal(out.view(np.uint8), expected):
            sys.exit(f"the loop prefetching {rows} rows ahead differs from numrope's result")
        calls[f"{rows} rows" if rows else "none"] = lambda rows=rows: rotate(bits, out_bits, cos, sin, rows)
    calls["numrope"] = lambda: numrope.apply_rope(x, cfg, cache=(cos, sin), out=out)
    for _ in range(2):
        shares = []
        for label, call in calls.items():
            t = time_calls({"floor": lambda: parallel_copy(x, out), label: call}, repeat=7, clock=time.thread_time)
            shares.append(f"{label} {t['floor'] / t[label]:.2f} [{t['floor'] * 1e3:.2f}/{t[label] * 1e3:.2f}]")
        print(f"{name:8s}  " + "  ".join(shares), flush=True)


if __name__ == "__main__":
    numba.set_num_threads(1)
    for name in sys.argv[1:] or ["float16", "bfloat16", "float32"]:
        if name not in BITS:
            sys.exit(f"usage: python scripts/prefetch_ahead.py [float16|bfloat16|float32 ...], got {name!r}")
        measure(name)
