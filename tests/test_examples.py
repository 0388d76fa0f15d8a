"""The scripts in examples/ run, each in a fresh interpreter, as a reader would run them.

Each is skipped, visibly, where an optional package it needs is missing (torch and transformers
for the PyTorch test, asv for the asv run); CI installs all of them and fails on a skip here.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
if not EXAMPLES.is_dir():
    pytest.skip("examples/ is not here (an installed numrope without its source tree)", allow_module_level=True)


def needs(*modules):
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"needs {' and '.join(missing)} (not installed)")


def run(argv, cwd=EXAMPLES, timeout=300):
    # The example must not inherit the test run's choices (the CUDA simulator, warnings as errors).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "NUMBA_ENABLE_CUDASIM"))}
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{argv} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_kv_cache_attention():
    out = run([sys.executable, "kv_cache_attention.py"])
    assert "the cached decode matches the full-sequence pass" in out


def test_llama_rotary_in_pytest():
    needs("torch", "transformers")
    out = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_llama_rotary.py"])
    assert "3 passed" in out, out


def test_asv_benchmarks_run_directly():
    """Every benchmark of the asv example, called once as asv would (setup, then the method)."""
    code = """
import inspect, itertools, sys
sys.path.insert(0, "asv_tracking")
from benchmarks import bench_rope
ran = 0
for cls in (c for c in vars(bench_rope).values() if inspect.isclass(c) and c.__module__ == bench_rope.__name__):
    for params in itertools.product(*getattr(cls, "params", ())) if hasattr(cls, "params") else [()]:
        bench = cls()
        bench.setup(*params)
        for name in dir(bench):
            if name.startswith(("time_", "track_")):
                result = getattr(bench, name)(*params)
                assert not name.startswith("track_") or result > 0, (cls.__name__, name, params, result)
                ran += 1
print("ran", ran)
"""
    out = run([sys.executable, "-c", code])
    assert out.split() == ["ran", "9"]  # Prefill: 2 dtypes x 2 lengths x 2 methods; DecodeStep: 1


def test_asv_run_quick(tmp_path):
    """The README's ``asv run --python=same --quick``, with results in a temporary folder."""
    needs("asv")
    conf = json.loads((EXAMPLES / "asv_tracking" / "asv.conf.json").read_text())
    base = EXAMPLES / "asv_tracking"
    conf.update(
        repo=str((base / conf["repo"]).resolve()),
        benchmark_dir=str(base / conf["benchmark_dir"]),
        env_dir=str(tmp_path / "env"),
        results_dir=str(tmp_path / "results"),
        html_dir=str(tmp_path / "html"),
    )
    config = tmp_path / "asv.conf.json"
    config.write_text(json.dumps(conf))
    asv = [sys.executable, "-m", "asv"]
    run([*asv, "machine", "--yes", "--config", str(config)], cwd=base)
    out = run([*asv, "run", "--config", str(config), "--python=same", "--quick", "--dry-run"], cwd=base)
    assert "Running 3 total benchmarks" in out, out
    for name in ("Prefill.time_apply_rope", "Prefill.track_gb_per_s", "DecodeStep.time_decode_step"):
        assert f"bench_rope.{name}" in out, out
    assert "failed" not in out.lower(), out
