"""numrope in the processes users run it in: forked workers, stale and unwritable kernel caches, no JIT.

Each case runs in a fresh interpreter (subprocess), the only way to control what Numba loaded.
"""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import numrope

ROOT = Path(numrope.__file__).resolve().parent.parent


def run(code, env=None, timeout=600, cwd=None):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=cwd,
    )


FORK = """
    import multiprocessing as mp, sys
    import numpy as np, numrope

    CFG = numrope.RopeConfig(head_dim=64)
    X = np.random.default_rng(0).standard_normal((1, 2048, 8, 64)).astype(np.float32)  # parallel-sized

    def work(offset):
        return numrope.apply_rope(X, CFG, offset)

    if __name__ == "__main__":
        expected = [work(i) for i in range(3)]  # parallel launches in the parent first
        ctx = mp.get_context(sys.argv[1])
        with ctx.Pool(2) as pool:
            got = pool.map(work, range(3))
        assert all(np.array_equal(g, e) for g, e in zip(got, expected))
        print("ok", sys.argv[1])
"""


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_workers_after_a_parallel_call(method, tmp_path):
    """Regression: with GNU OpenMP, fork children died at their first parallel call and Pool.map hung."""
    script = tmp_path / "fork_case.py"
    script.write_text(textwrap.dedent(FORK))
    result = subprocess.run(
        [sys.executable, str(script), method], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == f"ok {method}"


def _copy_package(tmp_path):
    """A copy of the numrope package to edit, with its own (empty) kernel cache."""
    dest = tmp_path / "src"
    shutil.copytree(ROOT / "numrope", dest / "numrope", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


STALE = """
    import numpy as np, numrope
    cos, _ = numrope.rope_cache(numrope.RopeConfig(head_dim=4), [0, 1], dtype=np.float64)
    print(repr(float(cos[1, 0])))
"""


def test_kernel_cache_follows_every_kernel_source(tmp_path):
    """An edit of an inlined module (sincos.py) alone must not leave the cached kernels in use.

    Numba keys each cached kernel on the file that defines it; the table kernel is defined in
    sincos.py, the rotation kernels in cpu.py with sincos inlined. The edit below changes the cos
    polynomial in sincos.py; cpu.py's cached rotation (and the table) must follow it.
    """
    src = _copy_package(tmp_path)
    env = {"PYTHONPATH": str(src), "NUMBA_CACHE_DIR": ""}
    rot = """
        import numpy as np, numrope
        x = np.zeros((1, 2, 1, 4)); x[..., 0] = 1.0
        # position 0.3 is in quadrant 0: the cos polynomial itself
        y = numrope.apply_rope(x, numrope.RopeConfig(head_dim=4), np.array([0.0, 0.3]))
        print(numrope.__file__, repr(float(y[0, 1, 0, 0])))
    """
    first = run(rot, env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert list((src / "numrope" / "kernels" / "__pycache__").glob("cpu.*.nbi")), "nothing was cached"
    sincos = src / "numrope" / "kernels" / "sincos.py"
    text = sincos.read_text()
    assert "    w = 1.0 - half_z\n" in text
    sincos.write_text(text.replace("    w = 1.0 - half_z\n", "    w = 2.0 - half_z\n"))  # a wrong cosine
    second = run(rot, env, cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    path, value = first.stdout.split()
    assert path == str(src / "numrope" / "__init__.py")
    assert float(value) == pytest.approx(0.955336489125606, rel=1e-15)  # cos(0.3)
    assert float(second.stdout.split()[1]) != float(value), "the rotation kernel was loaded from a stale cache"


READ_ONLY = """
    import numpy as np, numrope
    from numrope.kernels import jit
    x = np.random.default_rng(0).standard_normal((1, 300, 4, 64)).astype(np.float32)
    cfg = numrope.RopeConfig(head_dim=64)
    y = numrope.apply_rope(x, cfg)
    assert np.allclose(numrope.apply_rope(y, cfg, inverse=True), x, atol=1e-5)
    print("cache", jit.CACHE)
"""


def test_kernel_cache_hash_covers_every_cpu_kernel_module():
    """Every module whose code the CPU kernels compile is in the cache's hash (CUDA's kernels are not cached):
    a module left out would leave stale kernels in use after an edit of it alone."""
    from numrope.kernels import jit

    modules = {path.stem for path in (ROOT / "numrope" / "kernels").glob("*.py")} - {"__init__", "cuda"}
    assert modules == set(jit.KERNEL_MODULES)


def test_write_flags_select_no_other_compilation(monkeypatch):
    """Numba compiles a kernel once per signature, and an array's write flag is part of it: read-only data,
    tables and positions, and a call in place, must reach the kernels with the types of the ordinary call,
    or each would compile the kernel again (4 - 5 s)."""
    import numba
    import numpy as np

    from numrope.kernels import cpu

    seen = {}
    for name in ("rotate_serial", "rotate_at_serial"):  # with a table, and computing cos/sin
        kernel = getattr(cpu, name)

        def record(*args, name=name, kernel=kernel):
            seen.setdefault(name, set()).add(tuple(numba.typeof(a) for a in args))
            return kernel(*args)

        monkeypatch.setattr(cpu, name, record)

    def frozen(a):
        a = a.copy()
        a.flags.writeable = False
        return a

    rng = np.random.default_rng(0)
    cfg = numrope.RopeConfig(16)
    x = rng.standard_normal((2, 5, 3, 16)).astype(np.float32)
    cos, sin = numrope.rope_cache(cfg, 10)
    pos = rng.integers(0, 10, (2, 5))
    calls = {
        "ordinary": (x, cos, sin, pos, None),
        "read-only": (frozen(x), frozen(cos), frozen(sin), frozen(pos), None),
        "broadcast positions": (x, cos, sin, np.broadcast_to(pos[:1], pos.shape), None),
        "one row of positions for every batch row": (x, cos, sin, pos[0].copy(), None),
        "in place": (x.copy(), cos, sin, pos, "in place"),
        "read-only float positions (no table)": (x, None, None, frozen(pos.astype(np.float64)), None),
    }
    for what, (data, c, s, p, out) in calls.items():
        out = data if out else None
        if c is not None:
            numrope.apply_rope(data, cfg, p, cache=(c, s), out=out)
        numrope.apply_rope(data, cfg, p, out=out)
        assert all(len(types) == 1 for types in seen.values()), (what, seen)
    assert set(seen) == {"rotate_serial", "rotate_at_serial"}


def test_the_cos_sin_table_asks_for_wide_vectors():
    """The cos/sin table's kernel asks LLVM for 512-bit vectors (numrope.kernels.jit.wide_vectors): the attribute is
    on its compiled function, and where the CPU has AVX-512 its float64 loop runs on 512-bit registers (LLVM's
    tuning for Intel's AVX-512 CPUs would otherwise pick 256-bit ones). In Python, wide_vectors does nothing."""
    import numba
    import numpy as np
    from llvmlite import binding

    from numrope.kernels import jit, sincos

    kernel = numba.njit(sincos.cos_sin_table_serial.py_func)  # compiled here: the cached one cannot be inspected
    cos, sin = np.empty((4, 8)), np.empty((4, 8))
    assert kernel(np.arange(4.0), 0.5 ** np.arange(8.0), 1.0, cos, sin)
    (signature,) = kernel.signatures
    assert jit.WIDE_VECTORS in kernel.inspect_llvm(signature)
    if "+avx512f" in binding.get_host_cpu_features().flatten().split(","):
        assert "zmm" in kernel.inspect_asm(signature)
    assert jit.wide_vectors() is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only directories")
def test_unwritable_cache_compiles_without_it(tmp_path):
    """Regression: every call failed with "cannot cache function ... no locator available"."""
    src = _copy_package(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    for path in [src, *src.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    home.chmod(0o555)
    try:
        env = {"PYTHONPATH": str(src), "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"), "NUMBA_CACHE_DIR": ""}
        result = run(READ_ONLY, env, cwd=tmp_path)
    finally:
        for path in [src, *src.rglob("*"), home]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "cache False"


def test_unwritable_cache_as_root_via_a_file(tmp_path):
    """The same as root, for whom permissions do not apply: the cache directory is a file."""
    src = _copy_package(tmp_path)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    (src / "numrope" / "kernels" / "__pycache__").write_text("")  # in-tree cache impossible
    env = {"PYTHONPATH": str(src), "HOME": str(blocker), "XDG_CACHE_HOME": str(blocker), "NUMBA_CACHE_DIR": ""}
    result = run(READ_ONLY, env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "cache False"


NO_JIT = """
    import numpy as np, numrope
    from numrope import reference
    rng = np.random.default_rng(0)
    cases = [(np.float64, "half", 8, 6), (np.float32, "interleaved", 8, 6), (np.float16, "half", 8, 6)]
    # and the dtypes and sizes that have vector kernels (numrope.kernels.simd), in place as well
    for dtype in (np.float32, np.float64, np.float16):
        cases += [(dtype, "half", 32, None), (dtype, "interleaved", 32, None)]
    for dtype, layout, head_dim, rotary_dim in cases:
        cfg = numrope.RopeConfig(head_dim=head_dim, rotary_dim=rotary_dim, layout=layout)
        x = rng.standard_normal((2, 5, 3, head_dim)).astype(dtype)
        want = reference.complex_form(x.astype(np.float64), cfg)
        table = numrope.rope_cache(cfg, 5, dtype)
        in_place = x.copy()
        numrope.apply_rope(in_place, cfg, cache=table, out=in_place)
        for got in (numrope.apply_rope(x, cfg), numrope.apply_rope(x, cfg, cache=table), in_place):
            tol = {np.float64: 1e-12, np.float32: 1e-5, np.float16: 4e-3}[dtype]
            assert np.abs(got.astype(np.float64) - want).max() < tol, (dtype, layout)
    print("ok")
"""


def test_runs_without_jit():
    """Regression: with NUMBA_DISABLE_JIT=1 every call failed ('float' * 'NoneType')."""
    result = run(NO_JIT, {"NUMBA_DISABLE_JIT": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"
