"""Timing and memory measurement: the copy-bandwidth floor, calibrated batches, peak allocations."""

from __future__ import annotations

import contextlib
import functools
import math
import os
import subprocess
import sys
import time
import tracemalloc

import numpy as np


@functools.cache
def floor_kernels():
    """The Numba kernels the measurements are held to, compiled on first use.

    Returns
    -------
    copy_rows : numba dispatcher
        ``copy_rows(src, dst)`` copies a 2-D array row by row in a parallel loop (the copy floor;
        see :func:`parallel_copy`).
    rotate_tokens : numba dispatcher
        ``rotate_tokens(x, out, cos, sin, positions)`` rotates ``x`` of shape
        ``(tokens, heads, head_dim)`` in the half layout by table rows ``positions``, written as a
        plain ``@njit`` loop with no checks whose inner loop LLVM vectorises (unsigned indices, as in
        numrope's kernels): the "bare Numba call" a decoding step is compared with.

    Notes
    -----
    Both are compiled with ``cache=True`` on the first call of this function, so that
    ``import numrope.cli.bench`` (and with it every ``numrope`` subcommand) imports no Numba.
    """
    import numba

    def copy_rows(src, dst):
        for r in numba.prange(src.shape[0]):
            for j in range(src.shape[1]):
                dst[r, j] = src[r, j]

    def rotate_tokens(x, out, cos, sin, positions):
        # unsigned indices, as numrope's kernels use: with a signed ``i + half`` Numba adds a
        # negative-index wraparound that keeps LLVM from vectorising the loop
        half = np.uintp(cos.shape[1])
        for t in range(x.shape[0]):
            p = positions[t]
            for h in range(np.uintp(x.shape[1])):
                for i in range(half):
                    c = cos[p, i]
                    s = sin[p, i]
                    x0 = x[t, h, i]
                    x1 = x[t, h, i + half]
                    out[t, h, i] = x0 * c - x1 * s
                    out[t, h, i + half] = x1 * c + x0 * s

    return numba.njit(parallel=True, cache=True)(copy_rows), numba.njit(cache=True)(rotate_tokens)


def _rows(a):
    """A 2-D (rows, last axis) view of a C-contiguous array; 2-byte floats (float16, bfloat16) as their bit
    patterns."""
    a = a.view(np.uint16) if a.dtype.itemsize == 2 else a
    return a.reshape(-1, a.shape[-1])


def parallel_copy(src, dst):
    """Copy ``src`` into ``dst`` with a Numba parallel loop: the memory-bandwidth floor of a rotation.

    Parameters
    ----------
    src, dst : numpy.ndarray
        C-contiguous arrays of the same shape and dtype (float16, bfloat16, float32 or float64).

    Returns
    -------
    numpy.ndarray
        ``dst``.

    Raises
    ------
    ValueError
        If the arrays differ in shape or dtype or are not C-contiguous.

    Notes
    -----
    A rotation reads every element of ``x`` once and writes every element of ``out`` once, as
    this copy does, so no implementation can beat the copy's time by more than the noise; the
    copy runs on the same threads as numrope's kernels (``numba.set_num_threads``).

    Examples
    --------
    >>> import numpy as np
    >>> from numrope.cli.bench.timing import parallel_copy
    >>> a = np.arange(6.0).reshape(2, 3)
    >>> parallel_copy(a, np.empty_like(a))
    array([[0., 1., 2.],
           [3., 4., 5.]])
    """
    if src.shape != dst.shape or src.dtype != dst.dtype:
        raise ValueError(f"src and dst must match, got {src.dtype}{src.shape} and {dst.dtype}{dst.shape}")
    if not (src.flags.c_contiguous and dst.flags.c_contiguous):
        raise ValueError("src and dst must be C-contiguous")
    if src.size:
        floor_kernels()[0](_rows(src), _rows(dst))
    return dst


def _batch_size(fn, min_time):
    """Calls of ``fn`` that take about ``min_time`` seconds, counted after an untimed first call.

    The count is taken from batches of 1, 10, 100, ... calls (as :meth:`timeit.Timer.autorange`),
    not from the first call alone: a first call that loads a kernel from disk would otherwise
    make every timed batch a handful of calls, each slowed by the caches the other functions left.
    """
    fn()
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time / 10:
            return max(1, math.ceil(number * min_time / elapsed))
        number *= 10


def time_calls(fns, repeat=5, min_time=0.05, clock=None):
    """Best time of one call to each of several functions, measured interleaved.

    Parameters
    ----------
    fns : dict of str to callable
        The functions to time, called without arguments.
    repeat : int, default 5
        Timed rounds.
    min_time : float, default 0.05
        Seconds each timed batch should last at least.
    clock : callable, optional
        What the batches are timed with: :func:`time.perf_counter` (the wall clock, the default), or
        :func:`time.thread_time` (the CPU time of the calling thread: on a machine shared with other
        jobs, the time the work ran and not the time it waited for a core).

    Returns
    -------
    dict of str to float
        Seconds per call of each function: the fastest batch's time over its number of calls.

    Notes
    -----
    Each function runs once untimed (JIT compilation, first-touch page faults) and is given a batch
    size of enough calls to last ``min_time`` seconds, found as :meth:`timeit.Timer.autorange` and
    asv find theirs.
    Then ``repeat`` rounds time one batch of every function in turn, so that a burst of load from
    elsewhere on the machine slows all of them alike; the ratio of two results is then a figure
    a shared, noisy machine can still give.

    Examples
    --------
    >>> from numrope.cli.bench.timing import time_calls
    >>> t = time_calls({"short": lambda: sum(range(10)), "long": lambda: sum(range(10_000))}, 3, 1e-3)
    >>> t["short"] < t["long"]
    True
    """
    clock = clock or time.perf_counter
    numbers = {name: _batch_size(fn, min_time) for name, fn in fns.items()}
    best = dict.fromkeys(fns, math.inf)
    for _ in range(repeat):
        for name, fn in fns.items():
            number = numbers[name]
            start = clock()
            for _ in range(number):
                fn()
            best[name] = min(best[name], (clock() - start) / number)
    return best


def peak_allocated(fn):
    """Peak bytes allocated by NumPy and Python during one call to ``fn``.

    Parameters
    ----------
    fn : callable
        Called once without arguments.

    Returns
    -------
    int
        The peak of traced memory during the call, less what was traced before it.

    Notes
    -----
    NumPy reports its array buffers to :mod:`tracemalloc`, so this counts every temporary array
    the call makes (its result included) and none of its inputs. Memory that Numba-compiled code
    allocates is not traced; numrope's kernels allocate only per-thread scratch rows. Run ``fn``
    once beforehand so that JIT compilation is not counted.

    Examples
    --------
    >>> import numpy as np
    >>> from numrope.cli.bench.timing import peak_allocated
    >>> peak_allocated(lambda: np.ones(1_000_000)) >= 8_000_000
    True
    """
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        fn()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        if not was_tracing:
            tracemalloc.stop()


def cold_import_time(repeat=3):
    """Best time of ``import numrope`` in a fresh interpreter, in seconds (start-up excluded).

    The interpreter starts in the folder that holds this numrope, so that ``python -c`` (which puts
    its working directory first on ``sys.path``) imports the same numrope, and no stray module in
    the user's working directory (a ``numpy.py``, an ``enum.py``) stands in for the real one.
    """
    import numrope

    code = "import time; t = time.perf_counter(); import numrope; print(time.perf_counter() - t)"
    where = os.path.dirname(os.path.dirname(os.path.abspath(numrope.__file__)))
    times = []
    for _ in range(repeat):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=where)
        times.append(float(done.stdout.strip().splitlines()[-1]))
    return min(times)


@contextlib.contextmanager
def using_threads(threads):
    """Run Numba's parallel kernels, and PyTorch's if imported, on ``threads`` threads; restore on exit."""
    import numba

    torch = sys.modules.get("torch")
    saved = numba.get_num_threads(), torch.get_num_threads() if torch else None
    numba.set_num_threads(threads)
    if torch:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        numba.set_num_threads(saved[0])
        if torch:
            torch.set_num_threads(saved[1])
