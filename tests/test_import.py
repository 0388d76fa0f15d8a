"""`import numrope` compiles nothing and loads no Numba; a second process reuses the disk cache."""

import os
import subprocess
import sys
import textwrap


def run(code, **env):
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def test_import_loads_no_numba():
    out = run("""
        import sys, numrope
        print(sorted(m for m in sys.modules if m.split('.')[0] in ('numba', 'llvmlite', 'scipy')))
    """)
    assert out == "[]"


def test_second_process_reuses_compiled_kernels(tmp_path):
    code = """
        import numpy as np, numrope
        from numrope.kernels import cpu as _cpu, sincos as _sincos
        cfg = numrope.RopeConfig(head_dim=16, layout="interleaved")
        numrope.apply_rope(np.ones((1, 3, 2, 16), np.float32), cfg)
        numrope.rope_cache(cfg, 4)
        stats = [_cpu.rotate_at_serial.stats, _sincos.cos_sin_table_serial.stats]
        print(sum(sum(s.cache_hits.values()) for s in stats), sum(sum(s.cache_misses.values()) for s in stats))
    """
    cache_dir = str(tmp_path / "numba_cache")
    first = run(code, NUMBA_CACHE_DIR=cache_dir)
    second = run(code, NUMBA_CACHE_DIR=cache_dir)
    assert first == "0 2"  # compiled and saved
    assert second == "2 0"  # loaded, nothing compiled
