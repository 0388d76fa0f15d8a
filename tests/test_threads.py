"""Calls from many Python threads at once, under the threading layer Numba chose and under workqueue."""

import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import numrope

SCRIPT = textwrap.dedent(
    """
    import numpy as np, numrope
    from concurrent.futures import ThreadPoolExecutor
    cfg = numrope.RopeConfig(head_dim=64)
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((2, 256, 4, 64)).astype(np.float32) for _ in range(8)]
    expected = [numrope.apply_rope(x, cfg, i) for i, x in enumerate(xs)]  # main thread, parallel kernels
    with ThreadPoolExecutor(8) as pool:
        for _ in range(3):
            results = list(pool.map(lambda i: numrope.apply_rope(xs[i], cfg, i), range(8)))
            assert all(np.array_equal(r, e) for r, e in zip(results, expected))
    from numrope.kernels.jit import use_parallel
    with ThreadPoolExecutor(1) as pool:
        parallel_from_thread = pool.submit(use_parallel, 10**8).result()
    print("serial from threads" if not parallel_from_thread else "parallel from threads")
    """
)


def test_many_threads_default_layer(rng):
    cfg = numrope.RopeConfig(head_dim=64, layout="interleaved")
    xs = [rng.standard_normal((2, 300, 4, 64)).astype(np.float32) for _ in range(12)]
    expected = [numrope.apply_rope(x, cfg, 7 * i) for i, x in enumerate(xs)]

    def work(i):
        q, k = numrope.apply_rope_qk(xs[i], xs[i][:, :, :2], cfg, 7 * i)
        np.testing.assert_array_equal(k, expected[i][:, :, :2])
        return q, numrope.rope_cache(cfg, 7 * i + 300)[0][-1]

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(work, range(12)))
    for i, (q, last_row) in enumerate(results):
        np.testing.assert_array_equal(q, expected[i])
        np.testing.assert_array_equal(last_row, numrope.rope_cache(cfg, [7 * i + 299])[0][0])


def test_many_threads_workqueue_layer():
    """workqueue is not thread-safe: worker threads must fall back to the serial kernels."""
    env = {**os.environ, "NUMBA_THREADING_LAYER": "workqueue"}
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("serial from threads")


def test_many_threads_default_layer_stays_parallel():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("parallel from threads")


RACE_SCRIPT = textwrap.dedent(
    """
    import threading, time
    import numpy as np, numrope

    cfg = numrope.RopeConfig(head_dim=64)
    cache = numrope.rope_cache(cfg, 64)
    x = np.ones((2, 2048, 2, 64), np.float32)
    stop = threading.Event()

    def race(positions, bad, good, call, allowed):
        def writer():
            while not stop.is_set():
                np.copyto(positions, bad)
                np.copyto(positions, good)

        thread = threading.Thread(target=writer)
        thread.start()
        refused = 0
        try:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    y = call(positions)
                except allowed:
                    refused += 1
                    continue
                assert np.isfinite(y).all(), "non-finite output from positions checked as finite"
        finally:
            stop.set()
            thread.join()
            stop.clear()
        return refused

    # cache rows: a position that passed the bounds check must not be read as 10**10
    for shape in [(2048,), (2, 2048)]:
        race(np.zeros(shape, np.int64), 10**10, 0, lambda p: numrope.apply_rope(x, cfg, p, cache=cache), IndexError)
    # angles computed in the kernel: a position checked as finite must not be read as NaN
    race(np.zeros((2, 2048)), np.nan, 0.0, lambda p: numrope.apply_rope(x, cfg, p), ValueError)
    print("survived")
    """
)


def test_positions_changed_by_another_thread_during_a_call():
    """Positions are checked in a private copy: another thread writing the caller's array while a
    kernel runs can make a call fail its checks, never read out of bounds or compute with NaN."""
    result = subprocess.run([sys.executable, "-c", RACE_SCRIPT], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"exit code {result.returncode}: " + result.stderr[-3000:]
    assert result.stdout.strip().endswith("survived")
