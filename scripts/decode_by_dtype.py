"""The decoding step by dtype: ``apply_rope(x, cfg, offset, cache=(cos, sin), out=...)`` on (1, 1, 32, 128), into
``out=`` and in place, in microseconds by the wall clock (best batch of nine, one thread; a table of x's dtype,
float32 for the 2-byte dtypes). Run it at two commits, alternately, to compare (docs/benchmarks.md, ninth pass):

    python scripts/decode_by_dtype.py float32 float16 bfloat16 float64
"""

import sys
import time

import numba
import numpy as np

import numrope
from numrope.cli.bench.timing import time_calls


def main(*names):
    import ml_dtypes

    numba.set_num_threads(1)
    cfg = numrope.RopeConfig(128)
    for name in names or ("float32", "float16", "bfloat16", "float64"):
        dtype = np.dtype(ml_dtypes.bfloat16) if name == "bfloat16" else np.dtype(name)
        table = numrope.rope_cache(cfg, 4097, np.float64 if dtype == np.float64 else np.float32)
        x = np.random.default_rng(0).standard_normal((1, 1, 32, 128)).astype(dtype)
        out = np.empty_like(x)
        calls = {
            "out=": lambda x=x, out=out, t=table: numrope.apply_rope(x, cfg, 4096, cache=t, out=out),
            "in place": lambda x=x, t=table: numrope.apply_rope(x, cfg, 4096, cache=t, out=x),
        }
        times = time_calls(calls, repeat=9, clock=time.perf_counter)
        print(f"{dtype.name}: " + "  ".join(f"{k} {v * 1e6:.2f} us" for k, v in times.items()), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
