"""bfloat16 (ml_dtypes.bfloat16) on the CPU: exact widening, one rounding to nearest even, and every calling form
against the float64 reference, in memory and through Dask.

The independent references: ml_dtypes' own float32 <-> bfloat16 conversions (its float64 -> bfloat16 cast rounds
through float32, twice, so the float64 rounding is held to the nearest bfloat16 found here by exact comparisons),
and numrope.reference's float64 forms.
"""

import numpy as np
import pytest
from conftest import EPS64

import numrope
from numrope import reference

ml_dtypes = pytest.importorskip("ml_dtypes", reason="bfloat16 is ml_dtypes.bfloat16")
BF16 = np.dtype(ml_dtypes.bfloat16)
EPS_BF16 = float(ml_dtypes.finfo(ml_dtypes.bfloat16).eps)  # 2**-7
EPS32 = float(np.finfo(np.float32).eps)
CFG = numrope.RopeConfig(head_dim=16, rotary_dim=12, layout="interleaved")


def nearest_bf16_bits(values):
    """The bfloat16 bit patterns nearest to float64 ``values`` (ties to even), by exact comparisons.

    Candidates: the truncation of |v| to bfloat16 and its two neighbours. Each candidate and |v| are
    float64 numbers within a factor two of each other, so their difference is exact (Sterbenz).
    """
    v = np.asarray(values, np.float64).reshape(-1)
    a = np.abs(v)
    with np.errstate(over="ignore"):
        t = (a.astype(np.float32).view(np.uint32) >> 16).astype(np.int64)
    cands = np.stack([np.maximum(t - 1, 0), t, np.minimum(t + 1, 0x7F80)], axis=1)
    cvals = (cands.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    dist = np.abs(cvals - a[:, None])
    best = dist.min(axis=1, keepdims=True)
    # among the nearest, the even pattern (a tie has one odd and one even neighbour)
    score = np.where(dist == best, cands % 2, 2)
    pick = cands[np.arange(v.size), np.argmin(score, axis=1)]
    return (pick | np.where(np.signbit(v), 0x8000, 0)).astype(np.uint16).reshape(np.shape(values))


def test_the_reference_rounding_is_exact():
    """The test's own rounding on hand-made cases: halfway values go to the even neighbour."""
    one, ulp = 1.0, 2.0**-7
    got = nearest_bf16_bits([one + ulp / 2, one + 3 * ulp / 2, one + ulp / 2 + 2.0**-40, -(one + ulp / 2)])
    want = np.array([one, one + 2 * ulp, one + ulp, -one], np.float32).view(np.uint32) >> 16
    np.testing.assert_array_equal(got, want.astype(np.uint16))


def test_widening_every_bfloat16_pattern():
    """A bfloat16 table read by the kernel holds exactly ml_dtypes' float32 value of every bit pattern."""
    patterns = np.arange(2**16, dtype=np.uint32).astype(np.uint16)
    cos = patterns.view(BF16).reshape(-1, 1)
    sin = np.zeros_like(cos)
    cfg = numrope.RopeConfig(head_dim=2)
    x = np.zeros((1, cos.shape[0], 1, 2), np.float32)
    x[..., 0] = 1.0
    with np.errstate(invalid="ignore"):
        out = numrope.apply_rope(x, cfg, np.arange(cos.shape[0]), cache=(cos, sin))
        want = cos[:, 0].astype(np.float32)
    got = out[0, :, 0, 0]  # 1 * c - 0 * s
    nan = np.isnan(want)
    np.testing.assert_array_equal(got[~nan].view(np.uint32), want[~nan].view(np.uint32))
    assert np.isnan(got[nan]).all()


def _float32_cases(rng):
    bits = np.concatenate(
        [
            rng.integers(0, 2**32, 1_000_000, dtype=np.uint64).astype(np.uint32),
            # every tie: the low half exactly 0x8000, with an even and an odd kept bit
            (np.arange(2**16, dtype=np.uint32) << 16) | 0x8000,
            # one unit either side of the ties
            (np.arange(0, 2**16, 7, dtype=np.uint32) << 16) | 0x7FFF,
            (np.arange(0, 2**16, 7, dtype=np.uint32) << 16) | 0x8001,
            # subnormals, around the overflow threshold, infinities
            np.arange(0, 0x00800000, 4099, dtype=np.uint32),
            np.arange(0x7F7F0000, 0x7F800001, 257, dtype=np.uint32),
            np.array([0x80000000, 0xFF800000, 0x7F7FFFFF, 0xFF7FFFFF], np.uint32),
        ]
    )
    values = bits.view(np.float32)
    return values[~np.isnan(values)]


def test_rounding_float32_to_bfloat16_in_the_kernel(rng):
    """bfloat16 x = 1 times a float32 cos table of arbitrary values: out is each value rounded once, as
    ml_dtypes rounds float32 (to nearest, ties to even, overflow to infinity)."""
    values = _float32_cases(rng)
    cos = values.reshape(-1, 1)
    sin = np.zeros_like(cos)
    cfg = numrope.RopeConfig(head_dim=2)
    x = np.zeros((1, cos.shape[0], 1, 2), BF16)
    x[..., 0] = 1
    with np.errstate(invalid="ignore", over="ignore"):
        out = numrope.apply_rope(x, cfg, np.arange(cos.shape[0]), cache=(cos, sin))
        want = values.astype(BF16).view(np.uint16)
    got = out[0, :, 0, 0].view(np.uint16)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, f"{bad.size} mismatches, first {values[bad[:5]]}: {got[bad[:5]]} != {want[bad[:5]]}"


def test_nan_stays_nan_and_infinities_stay(rng):
    cfg = numrope.RopeConfig(head_dim=2)
    values = np.array([np.nan, -np.nan, np.inf, -np.inf], np.float32).reshape(-1, 1)
    x = np.zeros((1, 4, 1, 2), BF16)
    x[..., 0] = 1
    with np.errstate(invalid="ignore"):
        out = numrope.apply_rope(x, cfg, np.arange(4), cache=(values, np.zeros_like(values)))
    got = out[0, :, 0, 0].astype(np.float32)
    assert np.isnan(got[:2]).all()
    np.testing.assert_array_equal(got[2:], [np.inf, -np.inf])


def test_one_rounding_of_the_float32_computation(rng):
    """bfloat16 in, bfloat16 out: the float32 computation of the widened input, rounded once (not twice,
    nor from a float64 computation): bit for bit, with and without a table, forward and inverse."""
    x = rng.standard_normal((2, 40, 3, 16)).astype(BF16)
    wide = x.astype(np.float32)
    cache = numrope.rope_cache(CFG, 100, np.float32)
    pos = rng.integers(0, 100, (2, 40))
    for kwargs in ({}, {"positions": pos}, {"positions": pos, "cache": cache}, {"inverse": True}):
        got = numrope.apply_rope(x, CFG, **kwargs)
        assert got.dtype == BF16
        want = numrope.apply_rope(wide, CFG, **kwargs).astype(BF16)  # float32 -> bfloat16: one rounding
        np.testing.assert_array_equal(got.view(np.uint16), want.view(np.uint16))


# The inputs of test_one_rounding_in_whole_vectors: rows of whole vectors (heads of 128) and rows with tails (96:
# 16 pairs past the vector), both layouts; 2 x 60 x 4 x 128 elements stays under the parallel threshold, so the
# subprocess compiles the serial kernels only.
WHOLE_VECTOR_CASES = [(128, "half"), (128, "interleaved"), (96, "half"), (96, "interleaved")]
ROTATE_IN_SUBPROCESS = """
import sys
import ml_dtypes, numpy as np, numrope
from numrope.kernels import half
assert sys.argv[2] == "this machine" or not half.BFLOAT16_IN_HARDWARE
data = dict(np.load(sys.argv[1]))
got = {}
for case in sorted({k.split(":")[0] for k in data}):
    head, layout = case.split("-")
    cfg = numrope.RopeConfig(int(head), layout=layout)
    x, ties = (data[f"{case}:{name}"].view(ml_dtypes.bfloat16) for name in ("x", "ties"))
    cache, ones = (data[f"{case}:cos"], data[f"{case}:sin"]), (data[f"{case}:one"], data[f"{case}:tiny"])
    in_place = x.copy()
    numrope.apply_rope(in_place, cfg, cache=cache, out=in_place)
    got[f"{case}:no table"] = numrope.apply_rope(x, cfg)
    got[f"{case}:table"] = numrope.apply_rope(x, cfg, cache=cache)
    got[f"{case}:in place"] = in_place
    got[f"{case}:ties"] = numrope.apply_rope(ties, cfg, cache=ones)
np.savez(sys.argv[1], **{k: v.view(np.uint16) for k, v in got.items()})
"""


@pytest.mark.parametrize("target", ["this machine", "generic x86-64"])
def test_one_rounding_in_whole_vectors(target, tmp_path, rng):
    """Rows of whole vectors (numrope.kernels.simd) and rows with tails, both layouts, with and without a table,
    in place, values about the smallest normal among them, and ties: the float32 computation rounded once,
    whether the CPU's conversion rounds (where it has AVX512-BF16) or the arithmetic does (a generic x86-64
    target, as for a portable cache). The bfloat16 calls run in a subprocess compiled for the target; the
    float32 computations they must equal run here (IEEE float32 arithmetic gives the same bits on either)."""
    import os
    import platform
    import subprocess
    import sys

    env = dict(os.environ)  # for this machine, the kernels the rest of the suite compiled and cached
    if target == "generic x86-64":
        if platform.machine().lower() not in ("x86_64", "amd64"):
            pytest.skip("the generic x86-64 target is chosen on x86-64 only")
        env.update(NUMBA_CPU_NAME="generic", NUMBA_CACHE_DIR=str(tmp_path))  # compiled for it, cached apart
    data, want = {}, {}
    for head, layout in WHOLE_VECTOR_CASES:
        case, cfg = f"{head}-{layout}", numrope.RopeConfig(head, layout=layout)
        x = (rng.standard_normal((2, 60, 4, head)) * 2.0 ** rng.integers(-8, 8, (2, 60, 4, head))).astype(np.float32)
        x[:, 3] *= float(ml_dtypes.finfo(BF16).tiny)  # products and sums below the smallest normal float32
        x = x.astype(BF16)
        cache = numrope.rope_cache(cfg, 60, np.float32)
        wide = x.astype(np.float32)
        want[f"{case}:no table"] = numrope.apply_rope(wide, cfg).astype(BF16)
        want[f"{case}:table"] = want[f"{case}:in place"] = numrope.apply_rope(wide, cfg, cache=cache).astype(BF16)
        assert (np.abs(want[f"{case}:table"][:, 3].astype(np.float32)) < ml_dtypes.finfo(BF16).tiny).mean() > 0.3
        # ties: integers of 8 bits, the rotation by cos 1 and sin 2**-8: k0 - k1 / 256 is a tie where k1 is 128
        ties = rng.integers(128, 256, (2, 60, 4, head)).astype(BF16)
        ones = (np.ones((60, head // 2), np.float32), np.full((60, head // 2), 2.0**-8, np.float32))
        wide_ties = numrope.apply_rope(ties.astype(np.float32), cfg, cache=ones)
        assert ((wide_ties.view(np.uint32) & 0xFFFF) == 0x8000).sum() > 200
        want[f"{case}:ties"] = wide_ties.astype(BF16)
        data.update({f"{case}:x": x, f"{case}:ties": ties, f"{case}:cos": cache[0], f"{case}:sin": cache[1]})
        data.update({f"{case}:one": ones[0], f"{case}:tiny": ones[1]})
    path = str(tmp_path / "arrays.npz")
    np.savez(path, **{k: v.view(np.uint16) if v.dtype == BF16 else v for k, v in data.items()})
    done = subprocess.run(
        [sys.executable, "-c", ROTATE_IN_SUBPROCESS, path, target],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = np.load(path)
    assert set(got.files) == set(want)
    for key, expected in want.items():
        np.testing.assert_array_equal(got[key], expected.view(np.uint16), err_msg=key)


def bound(x, table_eps, max_angle):
    """|result - exact| for bfloat16 x: float32 arithmetic with cos/sin of ``table_eps`` (3 eps (|x0| + |x1|),
    as in test_dtypes), the reference's float64 angle error, and half an ulp of bfloat16 on the output."""
    pair = 2 * np.abs(x.astype(np.float64)).max()
    return pair * (3 * max(EPS32, table_eps) + max_angle * EPS64) + EPS_BF16 / 2 * pair


@pytest.mark.parametrize("table", ["none", "bfloat16", "float16", "float32", "float64"])
@pytest.mark.parametrize("layout", ["half", "interleaved"])
def test_against_the_float64_reference(table, layout, rng):
    cfg = numrope.RopeConfig(head_dim=16, rotary_dim=12, layout=layout)
    x = rng.standard_normal((2, 30, 3, 16)).astype(BF16)
    pos = rng.integers(0, 500, (2, 30))
    dtype = {"none": None, "bfloat16": BF16}.get(table, np.dtype(table) if table != "none" else None)
    cache = None if dtype is None else numrope.rope_cache(cfg, 500, dtype)
    table_eps = EPS32 if dtype is None else (EPS_BF16 if dtype == BF16 else float(np.finfo(dtype).eps))
    angle = 500 * float(cfg.inv_freq().max())
    for inverse in (False, True):
        got = numrope.apply_rope(x, cfg, pos, cache=cache, inverse=inverse)
        expected = reference.complex_form(x.astype(np.float64), cfg, pos, inverse=inverse)
        err = np.abs(got.astype(np.float64) - expected).max()
        tol = bound(x, table_eps, angle)
        assert err <= tol, f"bfloat16 x, {table} table, inverse={inverse}: error {err:.3g} > {tol:.3g}"


def test_float64_table_rounds_once_from_float64(rng):
    """bfloat16 data with a float64 table is computed in float64 and rounded once to the nearest bfloat16."""
    x = rng.standard_normal((1, 50, 2, 16)).astype(BF16)
    cache = numrope.rope_cache(CFG, 50, np.float64)
    got = numrope.apply_rope(x, CFG, cache=cache)
    wide = numrope.apply_rope(x.astype(np.float64), CFG, cache=cache)
    np.testing.assert_array_equal(got.view(np.uint16), nearest_bf16_bits(wide))


def test_rope_cache_in_bfloat16_is_the_float64_table_rounded_once():
    cfg = numrope.RopeConfig(head_dim=64, base=10000.0)
    cos, sin = numrope.rope_cache(cfg, 4096, dtype=BF16)
    assert cos.dtype == BF16 and sin.dtype == BF16 and cos.shape == (4096, 32)
    cos64, sin64 = numrope.rope_cache(cfg, 4096, dtype=np.float64)
    np.testing.assert_array_equal(cos.view(np.uint16), nearest_bf16_bits(cos64))
    np.testing.assert_array_equal(sin.view(np.uint16), nearest_bf16_bits(sin64))
    # and within half an ulp of bfloat16 of the exact values (the float64 table's own error is ~1e-16)
    assert np.abs(cos.astype(np.float64) - cos64).max() <= EPS_BF16 / 2 * 1 + 1e-15


def test_float64_rounding_near_ties():
    """Values just off a bfloat16 tie, where rounding through float32 would land on the tie and round to even
    the wrong way: the kernels' float64 rounding picks the nearest."""
    from numrope.kernels.cpu import round_f64_into

    k = np.arange(0, 128)
    ties = 1 + (2 * k + 1) * 2.0**-8  # halfway between neighbouring bfloat16 values in [1, 2)
    values = np.concatenate([ties, ties + 2.0**-40, ties - 2.0**-40, -(ties + 2.0**-40), ties * 2.0**-130])
    got = round_f64_into(np.empty(values.shape, BF16), values)
    np.testing.assert_array_equal(got.view(np.uint16), nearest_bf16_bits(values))


def test_out_in_place_and_views(rng):
    x = rng.standard_normal((2, 7, 3, 16)).astype(BF16)
    want = numrope.apply_rope(x, CFG, 5)
    out = np.empty_like(x)
    assert numrope.apply_rope(x, CFG, 5, out=out) is out
    np.testing.assert_array_equal(out.view(np.uint16), want.view(np.uint16))
    y = x.copy()
    numrope.apply_rope(y, CFG, 5, out=y)
    np.testing.assert_array_equal(y.view(np.uint16), want.view(np.uint16))
    # an out with no 4-D view, and heads-first x
    strided = np.empty((3, 2, 7, 16), BF16).transpose(1, 2, 0, 3)
    numrope.apply_rope(x, CFG, 5, out=strided)
    np.testing.assert_array_equal(strided.view(np.uint16), want.view(np.uint16))
    xt = np.ascontiguousarray(x.transpose(0, 2, 1, 3))
    got = numrope.apply_rope(xt, CFG, 5, seq_axis=-2)
    np.testing.assert_array_equal(got.transpose(0, 2, 1, 3).view(np.uint16), want.view(np.uint16))


def test_out_of_another_dtype_is_refused(rng):
    x = rng.standard_normal((1, 4, 2, 16)).astype(BF16)
    with pytest.raises(TypeError, match="out must have dtype bfloat16"):
        numrope.apply_rope(x, CFG, out=np.empty(x.shape, np.float16))
    with pytest.raises(TypeError, match="out must have dtype float16"):
        numrope.apply_rope(x.astype(np.float16), CFG, out=np.empty(x.shape, BF16))


def test_other_two_byte_extension_types_are_refused():
    x = np.zeros((1, 4, 2, 16), ml_dtypes.float8_e4m3fn)
    with pytest.raises(TypeError, match=r"must be float16, float32 or float64, got .*bfloat16 .*accepted"):
        numrope.apply_rope(x, CFG)


@pytest.mark.parametrize("k_dtype", [BF16, np.float16, np.float32, np.float64], ids=str)
def test_qk(k_dtype, rng):
    """apply_rope_qk with bfloat16 queries and keys of each dtype: each output as apply_rope computes it
    in the wider of the two dtypes."""
    q = rng.standard_normal((2, 9, 4, 16)).astype(BF16)
    k = rng.standard_normal((2, 9, 1, 16)).astype(k_dtype)
    pos = rng.integers(0, 300, (2, 9))
    q_rot, k_rot = numrope.apply_rope_qk(q, k, CFG, pos)
    assert q_rot.dtype == BF16 and k_rot.dtype == k.dtype
    angle = 300 * float(CFG.inv_freq().max())
    for got, x in ((q_rot, q), (k_rot, k)):
        expected = reference.complex_form(x.astype(np.float64), CFG, pos)
        err = np.abs(got.astype(np.float64) - expected).max()
        eps_out = EPS_BF16 if x.dtype == BF16 else float(np.finfo(x.dtype).eps)
        pair = 2 * np.abs(x.astype(np.float64)).max()
        tol = pair * (3 * EPS32 + angle * EPS64) + eps_out / 2 * pair
        assert err <= tol


def test_dask_arrays_of_bfloat16(rng):
    da = pytest.importorskip("dask.array", reason="dask is an optional extra (numrope[dask])")
    x = rng.standard_normal((2, 37, 3, 16)).astype(BF16)
    pos = rng.integers(0, 4000, (2, 37))
    lazy = numrope.apply_rope(da.from_array(x, chunks=(1, (10, 27), 2, 16)), CFG, pos)
    assert lazy.dtype == BF16
    np.testing.assert_array_equal(lazy.compute().view(np.uint16), numrope.apply_rope(x, CFG, pos).view(np.uint16))
    k = rng.standard_normal((2, 37, 1, 16)).astype(BF16)
    lazy_q, lazy_k = numrope.apply_rope_qk(da.from_array(x, chunks=(1, 13, 3, 16)), k, CFG, pos)
    want_q, want_k = numrope.apply_rope_qk(x, k, CFG, pos)
    np.testing.assert_array_equal(lazy_q.compute().view(np.uint16), want_q.view(np.uint16))
    np.testing.assert_array_equal(lazy_k.compute().view(np.uint16), want_k.view(np.uint16))


# The GPU: bfloat16 device arrays (numrope.cuda), under Numba's CUDA simulator where no GPU is present.

import numrope.cuda  # noqa: E402

gpu = pytest.mark.skipif(not numrope.cuda.is_available(), reason="no CUDA GPU, and NUMBA_ENABLE_CUDASIM=1 is not set")
TPB = 8  # several blocks per launch under the simulator


@gpu
def test_gpu_rope_cache_in_bfloat16_is_the_float64_table_rounded_once():
    cfg = numrope.RopeConfig(head_dim=16)
    cos, sin = numrope.cuda.rope_cache(cfg, 40, dtype=BF16, threads_per_block=TPB)
    assert cos.dtype == BF16 and tuple(cos.shape) == (40, 8)
    # rounded from the GPU's own float64 table (which may differ from the CPU's by an ulp: fused multiply-adds)
    cos64, sin64 = (t.copy_to_host() for t in numrope.cuda.rope_cache(cfg, 40, np.float64, threads_per_block=TPB))
    np.testing.assert_array_equal(cos.copy_to_host().view(np.uint16), nearest_bf16_bits(cos64))
    np.testing.assert_array_equal(sin.copy_to_host().view(np.uint16), nearest_bf16_bits(sin64))


@gpu
@pytest.mark.parametrize("where", ["device", "host"])
def test_gpu_bfloat16_tables_and_data_match_the_cpu(where, rng):
    from numba import cuda

    cfg = numrope.RopeConfig(head_dim=16, rotary_dim=12, layout="interleaved")
    x = rng.standard_normal((2, 6, 3, 16)).astype(BF16)
    pos = rng.integers(0, 30, (2, 6))
    host_cache = numrope.rope_cache(cfg, 30, dtype=BF16)
    cache = numrope.cuda.rope_cache(cfg, 30, dtype=BF16, threads_per_block=TPB) if where == "device" else host_cache
    for data in (x, x.astype(np.float32)):
        got = numrope.cuda.apply_rope(cuda.to_device(data), cfg, pos, cache=cache, threads_per_block=TPB)
        want = numrope.apply_rope(data, cfg, pos, cache=host_cache)
        host = got.copy_to_host()
        assert host.dtype == data.dtype
        expected = reference.complex_form(data.astype(np.float64), cfg, pos)
        angle = 30 * float(cfg.inv_freq().max())
        err = np.abs(host.astype(np.float64) - expected).max()
        eps_out = EPS_BF16 if data.dtype == BF16 else EPS32
        pair = 2 * np.abs(data.astype(np.float64)).max()
        assert err <= pair * (3 * EPS_BF16 + angle * EPS64) + eps_out / 2 * pair
        if numrope.cuda._numba_cuda().config.ENABLE_CUDASIM:  # the CPU's arithmetic: the CPU's result
            np.testing.assert_array_equal(host.view(np.uint8), want.view(np.uint8))
