"""float16 rows of 128 features in the half layout with a float32 table, rotated by bare Numba loops over the
vector functions of ``numrope.kernels.simd``: two calls of 32 pairs a row (as numrope's kernels call them, storing
lines 0, 2, 1, 3 of a row) against one call of 64 (lines in order), and numrope's own call, as shares of the copy
floor; one thread, CPU time, ``out=``, two rounds a size. Each loop is checked against numrope's bits first.

    python scripts/half_vectors_per_row.py [seq ...]      (default: 128 4096 16384; heads 32)
"""

import sys
import time

import numba
import numpy as np

import numrope
from numrope.cli.bench.timing import parallel_copy, time_calls
from numrope.kernels.simd import _half_pairs, half_pairs

half_pairs64 = _half_pairs(lambda kind: 64)
U = np.uintp


@numba.njit(inline="always")
def two_calls_a_row(dst, src, c, s):
    like, table_like = np.uint16(0), np.float32(0)
    half_pairs(dst, src, c, s, U(128), like, table_like)
    half_pairs(dst + U(64), src + U(64), c + U(128), s + U(128), U(128), like, table_like)


@numba.njit(inline="always")
def one_call_a_row(dst, src, c, s):
    half_pairs64(dst, src, c, s, U(128), np.uint16(0), np.float32(0))


def rows_loop(rotate_row):
    """A bare loop over the rows of (tokens, heads, 128) float16 bit patterns, each row rotated by ``rotate_row``."""

    @numba.njit
    def loop(x, out, cos, sin, tokens, heads):
        xs, os_, cs, ss = U(x.ctypes.data), U(out.ctypes.data), U(cos.ctypes.data), U(sin.ctypes.data)
        for t in range(U(tokens)):
            c, s = cs + t * U(256), ss + t * U(256)
            for h in range(U(heads)):
                r = (t * U(heads) + h) * U(256)
                rotate_row(os_ + r, xs + r, c, s)

    return loop


LOOPS = {"two calls a row": rows_loop(two_calls_a_row), "one call a row": rows_loop(one_call_a_row)}


def measure(seq):
    """Two rounds for ``seq`` tokens."""
    cfg = numrope.RopeConfig(128)
    x = np.random.default_rng(0).standard_normal((1, seq, 32, 128), dtype=np.float32).astype(np.float16)
    out = np.empty_like(x)  # every loop writes it, as the floor does: another array would time another cache state
    bits, out_bits = x.view(np.uint16), out.view(np.uint16)
    cos, sin = numrope.rope_cache(cfg, seq, dtype=np.float32)
    expected = numrope.apply_rope(x, cfg, cache=(cos, sin)).view(np.uint16)
    calls = {
        "floor": lambda: parallel_copy(x, out),
        "numrope": lambda: numrope.apply_rope(x, cfg, cache=(cos, sin), out=out),
    }
    for name, loop in LOOPS.items():
        out[...] = 0
        loop(bits, out_bits, cos, sin, seq, 32)
        if not np.array_equal(out_bits, expected):
            sys.exit(f"{name} differs from numrope's result")
        calls[name] = lambda loop=loop: loop(bits, out_bits, cos, sin, seq, 32)
    for _ in range(2):
        t = time_calls(calls, repeat=7, clock=time.thread_time)
        shares = "  ".join(f"{name} {t['floor'] / t[name]:.2f}" for name in calls)
        print(f"{x.nbytes / 2**20:5.0f} MiB  {shares}", flush=True)


if __name__ == "__main__":
    numba.set_num_threads(1)
    for seq in [int(a) for a in sys.argv[1:]] or [128, 4096, 16384]:
        measure(seq)
