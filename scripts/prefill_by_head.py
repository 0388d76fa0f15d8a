"""The prefill with a table on one thread, by head size: the copy floor, then the half and interleaved layouts into
``out=`` and in place, in ms of CPU time (shares of the floor in brackets). Run it at two commits, alternately, to
compare kernels (docs/benchmarks.md, seventh and eighth passes):

    python scripts/prefill_by_head.py bfloat16 80 96 128
"""

import sys
import time

import numba
import numpy as np

import numrope
from numrope.cli.bench.timing import parallel_copy, time_calls


def main(name="float32", *heads):
    import ml_dtypes

    numba.set_num_threads(1)
    dtype = np.dtype(ml_dtypes.bfloat16) if name == "bfloat16" else np.dtype(name)
    table = np.float64 if dtype == np.float64 else np.float32
    for head in [int(h) for h in heads] or [80, 96, 128]:
        x = np.random.default_rng(0).standard_normal((1, 4096, 32, head)).astype(dtype)
        out, y = np.empty_like(x), x.copy()
        calls = {"floor": lambda x=x, out=out: parallel_copy(x, out)}
        for layout in ("half", "interleaved"):
            cfg = numrope.RopeConfig(head, layout=layout)
            cache = numrope.rope_cache(cfg, 4096, dtype=table)
            calls[f"{layout} out="] = lambda c=cfg, t=cache, x=x, out=out: numrope.apply_rope(x, c, cache=t, out=out)
            calls[f"{layout} in place"] = lambda c=cfg, t=cache, y=y: numrope.apply_rope(y, c, cache=t, out=y)
        times = time_calls(calls, repeat=9, clock=time.thread_time)
        shares = "  ".join(f"{k} {v * 1e3:.2f} ms ({times['floor'] / v:.2f})" for k, v in times.items())
        print(f"{dtype.name} {head}: {shares}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
