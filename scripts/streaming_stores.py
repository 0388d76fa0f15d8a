"""Streaming stores against plain ones, as ``numrope bench`` reads its prefill targets: one thread, CPU time.

For each dtype and layout, three rounds of ``numrope.cli.bench.timing.time_calls`` of the call
``apply_rope(x, cfg, cache=..., out=out)`` (``out`` from ``np.empty_like``) and its copy floor, once
with streaming stores as numrope chooses them and once with them turned off; then a copy by
streaming stores against the floor, for what the floor leaves on the table.

    python scripts/streaming_stores.py [float32,float64] [half,interleaved]
"""

import sys
import time

import numba
import numpy as np

import numrope
from numrope._checks import new_array
from numrope.cli.bench.timing import parallel_copy, time_calls
from numrope.kernels import stream
from numrope.kernels.stream import _LINE, _UP, _fence, _store_line


@numba.njit(parallel=True)
def streaming_copy(src, dst, n_chunks):
    """``dst[...] = src`` a line at a time by streaming stores (``dst`` on a line, whole lines)."""
    n = _UP(dst.nbytes) // _LINE
    s0, d0 = _UP(src.ctypes.data), _UP(dst.ctypes.data)
    for c in numba.prange(n_chunks):
        for k in range(_UP(c) * n // _UP(n_chunks), (_UP(c) + _UP(1)) * n // _UP(n_chunks)):
            _store_line(d0 + _LINE * k, s0 + _LINE * k)
        _fence()


def shares(x, out, cfg, cache, limit):
    """Three rounds of the call's share of its copy floor, by plain and by streaming stores."""
    result = {"plain": [], "streamed": []}
    calls = {
        "numrope": lambda: numrope.apply_rope(x, cfg, cache=cache, out=out),
        "floor": lambda: parallel_copy(x, out),
    }
    for _ in range(3):
        for mode in result:
            stream.MIN_BYTES = 1 << 62 if mode == "plain" else limit
            t = time_calls(calls, repeat=7, clock=time.thread_time)
            result[mode].append(round(t["floor"] / t["numrope"], 3))
    stream.MIN_BYTES = limit
    return result


def copy_share(x, out):
    """A copy by streaming stores into an array on a line, as a share of the copy floor."""
    lined = new_array(x.shape, x.dtype)
    calls = {"floor": lambda: parallel_copy(x, out), "streaming copy": lambda: streaming_copy(x, lined, 4)}
    t = time_calls(calls, repeat=7, clock=time.thread_time)
    return t["floor"] / t["streaming copy"]


def main(dtypes, layouts):
    numba.set_num_threads(1)
    limit = stream.MIN_BYTES
    for name in dtypes:
        x = np.random.default_rng(0).standard_normal((1, 4096, 32, 128)).astype(name)
        out = np.empty_like(x)
        for layout in layouts:
            cfg = numrope.RopeConfig(128, layout=layout)
            cache = numrope.rope_cache(cfg, 4096, dtype=x.dtype)
            print(name, layout, "share of the copy floor:", shares(x, out, cfg, cache, limit))
        print(name, f"a copy by streaming stores: {copy_share(x, out):.3f} of the copy floor")


if __name__ == "__main__":
    main(*(arg.split(",") for arg in (sys.argv[1:] + ["float32,float64", "half,interleaved"])[:2]))
