"""The ``numrope bench`` command on tiny sizes, and the measuring helpers behind it and the asv suite.

No timing is asserted: times on a shared machine are noise. What is checked is that every case runs,
that the figures derived from the times are consistent with them, and the deterministic parts:
copies, call counts, traced allocations and the baselines' arithmetic.
"""

import contextlib
import io
import json
import math
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import numrope
import numrope.cli.bench as bench
from numrope import cli, reference
from numrope.cli.bench import cases, frameworks, timing
from numrope.cli.bench import report as bench_report

TINY = ["--shape", "1", "8", "2", "16", "--repeat", "1", "--min-time", "0"]
EPS32 = float(np.finfo(np.float32).eps)
N_TARGETS = 15  # 8 prefill shares, the end-to-end share, 2 speed-ups, rope_cache, decode, memory, import

try:
    import ml_dtypes
except ImportError:  # the bfloat16 cases are skipped, and their targets not measured
    ml_dtypes = None

#: The cases a run here has: those whose dtype is installed.
CASES_HERE = [c for c in (f(cases.Context((1, 8, 2, 16), [])) for f in cases.CASES) if c is not None]


def run_bench(argv):
    """``numrope bench ARGV``: (exit code, stdout, stderr)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = cli.main(["bench", *argv])
        except SystemExit as exc:  # argparse's errors
            code = exc.code
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.fixture(scope="module")
def json_run():
    """One run of ``numrope bench --json`` (no plot: matplotlib is optional): (exit code, report, stderr)."""
    code, out, err = run_bench([*TINY, "--threads", "1", "--json", "--no-progress"])
    return code, json.loads(out), err


def test_table_lists_every_case_and_target():
    code, out, err = run_bench([*TINY, "--progress"])
    assert code == 0
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("case"))
    for column in (
        "time",
        "GB/s",
        "floor",
        f"vs {cases.VECTORISED}",
        f"vs {cases.BARE_NUMBA}",
        f"vs {cases.NUMPY_COS_SIN}",
    ):
        assert column in header
    rows = lines[lines.index(header) + 1 : lines.index("targets:") - 1]
    assert len(rows) == len(CASES_HERE)
    assert "1x8x2x16" in out and "1x1x2x16" in out  # prefill and decode shapes
    targets = lines[lines.index("targets:") + 1 :]
    # the prefill shares (4 dtypes, 2 layouts), the end-to-end share, speed-ups over vectorised NumPy and
    # PyTorch, rope_cache, decode, memory, import; a target whose baseline or dtype is not installed is listed
    # as not measured, not left out.
    assert len(targets) == N_TARGETS
    torch_target = next(line for line in targets if f"over {cases.TORCH}" in line)
    assert ("not measured" in torch_target) == (cases.TORCH not in header)
    pattern = r" goal .+ (met|MISSED|-)( \(a rotation as fast as a copy: .*x\))?$"
    assert all(re.search(pattern, line) for line in targets), targets
    assert "\r" not in out  # the progress bar goes to stderr only
    assert f"{len(cases.CASES) + 2}/{len(cases.CASES) + 2} cold import" in err


def test_json_report_is_consistent(json_run):
    code, report, err = json_run
    assert code == 0
    assert report["shape"] == [1, 8, 2, 16]
    assert report["machine"]["threads"] == 1
    assert [r["name"] for r in report["cases"]] == [case.name for case in CASES_HERE]
    for row in report["cases"]:
        assert row["seconds"] > 0
        n_elements = math.prod(row["shape"])
        if row["key"] == "qk":  # q and k, k with a quarter of the heads (at least one)
            n_elements += n_elements // row["shape"][2] * max(1, row["shape"][2] // 4)
        itemsize = 2 if row["dtype"] == "bfloat16" else np.dtype(row["dtype"]).itemsize
        assert row["gb_per_s"] * row["seconds"] * 1e9 == pytest.approx(2 * n_elements * itemsize)
        if row["floor_seconds"] is not None:
            assert row["fraction_of_floor"] == pytest.approx(row["floor_seconds"] / row["seconds"])
        # the speed-ups from the rounds that time the call with its baselines, the share from those with its floor
        with_baselines = row["seconds_with_baselines"]
        assert (with_baselines is None) == (not row["baselines"])
        assert row["speedup"] == pytest.approx({k: t / with_baselines for k, t in row["baselines"].items()})
        if row["floor_seconds"] is None:
            assert row["seconds"] == with_baselines
    by_key = {row["key"]: row for row in report["cases"]}
    assert set(by_key["end_to_end"]["baselines"]) >= {cases.VECTORISED}
    assert set(by_key["decode"]["baselines"]) >= {cases.BARE_NUMBA, cases.VECTORISED}
    assert set(by_key["cache"]["baselines"]) == {cases.NUMPY_COS_SIN}
    goals = {t["target"]: t for t in report["targets"]}
    prefill = goals["prefill, table and out=, float32 half: share of the copy floor"]
    assert prefill["measured"] == by_key["prefill"]["fraction_of_floor"]
    assert prefill["met"] == (prefill["measured"] >= 0.95)
    fresh = goals["apply_rope(x, cfg): share of its floor (a parallel copy into a new array)"]
    assert fresh["measured"] == by_key["end_to_end"]["fraction_of_floor"]
    seed = goals[f"apply_rope(x, cfg) speed-up over {cases.VECTORISED}"]
    row = by_key["end_to_end"]
    assert seed["measured"] == row["speedup"][cases.VECTORISED]
    assert seed["copy_speed"] == row["baselines"][cases.VECTORISED] / row["floor_seconds"]
    memory = report["peak_memory"]
    assert memory["ratio"] == memory["peak_bytes"] / (memory["output_bytes"] + memory["cache_bytes"])
    assert report["cold_import_seconds"] > 0
    assert err == ""


def _figure(target, report):
    """A target's figure, recomputed from the report's raw times (not from its derived fields)."""
    by_key = {row["key"]: row for row in report["cases"]}
    name = target["target"]
    if name.startswith("prefill"):
        dtype, layout = re.fullmatch(r"prefill, table and out=, (\w+) (\w+): share of the copy floor", name).groups()
        row = by_key.get("prefill" if (dtype, layout) == ("float32", "half") else f"prefill:{dtype}:{layout}")
        return None if row is None else row["floor_seconds"] / row["seconds"]
    if name.startswith("apply_rope(x, cfg): share of its floor"):
        return by_key["end_to_end"]["floor_seconds"] / by_key["end_to_end"]["seconds"]
    if name.startswith("apply_rope(x, cfg) speed-up over "):
        baseline = by_key["end_to_end"]["baselines"].get(name.rsplit(" over ", 1)[1])
        return None if baseline is None else baseline / by_key["end_to_end"]["seconds_with_baselines"]
    if name.startswith("rope_cache"):
        return by_key["cache"]["baselines"][cases.NUMPY_COS_SIN] / by_key["cache"]["seconds_with_baselines"]
    if name.startswith("decode"):
        return by_key["decode"]["seconds_with_baselines"] / by_key["decode"]["baselines"][cases.BARE_NUMBA]
    if "peak memory" in name:
        m = report["peak_memory"]
        return m["peak_bytes"] / (m["output_bytes"] + m["cache_bytes"])
    if name.startswith("cold import"):
        return report["cold_import_seconds"]
    raise AssertionError(f"a target this test does not know: {name}")


def _meets(value, goal):
    """Whether ``value`` meets a goal written as in the report (">= 0.80", "<= 3x", "< 0.3 s")."""
    op, number = re.fullmatch(r"(>=|<=|<|>) ?([0-9.]+) ?(x|s)?", goal).group(1, 2)
    return {">=": value >= float(number), "<=": value <= float(number), "<": value < float(number)}.get(
        op, value > float(number)
    )


def _check_verdicts(report):
    assert len(report["targets"]) == N_TARGETS
    for target in report["targets"]:
        figure = _figure(target, report)
        if figure is None:
            assert target["measured"] is None and target["met"] is None, target
            continue
        assert target["measured"] == pytest.approx(figure, rel=1e-12), target
        assert target["met"] is _meets(figure, target["goal"]), target
    text = bench_report.format_report(report).splitlines()
    for target in report["targets"]:
        line = next(line for line in text if line.startswith(f"  {target['target']} "))
        verdict = {True: "met", False: "MISSED", None: "-"}[target["met"]]
        assert re.search(rf" goal {re.escape(target['goal'])} +{verdict}( \(|$)", line), line


def test_every_target_verdict_follows_its_figures(json_run):
    _check_verdicts(json_run[1])


def _row(key, seconds, floor=None, baselines=()):
    baselines = dict(baselines)
    return {
        "key": key,
        "seconds": seconds,
        "seconds_with_baselines": seconds if baselines else None,
        "floor_seconds": floor,
        "fraction_of_floor": None if floor is None else floor / seconds,
        "baselines": baselines,
        "speedup": {name: t / seconds for name, t in baselines.items()},
    }


@pytest.mark.parametrize("side", ["met", "missed"])
def test_target_verdicts_on_either_side_of_each_goal(side):
    """Figures just inside, then just outside, every goal: each verdict must flip with its figure."""
    good = side == "met"
    prefill = [
        _row(cases.prefill_key(dtype, layout), 1.0, floor=cases.PREFILL_GOALS[dtype] + (0.01 if good else -0.01))
        for dtype in cases.PREFILL_DTYPES
        for layout in ("half", "interleaved")
    ]
    fresh_floor = 0.91 if good else 0.89
    rows = [
        *prefill,
        _row("end_to_end", 1.0, fresh_floor, baselines={cases.VECTORISED: 10.5 if good else 9.5, cases.TORCH: 12}),
        _row("cache", 1.0, baselines={cases.NUMPY_COS_SIN: 1.01 if good else 0.99}),
        _row("decode", 2.45 if good else 2.55, baselines={cases.BARE_NUMBA: 1.0}),
    ]
    memory = {"peak_bytes": 104 if good else 106, "output_bytes": 60, "cache_bytes": 40}
    memory["ratio"] = memory["peak_bytes"] / 100
    report = {
        "numrope": "0",
        "machine": {"platform": "p", "cpus": 2, "threads": 2, "threading_layer": "t", "numpy": "n", "numba": "n"},
        "cases": [{**r, "name": r["key"], "shape": [1], "dtype": "float32", "gb_per_s": 1.0} for r in rows],
        "peak_memory": memory,
        "cold_import_seconds": 0.29 if good else 0.31,
    }
    report["targets"] = cases.targets(report["cases"], memory, report["cold_import_seconds"])
    _check_verdicts(report)
    expected = [good] * N_TARGETS
    expected[10] = True  # PyTorch: 12x both times
    assert [t["met"] for t in report["targets"]] == expected


def test_a_speed_up_above_the_copy_speed_is_not_called_a_miss_of_a_ceiling():
    """A measured 6.93x beside a copy-speed 5.56x: the report gives both figures and claims no ceiling."""
    target = {"target": "t", "measured": 6.93, "unit": "x", "goal": ">= 10x", "met": False, "copy_speed": 5.56}
    report = {
        "numrope": "0",
        "machine": {"platform": "p", "cpus": 2, "threads": 2, "threading_layer": "t", "numpy": "n", "numba": "n"},
        "cases": [],
        "targets": [target],
    }
    line = bench_report.format_report(report).splitlines()[-1]
    assert "6.93x" in line and "5.56x" in line and "MISSED" in line
    assert "ceiling" not in line
    old = {**target, "ceiling": target.pop("copy_speed")}  # a report stored before the key was renamed
    assert bench_report.format_report({**report, "targets": [old]}).splitlines()[-1] == line


def test_plot_labels_name_each_dtype_once_and_call_the_copy_no_floor(json_run):
    pytest.importorskip("matplotlib", reason="the plot needs matplotlib (numrope[bench])")
    fig = bench.draw(json_run[1])
    bandwidth = fig.axes[0]
    labels = [t.get_text() for t in bandwidth.get_yticklabels()]
    assert len(labels) == len(CASES_HERE)
    for label, row in zip(labels, json_run[1]["cases"], strict=True):
        assert label.count(row["dtype"]) == 1, label  # "rope_cache(8 positions), float64", not "... (float64)"
    legend = [t.get_text() for t in bandwidth.get_legend().get_texts()]
    assert not any("floor" in text for text in legend), legend  # bars can pass the copy's bandwidth


def test_plot_is_a_png(tmp_path):
    pytest.importorskip("matplotlib", reason="--plot needs matplotlib (numrope[bench])")
    plot = tmp_path / "bench.png"
    code, _, err = run_bench([*TINY, "--targets-only", "--plot", str(plot), "--no-progress"])
    assert code == 0, err
    assert "plot written to" in err
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot.stat().st_size > 10_000


def test_plot_without_matplotlib_stops_before_the_benchmark(monkeypatch, tmp_path):
    import numrope.cli.bench as bench

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib... raises ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setattr(bench, "collect", lambda *a, **k: pytest.fail("the benchmark ran before the check"))
    code, out, err = run_bench([*TINY, "--plot", str(tmp_path / "bench.png")])
    assert code == 2
    assert out == ""
    assert err.strip() == 'numrope bench: --plot needs matplotlib: install it with `pip install "numrope[bench]"`'
    assert not (tmp_path / "bench.png").exists()


def test_targets_only_runs_the_target_cases():
    code, out, _ = run_bench([*TINY, "--targets-only", "--json", "--no-progress"])
    report = json.loads(out)
    assert code == 0
    prefill = [
        cases.prefill_key(dtype, layout)
        for dtype in cases.PREFILL_DTYPES
        for layout in ("half", "interleaved")
        if dtype != "bfloat16" or ml_dtypes is not None
    ]
    assert [r["key"] for r in report["cases"]] == ["cache", *prefill, "end_to_end", "decode"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--shape", "1", "8", "2", "15"], "HEAD_DIM must be even"),
        (["--shape", "1", "0", "2", "16"], "must be a positive integer"),
        (["--threads", "0"], "must be a positive integer"),
        (["--threads", "100000"], "at most"),
        (["--min-time", "nan"], "--min-time: must be a number of seconds from 0 to 60, got nan"),
        (["--min-time", "-1"], "--min-time: must be a number of seconds from 0 to 60, got -1"),
        (["--min-time", "inf"], "--min-time: must be a number of seconds from 0 to 60, got inf"),
        (["--min-time", "soon"], "--min-time: must be a number, got 'soon'"),
        (["--repeat", "0"], "--repeat: must be a positive integer"),
    ],
)
def test_bad_arguments(argv, message):
    code, out, err = run_bench(argv)
    assert code == 2
    assert message in err
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_parallel_copy_copies_exactly(dtype, rng):
    src = rng.standard_normal((3, 5, 7)).astype(dtype)
    src[0, 0, :2] = [np.nan, -0.0]
    dst = timing.parallel_copy(src, np.full_like(src, 7))
    assert dst.tobytes() == src.tobytes()


def test_parallel_copy_rejects_mismatches():
    a = np.zeros((4, 6), dtype=np.float32)
    with pytest.raises(ValueError, match="must match"):
        timing.parallel_copy(a, np.zeros((4, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="must match"):
        timing.parallel_copy(a, np.zeros((4, 6), dtype=np.float64))
    with pytest.raises(ValueError, match="C-contiguous"):
        timing.parallel_copy(a[:, ::2], np.zeros((4, 3), dtype=np.float32))


def test_time_calls_interleaves_and_counts_calls():
    calls = []
    times = timing.time_calls({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeat=3, min_time=0)
    assert set(times) == {"a", "b"} and all(t > 0 for t in times.values())
    # an untimed call and a one-call calibrating batch each, then three rounds of one call each, in turn
    assert calls == ["a", "a", "b", "b"] + ["a", "b"] * 3


def test_batch_size_is_not_taken_from_a_slow_first_call():
    calls = []

    def slow_first():  # as a kernel loaded from the disk cache on its first call
        if not calls:
            time.sleep(0.05)
        calls.append(None)

    assert timing._batch_size(slow_first, min_time=0.01) > 100


def test_peak_allocated_counts_temporaries():
    size = 1 << 20
    peak = timing.peak_allocated(lambda: np.ones(size).sum())
    assert 8 * size <= peak < 8 * size + 64 * 1024


def test_apply_rope_peak_memory_within_output_plus_cache(rng):
    """The memory target: apply_rope(x, cfg) allocates its output and at most a cos/sin table, plus 5%."""
    x = rng.standard_normal((1, 256, 8, 64), dtype=np.float32)
    cfg = numrope.RopeConfig(64)
    numrope.apply_rope(x, cfg)  # compile first
    table = 2 * x.shape[1] * cfg.n_pairs * x.itemsize
    assert timing.peak_allocated(lambda: numrope.apply_rope(x, cfg)) <= 1.05 * (x.nbytes + table)
    cache, out = numrope.rope_cache(cfg, x.shape[1]), np.empty_like(x)
    numrope.apply_rope(x, cfg, cache=cache, out=out)
    assert timing.peak_allocated(lambda: numrope.apply_rope(x, cfg, cache=cache, out=out)) <= 0.05 * x.nbytes


def _numpy_namespace_rope(x, cfg, positions, seq_axis=-3):
    return frameworks.framework_rope(
        np, lambda a: np.concatenate(a, axis=-1), lambda a, d: a.astype(d), x, cfg, positions, seq_axis
    )


def _float32_angle_bound(x, cfg, positions):
    """|error| of the framework form on float64 x: float32 angles and float32 cos/sin.

    The angle ``m * theta`` is formed from float32 theta and m with two roundings (relative
    ``eps32 / 2`` each), so it is off by at most ``|m theta| eps32``; float32 cos and sin add an ulp
    each. Each output sums two products of a pair element, so the error is at most
    ``(|m theta|_max + 2) eps32 (|x0| + |x1|)``, with a safety factor 2.
    """
    max_angle = float(np.max(np.abs(positions))) * float(cfg.inv_freq().max())
    return 2 * (max_angle + 2) * EPS32 * 2 * np.abs(x).max()


@pytest.mark.parametrize(
    ("layout", "rotary_dim", "seq_axis"), [("half", None, -3), ("interleaved", None, -3), ("half", 8, -2)]
)
def test_framework_form_matches_the_reference(layout, rotary_dim, seq_axis, rng):
    """The baselines' arithmetic (run here with NumPy as the namespace) is RoPE."""
    cfg = numrope.RopeConfig(16, layout=layout, rotary_dim=rotary_dim)
    x = rng.standard_normal((2, 3, 9, 16))  # seq axis of length 9 at -3, or 3 at -2
    positions = np.arange(x.shape[seq_axis], dtype=np.float32) + 5
    got = _numpy_namespace_rope(x, cfg, positions, seq_axis)
    x_bshd = np.moveaxis(x, seq_axis, -3)
    expected = np.moveaxis(reference.complex_form(x_bshd, cfg, positions.astype(np.int64)), -3, seq_axis)
    assert np.abs(got - expected).max() <= _float32_angle_bound(x, cfg, positions)


@pytest.mark.parametrize(("module", "name"), [("torch", cases.TORCH), ("jax", cases.JAX)])
def test_framework_baselines_match_numrope(module, name, rng):
    pytest.importorskip(module, reason=f"{module} is an optional baseline")
    fw = next(f for f in frameworks.find_frameworks() if f.name == name)
    cfg = numrope.RopeConfig(16)
    x = rng.standard_normal((1, 6, 2, 16), dtype=np.float32)
    positions = np.arange(6, dtype=np.float32)
    got = np.asarray(fw.sync(fw.rope(fw.array(x), cfg, fw.array(positions), -3)))
    expected = numrope.apply_rope(x.astype(np.float64), cfg)
    # float32 x adds the rounding of two products and a sum: at most 1.5 eps32 (|x0| + |x1|)
    assert np.abs(got - expected).max() <= _float32_angle_bound(x, cfg, positions) + 4 * EPS32 * np.abs(x).max()


def test_every_scaling_variant_has_an_asv_benchmark(monkeypatch):
    """bench_scaling.EXAMPLES covers numrope.variants.VARIANTS, each a valid configuration."""
    from numrope import variants as scaling

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    examples = pytest.importorskip("asv_benchmarks.bench_scaling", reason="needs the source tree").EXAMPLES
    missing = set(scaling.VARIANTS) - set(examples)
    assert not missing, f"add an example of {sorted(missing)} to asv_benchmarks/bench_scaling.py"
    for make in examples.values():
        numrope.RopeConfig(128, scaling=make())


def test_cold_import_ignores_modules_in_the_working_directory(tmp_path, monkeypatch):
    """A stray numpy.py where numrope bench is run must not stand in for NumPy in the fresh interpreter."""
    (tmp_path / "numpy.py").write_text("raise ImportError('a stray numpy.py')\n")
    monkeypatch.chdir(tmp_path)
    assert 0 < timing.cold_import_time(repeat=1) < 60


def test_the_bare_decode_kernel_rotates_as_numrope(rng):
    """The decode step's yardstick computes the same rotation (half layout, float32 table rows)."""
    bare = timing.floor_kernels()[1]
    cfg = numrope.RopeConfig(16)
    cos, sin = numrope.rope_cache(cfg, 40)
    x = rng.standard_normal((3, 4, 16), dtype=np.float32)  # (tokens, heads, head_dim)
    rows = np.array([39, 0, 17])
    out = np.full_like(x, np.nan)
    bare(x, out, cos, sin, rows)
    want = numrope.apply_rope(x[:, None], cfg, rows[:, None], cache=(cos, sin))[:, 0]
    np.testing.assert_array_equal(out, want)


def test_the_bare_decode_kernel_is_vectorised():
    """Its loop over pairs compiles to vector arithmetic, as numrope's does: the ratio measures call overhead, not
    scalar arithmetic against vector arithmetic (a signed ``i + half`` index kept LLVM from vectorising it)."""
    import numba

    fresh = numba.njit(timing.floor_kernels()[1].py_func)  # compiled here, not loaded from the cache
    x = np.zeros((1, 4, 128), np.float32)
    cos = np.zeros((2, 64), np.float32)
    fresh(x, np.empty_like(x), cos, cos, np.array([1]))
    llvm = next(iter(fresh.inspect_llvm().values()))
    assert re.search(r"fmul (fast )?<(4|8|16) x float>", llvm), "the bare decode loop is not vectorised"


def test_parallel_copy_copies_bfloat16(rng):
    if ml_dtypes is None:
        pytest.skip("bfloat16 is ml_dtypes.bfloat16")
    src = rng.standard_normal((3, 5, 8)).astype(ml_dtypes.bfloat16)
    dst = timing.parallel_copy(src, np.zeros_like(src))
    assert dst.tobytes() == src.tobytes()


def test_the_frameworks_are_side_by_side(json_run):
    """Eager PyTorch and jitted JAX, each where installed, time the end-to-end rotation beside numrope."""
    import importlib.util

    row = next(r for r in json_run[1]["cases"] if r["key"] == "end_to_end")
    for module, name in (("torch", cases.TORCH), ("jax", cases.JAX)):
        assert (name in row["baselines"]) == (importlib.util.find_spec(module) is not None), name
    assert json_run[1]["machine"]["frameworks"] == [n for n in (cases.TORCH, cases.JAX) if n in row["baselines"]]


def test_cpu_time_needs_one_thread():
    code, out, err = run_bench([*TINY, "--cpu-time"])
    assert code == 2 and out == ""
    assert err.strip() == "numrope bench: --cpu-time needs --threads 1 (the CPU time of several threads adds up)"


def test_cpu_time_times_with_the_thread_clock(monkeypatch):
    """--cpu-time times every batch with time.thread_time, leaves JAX out, and the report says which clock."""
    used = []
    real = time.thread_time

    def counting():
        used.append(1)
        return real()

    monkeypatch.setattr(bench.time, "thread_time", counting)
    code, out, _ = run_bench([*TINY, "--targets-only", "--threads", "1", "--cpu-time", "--json", "--no-progress"])
    report = json.loads(out)
    assert code == 0 and report["machine"]["clock"] == "CPU time of the calling thread"
    assert len(used) >= 2 * len(report["cases"])  # a start and a stop per timed batch
    assert cases.JAX not in report["machine"]["frameworks"]
    assert all(cases.JAX not in row["baselines"] for row in report["cases"])
    assert json.loads(run_bench([*TINY, "--targets-only", "--json", "--no-progress"])[1])["machine"]["clock"] == (
        "wall clock"
    )


def test_the_floor_is_timed_apart_from_the_baselines(monkeypatch):
    """A case's call is timed against its floor in rounds without the baselines, then against the baselines: in one
    schedule the call's batch followed the baselines' and the floor's the call's, which lowered the end-to-end call's
    share of its floor (0.70 - 0.75 against 0.83 - 0.85, scripts/call_order.py schedule). The share and the speed-ups
    each come from their own rounds."""
    schedules = []
    times = iter([{"numrope": 2.0, "floor": 1.0}, {"numrope": 4.0, "slow": 12.0}])

    def timing(fns, repeat, min_time, clock):
        schedules.append(list(fns))
        return next(times)

    monkeypatch.setattr(cases, "time_calls", timing)
    case = cases.Case("k", "name", (1, 2), "float32", 16, lambda: None, lambda: None, {"slow": lambda: None})
    row = cases.measure(case, 1, 0.0)
    assert schedules == [["numrope", "floor"], ["numrope", "slow"]]
    assert (row["seconds"], row["fraction_of_floor"], row["seconds_with_baselines"]) == (2.0, 0.5, 4.0)
    assert row["baselines"] == {"slow": 12.0} and row["speedup"] == {"slow": 3.0}


def test_time_calls_uses_the_clock_it_is_given():
    ticks = iter(range(0, 1000, 10))  # each reading 10 "seconds" after the last
    times = timing.time_calls({"a": lambda: None}, repeat=2, min_time=0, clock=lambda: next(ticks))
    assert times == {"a": 10.0}
