"""asv benchmarks of a RoPE kernel: a prefill with a cos/sin table, and one decoding step.

Each class times one call (``time_``), and the prefill also reports its bandwidth (``track_``),
so that a change to the kernel shows as a step in asv's plots. Swap ``numrope.apply_rope`` for
your own kernel to track it the same way.
"""

import time

import numpy as np

import numrope


class Prefill:
    """A (1, seq, 32, 128) batch rotated with a table into a preallocated output."""

    params = (["float32", "float64"], [512, 4096])
    param_names = ("dtype", "seq")

    def setup(self, dtype, seq):
        self.cfg = numrope.RopeConfig(head_dim=128, base=500000.0)
        self.x = np.random.default_rng(0).standard_normal((1, seq, 32, 128)).astype(dtype)
        self.out = np.empty_like(self.x)
        self.table = numrope.rope_cache(self.cfg, seq, dtype=dtype)
        numrope.apply_rope(self.x, self.cfg, cache=self.table, out=self.out)  # compile outside the timing

    def time_apply_rope(self, dtype, seq):
        numrope.apply_rope(self.x, self.cfg, cache=self.table, out=self.out)

    def track_gb_per_s(self, dtype, seq):
        """Bytes read and written once per call, over the best of a few calls."""
        best = min(self._timed() for _ in range(5))
        return 2 * self.x.nbytes / best / 1e9

    track_gb_per_s.unit = "GB/s"

    def _timed(self):
        t0 = time.perf_counter()
        numrope.apply_rope(self.x, self.cfg, cache=self.table, out=self.out)
        return time.perf_counter() - t0


class DecodeStep:
    """One token (1, 1, 32, 128) at position 4096: the per-call overhead dominates."""

    def setup(self):
        self.cfg = numrope.RopeConfig(head_dim=128, base=500000.0)
        self.x = np.random.default_rng(0).standard_normal((1, 1, 32, 128)).astype(np.float32)
        self.out = np.empty_like(self.x)
        self.table = numrope.rope_cache(self.cfg, 8192)
        numrope.apply_rope(self.x, self.cfg, 4096, cache=self.table, out=self.out)

    def time_decode_step(self):
        numrope.apply_rope(self.x, self.cfg, 4096, cache=self.table, out=self.out)
