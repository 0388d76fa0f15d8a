"""The GPU path on the inputs that once gave silent wrong answers: aliased outputs, positions per
batch with heads before the sequence axis, inverse and transpose with an attention factor, mixed
dtypes.

Runs on a CUDA GPU or under Numba's CUDA simulator. Where neither is set up, one test runs this
file again in a subprocess under the simulator, so that the plain test suite covers it too.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import assert_matches

import numrope
import numrope.cuda
from numrope import reference

AVAILABLE = numrope.cuda.is_available()
cuda_or_simulator = pytest.mark.skipif(not AVAILABLE, reason="no CUDA GPU here, and NUMBA_ENABLE_CUDASIM=1 is not set")

if AVAILABLE:
    from numba import cuda

    SIMULATED = bool(cuda.config.ENABLE_CUDASIM)
else:
    cuda, SIMULATED = None, False

TPB = 8 if SIMULATED else 64
CFG = numrope.RopeConfig(head_dim=8, layout="interleaved")
POS = np.array([3, 1, 4, 1, 5])


def _numba_cuda_importable():
    try:
        import numba.cuda  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(AVAILABLE or not _numba_cuda_importable(), reason="runs directly here, or numba.cuda is missing")
def test_this_file_under_the_simulator():
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=1200, cwd=os.path.dirname(__file__))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def host(a):
    return a.copy_to_host()


def check(got, x0, positions=POS, cfg=CFG, dtype=np.float64, **kwargs):
    angle = float(np.abs(np.asarray(positions, np.float64)).max() * cfg.inv_freq().max())
    assert_matches(host(got), reference.complex_form(x0, cfg, positions, **kwargs), x0, dtype, angle)


@cuda_or_simulator
def test_qk_outputs_swapped(rng):
    q0, k0 = rng.standard_normal((2, 2, 5, 3, 8)).astype(np.float32)
    q, k = cuda.to_device(q0), cuda.to_device(k0)
    q_rot, k_rot = numrope.cuda.apply_rope_qk(q, k, CFG, POS, out=(k, q), threads_per_block=TPB)
    assert q_rot is k and k_rot is q
    check(q_rot, q0, dtype=np.float32)
    check(k_rot, k0, dtype=np.float32)


@cuda_or_simulator
def test_qk_q_result_into_k_and_q_is_k(rng):
    q0, k0 = rng.standard_normal((2, 2, 5, 3, 8))
    q, k = cuda.to_device(q0), cuda.to_device(k0)
    q_rot, k_rot = numrope.cuda.apply_rope_qk(q, k, CFG, POS, out=(k, None), threads_per_block=TPB)
    check(q_rot, q0)
    check(k_rot, k0)
    np.testing.assert_array_equal(host(q), q0)
    x = cuda.to_device(q0)
    q_rot, k_rot = numrope.cuda.apply_rope_qk(x, x, CFG, POS, out=(x, None), threads_per_block=TPB)
    check(q_rot, q0)
    check(k_rot, q0)
    x = cuda.to_device(q0)
    q_rot, k_rot = numrope.cuda.apply_rope_qk(x, x, CFG, POS, out=(None, x), threads_per_block=TPB)
    check(q_rot, q0)
    check(k_rot, q0)


@cuda_or_simulator
def test_qk_partly_overlapping_and_fused(rng):
    buf0 = rng.standard_normal((2, 5, 6, 8))
    buf = cuda.to_device(buf0)
    q, k = buf[:, :, :4], buf[:, :, 2:]
    q_rot, k_rot = numrope.cuda.apply_rope_qk(q, k, CFG, POS, out=(q, None), threads_per_block=TPB)
    check(q_rot, buf0[:, :, :4])
    check(k_rot, buf0[:, :, 2:])
    with pytest.raises(ValueError, match=r"out\[0\] and out\[1\] overlap"):
        numrope.cuda.apply_rope_qk(q, k, CFG, POS, out=(q, k), threads_per_block=TPB)
    qkv0 = rng.standard_normal((2, 5, 3, 4, 8))
    qkv = cuda.to_device(qkv0)
    q, k = qkv[:, :, 0], qkv[:, :, 1]
    numrope.cuda.apply_rope_qk(q, k, CFG, POS, out=(q, k), threads_per_block=TPB)
    after = host(qkv)
    assert_matches(after[:, :, 0], reference.complex_form(qkv0[:, :, 0], CFG, POS), qkv0, np.float64, 5.0)
    assert_matches(after[:, :, 1], reference.complex_form(qkv0[:, :, 1], CFG, POS), qkv0, np.float64, 5.0)
    np.testing.assert_array_equal(after[:, :, 2], qkv0[:, :, 2])


@cuda_or_simulator
def test_interleaved_disjoint_views(rng):
    a0 = rng.standard_normal((2, 5, 3, 16))
    a = cuda.to_device(a0)
    numrope.cuda.apply_rope(a[..., ::2], CFG, POS, out=a[..., 1::2], threads_per_block=TPB)
    after = host(a)
    assert_matches(after[..., 1::2], reference.complex_form(a0[..., ::2], CFG, POS), a0, np.float64, 5.0)
    np.testing.assert_array_equal(after[..., ::2], a0[..., ::2])
    with pytest.raises(ValueError, match="out partly overlaps x"):
        numrope.cuda.apply_rope(a[..., :8], CFG, POS, out=a[..., 1:9], threads_per_block=TPB)


def heads_first_reference(x, positions, cfg=CFG, **kwargs):
    """``x`` (*batch, heads, seq, dim), positions (*batch, seq): rotate the (*batch, seq, heads, dim) form."""
    bshd = np.swapaxes(np.asarray(x, np.float64), -3, -2)
    return np.swapaxes(reference.complex_form(bshd, cfg, positions, **kwargs), -3, -2)


@cuda_or_simulator
@pytest.mark.parametrize(("batch", "heads"), [(3, 3), (2, 3)])
@pytest.mark.parametrize("use_cache", [False, True], ids=["fresh", "cache"])
def test_batch_positions_with_heads_first(batch, heads, use_cache, rng):
    x = rng.standard_normal((batch, heads, 5, 8)).astype(np.float32)
    positions = rng.integers(0, 300, (batch, 5))
    cache = numrope.cuda.rope_cache(CFG, 300, threads_per_block=TPB) if use_cache else None
    expected = heads_first_reference(x, positions)
    angle = float(positions.max() * CFG.inv_freq().max())
    for p in (positions, positions[:, None]):
        got = numrope.cuda.apply_rope(cuda.to_device(x), CFG, p, seq_axis=-2, cache=cache, threads_per_block=TPB)
        assert_matches(host(got), expected, x, np.float32, angle)
    with pytest.raises(ValueError, match="the axis before the sequence axis holds the heads"):
        numrope.cuda.apply_rope(cuda.to_device(x), CFG, np.zeros((batch, heads, 5), int), seq_axis=-2)


@cuda_or_simulator
@pytest.mark.parametrize("use_cache", [False, True], ids=["fresh", "cache"])
def test_qk_grouped_query_heads_first(use_cache, rng):
    q0 = rng.standard_normal((2, 6, 5, 8))  # (batch, heads, seq, dim)
    k0 = rng.standard_normal((2, 2, 5, 8))
    positions = rng.integers(0, 200, (2, 5))
    cache = numrope.cuda.rope_cache(CFG, 200, np.float64, threads_per_block=TPB) if use_cache else None
    angle = float(positions.max() * CFG.inv_freq().max())
    for p in (positions, 17, None):
        q, k = cuda.to_device(q0), cuda.to_device(k0)
        q_rot, k_rot = numrope.cuda.apply_rope_qk(q, k, CFG, p, seq_axis=-2, cache=cache, threads_per_block=TPB)
        p_ref = positions if p is positions else (p or 0) + np.arange(5)
        assert_matches(host(q_rot), heads_first_reference(q0, p_ref), q0, np.float64, angle)
        assert_matches(host(k_rot), heads_first_reference(k0, p_ref), k0, np.float64, angle)
        # in place, and with k's result written over q
        numrope.cuda.apply_rope_qk(q, k, CFG, p, seq_axis=-2, cache=cache, out=(q, k), threads_per_block=TPB)
        np.testing.assert_array_equal(host(q), host(q_rot))
        np.testing.assert_array_equal(host(k), host(k_rot))


YARN = numrope.RopeConfig(
    head_dim=16,
    rotary_dim=12,
    layout="interleaved",
    scaling=numrope.variants.YaRN(factor=4.0, original_max_position_embeddings=64),
)


@cuda_or_simulator
@pytest.mark.parametrize("table", [None, np.float16, np.float32, np.float64])
def test_inverse_and_transpose_with_an_attention_factor(table, rng):
    a = YARN.attention_scaling
    assert a > 1.1
    x = rng.standard_normal((2, 6, 3, 16))
    dtype = np.float64 if table in (None, np.float64) else np.float32
    x = x.astype(dtype)
    cache = None if table is None else numrope.cuda.rope_cache(YARN, 100, table, threads_per_block=TPB)
    for positions in (None, 20, rng.integers(0, 100, (2, 6))):
        kw = {"cache": cache, "threads_per_block": TPB}
        y = numrope.cuda.apply_rope(cuda.to_device(x), YARN, positions, **kw)
        back = numrope.cuda.apply_rope(y, YARN, positions, inverse=True, **kw)
        if table == np.float16:  # the table's own rounding (float16) dominates
            np.testing.assert_allclose(host(back), x, rtol=0, atol=8 * 2.0**-11 * np.abs(x).max())
        else:
            assert_matches(host(back), x.astype(np.float64), x, dtype, 0.0, scaling=2 * a)
        # the transpose, against the CPU's (tested there against a numerical Jacobian)
        cpu_cache = None if table is None else numrope.rope_cache(YARN, 100, table)
        got = numrope.cuda.apply_rope(cuda.to_device(x), YARN, positions, transpose=True, **kw)
        expected = numrope.apply_rope(x.astype(np.float64), YARN, positions, transpose=True, cache=cpu_cache)
        p = np.asarray(100 if positions is None else positions)
        tol_x = x if table != np.float16 else x.astype(np.float16)
        if table == np.float16:
            np.testing.assert_allclose(host(got), expected, rtol=0, atol=8 * 2.0**-11 * a * np.abs(x).max())
        else:
            assert_matches(host(got), expected, tol_x, dtype, float(p.max() * YARN.inv_freq().max()), scaling=a)
        q_back, k_back = numrope.cuda.apply_rope_qk(y, y, YARN, positions, inverse=True, **kw)
        np.testing.assert_array_equal(host(q_back), host(back))
        np.testing.assert_array_equal(host(k_back), host(back))


DTYPES = [np.float16, np.float32, np.float64]


def dtype_bound(x, table_dtype, max_angle):
    """As tests/test_dtypes.py: arithmetic in the wider of float32, x's and the table's dtype; cos
    and sin with the table's rounding; half an ulp of the output."""
    compute = np.result_type(np.float32, x.dtype, table_dtype)
    eps = max(np.finfo(compute).eps, np.finfo(table_dtype).eps)
    pair = 2 * np.abs(x.astype(np.float64)).max()
    return pair * (3 * eps + max_angle * 2.0**-52) + np.finfo(x.dtype).eps * pair


@cuda_or_simulator
@pytest.mark.parametrize("x_dtype", DTYPES)
@pytest.mark.parametrize("table_dtype", DTYPES)
def test_x_and_table_dtypes(x_dtype, table_dtype, rng):
    cfg = numrope.RopeConfig(head_dim=16, rotary_dim=12)
    x = rng.standard_normal((2, 6, 3, 16)).astype(x_dtype)
    positions = rng.integers(0, 100, (2, 6))
    angle = float(positions.max() * cfg.inv_freq().max())
    cache = numrope.cuda.rope_cache(cfg, 100, table_dtype, threads_per_block=TPB)
    got = host(numrope.cuda.apply_rope(cuda.to_device(x), cfg, positions, cache=cache, threads_per_block=TPB))
    assert got.dtype == x.dtype
    err = np.abs(got.astype(np.float64) - reference.complex_form(x, cfg, positions)).max()
    assert err <= dtype_bound(x, table_dtype, angle)
    # q and k of different dtypes share the table
    k = rng.standard_normal((2, 6, 1, 16)).astype(table_dtype)
    q_rot, k_rot = numrope.cuda.apply_rope_qk(
        cuda.to_device(x), cuda.to_device(k), cfg, positions, threads_per_block=TPB
    )
    shared = np.result_type(np.float32, x_dtype, table_dtype)
    for got, a in ((host(q_rot), x), (host(k_rot), k)):
        assert got.dtype == a.dtype
        err = np.abs(got.astype(np.float64) - reference.complex_form(a, cfg, positions)).max()
        assert err <= dtype_bound(a, shared, angle)


@cuda_or_simulator
def test_argument_checks_as_on_the_cpu(rng):
    cfg = numrope.RopeConfig(head_dim=8)
    x = cuda.to_device(np.zeros((1, 4, 2, 8), np.float32))
    for seq_len, exc, match in (
        ("abc", TypeError, "seq_len must be an int, got str"),
        (2.7, TypeError, "seq_len must be an int, got float"),
        (True, TypeError, "seq_len must be an int, got bool"),
        (-5, ValueError, "seq_len must be positive, got -5"),
        (0, ValueError, "seq_len must be positive, got 0"),
    ):
        with pytest.raises(exc, match=match):
            numrope.cuda.apply_rope(x, cfg, seq_len=seq_len)
        with pytest.raises(exc, match=match):
            numrope.cuda.apply_rope_qk(x, x, cfg, seq_len=seq_len)
        with pytest.raises(exc, match=match):
            numrope.cuda.rope_cache(cfg, 4, seq_len=seq_len)
    with pytest.raises(ValueError, match="positions as an int offset must be at least -2"):
        numrope.cuda.apply_rope(x, cfg, 2**63 - 1)
    with pytest.raises(ValueError, match="must be non-negative and below 2"):
        numrope.cuda.rope_cache(cfg, 2**63)
    bound = r"positions must be below 2\*\*53 in magnitude"
    for positions in (np.full(4, 2**63 - 1), np.full(4, 1e300)):
        with pytest.raises(ValueError, match=bound):
            numrope.cuda.apply_rope(x, cfg, positions)
        with pytest.raises(ValueError, match=bound):
            numrope.cuda.rope_cache(cfg, positions)
    with pytest.raises(ValueError, match=bound):
        numrope.cuda.rope_cache(cfg, 2**53 + 1)  # refused before the positions are allocated
