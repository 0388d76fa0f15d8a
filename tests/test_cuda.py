"""The GPU path against the plain-NumPy reference and the CPU path, in every form it accepts.

Runs on a CUDA GPU, or on the CPU under Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, as CI
does), with a small threads-per-block there so that every launch spans many blocks and every
kernel loop (pairs, heads, tokens) takes more than one trip. Without either, the tests are skipped,
except the one that checks the error numrope gives when asked for a GPU it does not have.
"""

import doctest
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import EPS64, assert_matches, rope_tolerance

import numrope
import numrope.cuda
from numrope import reference

cuda_or_simulator = pytest.mark.skipif(
    not numrope.cuda.is_available(), reason="no CUDA GPU here, and NUMBA_ENABLE_CUDASIM=1 is not set"
)

if numrope.cuda.is_available():
    from numba import cuda

    SIMULATED = bool(cuda.config.ENABLE_CUDASIM)
else:
    cuda, SIMULATED = None, False

# Under the simulator every thread is a Python thread: 8 per block keeps it quick and makes
# multi-block grids (and loops over pairs, heads and tokens within a thread) from small arrays.
TPB = 8 if SIMULATED else 64
LAYOUTS = ["half", "interleaved"]
DTYPES = [np.float16, np.float32, np.float64]

try:
    import ml_dtypes

    BF16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # bfloat16 tests are skipped, visibly
    ml_dtypes, BF16 = None, None

ALL_DTYPES = [*DTYPES, pytest.param("bfloat16", id="bfloat16")]


def as_dtype(name):
    if name == "bfloat16":
        if BF16 is None:
            pytest.skip("bfloat16 needs ml_dtypes (pip install ml-dtypes)")
        return BF16
    return np.dtype(name)


def configs():
    for layout in LAYOUTS:
        for rotary_dim in (None, 12):
            yield numrope.RopeConfig(head_dim=24, rotary_dim=rotary_dim, layout=layout)


CONFIGS = list(configs())
CONFIG_IDS = [f"{c.layout}-rot{c.rotary_dim}" for c in CONFIGS]


def max_angle(positions, cfg):
    return float(np.abs(np.asarray(positions, dtype=np.float64)).max(initial=0) * cfg.inv_freq().max())


def check(got, x, expected, angle):
    """got (device) against a float64 reference for x (host), within the bound for x's dtype."""
    host = got.copy_to_host()
    assert host.dtype == x.dtype and host.shape == x.shape
    if x.dtype == BF16:
        # float32 arithmetic, then one rounding to bfloat16 (8 significant bits, eps 2**-7)
        tol = rope_tolerance(x, np.float32, angle) + 2**-7 * 2 * np.abs(x.astype(np.float64)).max(initial=0)
        err = np.abs(host.astype(np.float64) - expected).max(initial=0)
        assert err <= tol, f"max error {err:.3g} exceeds the bfloat16 bound {tol:.3g}"
    else:
        assert_matches(host, expected, x, x.dtype, angle)


def random(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


@cuda_or_simulator
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("cfg", CONFIGS, ids=CONFIG_IDS)
def test_default_positions_match_reference(cfg, dtype, rng):
    dtype = as_dtype(dtype)
    x = random(rng, (2, 9, 3, cfg.head_dim), dtype)
    got = numrope.cuda.apply_rope(cuda.to_device(x), cfg, threads_per_block=TPB)
    check(got, x, reference.complex_form(x.astype(np.float64), cfg), max_angle(np.arange(9), cfg))


@cuda_or_simulator
@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@pytest.mark.parametrize("cfg", CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("use_cache", [False, True], ids=["fresh", "cache"])
def test_position_forms(cfg, dtype, use_cache, rng):
    """None, an int offset, (S,), per-sequence (B, S) and (1, S) arrays, real positions."""
    x = random(rng, (3, 5, 2, cfg.head_dim), dtype)
    cache = numrope.cuda.rope_cache(cfg, 400, threads_per_block=TPB) if use_cache else None
    forms = [None, 7, np.array([3, 1, 4, 1, 5]), rng.integers(0, 400, (3, 5)), rng.integers(0, 400, (1, 5))]
    if not use_cache:
        forms += [rng.uniform(-300, 300, (3, 5)), 2**20 + np.arange(5)]
    x_dev = cuda.to_device(x)
    for positions in forms:
        got = numrope.cuda.apply_rope(x_dev, cfg, positions, cache=cache, threads_per_block=TPB)
        angle = max_angle(positions if np.ndim(positions) else np.arange(5) + (positions or 0), cfg)
        check(got, x, reference.complex_form(x, cfg, positions), angle)


@cuda_or_simulator
def test_device_positions_and_host_cache(rng):
    cfg = numrope.RopeConfig(head_dim=8)
    x = random(rng, (2, 4, 2, 8), np.float32)
    positions = rng.integers(0, 50, (2, 4))
    expected = reference.complex_form(x, cfg, positions)
    got = numrope.cuda.apply_rope(cuda.to_device(x), cfg, cuda.to_device(positions), threads_per_block=TPB)
    check(got, x, expected, max_angle(positions, cfg))
    host_cache = numrope.rope_cache(cfg, 50)
    got = numrope.cuda.apply_rope(cuda.to_device(x), cfg, positions, cache=host_cache, threads_per_block=TPB)
    check(got, x, expected, max_angle(positions, cfg))


@cuda_or_simulator
@pytest.mark.parametrize("dtype", DTYPES)
def test_rope_cache_matches_cpu(dtype, rng):
    cfg = numrope.RopeConfig(head_dim=16, base=500000.0, scaling=numrope.variants.Linear(factor=4.0))
    for positions in (33, rng.integers(0, 2**20, (2, 3)), rng.uniform(-1e5, 1e5, 7)):
        cos, sin = numrope.cuda.rope_cache(cfg, positions, dtype, threads_per_block=TPB)
        cpu_cos, cpu_sin = numrope.rope_cache(cfg, positions, dtype)
        for got, want in ((cos, cpu_cos), (sin, cpu_sin)):
            got = got.copy_to_host()
            assert got.dtype == want.dtype and got.shape == want.shape
            # two float64 evaluations of |value| <= 1 that may differ by an ulp of float64 (the GPU
            # fuses multiply-adds) round to the same value or to neighbours
            step = EPS64 if dtype == np.float64 else float(np.finfo(dtype).eps) / 2
            np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=0, atol=2 * step)


@cuda_or_simulator
def test_rope_cache_exact_angles():
    """Large angles: the float64 table keeps the exact product's accuracy, like the CPU table."""
    cfg = numrope.RopeConfig(head_dim=4, base=10.0)
    positions = np.array([2**31 - 1, 123456789, 3.0e9])
    cos, sin = numrope.cuda.rope_cache(cfg, positions, np.float64, threads_per_block=TPB)
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.prec = 200
    for n, m in enumerate(positions):
        for i, theta in enumerate(cfg.inv_freq()):
            angle = mpmath.mpf(float(m)) * mpmath.mpf(float(theta))
            assert abs(cos.copy_to_host()[n, i] - float(mpmath.cos(angle))) <= 2 * EPS64
            assert abs(sin.copy_to_host()[n, i] - float(mpmath.sin(angle))) <= 2 * EPS64


@cuda_or_simulator
@pytest.mark.parametrize("cfg", CONFIGS[:2], ids=CONFIG_IDS[:2])
def test_bhsd_and_views_that_do_not_merge(cfg, rng):
    """(batch, heads, seq, dim) with seq_axis=-2, from a slice whose leading axes do not merge."""
    base = random(rng, (2, 4, 6, cfg.head_dim + 4), np.float32)
    x = base[:, :3, :, 2 : 2 + cfg.head_dim]  # strides admit no (batch*heads, seq, 1, dim) view
    positions = rng.integers(0, 1000, (2, 1, 6))
    got = numrope.cuda.apply_rope(
        cuda.to_device(base)[:, :3, :, 2 : 2 + cfg.head_dim], cfg, positions, seq_axis=-2, threads_per_block=TPB
    )
    check(
        got, np.ascontiguousarray(x), reference.complex_form(x, cfg, positions, seq_axis=-2), max_angle(positions, cfg)
    )
    base_dev = cuda.to_device(base)
    numrope.cuda.apply_rope(
        base_dev[:, :3, :, 2 : 2 + cfg.head_dim],
        cfg,
        positions,
        seq_axis=-2,
        out=base_dev[:, :3, :, 2 : 2 + cfg.head_dim],
        threads_per_block=TPB,
    )
    after = base_dev.copy_to_host()
    np.testing.assert_array_equal(after[:, :3, :, 2 : 2 + cfg.head_dim], got.copy_to_host())
    untouched = np.ones(base.shape, bool)
    untouched[:, :3, :, 2 : 2 + cfg.head_dim] = False
    np.testing.assert_array_equal(after[untouched], base[untouched])


@cuda_or_simulator
def test_other_ranks(rng):
    cfg = numrope.RopeConfig(head_dim=8)
    x2 = random(rng, (5, 8), np.float64)  # (seq, dim)
    got = numrope.cuda.apply_rope(cuda.to_device(x2), cfg, seq_axis=-2, threads_per_block=TPB)
    check(got, x2, reference.complex_form(x2, cfg, seq_axis=-2), 5.0)
    x5 = random(rng, (2, 2, 4, 3, 8), np.float64)  # two batch axes
    positions = rng.integers(0, 50, (2, 1, 4))
    got = numrope.cuda.apply_rope(cuda.to_device(x5), cfg, positions, threads_per_block=TPB)
    check(got, x5, reference.complex_form(x5, cfg, positions), 50.0)
    x3 = random(rng, (6, 2, 8), np.float32)  # packed (tokens, heads, dim)
    pos = numrope.positions_from_cu_seqlens([0, 2, 6])
    got = numrope.cuda.apply_rope(cuda.to_device(x3), cfg, pos, threads_per_block=TPB)
    check(got, x3, reference.complex_form(x3, cfg, pos), 4.0)


@cuda_or_simulator
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("cfg", [CONFIGS[1], CONFIGS[2]], ids=[CONFIG_IDS[1], CONFIG_IDS[2]])
def test_in_place_and_out(cfg, dtype, rng):
    dtype = as_dtype(dtype)
    x = random(rng, (2, 5, 3, cfg.head_dim), dtype)
    expected = reference.complex_form(x.astype(np.float64), cfg, 3)
    x_dev = cuda.to_device(x)
    out = cuda.device_array(x.shape, x.dtype)
    assert numrope.cuda.apply_rope(x_dev, cfg, 3, out=out, threads_per_block=TPB) is out
    check(out, x, expected, max_angle(np.arange(3, 8), cfg))
    assert numrope.cuda.apply_rope(x_dev, cfg, 3, out=x_dev, threads_per_block=TPB) is x_dev
    np.testing.assert_array_equal(x_dev.copy_to_host().view(np.uint8), out.copy_to_host().view(np.uint8))


@cuda_or_simulator
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_inverse_undoes_forward(dtype, rng):
    dtype = as_dtype(dtype)
    cfg = numrope.RopeConfig(head_dim=16, layout="interleaved")
    x = random(rng, (1, 7, 2, 16), dtype)
    positions = rng.integers(0, 10000, 7)
    fwd = numrope.cuda.apply_rope(cuda.to_device(x), cfg, positions, threads_per_block=TPB)
    back = numrope.cuda.apply_rope(fwd, cfg, positions, inverse=True, threads_per_block=TPB)
    expected = reference.complex_form(x.astype(np.float64), cfg, positions, inverse=True)
    check(
        numrope.cuda.apply_rope(cuda.to_device(x), cfg, positions, inverse=True, threads_per_block=TPB),
        x,
        expected,
        max_angle(positions, cfg),
    )
    # forward then inverse: two roundings of the compute and output precision
    eps = float(np.finfo(np.float32 if dtype != np.float64 else np.float64).eps)
    eps_out = 2**-7 if dtype == BF16 else float(np.finfo(dtype).eps)
    bound = 2 * np.abs(x.astype(np.float64)).max() * (6 * eps + 2 * eps_out)
    assert np.abs(back.copy_to_host().astype(np.float64) - x.astype(np.float64)).max() <= bound


@cuda_or_simulator
@pytest.mark.parametrize("dtypes", [(np.float32, np.float32), (np.float16, np.float32), (np.float64, np.float16)])
@pytest.mark.parametrize("use_cache", [False, True], ids=["fresh", "cache"])
def test_apply_rope_qk_grouped_query(dtypes, use_cache, rng):
    cfg = numrope.RopeConfig(head_dim=16, rotary_dim=8)
    q = random(rng, (2, 4, 8, 16), dtypes[0])  # 8 query heads
    k = random(rng, (2, 4, 2, 16), dtypes[1])  # share 2 key heads
    positions = rng.integers(0, 64, (2, 4))
    cache = numrope.cuda.rope_cache(cfg, 64, np.float64, threads_per_block=TPB) if use_cache else None
    q_dev, k_dev = cuda.to_device(q), cuda.to_device(k)
    q_rot, k_rot = numrope.cuda.apply_rope_qk(q_dev, k_dev, cfg, positions, cache=cache, threads_per_block=TPB)
    angle = max_angle(positions, cfg)
    check(q_rot, q, reference.complex_form(q, cfg, positions), angle)
    check(k_rot, k, reference.complex_form(k, cfg, positions), angle)
    out = numrope.cuda.apply_rope_qk(
        q_dev, k_dev, cfg, positions, cache=cache, out=(q_dev, k_dev), threads_per_block=TPB
    )
    assert out[0] is q_dev and out[1] is k_dev
    np.testing.assert_array_equal(q_dev.copy_to_host(), q_rot.copy_to_host())
    np.testing.assert_array_equal(k_dev.copy_to_host(), k_rot.copy_to_host())


@cuda_or_simulator
def test_apply_rope_qk_is_one_launch(rng, monkeypatch):
    """q and k go through one launch of the kernel, each with its own heads, not one launch each."""
    from numrope.kernels import cuda as _cuda_kernels

    launches, make = [], _cuda_kernels.rotate

    class Spy:
        def __init__(self, kernel):
            self.kernel = kernel

        def __getitem__(self, launch_shape):
            def launch(*args):
                launches.append((args[0].shape, args[2].shape))
                return self.kernel[launch_shape](*args)

            return launch

    monkeypatch.setattr(_cuda_kernels, "rotate", lambda *args: Spy(make(*args)))
    cfg = numrope.RopeConfig(head_dim=8)
    q, k = random(rng, (1, 3, 4, 8), np.float32), random(rng, (1, 3, 1, 8), np.float32)
    _, k_rot = numrope.cuda.apply_rope_qk(cuda.to_device(q), cuda.to_device(k), cfg, threads_per_block=TPB)
    check(k_rot, k, reference.complex_form(k, cfg), max_angle(np.arange(3), cfg))
    assert launches == [(q.shape, k.shape)]
    launches.clear()
    numrope.cuda.apply_rope(cuda.to_device(q), cfg, threads_per_block=TPB)
    assert launches == [(q.shape, (1, 3, 0, 8))]  # one array: a partner without heads


@cuda_or_simulator
def test_block_shapes_agree(rng):
    """Any threads-per-block gives the same bits: 1 thread, odd counts, more threads than work."""
    cfg = numrope.RopeConfig(head_dim=12, rotary_dim=8)
    x = random(rng, (2, 3, 5, 12), np.float32)
    results = [
        numrope.cuda.apply_rope(cuda.to_device(x), cfg, 11, threads_per_block=t).copy_to_host() for t in (1, 3, TPB, 32)
    ]
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])
    np.testing.assert_array_equal(results[0], numrope.apply_rope(x, cfg, 11))


@cuda_or_simulator
def test_empty_arrays():
    cfg = numrope.RopeConfig(head_dim=8)
    for shape in ((0, 4, 2, 8), (1, 0, 2, 8), (1, 4, 0, 8)):
        got = numrope.cuda.apply_rope(cuda.to_device(np.zeros(shape, np.float32)), cfg, threads_per_block=TPB)
        assert got.shape == shape
    cos, _ = numrope.cuda.rope_cache(cfg, 0)
    assert cos.shape == (0, 4)


@cuda_or_simulator
def test_host_input_goes_to_the_device(rng):
    cfg = numrope.RopeConfig(head_dim=8)
    x = random(rng, (1, 3, 2, 8), np.float32)
    got = numrope.cuda.apply_rope(x, cfg, threads_per_block=TPB)
    assert hasattr(got, "copy_to_host")
    check(got, x, reference.complex_form(x, cfg), 2.0)


def bad_calls(rng):
    """(description, arguments for apply_rope): the same inputs for the CPU and the GPU path."""
    cfg = numrope.RopeConfig(head_dim=8)
    x = random(rng, (2, 4, 3, 8), np.float32)
    yield "integer x", (x.astype(np.int32), cfg), {}
    yield "complex x", (x.astype(np.complex64), cfg), {}
    yield "wrong head_dim", (x[..., :6], cfg), {}
    yield "1-D x", (x[0, 0, 0], cfg), {}
    yield "not a config", (x, 8), {}
    yield "seq_axis -1", (x, cfg), {"seq_axis": -1}
    yield "seq_axis out of range", (x, cfg), {"seq_axis": 5}
    yield "seq_axis not int", (x, cfg), {"seq_axis": 1.0}
    yield "positions too short", (x, cfg, np.arange(3)), {}
    yield "positions bad batch", (x, cfg, np.zeros((3, 4), int)), {}
    yield "NaN positions", (x, cfg, np.array([0.0, np.nan, 1.0, 2.0])), {}
    yield "boolean positions", (x, cfg, np.ones(4, bool)), {}
    yield "0-d positions", (x, cfg, np.array(3)), {}
    yield "float positions with cache", (x, cfg, np.arange(4.0)), {"cache": "cache10"}
    yield "position past the cache", (x, cfg, np.arange(8, 12)), {"cache": "cache10"}
    yield "negative position with cache", (x, cfg, -1), {"cache": "cache10"}
    yield "cache not a pair", (x, cfg), {"cache": "one table"}
    yield "cache of the wrong width", (x, cfg), {"cache": "wide"}
    yield "out of the wrong shape", (x, cfg), {"out": "short"}
    yield "out of the wrong dtype", (x, cfg), {"out": "float64"}


def materialise(kwargs, cfg, device):
    """Build the cache and out arguments for one path (NumPy or device arrays)."""
    to = cuda.to_device if device else np.asarray
    kwargs = dict(kwargs)
    tables = {
        "cache10": lambda: numrope.rope_cache(cfg, 10),
        "one table": lambda: to(numrope.rope_cache(cfg, 10)[0]),
        "wide": lambda: tuple(to(t) for t in numrope.rope_cache(numrope.RopeConfig(head_dim=16), 10)),
    }
    if "cache" in kwargs:
        cache = tables[kwargs["cache"]]()
        kwargs["cache"] = tuple(to(t) for t in cache) if isinstance(cache, tuple) else cache
    if "out" in kwargs:
        shape, dtype = ((2, 4, 3, 6), np.float32) if kwargs["out"] == "short" else ((2, 4, 3, 8), np.float64)
        kwargs["out"] = to(np.zeros(shape, dtype))
    return kwargs


@cuda_or_simulator
def test_errors_match_the_cpu_path(rng):
    """Every bad input gets the CPU path's exception, and its message, before any kernel runs."""
    count = 0
    for what, args, kwargs in bad_calls(rng):
        cfg = args[1] if isinstance(args[1], numrope.RopeConfig) else numrope.RopeConfig(head_dim=8)
        with pytest.raises((TypeError, ValueError, IndexError)) as cpu:
            numrope.apply_rope(*args, **materialise(kwargs, cfg, device=False))
        x = args[0]
        x_dev = cuda.to_device(np.ascontiguousarray(x)) if x.dtype.kind == "f" else x
        with pytest.raises(type(cpu.value)) as gpu:
            numrope.cuda.apply_rope(x_dev, *args[1:], **materialise(kwargs, cfg, device=True), threads_per_block=TPB)
        cpu_message = str(cpu.value).replace("numrope.rope_cache", "numrope.cuda.rope_cache")
        cpu_message = cpu_message.replace("must be a numpy.ndarray", "must be a device array")
        assert str(gpu.value) == cpu_message, what
        count += 1
    assert count == 20


@cuda_or_simulator
def test_device_specific_errors(rng):
    cfg = numrope.RopeConfig(head_dim=8)
    x_dev = cuda.to_device(random(rng, (2, 4, 3, 8), np.float32))
    with pytest.raises(TypeError, match="out must be a device array"):
        numrope.cuda.apply_rope(x_dev, cfg, out=np.zeros((2, 4, 3, 8), np.float32))
    with pytest.raises(ValueError, match="partly overlaps x"):
        numrope.cuda.apply_rope(x_dev[:, :3], cfg, out=x_dev[:, 1:])
    q, k = cuda.to_device(np.zeros((1, 4, 2, 8))), cuda.to_device(np.zeros((1, 4, 2, 8)))
    with pytest.raises(ValueError, match=r"out\[0\] and out\[1\] overlap"):
        numrope.cuda.apply_rope_qk(q, k, cfg, out=(q, q))
    with pytest.raises(ValueError, match="same sequence length"):
        numrope.cuda.apply_rope_qk(q, cuda.to_device(np.zeros((1, 3, 2, 8))), cfg)
    for bad, error in ((0, ValueError), (2048, ValueError), (8.0, TypeError)):
        with pytest.raises(error, match="threads_per_block"):
            numrope.cuda.apply_rope(x_dev, cfg, threads_per_block=bad)
    with pytest.raises(TypeError, match="dtype must be float16, float32 or float64"):
        numrope.cuda.rope_cache(cfg, 4, dtype=np.int32)
    with pytest.raises(ValueError, match="non-negative"):
        numrope.cuda.rope_cache(cfg, -1)


@cuda_or_simulator
def test_apply_rope_dispatches_device_arrays(rng):
    from numrope._checks import is_device_array

    x = random(rng, (1, 3, 2, 8), np.float32)
    x_dev = cuda.to_device(x)
    if SIMULATED and not is_device_array(x_dev):
        pytest.skip("numrope.apply_rope does not yet recognise the CUDA simulator's arrays (no CAI)")
    cfg = numrope.RopeConfig(head_dim=8)
    got = numrope.apply_rope(x_dev, cfg)
    assert hasattr(got, "copy_to_host")
    check(got, x, reference.complex_form(x, cfg), 2.0)
    q_rot, k_rot = numrope.apply_rope_qk(x_dev, cuda.to_device(x), cfg)
    np.testing.assert_array_equal(q_rot.copy_to_host(), k_rot.copy_to_host())


@cuda_or_simulator
def test_docstring_examples_run_here():
    """The GPU examples are marked +SKIP for the CPU-only doctest run; here they run."""
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    examples = 0
    for test in finder.find(numrope.cuda):
        for example in test.examples:
            example.options.pop(doctest.SKIP, None)
            examples += 1
        runner.run(test)
    assert examples >= 10
    assert runner.failures == 0


@pytest.mark.skipif(ml_dtypes is None, reason="bfloat16 rounding is checked against ml_dtypes")
def test_bfloat16_rounding_matches_ml_dtypes():
    """The kernels' float32 -> bfloat16 rounding: nearest, ties to even, overflow, NaN."""
    from numrope.kernels.half import bf16_bits_to_f32 as _bf16_to_f32
    from numrope.kernels.half import f32_to_bf16_bits as _f32_to_bf16

    rng = np.random.default_rng(7)
    bits = np.concatenate(
        [
            rng.integers(0, 2**32, 20000, dtype=np.uint64).astype(np.uint32),
            np.array([0x3F808000, 0x3F818000, 0x7F7FFFFF, 0x7F7F8000, 0x00008000, 0x80018000], np.uint32),
            np.array([0x7F800000, 0xFF800000, 0x7FC00001, 0x7F800001, 0], np.uint32),
        ]
    )
    values = bits.view(np.float32)
    with np.errstate(invalid="ignore"):
        want = values.astype(ml_dtypes.bfloat16).view(np.uint16)
    got = np.array([_f32_to_bf16(v) for v in values], np.uint16)
    nan = np.isnan(values)
    np.testing.assert_array_equal(got[~nan], want[~nan])
    assert np.isnan(got[nan].view(ml_dtypes.bfloat16).astype(np.float32)).all()
    back = np.array([_bf16_to_f32(b) for b in want], np.float32)
    np.testing.assert_array_equal(back[~nan], want[~nan].view(ml_dtypes.bfloat16).astype(np.float32))


NO_CUDA_SCRIPT = """
import sys
import numpy as np
import numrope
cfg = numrope.RopeConfig(head_dim=8)
numrope.apply_rope(np.ones((1, 3, 2, 8), np.float32), cfg)  # the CPU path needs no CUDA
assert "numrope.cuda" not in sys.modules and "numrope.kernels.cuda" not in sys.modules
import numrope.cuda
assert numrope.cuda.is_available() is False
for call in (
    lambda: numrope.cuda.apply_rope(np.ones((1, 3, 2, 8), np.float32), cfg),
    lambda: numrope.cuda.apply_rope_qk(np.ones((1, 3, 2, 8)), np.ones((1, 3, 2, 8)), cfg),
    lambda: numrope.cuda.rope_cache(cfg, 4),
):
    try:
        call()
    except numrope.cuda.CudaUnavailableError as error:
        print(error)
    else:
        raise SystemExit("no error")
"""


def test_asking_for_the_gpu_without_cuda_is_one_clear_error():
    """In a process where numba.cuda finds no device (none visible, no simulator)."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env["CUDA_VISIBLE_DEVICES"] = ""
    run = subprocess.run([sys.executable, "-c", NO_CUDA_SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 3
    for line in lines:
        assert line.startswith("no CUDA GPU is available") or line.startswith("numrope's GPU functions need numba-cuda")
        assert "NUMBA_ENABLE_CUDASIM" in line or "numrope[cuda]" in line


@cuda_or_simulator
def test_options_are_those_of_apply_rope():
    """The GPU functions take numrope.apply_rope's keywords by name, and refuse any other by name."""
    cfg = numrope.RopeConfig(head_dim=8)
    x = np.arange(2 * 3 * 4 * 8, dtype=np.float32).reshape(2, 4, 3, 8) / 100
    got = numrope.cuda.apply_rope(cuda.to_device(x), cfg, 5, seq_axis=-2, inverse=True, seq_len=64)
    want = numrope.apply_rope(x, cfg, 5, seq_axis=-2, inverse=True)
    np.testing.assert_allclose(got.copy_to_host(), want, rtol=0, atol=4 * np.finfo(np.float32).eps)  # a GPU's ulp
    for fn, arrays in ((numrope.cuda.apply_rope, (x,)), (numrope.cuda.apply_rope_qk, (x, x))):
        with pytest.raises(TypeError, match=f"{fn.__name__}\\(\\) got an unexpected keyword argument 'seqaxis'"):
            fn(*(cuda.to_device(a) for a in arrays), cfg, seqaxis=-2)
