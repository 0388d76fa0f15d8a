"""numrope's float32, float16 and bfloat16 prefill kernels against the same rotations written in C with AVX-512
(``scripts/rotate_c32.c``, ``scripts/rotate_c16.c``), in one process, on the same arrays: (1, 4096, 32, 128),
``out=``, one thread, CPU time, as shares of the copy floor (``numrope bench``'s). float32 in the half and the
interleaved layouts with a float32 table; float16 and bfloat16 in the half layout with a float32 table.

The C rotations are compiled here with gcc (``-O3 -march=native -ffp-contract=off``); each is checked to
give numrope's bits before it is timed, except bfloat16 by ``vcvtneps2bf16``, which flushes subnormal
results to zero and is shown for its speed only. Streaming stores write into a copy of ``out`` that starts on a
cache line.

    python scripts/rotate_in_c.py
"""

import ctypes
import os
import subprocess
import sys
import tempfile
import time

import numba
import numpy as np

import numrope
from numrope._checks import new_array
from numrope.cli.bench.timing import parallel_copy, time_calls

HOW = {"float16": 0, "bfloat16 by integers": 1, "bfloat16 by vcvtneps2bf16": 2}


def build(directory):
    here = os.path.dirname(os.path.abspath(__file__))
    sources = [os.path.join(here, name) for name in ("rotate_c16.c", "rotate_c32.c")]
    library = os.path.join(directory, "rotate_c.so")
    flags = ["-O3", "-march=native", "-ffp-contract=off", "-shared", "-fPIC"]
    subprocess.run(["gcc", *flags, "-o", library, *sources], check=True)
    lib = ctypes.CDLL(library)
    p, n = ctypes.c_void_p, ctypes.c_long
    lib.rotate16.argtypes = [p, p, p, p, n, n, n, ctypes.c_int, ctypes.c_int]
    lib.rotate32.argtypes = [p, p, p, p, n, n, n, ctypes.c_int]
    return lib


def report(x, calls, expected):
    """Check each call but the floor against ``expected`` (per output array), then time all three times."""
    for name, call in calls.items():
        call()
        if name in expected:
            target, bits = expected[name]
            if not np.array_equal(target.view(bits.dtype), bits):
                sys.exit(f"{name} differs from numrope's result")
    print(x.dtype.name)
    for _ in range(3):
        t = time_calls(calls, repeat=7, clock=time.thread_time)
        print("  " + "  ".join(f"{name} {t[name] * 1e3:.2f} ms ({t['floor'] / t[name]:.2f})" for name in calls))


def compare32(lib, x):
    """numrope's call and the C rotation in each layout, and the copy floor, three rounds on float32 ``x``."""
    out = np.empty_like(x)
    calls, expected = {"floor": lambda: parallel_copy(x, out)}, {}
    for layout in ("half", "interleaved"):
        cfg = numrope.RopeConfig(128, layout=layout)
        cos, sin = numrope.rope_cache(cfg, 4096, dtype=np.float32)
        pointers = (x.ctypes.data, out.ctypes.data, cos.ctypes.data, sin.ctypes.data)
        calls[f"numrope {layout}"] = lambda cfg=cfg, cos=cos, sin=sin: numrope.apply_rope(
            x, cfg, cache=(cos, sin), out=out
        )
        calls[f"C {layout}"] = lambda p=pointers, code=int(layout == "interleaved"): lib.rotate32(
            *p, 4096, 32, 128, code
        )
        bits = numrope.apply_rope(x, cfg, cache=(cos, sin)).view(np.uint32)
        expected[f"numrope {layout}"] = expected[f"C {layout}"] = (out, bits)
    report(x, calls, expected)


def compare16(lib, x, cfg, cos, sin, kinds):
    """Three rounds of numrope's call, the C rotations ``kinds`` and the copy floor, on 2-byte ``x``."""
    out, lined = np.empty_like(x), new_array(x.shape, x.dtype)
    bits = numrope.apply_rope(x, cfg, cache=(cos, sin)).view(np.uint16)

    def c_call(how, target, streaming):
        pointers = (x.ctypes.data, target.ctypes.data, cos.ctypes.data, sin.ctypes.data)
        return lambda: lib.rotate16(*pointers, 4096, 32, 128, how, streaming)

    calls = {
        "floor": lambda: parallel_copy(x, out),
        "numrope": lambda: numrope.apply_rope(x, cfg, cache=(cos, sin), out=out),
    }
    for kind in kinds:
        calls[f"C {kind}"] = c_call(HOW[kind], out, 0)
        calls[f"C {kind}, streaming"] = c_call(HOW[kind], lined, 1)
    expected = {
        name: (lined if name.endswith("streaming") else out, bits)
        for name in calls
        if name != "floor" and "vcvtneps2bf16" not in name
    }
    report(x, calls, expected)


def main():
    import ml_dtypes

    numba.set_num_threads(1)
    with tempfile.TemporaryDirectory() as directory:
        lib = build(directory)
        cfg = numrope.RopeConfig(128)
        cos, sin = numrope.rope_cache(cfg, 4096, dtype=np.float32)
        x32 = np.random.default_rng(0).standard_normal((1, 4096, 32, 128), dtype=np.float32)
        compare32(lib, x32)
        compare16(lib, x32.astype(np.float16), cfg, cos, sin, ["float16"])
        compare16(lib, x32.astype(ml_dtypes.bfloat16), cfg, cos, sin, list(HOW)[1:])


if __name__ == "__main__":
    main()
