"""apply_rope on Dask arrays: a prefill cut into chunks along the sequence, computed on Dask's threaded scheduler.

Compare with ``bench_apply.CallingOptions`` (the same array in memory): the difference is Dask's
scheduling and each chunk's own call (its positions, checks and, without a table, its angles).
"""

import numrope

from . import HEAD_DIM, SEQ, THREADS, prefill, sizes, use_threads


def _dask_array():
    try:
        import dask.array as da
    except ImportError as exc:  # asv reports NotImplementedError in setup as a skipped benchmark
        raise NotImplementedError("dask is not installed (numrope[dask])") from exc
    return da


class DaskPrefill:
    """The prefill in 1, 4 or 16 chunks along the sequence, with and without a table, into a new array."""

    params = (sizes(1, 4, 16), ["table", "no table"], THREADS)
    param_names = ("chunks", "cache", "threads")

    def setup(self, chunks, cache, threads):
        da = _dask_array()
        use_threads(threads)
        x, _ = prefill()
        self.x = da.from_array(x, chunks=(1, max(1, SEQ // chunks), -1, -1))
        self.cfg = numrope.RopeConfig(HEAD_DIM)
        self.cache = numrope.rope_cache(self.cfg, SEQ) if cache == "table" else None
        self.time_compute(chunks, cache, threads)

    def time_compute(self, chunks, cache, threads):
        numrope.apply_rope(self.x, self.cfg, cache=self.cache).compute(scheduler="threads")


class DaskQK:
    """apply_rope_qk on Dask queries (4 chunks) and in-memory grouped-query keys, on the threaded scheduler."""

    params = (THREADS,)
    param_names = ("threads",)

    def setup(self, threads):
        da = _dask_array()
        use_threads(threads)
        q, _ = prefill()
        self.k, _ = prefill(heads=max(1, q.shape[2] // 4), seed=1)
        self.q = da.from_array(q, chunks=(1, max(1, SEQ // 4), -1, -1))
        self.cfg = numrope.RopeConfig(HEAD_DIM)
        self.time_compute(threads)

    def time_compute(self, threads):
        q_rot, k_rot = numrope.apply_rope_qk(self.q, self.k, self.cfg)
        _dask_array().compute(q_rot, k_rot, scheduler="threads")
