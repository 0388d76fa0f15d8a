"""apply_rope on a Llama-sized prefill: every dtype, axis order, layout and calling option."""

import numpy as np

import numrope

from . import BATCH, HEAD_DIM, HEADS, SEQ, THREADS, prefill, random, table_dtype, use_threads


class Prefill:
    """With a precomputed table and a preallocated ``out=``: the kernel alone, at memory speed."""

    params = (["float16", "bfloat16", "float32", "float64"], ["BSHD", "BHSD"], ["half", "interleaved"], THREADS)
    param_names = ("dtype", "axes", "layout", "threads")

    def setup(self, dtype, axes, layout, threads):
        use_threads(threads)
        self.x, self.seq_axis = prefill(dtype, axes)
        self.out = np.empty_like(self.x)
        self.cfg = numrope.RopeConfig(HEAD_DIM, layout=layout)
        self.cache = numrope.rope_cache(self.cfg, SEQ, dtype=table_dtype(dtype))
        self.time_apply_rope(dtype, axes, layout, threads)

    def time_apply_rope(self, dtype, axes, layout, threads):
        numrope.apply_rope(self.x, self.cfg, cache=self.cache, seq_axis=self.seq_axis, out=self.out)


class CallingOptions:
    """float32 BSHD with and without a table, into ``out=``, in place, or a new array."""

    params = (["table", "no table"], ["out=", "in place", "new array"], THREADS)
    param_names = ("cache", "output", "threads")

    def setup(self, cache, output, threads):
        use_threads(threads)
        self.x, _ = prefill()
        self.cfg = numrope.RopeConfig(HEAD_DIM)
        self.cache = numrope.rope_cache(self.cfg, SEQ) if cache == "table" else None
        self.out = {"out=": np.empty_like(self.x), "in place": self.x, "new array": None}[output]
        self.time_apply_rope(cache, output, threads)

    def time_apply_rope(self, cache, output, threads):
        numrope.apply_rope(self.x, self.cfg, cache=self.cache, out=self.out)


class InPlace:
    """``out=x`` with a table, every dtype and layout: the vector kernels (``numrope.kernels.simd``), where LLVM's
    own loops ran scalar (in place they overlap ``out``)."""

    params = (["float16", "bfloat16", "float32", "float64"], ["half", "interleaved"], THREADS)
    param_names = ("dtype", "layout", "threads")

    def setup(self, dtype, layout, threads):
        use_threads(threads)
        self.x, _ = prefill(dtype)
        self.cfg = numrope.RopeConfig(HEAD_DIM, layout=layout)
        self.cache = numrope.rope_cache(self.cfg, SEQ, dtype=table_dtype(dtype))
        self.time_apply_rope(dtype, layout, threads)

    def time_apply_rope(self, dtype, layout, threads):
        numrope.apply_rope(self.x, self.cfg, cache=self.cache, out=self.x)


class InPlaceTails:
    """``out=x`` with a table, heads of 80 and 96 (whole vectors and tails, ``numrope.kernels.simd``), where the
    float16 and bfloat16 rows ran LLVM's scalar loops before."""

    params = (["float16", "bfloat16", "float32"], [80, 96], THREADS)
    param_names = ("dtype", "head_dim", "threads")

    def setup(self, dtype, head_dim, threads):
        use_threads(threads)
        self.x = random((BATCH, SEQ, HEADS, head_dim), dtype)
        self.cfg = numrope.RopeConfig(head_dim)
        self.cache = numrope.rope_cache(self.cfg, SEQ, dtype=table_dtype(dtype))
        self.time_apply_rope(dtype, head_dim, threads)

    def time_apply_rope(self, dtype, head_dim, threads):
        numrope.apply_rope(self.x, self.cfg, cache=self.cache, out=self.x)


class PartialRotary:
    """Only the first ``rotary_dim`` of 128 features rotate; the rest are copied (table, out=)."""

    params = ([32, 64, 128], THREADS)
    param_names = ("rotary_dim", "threads")

    def setup(self, rotary_dim, threads):
        use_threads(threads)
        self.x, _ = prefill()
        self.out = np.empty_like(self.x)
        self.cfg = numrope.RopeConfig(HEAD_DIM, rotary_dim=rotary_dim)
        self.cache = numrope.rope_cache(self.cfg, SEQ)
        self.time_apply_rope(rotary_dim, threads)

    def time_apply_rope(self, rotary_dim, threads):
        numrope.apply_rope(self.x, self.cfg, cache=self.cache, out=self.out)


class Inverse:
    """The inverse rotation (the backward pass) against the forward one (table, out=)."""

    params = ([False, True], THREADS)
    param_names = ("inverse", "threads")

    def setup(self, inverse, threads):
        use_threads(threads)
        self.x, _ = prefill()
        self.out = np.empty_like(self.x)
        self.cfg = numrope.RopeConfig(HEAD_DIM)
        self.cache = numrope.rope_cache(self.cfg, SEQ)
        self.time_apply_rope(inverse, threads)

    def time_apply_rope(self, inverse, threads):
        numrope.apply_rope(self.x, self.cfg, cache=self.cache, out=self.out, inverse=inverse)


class PrefillFloor:
    """Each prefill (table, out=, BSHD) against a parallel copy of the same arrays, in one process: the
    targets of ``numrope bench`` (0.95 of the copy; 0.90 for bfloat16)."""

    params = (["float16", "bfloat16", "float32", "float64"], ["half", "interleaved"], THREADS)
    param_names = ("dtype", "layout", "threads")

    def setup(self, dtype, layout, threads):
        from numrope.cli.bench.timing import parallel_copy, time_calls

        use_threads(threads)
        self.x, _ = prefill(dtype)
        self.out = np.empty_like(self.x)
        cfg = numrope.RopeConfig(HEAD_DIM, layout=layout)
        cache = numrope.rope_cache(cfg, SEQ, dtype=table_dtype(dtype))
        self.calls = {
            "apply": lambda: numrope.apply_rope(self.x, cfg, cache=cache, out=self.out),
            "copy": lambda: parallel_copy(self.x, self.out),
        }
        self.time_calls = time_calls

    def track_fraction_of_copy_floor(self, dtype, layout, threads):
        t = self.time_calls(self.calls)
        return t["copy"] / t["apply"]

    track_fraction_of_copy_floor.unit = "fraction"


class Bandwidth:
    """Achieved bandwidth, and ratios taken in one process: against a parallel copy and NumPy."""

    params = (THREADS,)
    param_names = ("threads",)

    def setup(self, threads):
        from numrope.cli.bench.timing import parallel_copy, time_calls

        use_threads(threads)
        self.time_calls = time_calls
        self.x, _ = prefill()
        self.out = np.empty_like(self.x)
        self.cfg = numrope.RopeConfig(HEAD_DIM)
        self.cache = numrope.rope_cache(self.cfg, SEQ)
        self.prefill = lambda: numrope.apply_rope(self.x, self.cfg, cache=self.cache, out=self.out)
        self.copy = lambda: parallel_copy(self.x, self.out)

    def track_gb_per_s(self, threads):
        """Bytes read and written once (2 x.nbytes) over the time of apply_rope with a table and out=."""
        return 2 * self.x.nbytes / self.time_calls({"apply": self.prefill})["apply"] / 1e9

    track_gb_per_s.unit = "GB/s"

    def track_fraction_of_copy_floor(self, threads):
        """Time of a Numba parallel copy of x into out over that of apply_rope with a table and out=."""
        t = self.time_calls({"apply": self.prefill, "copy": self.copy})
        return t["copy"] / t["apply"]

    track_fraction_of_copy_floor.unit = "fraction"

    def track_end_to_end_fraction_of_floor(self, threads):
        """apply_rope(x, cfg) (cos/sin and a new output) against its floor: a parallel copy into a new array."""
        from numrope.cli.bench.timing import parallel_copy

        t = self.time_calls(
            {"apply": lambda: numrope.apply_rope(self.x, self.cfg), "copy": lambda: parallel_copy(self.x, self.new())}
        )
        return t["copy"] / t["apply"]

    track_end_to_end_fraction_of_floor.unit = "fraction"

    def new(self):
        return np.empty_like(self.x)

    def track_speedup_over_vectorised_numpy(self, threads):
        """apply_rope(x, cfg) end to end (cos/sin and output included) against numrope.reference.vectorised_numpy."""
        from numrope.reference import vectorised_numpy

        t = self.time_calls(
            {
                "numrope": lambda: numrope.apply_rope(self.x, self.cfg),
                "numpy": lambda: vectorised_numpy(self.x, self.cfg),
            }
        )
        return t["numpy"] / t["numrope"]

    track_speedup_over_vectorised_numpy.unit = "x"


class PeakMemory:
    """Memory of apply_rope: no temporaries the size of x (process peak, and traced allocations)."""

    params = (["table, out=", "no table, new array"],)
    param_names = ("call",)

    def setup(self, call):
        self.x, _ = prefill()
        self.cfg = numrope.RopeConfig(HEAD_DIM)
        if call == "table, out=":
            cache, out = numrope.rope_cache(self.cfg, SEQ), np.empty_like(self.x)
            self.call = lambda: numrope.apply_rope(self.x, self.cfg, cache=cache, out=out)
        else:
            self.call = lambda: numrope.apply_rope(self.x, self.cfg)
        self.call()

    def peakmem_apply_rope(self, call):
        self.call()

    def track_allocated_over_x_nbytes(self, call):
        """Peak traced allocation of one call, in units of x.nbytes: the output, a cos/sin table, no more."""
        from numrope.cli.bench.timing import peak_allocated

        return peak_allocated(self.call) / self.x.nbytes

    track_allocated_over_x_nbytes.unit = "x.nbytes"


class Stores:
    """Streaming stores against plain ones: a prefill with a table into ``out=``, ``out`` on a cache line, 16 bytes
    past one (where NumPy's allocator starts arrays), or written by plain stores (streaming turned off)."""

    params = (["float32", "float64"], ["on a line", "16 bytes past a line", "plain stores"], THREADS)
    param_names = ("dtype", "out", "threads")

    def setup(self, dtype, out, threads):
        from numrope.kernels import stream

        use_threads(threads)
        self.x, _ = prefill(dtype)
        raw = np.empty(self.x.nbytes + 128, np.uint8)
        skip = -raw.ctypes.data % 64 + (16 if out == "16 bytes past a line" else 0)
        self.out = raw[skip : skip + self.x.nbytes].view(self.x.dtype).reshape(self.x.shape)
        self.cfg = numrope.RopeConfig(HEAD_DIM)
        self.cache = numrope.rope_cache(self.cfg, SEQ, dtype=table_dtype(dtype))
        self.stream, self.min_bytes = stream, stream.MIN_BYTES
        if out == "plain stores":
            stream.MIN_BYTES = 1 << 62
        self.time_apply_rope(dtype, out, threads)

    def teardown(self, dtype, out, threads):
        self.stream.MIN_BYTES = self.min_bytes

    def time_apply_rope(self, dtype, out, threads):
        numrope.apply_rope(self.x, self.cfg, cache=self.cache, out=self.out)


class Twins:
    """The serial compilation of the table kernel, which calls under 65,536 elements and processes forked from a
    GNU OpenMP parent run, against the parallel one on one thread: a prefill with a table into ``out=``."""

    params = (["float16", "float32"], ["parallel", "serial"])
    param_names = ("dtype", "twin")

    def setup(self, dtype, twin):
        from numrope.kernels import jit

        use_threads(1)
        self.x, _ = prefill(dtype)
        self.out = np.empty_like(self.x)
        self.cfg = numrope.RopeConfig(HEAD_DIM)
        self.cache = numrope.rope_cache(self.cfg, SEQ, dtype=table_dtype(dtype))
        self.jit, self.min_elements = jit, jit.PARALLEL_MIN_ELEMENTS
        if twin == "serial":
            jit.PARALLEL_MIN_ELEMENTS = 1 << 62
        self.time_apply_rope(dtype, twin)

    def teardown(self, dtype, twin):
        self.jit.PARALLEL_MIN_ELEMENTS = self.min_elements

    def time_apply_rope(self, dtype, twin):
        numrope.apply_rope(self.x, self.cfg, cache=self.cache, out=self.out)
