"""``numrope bench``: time the hot paths and compare them, within one process, with their floors and baselines.

A short version of the asv suite (``asv_benchmarks/``). Every figure is a ratio taken in the same
process, so that a shared or noisy machine moves both sides together: each rotation is compared with a
Numba parallel copy of the same array (the memory-bandwidth floor: a rotation reads ``x`` and writes
``out`` once, as a copy does), with the vectorised NumPy form of :func:`numrope.reference.vectorised_numpy`
and, where they are importable, with eager PyTorch and jitted JAX doing the same job.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

from numrope.cli._common import command_parser, positive_int, progress_option, seconds, wants_progress
from numrope.cli.bench.cases import CASES, JAX, TARGET_CASES, Context, measure, peak_memory, targets
from numrope.cli.bench.frameworks import find_frameworks
from numrope.cli.bench.plot import draw, plot
from numrope.cli.bench.report import Progress, format_report
from numrope.cli.bench.timing import cold_import_time, using_threads

__all__ = ["CASES", "collect", "draw", "format_report", "plot"]


def _threads(text):
    import numba

    value = positive_int(text)
    if value > numba.config.NUMBA_NUM_THREADS:
        raise argparse.ArgumentTypeError(f"at most {numba.config.NUMBA_NUM_THREADS} threads (NUMBA_NUM_THREADS)")
    return value


_EPILOG = """\
exit status: 0 when the benchmark ran (a missed target is reported, not an error); 2 for a bad
argument, or --plot without matplotlib.
"""


def add_parser(sub):
    p = command_parser(
        sub, __name__, "time numrope against a parallel copy and the NumPy, PyTorch and JAX forms", _EPILOG
    )
    p.add_argument(
        "--shape",
        nargs=4,
        type=positive_int,
        default=(1, 4096, 32, 128),
        metavar=("BATCH", "SEQ", "HEADS", "HEAD_DIM"),
        help="prefill shape (default 1 4096 32 128); HEAD_DIM must be even",
    )
    p.add_argument("--threads", type=_threads, default=None, help="Numba (and PyTorch) threads (default: all)")
    p.add_argument(
        "--cpu-time",
        action="store_true",
        help="time with the CPU time of the calling thread, not the wall clock (with --threads 1, on which Numba's "
        "kernels then run): on a machine shared with other jobs, the time the work ran rather than the time it "
        "waited; JAX, which computes on threads of its own, is left out",
    )
    p.add_argument("--repeat", type=positive_int, default=3, help="timed rounds per case (default 3)")
    p.add_argument("--min-time", type=seconds(60), default=0.05, help="seconds per timed batch (default 0.05)")
    p.add_argument("--targets-only", action="store_true", help="run only the cases the targets are read from")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    p.add_argument("--plot", metavar="PATH", help="also draw the report to an image (matplotlib)")
    progress_option(p)
    return p


def collect(
    shape=(1, 4096, 32, 128), threads=None, repeat=3, min_time=0.05, progress=False, cases=CASES, cpu_time=False
):
    """Run the benchmark cases and return the report that ``numrope bench`` prints.

    Parameters
    ----------
    shape : tuple of 4 ints, default (1, 4096, 32, 128)
        The prefill shape (batch, seq, heads, head_dim); the other cases derive theirs from it.
    threads : int, optional
        Threads for Numba's parallel kernels and PyTorch (restored afterwards); all by default.
    repeat, min_time
        As for :func:`time_calls`.
    progress : bool, default False
        Draw a progress bar on stderr.
    cases : sequence of callables, default CASES
        Case factories; :data:`TARGET_CASES` for only those the targets are read from.
    cpu_time : bool, default False
        Time with the CPU time of the calling thread (:func:`time.thread_time`) instead of the wall
        clock: for one thread, which Numba's kernels (OpenMP layer) and PyTorch then run on. JAX is left
        out: it computes on threads of its own, and the time its idle threads spin would be charged to
        whatever runs next in the process's CPU time.

    Returns
    -------
    dict
        JSON-ready: ``machine`` (CPUs, threads, threading layer, versions), ``cases`` (one dict
        per case: ``seconds``, ``gb_per_s``, ``floor_seconds``, ``fraction_of_floor``, ``baselines``
        (seconds), ``seconds_with_baselines`` (numrope's call timed with them) and ``speedup`` (baseline
        time over that)), ``peak_memory``, ``cold_import_seconds`` and ``targets`` (each with
        ``measured``, ``goal``, ``met``).

    Notes
    -----
    Every ratio is taken within this process, from interleaved timings (:func:`time_calls`): the call
    against its floor in rounds of their own, then against its baselines (see
    :func:`numrope.cli.bench.cases.measure`). GB/s counts the bytes a call must read and write once
    (``2 * x.nbytes`` for a rotation).

    Examples
    --------
    >>> from numrope.cli.bench import TARGET_CASES, collect
    >>> report = collect((1, 8, 2, 16), repeat=1, min_time=0, cases=TARGET_CASES)
    >>> [row["key"] for row in report["cases"]][:4]
    ['cache', 'prefill', 'prefill:float32:interleaved', 'prefill:float16:half']
    """
    import numba

    import numrope

    threads = threads or numba.config.NUMBA_NUM_THREADS
    frameworks = [fw for fw in find_frameworks() if not (cpu_time and fw.name == JAX)]
    ctx = Context(tuple(shape), frameworks)
    bar = Progress(len(cases) + 2, enabled=progress)
    rows = []
    with using_threads(threads):
        try:
            for factory in cases:
                case = factory(ctx)
                bar.step("not installed: skipped" if case is None else case.name)
                if case is not None:  # None: a case whose dtype needs a package that is not installed
                    rows.append(measure(case, repeat, min_time, time.thread_time if cpu_time else None))
                del case
            bar.step("peak memory")
            memory = peak_memory(ctx)
            bar.step("cold import")
            import_seconds = cold_import_time()
        finally:
            bar.close()
    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = "no parallel run"
    return {
        "numrope": numrope.__version__,
        "shape": list(shape),
        "machine": {
            "platform": f"{platform.machine()} {platform.system()}",
            "cpus": os.cpu_count(),
            "threads": threads,
            "clock": "CPU time of the calling thread" if cpu_time else "wall clock",
            "threading_layer": layer,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "numba": numba.__version__,
            "frameworks": [fw.name for fw in ctx.frameworks],
        },
        "cases": rows,
        "peak_memory": memory,
        "cold_import_seconds": import_seconds,
        "targets": targets(rows, memory, import_seconds),
    }


def run(args) -> int:
    if args.shape[3] % 2:
        print(f"numrope bench: HEAD_DIM must be even, got {args.shape[3]}", file=sys.stderr)
        return 2
    if args.plot:
        # Checked before the benchmark runs, not after it: the plot is its last step.
        try:
            import matplotlib.figure  # noqa: F401
        except ImportError:
            print(
                'numrope bench: --plot needs matplotlib: install it with `pip install "numrope[bench]"`',
                file=sys.stderr,
            )
            return 2
    progress = wants_progress(args)
    cases = TARGET_CASES if args.targets_only else CASES
    if args.cpu_time and args.threads != 1:
        print("numrope bench: --cpu-time needs --threads 1 (the CPU time of several threads adds up)", file=sys.stderr)
        return 2
    report = collect(args.shape, args.threads, args.repeat, args.min_time, progress, cases, args.cpu_time)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    if args.plot:
        plot(report, args.plot)
        print(f"plot written to {args.plot}", file=sys.stderr)
    return 0
