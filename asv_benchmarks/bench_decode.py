"""One decoding step (S=1, a position per batch row): the call overhead, not the arithmetic."""

import functools

import numpy as np

import numrope

from . import HEAD_DIM, HEADS, SEQ, THREADS, random, use_threads


class Decode:
    """apply_rope on (batch, 1, 32, 128) at positions near SEQ, against a bare Numba call."""

    params = ([1, 16], ["table", "no table"], THREADS)
    param_names = ("batch", "cache", "threads")

    def setup(self, batch, cache, threads):
        from numrope.cli.bench.timing import floor_kernels

        use_threads(threads)
        self.x = random((batch, 1, HEADS, HEAD_DIM))
        self.out = np.empty_like(self.x)
        self.positions = SEQ + 7 * np.arange(batch)[:, None]  # (batch, 1): each row at its own position
        self.cfg = numrope.RopeConfig(HEAD_DIM)
        self.table = numrope.rope_cache(self.cfg, SEQ + 7 * batch)
        self.cache = self.table if cache == "table" else None
        self.bare = floor_kernels()[1]
        self.bare_args = (self.x[:, 0], self.out[:, 0], *self.table, self.positions[:, 0])
        self.time_decode(batch, cache, threads)
        self.time_bare_numba(batch, cache, threads)

    def time_decode(self, batch, cache, threads):
        numrope.apply_rope(self.x, self.cfg, self.positions, cache=self.cache, out=self.out)

    def time_bare_numba(self, batch, cache, threads):
        """The same rotation as a plain @njit loop over the table (numrope.cli.bench.timing.floor_kernels)."""
        self.bare(*self.bare_args)

    def track_time_over_bare_numba(self, batch, cache, threads):
        """time_decode over time_bare_numba, measured interleaved in one process (target: <= 2.5)."""
        from numrope.cli.bench.timing import time_calls

        decode = functools.partial(self.time_decode, batch, cache, threads)
        t = time_calls({"decode": decode, "bare": functools.partial(self.bare, *self.bare_args)})
        return t["decode"] / t["bare"]

    track_time_over_bare_numba.unit = "x"


class DecodeStep:
    """apply_rope on (1, 1, 32, 128) at an int offset with a table of x's dtype (float32 for the 2-byte dtypes): the
    decoding step's own path (numrope.kernels.step), into out= and in place."""

    params = (["float32", "float16", "bfloat16", "float64"], ["out", "in place"])
    param_names = ("dtype", "output")

    def setup(self, dtype, output):
        use_threads(1)  # one token: the kernels run serially below numrope.kernels.jit.PARALLEL_MIN_ELEMENTS
        self.x = random((1, 1, HEADS, HEAD_DIM), dtype)
        self.out = self.x if output == "in place" else np.empty_like(self.x)
        self.cfg = numrope.RopeConfig(HEAD_DIM)
        self.table = numrope.rope_cache(self.cfg, SEQ + 1, np.float64 if dtype == "float64" else np.float32)
        self.time_step(dtype, output)

    def time_step(self, dtype, output):
        numrope.apply_rope(self.x, self.cfg, SEQ, cache=self.table, out=self.out)
