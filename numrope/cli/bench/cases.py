"""What ``numrope bench`` times: each case against its floor and baselines, and the performance targets."""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from numrope.cli.bench.timing import floor_kernels, parallel_copy, peak_allocated, time_calls

# Baselines; "vs NAME" in the table is NAME's time over numrope's.
VECTORISED = "vectorised NumPy"  # numrope.reference.vectorised_numpy


TORCH = "PyTorch"  # eager, Hugging Face's form


JAX = "JAX"  # the same form under jax.jit


NUMPY_COS_SIN = "np.cos+sin"  # NumPy's cos and sin of the same float64 angles


BARE_NUMBA = "bare Numba"  # a plain @njit loop doing the same decode step, vectorised

#: The dtypes of the prefill cases (table and out=, both layouts); bfloat16 where ml_dtypes is installed.
PREFILL_DTYPES = ("float32", "float16", "float64", "bfloat16")
#: The share of the copy floor each prefill case is held to; bfloat16 to less (its rounding is integer arithmetic
#: on CPUs without AVX512-BF16).
PREFILL_GOALS = {"float32": 0.95, "float16": 0.95, "float64": 0.95, "bfloat16": 0.90}


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
        return self.rng.standard_normal(shape, dtype=np.float32).astype(_dtype(dtype))


def _dtype(name):
    """A dtype by name; bfloat16 is ml_dtypes' (None where it is not installed)."""
    if name != "bfloat16":
        return np.dtype(name)
    try:
        import ml_dtypes
    except ImportError:
        return None
    return np.dtype(ml_dtypes.bfloat16)


def prefill_key(dtype, layout):
    """The key of a prefill case (table and out=, BSHD): "prefill" for float32 half, as in older reports."""
    return "prefill" if (dtype, layout) == ("float32", "half") else f"prefill:{dtype}:{layout}"


def _baselines(ctx, x, cfg, positions, seq_axis=-3):
    """The same rotation, cos/sin included, by vectorised NumPy and each importable framework."""
    from numrope.reference import vectorised_numpy

    positions = np.asarray(positions)
    found = {VECTORISED: lambda: vectorised_numpy(x, cfg, positions, seq_axis=seq_axis)}
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
    """apply_rope with a precomputed table, into a preallocated ``out`` (or in place, or inverse).

    None for bfloat16 where ml_dtypes is not installed.
    """
    import numrope

    if _dtype(dtype) is None:
        return None
    x = _x(ctx, dtype, seq_axis)
    out = np.empty_like(x)
    cfg = numrope.RopeConfig(ctx.shape[3], layout=layout)
    table = numrope.rope_cache(cfg, ctx.shape[1], dtype=np.float64 if dtype == "float64" else np.float32)
    target = x if mode == "in place" else out
    inverse = mode == "inverse"
    axes = "BSHD" if seq_axis == -3 else "BHSD"
    return Case(
        prefill_key(dtype, layout) if (seq_axis, mode) == (-3, "out=") else "table",
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


def axes_case(ctx):
    """Multi-axis RoPE (Qwen2-VL's M-RoPE) over a prefill of text and image tokens, table and out=.

    The coordinates gather a per-token table from the cache before the rotation: the cost over
    the plain table case is that gather.
    """
    import numrope
    from numrope.models.vision import mrope_positions

    b, s, h, d = ctx.shape
    x = ctx.random((b, s, h, d))
    out = np.empty_like(x)
    pairs = d // 2
    sections = [pairs - 2 * (3 * pairs // 8), 3 * pairs // 8, 3 * pairs // 8]  # [16, 24, 24] for d = 128
    cfg = numrope.RopeConfig(d, 1e6, axes=numrope.axes.sectioned(sections))
    side = max(1, math.isqrt(s // 2))  # an image of about half the tokens, then text
    rows = max(1, min(side, s // side // 2))
    coords = mrope_positions([("image", (1, 2 * rows, 2 * side)), ("text", s - rows * side)])
    table = numrope.rope_cache(cfg, int(coords.max()) + 1)
    return Case(
        "axes",
        "multi-axis (t, h, w), table, out=: text and an image",
        x.shape,
        "float32",
        2 * x.nbytes,
        lambda: numrope.apply_rope(x, cfg, coords, cache=table, out=out),
        lambda: parallel_copy(x, out),
    )


def decode_case(ctx):
    """One decoding step (1, 1, heads, head_dim) at position seq, table and out=."""
    import numrope

    _, s, h, d = ctx.shape
    x = ctx.random((1, 1, h, d))
    out = np.empty_like(x)
    cfg = numrope.RopeConfig(d)
    cos, sin = numrope.rope_cache(cfg, s + 1)
    bare = floor_kernels()[1]  # vectorised as numrope's kernels are: the comparison is the call overhead
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
    *(
        functools.partial(table_case, dtype=dtype, layout=layout)
        for dtype in PREFILL_DTYPES
        for layout in ("half", "interleaved")
    ),
    functools.partial(table_case, seq_axis=-2),
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
    axes_case,
    decode_case,
)


#: The cases the performance targets are read from (``--targets-only``).
TARGET_CASES = (
    cache_case,
    *(
        functools.partial(table_case, dtype=dtype, layout=layout)
        for dtype in PREFILL_DTYPES
        for layout in ("half", "interleaved")
    ),
    end_to_end_case,
    decode_case,
)


def measure(case, repeat, min_time, clock=None):
    """Time a case's call against its floor, then against its baselines (``clock`` as for :func:`time_calls`); a
    JSON-ready dict.

    The call and its floor are timed in rounds of their own, each batch after the other's, and the baselines in
    rounds of their own with the call, whose time there gives the speed-ups. Timed in one schedule, the call's
    batch followed the baselines' (NumPy's temporaries, PyTorch's allocations) and the floor's followed the
    call's: the end-to-end call's share of its floor read 0.70 - 0.75 that way and 0.83 - 0.85 this way, in one
    process (``scripts/call_order.py schedule``; docs/benchmarks.md, the eleventh pass).
    """
    times = {}
    if case.floor or not case.baselines:
        against_floor = {"numrope": case.run} | ({"floor": case.floor} if case.floor else {})
        times = time_calls(against_floor, repeat, min_time, clock)
    baselines = {}
    if case.baselines:
        baselines = time_calls({"numrope": case.run} | case.baselines, repeat, min_time, clock)
    with_baselines = baselines.pop("numrope", None)
    seconds, floor = times.get("numrope", with_baselines), times.get("floor")
    return {
        "key": case.key,
        "name": case.name,
        "shape": list(case.shape),
        "dtype": case.dtype,
        "seconds": seconds,
        "seconds_with_baselines": with_baselines,  # the call's time in the baselines' rounds: the speed-ups'
        "gb_per_s": case.nbytes / seconds / 1e9,
        "floor_seconds": floor,
        "fraction_of_floor": None if floor is None else floor / seconds,
        "baselines": baselines,
        "speedup": {name: t / with_baselines for name, t in baselines.items()},
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

    def add(target, measured, goal, met, unit="", copy_speed=None):
        found.append(
            {"target": target, "measured": measured, "unit": unit, "goal": goal, "met": met, "copy_speed": copy_speed}
        )

    if any(key.startswith("prefill") for key in by_key):
        for dtype in PREFILL_DTYPES:
            for layout in ("half", "interleaved"):
                row, goal = by_key.get(prefill_key(dtype, layout)), PREFILL_GOALS[dtype]
                f = None if row is None else row["fraction_of_floor"]  # None: bfloat16 without ml_dtypes
                name = f"prefill, table and out=, {dtype} {layout}: share of the copy floor"
                add(name, f, f">= {goal:.2f}", None if f is None else f >= goal)
    if "end_to_end" in by_key:
        row = by_key["end_to_end"]
        f = row["fraction_of_floor"]
        add("apply_rope(x, cfg): share of its floor (a parallel copy into a new array)", f, ">= 0.90", f >= 0.9)
        for name in (VECTORISED, TORCH):
            s = row["speedup"].get(name)
            # What a rotation exactly as fast as the parallel copy would measure: the baseline's time over
            # the copy's. A yardstick for the goal, not a bound: numrope's call can beat the copy's run.
            copy_speed = row["baselines"][name] / row["floor_seconds"] if s is not None else None
            met = None if s is None else s >= 10
            add(f"apply_rope(x, cfg) speed-up over {name}", s, ">= 10x", met, "x", copy_speed)
    if "cache" in by_key:
        s = by_key["cache"]["speedup"][NUMPY_COS_SIN]
        add(f"rope_cache float64 speed-up over {NUMPY_COS_SIN} of the angles", s, ">= 1x", s >= 1, "x")
    if "decode" in by_key:
        r = by_key["decode"]["seconds_with_baselines"] / by_key["decode"]["baselines"][BARE_NUMBA]
        add(f"decode step time over a {BARE_NUMBA} call", r, "<= 2.5x", r <= 2.5, "x")
    if memory is not None:
        r = memory["ratio"]
        add("apply_rope(x, cfg) peak memory over output + cache", r, "<= 1.05", r <= 1.05)
    if import_seconds is not None:
        add("cold import numrope", import_seconds, "< 0.3 s", import_seconds < 0.3, " s")
    return found
