"""Two measurements behind docs/benchmarks.md's eleventh pass, one thread, CPU time, (1, 4096, 32, 128), as
``numrope bench`` reads its targets (``time_calls``: interleaved batches of at least 50 ms, best of the rounds).

``order``: float16 interleaved with a table, in place and into ``out=``, each call listed twice ("A", "B") under
the same arrays. Identical calls that differ only in which batch ran before them: where the arrays fit in the
last-level cache (32 MiB each), the batch after another working set's runs the slower, so that a share of the
copy floor taken in one schedule need not hold in another.

``end_to_end``: where ``apply_rope(x, cfg)`` spends the time its floor (a parallel copy into a new array) does
not: the same call with a table (``cache=``, so without the exact cos and sin of every token), and
``rope_cache`` of the 4096 positions alone, the cos and sin the call computes.

``schedule``: ``numrope bench``'s end-to-end case (NumPy's and, where installed, PyTorch's baselines) timed in one
schedule, the call, its floor and the baselines in turn, as the bench timed it until the eleventh pass, and as it
times it since (``numrope.cli.bench.cases.measure``: the call and its floor in rounds of their own).

    python scripts/call_order.py [order|end_to_end|schedule]
"""

import sys
import time

import numpy as np

import numrope
from numrope.cli.bench import cases
from numrope.cli.bench.frameworks import find_frameworks
from numrope.cli.bench.timing import parallel_copy, time_calls, using_threads


def show(calls, rounds=3):
    for _ in range(rounds):
        t = time_calls(calls, repeat=7, clock=time.thread_time)
        print("  ".join(f"{name} {t[name] * 1e3:.2f} ms ({t['floor'] / t[name]:.2f})" for name in calls), flush=True)


def order():
    x = np.random.default_rng(0).standard_normal((1, 4096, 32, 128), dtype=np.float32).astype(np.float16)
    y, out = x.copy(), np.empty_like(x)
    cfg = numrope.RopeConfig(128, layout="interleaved")
    table = numrope.rope_cache(cfg, 4096, dtype=np.float32)

    def in_place():
        return numrope.apply_rope(y, cfg, cache=table, out=y)

    def into_out():
        return numrope.apply_rope(x, cfg, cache=table, out=out)

    print("float16 interleaved, table: each call twice in a row")
    show({"floor": lambda: parallel_copy(x, out), "A in place": in_place, "B in place": in_place,
          "A out=": into_out, "B out=": into_out})  # fmt: skip


def end_to_end():
    x = np.random.default_rng(0).standard_normal((1, 4096, 32, 128), dtype=np.float32)
    cfg = numrope.RopeConfig(128)
    table = numrope.rope_cache(cfg, 4096, dtype=np.float32)
    print("float32 half, into a new array")
    show({
        "floor": lambda: parallel_copy(x, np.empty_like(x)),
        "apply_rope(x, cfg)": lambda: numrope.apply_rope(x, cfg),
        "with a table": lambda: numrope.apply_rope(x, cfg, cache=table),
        "table made in the call": lambda: numrope.apply_rope(x, cfg, cache=numrope.rope_cache(cfg, 4096, np.float32)),
        "rope_cache alone": lambda: numrope.rope_cache(cfg, 4096, dtype=np.float32),
    })  # fmt: skip


def schedule():
    case = cases.end_to_end_case(cases.Context((1, 4096, 32, 128), find_frameworks()))
    print(f"apply_rope(x, cfg), baselines: {', '.join(case.baselines)}")
    for _ in range(2):
        t = time_calls({"numrope": case.run, "floor": case.floor} | case.baselines, 7, 0.05, time.thread_time)
        row = cases.measure(case, 7, 0.05, time.thread_time)
        for label, seconds, floor in (
            ("one schedule", t["numrope"], t["floor"]),
            ("two schedules", row["seconds"], row["floor_seconds"]),
        ):
            print(f"  {label}: {seconds * 1e3:.2f} ms, floor {floor * 1e3:.2f} ms ({floor / seconds:.2f})", flush=True)


if __name__ == "__main__":
    which = sys.argv[1:] or ["order", "end_to_end", "schedule"]
    for name in which:
        if name not in ("order", "end_to_end", "schedule"):
            sys.exit(f"usage: python scripts/call_order.py [order|end_to_end|schedule], got {name!r}")
    with using_threads(1):  # Numba's threads and PyTorch's
        for name in which:
            globals()[name]()
