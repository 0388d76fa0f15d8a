"""The prefill with a table into ``out=``, and its copy floor, by where ``x`` and ``out`` start: on a 64-byte line
(as numrope's new outputs, PyTorch's tensors and ``.npy`` memmaps do) or 16 bytes past one (as ``np.empty`` places
an array of more than 128 KiB), in one process, one thread, CPU time. Shares are of the copy between arrays 16 bytes
past a line, the placement ``numrope bench`` gets from NumPy (docs/benchmarks.md, ninth pass):

    python scripts/prefill_alignment.py float16 half
"""

import sys
import time

import numba
import numpy as np

import numrope
from numrope.cli.bench.timing import parallel_copy, time_calls


def placed(shape, dtype, shift):
    """An uninitialised array ``shift`` bytes past a 2 MiB boundary (so past a line and a page alike)."""
    nbytes = int(np.prod(shape)) * dtype.itemsize
    raw = np.zeros(nbytes + (4 << 20), np.uint8)
    start = -raw.ctypes.data % (2 << 20) + shift
    return raw[start : start + nbytes].view(dtype).reshape(shape)


def main(name="float16", layout="half"):
    import ml_dtypes

    numba.set_num_threads(1)
    dtype = np.dtype(ml_dtypes.bfloat16) if name == "bfloat16" else np.dtype(name)
    shape = (1, 4096, 32, 128)
    xs = {shift: placed(shape, dtype, shift) for shift in (0, 16)}
    for x in xs.values():
        x[...] = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    outs = {shift: placed(shape, dtype, shift) for shift in (0, 16)}
    cfg = numrope.RopeConfig(128, layout=layout)
    table = numrope.rope_cache(cfg, 4096, np.float64 if dtype == np.float64 else np.float32)
    calls = {}
    for a, b in ((16, 16), (0, 0), (16, 0), (0, 16)):
        x, out = xs[a], outs[b]
        calls[f"copy {a}>{b}"] = lambda x=x, out=out: parallel_copy(x, out)
        calls[f"rotation {a}>{b}"] = lambda x=x, out=out: numrope.apply_rope(x, cfg, cache=table, out=out)
    times = time_calls(calls, repeat=7, clock=time.thread_time)
    floor = times["copy 16>16"]
    print(f"{dtype.name} {layout} (x>out bytes past a line):")
    for k, v in times.items():
        print(f"  {k:14s} {v * 1e3:.2f} ms ({floor / v:.2f})", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
