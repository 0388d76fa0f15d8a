"""The cos/sin table: rope_cache against NumPy's cos and sin of the same float64 angles."""

import numpy as np

import numrope

from . import HEAD_DIM, THREADS, sizes, use_threads


class CacheBuild:
    """rope_cache(cfg, n): every angle formed and reduced in float64, cast to the table's dtype."""

    params = (sizes(4096, 65536, 1048576), ["float32", "float64"], THREADS)
    param_names = ("positions", "dtype", "threads")

    def setup(self, positions, dtype, threads):
        use_threads(threads)
        self.cfg = numrope.RopeConfig(HEAD_DIM)
        numrope.rope_cache(self.cfg, positions, dtype=dtype)

    def time_rope_cache(self, positions, dtype, threads):
        numrope.rope_cache(self.cfg, positions, dtype=dtype)


class NumpyCosSin:
    """What CacheBuild is held to: NumPy's cos and sin of the same float64 angles, given the angles."""

    params = (sizes(4096, 65536, 262144), THREADS)
    param_names = ("positions", "threads")

    def setup(self, positions, threads):
        use_threads(threads)
        self.cfg = numrope.RopeConfig(HEAD_DIM)
        self.angles = np.outer(np.arange(positions, dtype=np.float64), self.cfg.inv_freq())
        numrope.rope_cache(self.cfg, positions, dtype=np.float64)

    def time_numpy_cos_sin(self, positions, threads):
        np.cos(self.angles), np.sin(self.angles)

    def track_speedup_over_numpy(self, positions, threads):
        from numrope.cli.bench.timing import time_calls

        t = time_calls(
            {
                "numrope": lambda: numrope.rope_cache(self.cfg, positions, dtype=np.float64),
                "numpy": lambda: (np.cos(self.angles), np.sin(self.angles)),
            }
        )
        return t["numpy"] / t["numrope"]

    track_speedup_over_numpy.unit = "x"
