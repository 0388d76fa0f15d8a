"""Where streaming stores start to pay: a prefill with a table into ``out=``, by output size, as ``numrope bench``
reads its targets (one thread, CPU time), by plain stores and by streaming stores.

For outputs of 8 MiB to 128 MiB (float32; twice the bytes for float64), both layouts, five rounds of the call by
each kind of store and of the copy floor (``numrope.cli.bench.parallel_copy``), interleaved in one process; prints
each call's share of the floor (the floor's time over the call's, best of the rounds). Plain stores: streaming
turned off (``MIN_BYTES`` past any output); streaming: turned on for every size (``MIN_BYTES`` 1 MiB).

Then ``apply_rope(x, cfg)`` of (1, 4096, 32, 128) into a new array, which numrope never streams into, by plain
stores and streamed as a caller's ``out=`` would be (``stream.plan`` told the output is not new), against a
parallel copy into a new array; and the same call with a table (``cache=``), which leaves out the angles'
cos and sin.

    python scripts/streaming_threshold.py [float32|float64] [threads]

With ``float16`` or ``bfloat16``: (1, 4096, 32, 128) into ``out=`` by plain stores and streamed (``MIN_ITEMSIZE``
lowered to 2, which numrope does not do), both layouts, checked bit for bit against each other.
"""

import sys
import time

import numba
import numpy as np

import numrope
from numrope.cli.bench.timing import parallel_copy
from numrope.kernels import stream


def best_times(calls, rounds, per_round=1):
    """The best time of one call to each function (the calling thread's CPU time), over ``rounds`` rounds that
    call each in turn ``per_round`` times. Single calls, unlike ``numrope bench``'s batches of at least 50 ms
    (``numrope.cli.bench.timing.time_calls``)."""
    times = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.thread_time()
            for _ in range(per_round):
                call()
            times[name].append((time.thread_time() - start) / per_round)
    return {name: min(t) for name, t in times.items()}


def main(dtype="float32", threads=1):
    numba.set_num_threads(int(threads))
    dtype = np.dtype(dtype)
    table = np.float64 if dtype == np.float64 else np.float32
    print(f"last-level cache {stream._last_level_cache() >> 20} MiB, MIN_BYTES {stream.MIN_BYTES >> 20} MiB")
    for seq in (512, 1024, 2048, 4096, 8192):
        x = np.random.default_rng(0).standard_normal((1, seq, 32, 128)).astype(dtype)
        out = np.empty_like(x)
        calls = {"copy floor": lambda x=x, out=out: parallel_copy(x, out)}
        for layout in ("half", "interleaved"):
            cfg = numrope.RopeConfig(128, layout=layout)
            cache = numrope.rope_cache(cfg, seq, dtype=table)
            for stores, limit in (("plain", 1 << 62), ("streamed", 1 << 20)):

                def call(x=x, out=out, cfg=cfg, cache=cache, limit=limit):
                    stream.MIN_BYTES = limit
                    numrope.apply_rope(x, cfg, cache=cache, out=out)

                call()  # compiled, or loaded, outside the timings
                calls[f"{layout} {stores}"] = call
        times = best_times(calls, rounds=5, per_round=2)
        floor = times.pop("copy floor")
        shares = ", ".join(f"{name} {floor / t:.3f}" for name, t in times.items())
        print(f"{x.nbytes >> 20:4d} MiB: copy floor {floor * 1e3:6.2f} ms; share of it: {shares}", flush=True)


def new_outputs(dtype="float32"):
    """``apply_rope(x, cfg)`` into a new array by plain stores and streamed, as shares of a copy into a new array."""
    x = np.random.default_rng(0).standard_normal((1, 4096, 32, 128)).astype(dtype)
    cfg = numrope.RopeConfig(128)
    plan = stream.plan

    def call(streamed):
        stream.MIN_BYTES = 1 << 20
        stream.plan = (lambda x4, out4, chunks, new=False: plan(x4, out4, chunks)) if streamed else plan
        try:
            return numrope.apply_rope(x, cfg)
        finally:
            stream.plan = plan

    def floor():
        out = np.empty_like(x)
        parallel_copy(x, out)
        return out

    cache = numrope.rope_cache(cfg, 4096)
    calls = {
        "copy into a new array": floor,
        "plain": lambda: call(False),
        "streamed": lambda: call(True),
        "with a table, plain": lambda: numrope.apply_rope(x, cfg, cache=cache),
    }
    for fn in calls.values():
        fn()  # compiled, or loaded, outside the timings
    times = best_times(calls, rounds=7)
    floor = times.pop("copy into a new array")
    shares = ", ".join(f"{name} {t * 1e3:.2f} ms ({floor / t:.3f})" for name, t in times.items())
    print(f"apply_rope(x, cfg) into a new array: copy {floor * 1e3:.2f} ms; {shares}")


def two_byte(dtype):
    """float16 or bfloat16 into ``out=`` by plain stores and streamed, as shares of the copy floor."""
    numba.set_num_threads(1)
    if dtype == "bfloat16":
        import ml_dtypes

        dtype = ml_dtypes.bfloat16
    x = np.random.default_rng(0).standard_normal((1, 4096, 32, 128)).astype(dtype)
    out = np.empty_like(x)
    calls = {"copy floor": lambda: parallel_copy(x, out)}
    for layout in ("half", "interleaved"):
        cfg = numrope.RopeConfig(128, layout=layout)
        cache = numrope.rope_cache(cfg, 4096, dtype=np.float32)
        results = []
        for stores, itemsize in (("plain", 4), ("streamed", 2)):

            def call(cfg=cfg, cache=cache, itemsize=itemsize):
                stream.MIN_BYTES, stream.MIN_ITEMSIZE = 1 << 20, itemsize
                numrope.apply_rope(x, cfg, cache=cache, out=out)

            call()
            results.append(out.copy())
            calls[f"{layout} {stores}"] = call
        assert np.array_equal(results[0].view(np.uint16), results[1].view(np.uint16)), layout
    times = best_times(calls, rounds=5, per_round=2)
    floor = times.pop("copy floor")
    shares = ", ".join(f"{name} {floor / t:.3f}" for name, t in times.items())
    print(f"{np.dtype(dtype).name}: copy floor {floor * 1e3:.2f} ms; share of it: {shares}")


if __name__ == "__main__":
    if sys.argv[1:2] in (["float16"], ["bfloat16"]):
        two_byte(sys.argv[1])
    else:
        main(*sys.argv[1:])
        new_outputs(*sys.argv[1:2])
