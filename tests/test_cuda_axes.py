"""Multi-axis RoPE on the GPU: the per-token table built and gathered on the device, against a plain
NumPy float64 reference and against the CPU path, in every form.

Runs on a CUDA GPU, or under Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, as CI does and
tests/conftest.py sets where no driver is installed), with few threads per block there so that the
gather spans many blocks and loops over pairs.
"""

import numpy as np
import pytest
from conftest import assert_matches
from test_axes import CONFIGS, max_angle, reference

import numrope
import numrope.cuda
from numrope import axes

pytestmark = pytest.mark.skipif(
    not numrope.cuda.is_available(), reason="no CUDA GPU here, and NUMBA_ENABLE_CUDASIM=1 is not set"
)

if numrope.cuda.is_available():
    from numba import cuda

    TPB = 8 if cuda.config.ENABLE_CUDASIM else 64
else:
    cuda, TPB = None, 64


def host(a):
    return a.copy_to_host() if hasattr(a, "copy_to_host") else np.asarray(a)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("name", ["qwen2", "glm", "qwen3", "pixtral"])
@pytest.mark.parametrize("table", ["fresh", "host cache", "device cache"])
def test_forms_match_the_reference_and_the_cpu(name, dtype, table, rng):
    cfg = CONFIGS[name]
    n = cfg.n_axes
    x = rng.standard_normal((2, 5, 3, cfg.head_dim)).astype(dtype)
    table_dtype = np.float64 if dtype == np.float64 else np.float32
    kw = {"threads_per_block": TPB}
    if table == "host cache":
        kw["cache"] = numrope.rope_cache(cfg, 64, table_dtype)
    elif table == "device cache":
        kw["cache"] = numrope.cuda.rope_cache(cfg, 64, table_dtype, threads_per_block=TPB)
    for coords in (rng.integers(0, 64, (n, 5)), rng.integers(0, 64, (n, 2, 5)), rng.integers(0, 64, (n, 1, 5))):
        got = host(numrope.cuda.apply_rope(cuda.to_device(x), cfg, coords, **kw))
        full = np.broadcast_to(coords.reshape((n,) + (1,) * (3 - coords.ndim) + coords.shape[1:]), (n, 2, 5))
        assert_matches(got, reference(x, cfg, full), x, dtype, max_angle(coords, cfg))
        cpu_kw = {"cache": numrope.rope_cache(cfg, 64, table_dtype)} if table != "fresh" else {}
        cpu = numrope.apply_rope(x, cfg, coords, **cpu_kw)
        np.testing.assert_allclose(got.astype(np.float64), cpu.astype(np.float64), rtol=0, atol=4 * np.finfo(dtype).eps)


def test_float_coordinates_and_heads_before_the_sequence(rng):
    cfg = CONFIGS["axial"]
    x = rng.standard_normal((2, 4, 6, cfg.head_dim))  # (B, H, S, D)
    coords = rng.uniform(-50, 50, (2, 2, 6))
    got = host(numrope.cuda.apply_rope(cuda.to_device(x), cfg, coords, seq_axis=-2, threads_per_block=TPB))
    assert_matches(got, reference(x, cfg, coords, seq_axis=-2), x, np.float64, max_angle(coords, cfg))


@pytest.mark.parametrize("seq_axis", [-3, -2])
def test_qk_grouped_heads_out_and_inverse(seq_axis, rng):
    cfg = numrope.RopeConfig(32, 1e6, scaling=numrope.variants.YaRN(4.0, 1024), axes=axes.sectioned([4, 6, 6]))
    shape = (lambda h: (2, 6, h, 32)) if seq_axis == -3 else (lambda h: (2, h, 6, 32))
    q = rng.standard_normal(shape(8)).astype(np.float32)
    k = rng.standard_normal(shape(2)).astype(np.float32)
    coords = rng.integers(0, 3000, (3, 2, 6))
    q_dev, k_dev = cuda.to_device(q), cuda.to_device(k)
    out = (cuda.device_array_like(q), cuda.device_array_like(k))
    numrope.cuda.apply_rope_qk(q_dev, k_dev, cfg, coords, seq_axis=seq_axis, out=out, threads_per_block=TPB)
    a = cfg.attention_scaling
    for got, x in zip(out, (q, k), strict=True):
        expected = reference(x, cfg, coords, seq_axis=seq_axis, factor=a, theta=cfg.inv_freq())
        assert_matches(host(got), expected, x, np.float32, max_angle(coords, cfg), scaling=a)
    back_q, back_k = numrope.cuda.apply_rope_qk(
        *out, cfg, coords, seq_axis=seq_axis, inverse=True, threads_per_block=TPB
    )
    assert_matches(host(back_q), q, q, np.float32, max_angle(coords, cfg), scaling=a)
    assert_matches(host(back_k), k, k, np.float32, max_angle(coords, cfg), scaling=a)


def test_bad_coordinates_are_refused_before_any_kernel(rng):
    cfg = CONFIGS["qwen2"]
    x = cuda.to_device(np.zeros((1, 5, 1, cfg.head_dim), np.float32))
    with pytest.raises(ValueError, match="3 coordinate axes"):
        numrope.cuda.apply_rope(x, cfg, np.zeros((2, 5), int))
    with pytest.raises(IndexError, match="outside the cache table"):
        numrope.cuda.apply_rope(x, cfg, np.full((3, 5), 9), cache=numrope.rope_cache(cfg, 9))
