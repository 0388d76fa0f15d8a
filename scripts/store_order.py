"""Rows of the half layout rotated with their lines stored in the order of their addresses, or not: float16,
bfloat16 and float32, (1, 4096, 32, 128), a float32 table, into ``out=``, one thread, CPU time, as shares of the
copy floor (``numrope bench``'s schedule: each loop timed in rounds of its own with the floor).

Bare Numba loops over the tokens and heads, each row by the vector functions of ``numrope.kernels.simd``:
``vector by vector`` (``rotate_vectors``, layout code 5: a vector of pairs at a time, a row of 64 pairs storing the
lines of its first and second features in turn, in an order LLVM's scheduler may change) against ``in order``
(``rotate_half_in_order``: two vectors at a time, each line stored in turn behind a barrier), and numrope's own call
(whose lean kernel takes the second). Each loop is checked against numrope's bits first.

    python scripts/store_order.py [dtype ...]      (default: float16 bfloat16 float32)
"""

import sys
import time

import numba
import numpy as np

import numrope
from numrope.cli.bench.timing import parallel_copy, time_calls
from numrope.kernels.simd import rotate_half_in_order, rotate_vectors

U = np.uintp


@numba.njit
def vector_by_vector(x, out, cos, sin):
    for s in range(x.shape[1]):
        for h in range(x.shape[2]):
            rotate_vectors(x, out, 0, s, h, (0, s, h, U(0)), cos, sin, s, 5)


@numba.njit
def in_order(x, out, cos, sin):
    for s in range(x.shape[1]):
        for h in range(x.shape[2]):
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
    loops = {"vector by vector": vector_by_vector, "in order": in_order}
    calls = {"numrope": lambda: numrope.apply_rope(x, cfg, cache=(cos, sin), out=out)}
    for label, loop in loops.items():
        out[...] = 0
        loop(bits, out_bits, cos, sin)
        if not np.array_equal(out.view(np.uint8), expected):
            sys.exit(f"{label} differs from numrope's result")
        calls[label] = lambda loop=loop: loop(bits, out_bits, cos, sin)
    for _ in range(2):
        shares = []
        for label, call in calls.items():
            t = time_calls({"floor": lambda: parallel_copy(x, out), label: call}, repeat=7, clock=time.thread_time)
            shares.append(f"{label} {t['floor'] / t[label]:.2f}")
        print(f"{name:8s}  " + "  ".join(shares), flush=True)


if __name__ == "__main__":
    numba.set_num_threads(1)
    for name in sys.argv[1:] or ["float16", "bfloat16", "float32"]:
        if name not in BITS:
            sys.exit(f"usage: python scripts/store_order.py [float16|bfloat16|float32 ...], got {name!r}")
        measure(name)
