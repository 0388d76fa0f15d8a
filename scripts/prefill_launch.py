"""The prefill with a table into ``out=`` (positions None) by its two launchers, in one process, one thread, CPU
time: the decoding step's (numrope.kernels.step, which ``apply_rope`` now gives the call) and the general one (the
step's launcher turned off), each as a share of the copy floor. Then what the launchers' Python costs right after a
copy has flushed the caches, as it runs after each kernel of a prefill: ``apply_rope`` on one token, by each
launcher (docs/benchmarks.md, ninth pass):

    python scripts/prefill_launch.py float16 bfloat16
"""

import sys
import time

import numba
import numpy as np

import numrope
from numrope.cli.bench.timing import parallel_copy, time_calls
from numrope.kernels import step


def general(*args, **kwargs):
    """``apply_rope`` by the general launcher."""
    taken, step.table_step = step.table_step, lambda *a: None
    try:
        return numrope.apply_rope(*args, **kwargs)
    finally:
        step.table_step = taken


def shares(x, out, layout):
    cfg = numrope.RopeConfig(128, layout=layout)
    table = numrope.rope_cache(cfg, 4096, np.float64 if x.dtype == np.float64 else np.float32)
    calls = {
        "floor": lambda: parallel_copy(x, out),
        "apply_rope": lambda: numrope.apply_rope(x, cfg, cache=table, out=out),
        "general launcher": lambda: general(x, cfg, cache=table, out=out),
    }
    times = time_calls(calls, repeat=9, clock=time.thread_time)
    return "  ".join(f"{k} {v * 1e3:.2f} ms ({times['floor'] / v:.3f})" for k, v in times.items())


def after_a_flush(x, out, call, rounds=15):
    """Median microseconds of ``call()`` right after copying ``x`` into ``out``."""
    times = []
    for _ in range(rounds):
        parallel_copy(x, out)
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return np.median(times) * 1e6


def cold_launch(x, out):
    """``apply_rope`` on one token of ``x``, in place, by each launcher, right after a flush."""
    cfg = numrope.RopeConfig(128)
    table = numrope.rope_cache(cfg, 4096, np.float64 if x.dtype == np.float64 else np.float32)
    token = x[:, :1].copy()
    cold = {
        "step": after_a_flush(x, out, lambda: numrope.apply_rope(token, cfg, cache=table, out=token)),
        "general": after_a_flush(x, out, lambda: general(token, cfg, cache=table, out=token)),
    }
    return "  ".join(f"{k} launcher {v:.0f} us" for k, v in cold.items())


def main(*names):
    import ml_dtypes

    numba.set_num_threads(1)
    for name in names or ("float16", "bfloat16"):
        dtype = np.dtype(ml_dtypes.bfloat16) if name == "bfloat16" else np.dtype(name)
        x = np.random.default_rng(0).standard_normal((1, 4096, 32, 128)).astype(dtype)
        out = np.empty_like(x)
        for layout in ("half", "interleaved"):
            print(f"{dtype.name} {layout}: {shares(x, out, layout)}", flush=True)
        print(f"{dtype.name} one token after a flush: {cold_launch(x, out)}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
