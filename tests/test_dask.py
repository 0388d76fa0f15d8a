"""Dask arrays: lazy, chunk by chunk, and equal to the in-memory result bit for bit on any scheduler."""

import numpy as np
import pytest

import numrope
from numrope import variants

da = pytest.importorskip("dask.array", reason="dask is an optional extra (numrope[dask])")

CFGS = {
    "half": numrope.RopeConfig(head_dim=16),
    "interleaved-partial": numrope.RopeConfig(head_dim=16, rotary_dim=8, layout="interleaved"),
    # seq_len-dependent variants: the default seq_len must come from the whole array, not a chunk
    "dynamic": numrope.RopeConfig(head_dim=16, scaling=variants.DynamicNTK(factor=4.0, max_position_embeddings=32)),
    "yarn": numrope.RopeConfig(head_dim=16, scaling=variants.YaRN(factor=4.0, original_max_position_embeddings=32)),
}

CHUNKS = {
    "one": -1,
    "uneven-seq": (1, (10, 20, 7), 3, 16),
    "seq-and-heads": (2, (5, 32), (2, 1), 16),
    "single-tokens": (1, 1, 1, 16),
}


def _positions(kind, rng):
    return {
        "none": None,
        "offset": 1000,
        "shared": rng.integers(0, 5000, 37),
        "per-row": rng.integers(0, 5000, (2, 37)),
        "float": rng.uniform(0, 100, (2, 37)),
    }[kind]


@pytest.mark.parametrize("name", CFGS)
@pytest.mark.parametrize("chunks", CHUNKS)
@pytest.mark.parametrize("kind", ["none", "offset", "shared", "per-row", "float"])
def test_equals_in_memory_bit_for_bit(name, chunks, kind, rng):
    cfg = CFGS[name]
    x = rng.standard_normal((2, 37, 3, 16)).astype(np.float32)
    positions = _positions(kind, rng)
    lazy = numrope.apply_rope(da.from_array(x, chunks=CHUNKS[chunks]), cfg, positions)
    assert isinstance(lazy, da.Array)
    assert lazy.chunks == da.from_array(x, chunks=CHUNKS[chunks]).chunks
    np.testing.assert_array_equal(lazy.compute(), numrope.apply_rope(x, cfg, positions))


def test_dask_positions_aligned_to_the_chunks(rng):
    cfg = CFGS["dynamic"]
    x = rng.standard_normal((2, 37, 3, 16))
    pos = rng.integers(0, 300, (2, 37))
    lazy = numrope.apply_rope(da.from_array(x, chunks=(1, (10, 27), 3, 16)), cfg, da.from_array(pos, chunks=(2, 7)))
    np.testing.assert_array_equal(lazy.compute(), numrope.apply_rope(x, cfg, pos))


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_heads_first_inverse_transpose_and_a_cache(dtype, rng):
    cfg = CFGS["yarn"]
    x = rng.standard_normal((2, 3, 37, 16)).astype(dtype)  # (batch, heads, seq, dim)
    pos = rng.integers(0, 64, (2, 37))
    cache = numrope.rope_cache(cfg, 64, dtype=np.float32)
    dx = da.from_array(x, chunks=(1, 2, (30, 7), 16))
    for kwargs in ({"inverse": True}, {"transpose": True}, {"cache": cache}):
        got = numrope.apply_rope(dx, cfg, pos, seq_axis=-2, **kwargs).compute()
        np.testing.assert_array_equal(got, numrope.apply_rope(x, cfg, pos, seq_axis=-2, **kwargs))


@pytest.mark.parametrize("dtypes", [(np.float32, np.float32), (np.float16, np.float64)])
def test_qk_grouped_query(dtypes, rng):
    cfg = CFGS["half"]
    q = rng.standard_normal((2, 37, 8, 16)).astype(dtypes[0])
    k = rng.standard_normal((2, 37, 2, 16)).astype(dtypes[1])
    pos = rng.integers(0, 4000, (2, 37))
    lazy_q, lazy_k = numrope.apply_rope_qk(da.from_array(q, chunks=(1, 13, 4, 16)), k, cfg, pos)
    want_q, want_k = numrope.apply_rope_qk(q, k, cfg, pos)
    np.testing.assert_array_equal(lazy_q.compute(), want_q)
    np.testing.assert_array_equal(lazy_k.compute(), want_k)


def test_errors(rng):
    cfg = CFGS["half"]
    dx = da.from_array(rng.standard_normal((1, 8, 2, 16)), chunks=(1, 4, 2, 16))
    with pytest.raises(TypeError, match="immutable"):
        numrope.apply_rope(dx, cfg, out=np.empty((1, 8, 2, 16)))
    with pytest.raises(ValueError, match="head_dim"):
        numrope.apply_rope(da.ones((1, 8, 2, 12), chunks=4), cfg)
    with pytest.raises(ValueError, match="entries along its last axis"):
        numrope.apply_rope(dx, cfg, np.arange(7))
    with pytest.raises(ValueError, match="finite"):
        numrope.apply_rope(dx, cfg, da.from_array(np.full(8, np.nan)))
    with pytest.raises(ValueError, match="unknown size"):
        flat = da.from_array(rng.standard_normal((8, 16)), chunks=(4, 16))
        numrope.apply_rope(flat[flat[:, 0] > 0], cfg, seq_axis=0)


def test_local_cluster_with_worker_processes(rng):
    """A real dask.distributed cluster: the chunks are computed in other processes."""
    distributed = pytest.importorskip("distributed")
    cfg = CFGS["yarn"]
    x = rng.standard_normal((2, 64, 4, 16)).astype(np.float32)
    pos = rng.integers(0, 10_000, (2, 64))
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        lazy = numrope.apply_rope(da.from_array(x, chunks=(1, (20, 44), 2, 16)), cfg, pos)
        future = client.compute(lazy)
        got = future.result()
        workers = client.run(lambda: __import__("os").getpid())
    np.testing.assert_array_equal(got, numrope.apply_rope(x, cfg, pos))
    assert len(set(workers.values())) == 2
