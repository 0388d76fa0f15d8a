"""``numrope bench``: time the hot paths and compare them, within one process, with their floors and baselines.

A short version of the asv suite (``asv_benchmarks/``). Every figure is a ratio taken in the same
process, so that a shared or noisy machine moves both sides together: each rotation is compared with a
Numba parallel copy of the same array (the memory-bandwidth floor: a rotation reads ``x`` and writes
``out`` once, as a copy does), with the seed-style vectorised NumPy form of :mod:`numrope.baseline`
and, where they are importable, with eager PyTorch and jitted JAX doing the same job.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import math
import os
import platform
import subprocess
import sys
import time
import tracemalloc

import numpy as np

# Baselines; "vs NAME" in the table is NAME's time over numrope's.
SEED = "seed NumPy"  # numrope.baseline.seed_style, the vectorised NumPy form
TORCH = "PyTorch"  # eager, Hugging Face's form
JAX = "JAX"  # the same form under jax.jit
NUMPY_COS_SIN = "np.cos+sin"  # NumPy's cos and sin of the same float64 angles
BARE_NUMBA = "bare Numba"  # a plain @njit loop doing the same decode step


# ---------------------------------------------------------------------------------------------------
# Measuring


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
        plain ``@njit`` loop with no checks: the "bare Numba call" a decoding step is compared with.

    Notes
    -----
    Both are compiled with ``cache=True`` on the first call of this function, so that
    ``import numrope.bench`` (and with it every ``numrope`` subcommand) imports no Numba.
    """
    import numba

    def copy_rows(src, dst):
        for r in numba.prange(src.shape[0]):
            for j in range(src.shape[1]):
                dst[r, j] = src[r, j]

    def rotate_tokens(x, out, cos, sin, positions):
        half = cos.shape[1]
        for t in range(x.shape[0]):
            p = positions[t]
            for h in range(x.shape[1]):
                for i in range(half):
                    c = cos[p, i]
                    s = sin[p, i]
                    x0 = x[t, h, i]
                    x1 = x[t, h, i + half]
                    out[t, h, i] = x0 * c - x1 * s
                    out[t, h, i + half] = x1 * c + x0 * s

    return numba.njit(parallel=True, cache=True)(copy_rows), numba.njit(cache=True)(rotate_tokens)


def _rows(a):
    """A 2-D (rows, last axis) view of a C-contiguous array; float16 as its bit patterns."""
    a = a.view(np.uint16) if a.dtype == np.float16 else a
    return a.reshape(-1, a.shape[-1])


def parallel_copy(src, dst):
    """Copy ``src`` into ``dst`` with a Numba parallel loop: the memory-bandwidth floor of a rotation.

    Parameters
    ----------
    src, dst : numpy.ndarray
        C-contiguous arrays of the same shape and dtype (float16, float32 or float64).

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
    >>> from numrope.bench import parallel_copy
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


def time_calls(fns, repeat=5, min_time=0.05):
    """Best time of one call to each of several functions, measured interleaved.

    Parameters
    ----------
    fns : dict of str to callable
        The functions to time, called without arguments.
    repeat : int, default 5
        Timed rounds.
    min_time : float, default 0.05
        Seconds each timed batch should last at least.

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
    >>> from numrope.bench import time_calls
    >>> t = time_calls({"short": lambda: sum(range(10)), "long": lambda: sum(range(10_000))}, 3, 1e-3)
    >>> t["short"] < t["long"]
    True
    """
    numbers = {name: _batch_size(fn, min_time) for name, fn in fns.items()}
    best = dict.fromkeys(fns, math.inf)
    for _ in range(repeat):
        for name, fn in fns.items():
            number = numbers[name]
            start = time.perf_counter()
            for _ in range(number):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / number)
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
    >>> from numrope.bench import peak_allocated
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
    """Best time of ``import numrope`` in a fresh interpreter, in seconds (start-up excluded)."""
    code = "import time; t = time.perf_counter(); import numrope; print(time.perf_counter() - t)"
    times = []
    for _ in range(repeat):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        times.append(float(done.stdout.strip().splitlines()[-1]))
    return min(times)


# ---------------------------------------------------------------------------------------------------
# Baselines: the same rotation in other ways, each computing its cos/sin in the call


def framework_rope(xp, cat, cast, x, cfg, positions, seq_axis=-3):
    """RoPE as Hugging Face's eager code writes it, in a NumPy-like namespace: the framework baselines.

    Parameters
    ----------
    xp : module
        ``torch``, ``jax.numpy`` or ``numpy``: provides ``outer``, ``stack``, ``cos``, ``sin``,
        ``asarray``.
    cat : callable
        ``cat(arrays)`` joins arrays on the last axis (``torch.cat(a, dim=-1)``, ...).
    cast : callable
        ``cast(a, dtype)`` converts an array to a dtype (``a.to(d)`` in torch, ``a.astype(d)``).
    x : array
        Queries or keys, an ``xp`` array whose last axis is ``cfg.head_dim``.
    cfg : RopeConfig
        The configuration (base, rotary part, layout; scaling variants are not applied).
    positions : array
        float32 positions of shape ``(S,)``, an ``xp`` array.
    seq_axis : int, default -3
        The sequence axis of ``x``.

    Returns
    -------
    array
        ``x`` rotated, in x's dtype.

    Notes
    -----
    The angles ``outer(positions, inv_freq)`` are formed in float32, cos and sin are duplicated to
    the rotary width (concatenated for ``layout="half"``, repeated pairwise for ``"interleaved"``)
    and cast to x's dtype, then ``x * cos + rotate(x) * sin`` with temporaries the size of ``x``,
    as in transformers' ``apply_rotary_pos_emb`` and ``rotate_half``. The angle carries a relative
    error of about float32 epsilon, so results drift from numrope's by ``|m theta| * 2**-23``.

    Examples
    --------
    >>> import numpy as np, numrope
    >>> from numrope.bench import framework_rope
    >>> cfg = numrope.RopeConfig(head_dim=8)
    >>> x = np.ones((1, 3, 2, 8))
    >>> y = framework_rope(np, lambda a: np.concatenate(a, axis=-1), lambda a, d: a.astype(d),
    ...                    x, cfg, np.arange(3, dtype=np.float32))
    >>> bool(np.allclose(y, numrope.apply_rope(x, cfg), atol=1e-6))
    True
    """
    rd = cfg.rotary_dim
    freqs = xp.outer(positions, xp.asarray(cfg.inv_freq().astype(np.float32)))
    if cfg.layout == "half":
        emb = cat([freqs, freqs])
    else:
        emb = xp.stack([freqs, freqs], -1).reshape(freqs.shape[0], rd)
    shape = (freqs.shape[0],) + (1,) * (x.ndim - seq_axis % x.ndim - 2) + (rd,)
    cos = cast(xp.cos(emb), x.dtype).reshape(shape)
    sin = cast(xp.sin(emb), x.dtype).reshape(shape)
    rot = x[..., :rd]
    if cfg.layout == "half":
        rotated = cat([-rot[..., rd // 2 :], rot[..., : rd // 2]])
    else:
        rotated = xp.stack([-rot[..., 1::2], rot[..., 0::2]], -1).reshape(rot.shape)
    y = rot * cos + rotated * sin
    return y if rd == x.shape[-1] else cat([y, x[..., rd:]])


@dataclasses.dataclass(frozen=True)
class Framework:
    """An array library the rotation is compared with: how to move arrays in, run, and wait."""

    name: str
    array: object  # numpy array -> framework array
    rope: object  # (x, cfg, positions, seq_axis) -> rotated x
    sync: object  # wait for an asynchronous result
    dtypes: tuple = ("float16", "float32", "float64")


def find_frameworks():
    """The importable frameworks among PyTorch and JAX."""
    found = []
    try:
        import torch
    except ImportError:
        pass
    else:

        def torch_rope(x, cfg, positions, seq_axis):
            return framework_rope(
                torch, lambda a: torch.cat(a, dim=-1), lambda a, d: a.to(d), x, cfg, positions, seq_axis
            )

        found.append(Framework(TORCH, torch.from_numpy, torch_rope, lambda y: y))
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        pass
    else:
        jax_rope = jax.jit(
            functools.partial(framework_rope, jnp, lambda a: jnp.concatenate(a, axis=-1), lambda a, d: a.astype(d)),
            static_argnums=(1, 3),
        )
        dtypes = ("float16", "float32", "float64") if jax.config.jax_enable_x64 else ("float16", "float32")
        found.append(Framework(JAX, jnp.asarray, jax_rope, lambda y: y.block_until_ready(), dtypes))
    return found


# ---------------------------------------------------------------------------------------------------
# The cases


@dataclasses.dataclass
class Case:
    """One row of the table: numrope's call, the copy floor of the same arrays, and the baselines."""

    key: str
    name: str
    shape: tuple
    dtype: str
    nbytes: int  # bytes read and written once by the call
    run: object
    floor: object = None
    baselines: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Context:
    shape: tuple  # (batch, seq, heads, head_dim)
    frameworks: list
    rng: np.random.Generator = dataclasses.field(default_factory=lambda: np.random.default_rng(0))

    def random(self, shape, dtype="float32"):
        return self.rng.standard_normal(shape, dtype=np.float32).astype(dtype)


def _baselines(ctx, x, cfg, positions, seq_axis=-3):
    """The same rotation, cos/sin included, by seed-style NumPy and each importable framework."""
    from numrope.baseline import seed_style

    positions = np.asarray(positions)
    found = {SEED: lambda: seed_style(x, cfg, positions, seq_axis=seq_axis)}
    for fw in ctx.frameworks:
        if str(x.dtype) in fw.dtypes:
            xf, pf = fw.array(x), fw.array(positions.astype(np.float32))
            found[fw.name] = lambda fw=fw, xf=xf, pf=pf: fw.sync(fw.rope(xf, cfg, pf, seq_axis))
    return found


def _both(first, second):
    return {name: (lambda a=first[name], b=second[name]: (a(), b())) for name in first.keys() & second.keys()}


def _x(ctx, dtype, seq_axis):
    b, s, h, d = ctx.shape
    return ctx.random((b, s, h, d) if seq_axis == -3 else (b, h, s, d), dtype)


def cache_case(ctx):
    import numrope

    n, cfg = ctx.shape[1], numrope.RopeConfig(ctx.shape[3])
    angles = np.outer(np.arange(n, dtype=np.float64), cfg.inv_freq())
    return Case(
        "cache",
        f"rope_cache({n} positions), float64",
        angles.shape,
        "float64",
        2 * angles.nbytes,
        lambda: numrope.rope_cache(cfg, n, dtype=np.float64),
        baselines={NUMPY_COS_SIN: lambda: (np.cos(angles), np.sin(angles))},
    )


def table_case(ctx, dtype="float32", seq_axis=-3, layout="half", mode="out="):
    """apply_rope with a precomputed table, into a preallocated ``out`` (or in place, or inverse)."""
    import numrope

    x = _x(ctx, dtype, seq_axis)
    out = np.empty_like(x)
    cfg = numrope.RopeConfig(ctx.shape[3], layout=layout)
    table = numrope.rope_cache(cfg, ctx.shape[1], dtype=np.float64 if dtype == "float64" else np.float32)
    target = x if mode == "in place" else out
    inverse = mode == "inverse"
    axes = "BSHD" if seq_axis == -3 else "BHSD"
    return Case(
        "prefill" if (dtype, seq_axis, layout, mode) == ("float32", -3, "half", "out=") else "table",
        f"table, {mode}: {axes} {layout}",
        x.shape,
        dtype,
        2 * x.nbytes,
        lambda: numrope.apply_rope(x, cfg, cache=table, seq_axis=seq_axis, out=target, inverse=inverse),
        lambda: parallel_copy(x, out),
    )


def end_to_end_case(ctx, dtype="float32", seq_axis=-3, layout="half", partial=False):
    """apply_rope(x, cfg): cos/sin computed in the call, a new output (floor: a copy into a new array)."""
    import numrope

    d = ctx.shape[3]
    x = _x(ctx, dtype, seq_axis)
    cfg = numrope.RopeConfig(d, layout=layout, rotary_dim=d // 2 if partial and d % 4 == 0 else None)
    axes = "BSHD" if seq_axis == -3 else "BHSD"
    rotary = f", rotary_dim {cfg.rotary_dim}" if cfg.rotary_dim != d else ""
    return Case(
        "end_to_end" if (dtype, seq_axis, layout, partial) == ("float32", -3, "half", False) else "fresh",
        f"apply_rope(x, cfg): {axes} {layout}{rotary}",
        x.shape,
        dtype,
        2 * x.nbytes,
        lambda: numrope.apply_rope(x, cfg, seq_axis=seq_axis),
        lambda: parallel_copy(x, np.empty_like(x)),
        _baselines(ctx, x, cfg, np.arange(x.shape[seq_axis]), seq_axis),
    )


def qk_case(ctx):
    """apply_rope_qk with grouped-query heads (4 query heads per key head), new outputs."""
    import numrope

    b, s, h, d = ctx.shape
    q, k = ctx.random((b, s, h, d)), ctx.random((b, s, max(1, h // 4), d))
    cfg = numrope.RopeConfig(d)
    positions = np.arange(s)
    return Case(
        "qk",
        f"apply_rope_qk(q, k, cfg): {k.shape[2]} key heads",
        q.shape,
        "float32",
        2 * (q.nbytes + k.nbytes),
        lambda: numrope.apply_rope_qk(q, k, cfg),
        lambda: (parallel_copy(q, np.empty_like(q)), parallel_copy(k, np.empty_like(k))),
        _both(_baselines(ctx, q, cfg, positions), _baselines(ctx, k, cfg, positions)),
    )


def varlen_case(ctx):
    """A packed batch (tokens, heads, head_dim) of four sequences, table and out=."""
    import numrope

    b, s, h, d = ctx.shape
    n = b * s
    x = ctx.random((n, h, d))
    out = np.empty_like(x)
    cfg = numrope.RopeConfig(d)
    positions = numrope.positions_from_cu_seqlens([0, n // 8, n // 2, 5 * n // 8, n])
    table = numrope.rope_cache(cfg, n)
    return Case(
        "varlen",
        "packed varlen, table, out=: 4 sequences",
        x.shape,
        "float32",
        2 * x.nbytes,
        lambda: numrope.apply_rope(x, cfg, positions, cache=table, out=out),
        lambda: parallel_copy(x, out),
        _baselines(ctx, x, cfg, positions),
    )


def decode_case(ctx):
    """One decoding step (1, 1, heads, head_dim) at position seq, table and out=."""
    import numrope

    _, s, h, d = ctx.shape
    x = ctx.random((1, 1, h, d))
    out = np.empty_like(x)
    cfg = numrope.RopeConfig(d)
    cos, sin = numrope.rope_cache(cfg, s + 1)
    bare = floor_kernels()[1]
    x3, out3, rows = x.reshape(1, h, d), out.reshape(1, h, d), np.array([s])
    return Case(
        "decode",
        f"decode step at position {s}, table, out=",
        x.shape,
        "float32",
        2 * x.nbytes,
        lambda: numrope.apply_rope(x, cfg, s, cache=(cos, sin), out=out),
        baselines={BARE_NUMBA: lambda: bare(x3, out3, cos, sin, rows)} | _baselines(ctx, x, cfg, [s]),
    )


CASES = (
    cache_case,
    table_case,
    functools.partial(table_case, seq_axis=-2),
    functools.partial(table_case, layout="interleaved"),
    functools.partial(table_case, dtype="float16"),
    functools.partial(table_case, dtype="float64"),
    functools.partial(table_case, mode="in place"),
    functools.partial(table_case, mode="inverse"),
    end_to_end_case,
    functools.partial(end_to_end_case, seq_axis=-2),
    functools.partial(end_to_end_case, layout="interleaved"),
    functools.partial(end_to_end_case, dtype="float16"),
    functools.partial(end_to_end_case, dtype="float64"),
    functools.partial(end_to_end_case, partial=True),
    qk_case,
    varlen_case,
    decode_case,
)

#: The cases the performance targets are read from (``--targets-only``).
TARGET_CASES = (cache_case, table_case, end_to_end_case, decode_case)


def measure(case, repeat, min_time):
    """Time a case's call, floor and baselines, interleaved; a JSON-ready dict."""
    fns = {"numrope": case.run} | ({"floor": case.floor} if case.floor else {}) | case.baselines
    times = time_calls(fns, repeat, min_time)
    seconds, floor = times.pop("numrope"), times.pop("floor", None)
    return {
        "key": case.key,
        "name": case.name,
        "shape": list(case.shape),
        "dtype": case.dtype,
        "seconds": seconds,
        "gb_per_s": case.nbytes / seconds / 1e9,
        "floor_seconds": floor,
        "fraction_of_floor": None if floor is None else floor / seconds,
        "baselines": times,
        "speedup": {name: t / seconds for name, t in times.items()},
    }


def peak_memory(ctx):
    """Peak allocation of ``apply_rope(x, cfg)`` against its output plus a float32 cos/sin table."""
    import numrope

    x = ctx.random(ctx.shape)
    cfg = numrope.RopeConfig(ctx.shape[3])
    numrope.apply_rope(x, cfg)
    peak = peak_allocated(lambda: numrope.apply_rope(x, cfg))
    cache = 2 * ctx.shape[1] * cfg.n_pairs * 4
    return {"peak_bytes": peak, "output_bytes": x.nbytes, "cache_bytes": cache, "ratio": peak / (x.nbytes + cache)}


def targets(rows, memory, import_seconds):
    """Each performance target: what was measured, the goal, and whether it was met (None: not measured)."""
    by_key = {row["key"]: row for row in rows}
    found = []

    def add(target, measured, goal, met, unit="", ceiling=None):
        found.append(
            {"target": target, "measured": measured, "unit": unit, "goal": goal, "met": met, "ceiling": ceiling}
        )

    if "prefill" in by_key:
        f = by_key["prefill"]["fraction_of_floor"]
        add("prefill, table and out=: share of the copy floor", f, ">= 0.80", f >= 0.8)
    if "end_to_end" in by_key:
        row = by_key["end_to_end"]
        for name in (SEED, TORCH):
            s = row["speedup"].get(name)
            # The best any implementation could do here: the baseline's time over the copy floor's.
            ceiling = row["baselines"][name] / row["floor_seconds"] if s is not None else None
            add(f"apply_rope(x, cfg) speed-up over {name}", s, ">= 10x", None if s is None else s >= 10, "x", ceiling)
    if "cache" in by_key:
        s = by_key["cache"]["speedup"][NUMPY_COS_SIN]
        add(f"rope_cache float64 speed-up over {NUMPY_COS_SIN} of the angles", s, ">= 1x", s >= 1, "x")
    if "decode" in by_key:
        r = by_key["decode"]["seconds"] / by_key["decode"]["baselines"][BARE_NUMBA]
        add(f"decode step time over a {BARE_NUMBA}", r, "<= 3x", r <= 3, "x")
    if memory is not None:
        r = memory["ratio"]
        add("apply_rope(x, cfg) peak memory over output + cache", r, "<= 1.05", r <= 1.05)
    if import_seconds is not None:
        add("cold import numrope", import_seconds, "< 0.3 s", import_seconds < 0.3, " s")
    return found


# ---------------------------------------------------------------------------------------------------
# Reporting


class Progress:
    """A one-line progress bar on a stream (stderr), redrawn in place."""

    def __init__(self, total, stream=None, enabled=True, width=24):
        self.total, self.done, self.width, self.enabled = total, 0, width, enabled
        self.stream = stream if stream is not None else sys.stderr

    def step(self, label):
        if self.enabled:
            filled = self.width * self.done // self.total
            bar = "#" * filled + "." * (self.width - filled)
            self.stream.write(f"\r[{bar}] {self.done + 1}/{self.total} {label[:50]:<50}")
            self.stream.flush()
        self.done += 1

    def close(self):
        if self.enabled:
            self.stream.write("\r" + " " * (self.width + 64) + "\r")
            self.stream.flush()


def _time(seconds):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def _measured(t):
    if t["measured"] is None:
        return "not measured"
    return f"{t['measured']:.3g}{t['unit']}"


def format_report(report) -> str:
    """The report of :func:`collect` as text: the machine, a table of the cases, and the targets.

    Parameters
    ----------
    report : dict
        As returned by :func:`collect` (or read back from ``numrope bench --json``).

    Returns
    -------
    str
        A header naming the machine, one row per case (time, GB/s, share of the copy floor, and a
        ``vs X`` column per baseline: X's time over numrope's), then one line per target.
    """
    m = report["machine"]
    lines = [
        f"numrope {report['numrope']} on {m['platform']}: {m['cpus']} CPUs, {m['threads']} Numba threads "
        f"({m['threading_layer']} layer), numpy {m['numpy']}, numba {m['numba']}",
        "time: best of several runs; GB/s: bytes read and written once; floor: share of the bandwidth of a",
        "Numba parallel copy of the same arrays; vs X: X's time / numrope's time, all in this process.",
        "seed NumPy: numrope.baseline.seed_style; PyTorch: eager, Hugging Face's form (JAX: the same, jitted);",
        "baselines compute their cos/sin in the call.",
        "",
    ]
    names = [
        n for n in (BARE_NUMBA, NUMPY_COS_SIN, SEED, TORCH, JAX) if any(n in r["speedup"] for r in report["cases"])
    ]
    header = ["case", "shape", "dtype", "time", "GB/s", "floor"] + [f"vs {n}" for n in names]
    body = [
        [
            r["name"],
            "x".join(map(str, r["shape"])),
            r["dtype"],
            _time(r["seconds"]),
            f"{r['gb_per_s']:.1f}",
            "-" if r["fraction_of_floor"] is None else f"{r['fraction_of_floor']:.0%}",
        ]
        + [f"{r['speedup'][n]:.2f}x" if n in r["speedup"] else "-" for n in names]
        for r in report["cases"]
    ]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    for row in [header, *body]:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    lines += ["", "targets:"]
    width = max((len(t["target"]) for t in report["targets"]), default=0)
    for t in report["targets"]:
        verdict = {True: "met", False: "MISSED", None: "-"}[t["met"]]
        ceiling = f" (ceiling at the copy floor: {t['ceiling']:.3g}x)" if t["ceiling"] else ""
        lines.append(f"  {t['target']:<{width}}  {_measured(t):>12}  goal {t['goal']:<8} {verdict}{ceiling}")
    return "\n".join(lines)


def plot(report, path):
    """Draw a report of :func:`collect` (see :func:`draw`) into an image file.

    Parameters
    ----------
    report : dict
        As returned by :func:`collect`.
    path : str or path-like
        The image to write; matplotlib picks the format from the suffix (``bench.png``).
    """
    draw(report).savefig(path, dpi=100)


def draw(report, fig=None):
    """Bar charts of a report: GB/s against the copy floor, and the speed-ups over each baseline.

    Parameters
    ----------
    report : dict
        As returned by :func:`collect`.
    fig : matplotlib.figure.Figure, optional
        The figure to draw on; by default a new one sized for the report (matplotlib is imported
        only here).

    Returns
    -------
    matplotlib.figure.Figure
        The figure: left, each case's GB/s with the copy floor's marked; right, numrope's speed-up
        over each baseline on a log scale (right of 1: numrope is faster).
    """
    if fig is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(13, 0.35 * len(report["cases"]) + 1.8), layout="constrained")
    rows = report["cases"]
    labels = [f"{r['name']} ({r['dtype']})" for r in rows]
    y = np.arange(len(rows))
    bw, su = fig.subplots(1, 2, sharey=True)
    bw.barh(y, [r["gb_per_s"] for r in rows], color="tab:blue", label="numrope")
    floors = [(i, r["gb_per_s"] / r["fraction_of_floor"]) for i, r in enumerate(rows) if r["fraction_of_floor"]]
    if floors:
        bw.plot([f for _, f in floors], [i for i, _ in floors], "k|", markersize=14, label="parallel copy (floor)")
    bw.set_xlabel("GB/s (bytes read + written)")
    bw.set_yticks(y, labels)
    bw.invert_yaxis()
    bw.legend(loc="upper center", bbox_to_anchor=(0.5, -0.06), ncols=2)
    names = sorted({n for r in rows for n in r["speedup"]})
    height = 0.8 / max(len(names), 1)
    for j, name in enumerate(names):
        pts = [(i, r["speedup"][name]) for i, r in enumerate(rows) if name in r["speedup"]]
        su.barh([i - 0.4 + (j + 0.5) * height for i, _ in pts], [s for _, s in pts], height, label=f"vs {name}")
    su.axvline(1.0, color="k", linewidth=0.8)
    su.set_xscale("log")
    su.set_xlabel("speed-up of numrope (baseline time / numrope time)")
    su.legend(loc="upper center", bbox_to_anchor=(0.5, -0.06), ncols=2)
    m = report["machine"]
    fig.suptitle(f"numrope {report['numrope']}: {m['cpus']} CPUs, {m['threads']} threads, shape {report['shape']}")
    return fig


# ---------------------------------------------------------------------------------------------------
# Command line


def _positive_int(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _threads(text):
    import numba

    value = _positive_int(text)
    if value > numba.config.NUMBA_NUM_THREADS:
        raise argparse.ArgumentTypeError(f"at most {numba.config.NUMBA_NUM_THREADS} threads (NUMBA_NUM_THREADS)")
    return value


def add_parser(sub):
    p = sub.add_parser(
        "bench",
        help="time numrope against the copy floor and the NumPy, PyTorch and JAX forms",
        description=__doc__.split("\n")[0].strip("`").replace("``", ""),
    )
    p.add_argument(
        "--shape",
        nargs=4,
        type=_positive_int,
        default=(1, 4096, 32, 128),
        metavar=("BATCH", "SEQ", "HEADS", "HEAD_DIM"),
        help="prefill shape (default 1 4096 32 128); HEAD_DIM must be even",
    )
    p.add_argument("--threads", type=_threads, default=None, help="Numba (and PyTorch) threads (default: all)")
    p.add_argument("--repeat", type=_positive_int, default=3, help="timed rounds per case (default 3)")
    p.add_argument("--min-time", type=float, default=0.05, help="seconds per timed batch (default 0.05)")
    p.add_argument("--targets-only", action="store_true", help="run only the cases the targets are read from")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    p.add_argument("--plot", metavar="PATH", help="also draw the report to an image (matplotlib)")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw a progress bar on stderr (default: when stderr is a terminal)",
    )
    return p


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


def collect(shape=(1, 4096, 32, 128), threads=None, repeat=3, min_time=0.05, progress=False, cases=CASES):
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

    Returns
    -------
    dict
        JSON-ready: ``machine`` (CPUs, threads, threading layer, versions), ``cases`` (one dict
        per case: ``seconds``, ``gb_per_s``, ``floor_seconds``, ``fraction_of_floor``,
        ``baselines`` (seconds) and ``speedup`` (baseline time over numrope's)), ``peak_memory``,
        ``cold_import_seconds`` and ``targets`` (each with ``measured``, ``goal``, ``met``).

    Notes
    -----
    Every ratio is taken within this process, from interleaved timings (:func:`time_calls`).
    GB/s counts the bytes a call must read and write once (``2 * x.nbytes`` for a rotation).

    Examples
    --------
    >>> from numrope.bench import TARGET_CASES, collect
    >>> report = collect((1, 8, 2, 16), repeat=1, min_time=0, cases=TARGET_CASES)
    >>> [row["key"] for row in report["cases"]]
    ['cache', 'prefill', 'end_to_end', 'decode']
    """
    import numba

    import numrope

    threads = threads or numba.config.NUMBA_NUM_THREADS
    ctx = Context(tuple(shape), find_frameworks())
    bar = Progress(len(cases) + 2, enabled=progress)
    rows = []
    with using_threads(threads):
        try:
            for factory in cases:
                case = factory(ctx)
                bar.step(case.name)
                rows.append(measure(case, repeat, min_time))
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
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    cases = TARGET_CASES if args.targets_only else CASES
    report = collect(args.shape, args.threads, args.repeat, args.min_time, progress, cases)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    if args.plot:
        plot(report, args.plot)
        print(f"plot written to {args.plot}", file=sys.stderr)
    return 0
