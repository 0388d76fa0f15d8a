"""numrope's asv benchmark suite (``asv run --python=same --set-commit-hash=$(git rev-parse HEAD)``).

One module per hot path. Every class builds its arrays and calls the function once in ``setup``, so
that JIT compilation stays out of the timings, and takes the Numba thread count as a parameter
(1 and every core) where the kernel runs in parallel. The shared pieces are here.
"""

import os

import numba
import numpy as np

#: ``NUMROPE_ASV_SMOKE=1`` (set by .ci/run) shrinks every array and benchmarks all cores only: a
#: check that every benchmark runs, in about a minute, not a measurement.
SMOKE = os.environ.get("NUMROPE_ASV_SMOKE", "") not in ("", "0")

#: Numba thread counts to benchmark: one, and every core Numba may use.
THREADS = [numba.config.NUMBA_NUM_THREADS] if SMOKE else sorted({1, numba.config.NUMBA_NUM_THREADS})

#: A Llama-sized prefill (batch, seq, heads, head_dim): 64 MiB in float32.
BATCH, SEQ, HEADS, HEAD_DIM = (1, 64, 4, 128) if SMOKE else (1, 4096, 32, 128)


def sizes(*values):
    """A size parameter's values: all of them, or the smallest in a smoke run."""
    return [min(values)] if SMOKE else list(values)


def use_threads(threads):
    """Run Numba's parallel kernels on ``threads`` threads from now on (this thread)."""
    numba.set_num_threads(threads)


def dtype_of(name):
    """A dtype by name; ``"bfloat16"`` is ml_dtypes' (NotImplementedError, which asv reports as a skip,
    where ml_dtypes is not installed)."""
    if name != "bfloat16":
        return np.dtype(name)
    try:
        import ml_dtypes
    except ImportError as exc:
        raise NotImplementedError("bfloat16 needs ml_dtypes") from exc
    return np.dtype(ml_dtypes.bfloat16)


def random(shape, dtype="float32", seed=0):
    """Standard normal values of the given shape and dtype (bfloat16 by name), C-contiguous."""
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32).astype(dtype_of(dtype))


def prefill(dtype="float32", axes="BSHD", heads=HEADS, seed=0):
    """A prefill array in ``axes`` order ("BSHD" or "BHSD") and its sequence axis."""
    shape = (BATCH, SEQ, heads, HEAD_DIM) if axes == "BSHD" else (BATCH, heads, SEQ, HEAD_DIM)
    return random(shape, dtype, seed), (-3 if axes == "BSHD" else -2)


def table_dtype(dtype):
    """The cos/sin table dtype for x of ``dtype``: float64 for float64, float32 otherwise (bfloat16 too)."""
    return np.float64 if dtype_of(dtype) == np.float64 else np.float32
