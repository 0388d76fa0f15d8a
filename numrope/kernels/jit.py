"""When to run a kernel's parallel twin and when its serial one."""

import threading
import types

# Below this many elements a parallel launch costs more than it saves (measured with
# asv_benchmarks: the decode step, 4096 elements, is ~3x slower through the thread pool).
PARALLEL_MIN_ELEMENTS = 1 << 16

_layer_unsafe = None


def _threading_layer_is_unsafe() -> bool:
    """True if Numba's threading layer cannot run kernels from several threads at once.

    The ``workqueue`` layer is not thread-safe. Numba reports its layer after a parallel launch;
    where it does not, judge from its configuration and which layers can load.
    """
    global _layer_unsafe
    if _layer_unsafe is not None:
        return _layer_unsafe
    import numba

    try:
        layer = numba.threading_layer()
    except ValueError:  # not reported (yet): predict Numba's choice, which tries tbb, omp, workqueue
        layer = numba.config.THREADING_LAYER
        if layer in ("default", "safe", "threadsafe"):
            for candidate, module in (("tbb", "tbbpool"), ("omp", "omppool")):
                try:
                    __import__(f"numba.np.ufunc.{module}")
                except Exception:
                    continue
                layer = candidate
                break
            else:
                layer = "workqueue"
    _layer_unsafe = layer == "workqueue"
    return _layer_unsafe


def use_parallel(n_elements: int) -> bool:
    """Whether a kernel over ``n_elements`` should take its parallel twin."""
    if n_elements < PARALLEL_MIN_ELEMENTS:
        return False
    if threading.current_thread() is threading.main_thread():
        return True
    return not _threading_layer_is_unsafe()


def jit_twins(func):
    """``(parallel, serial)`` Numba compilations of one kernel body (``prange`` becomes ``range``).

    Each twin is compiled from its own copy of the function, named ``<name>_parallel`` and
    ``<name>_serial``: Numba's disk cache keys entries by function name and code, not by the
    ``parallel`` option, so two compilations of one function object would load each other's
    machine code.
    """
    import numba

    def twin(suffix):
        copy = types.FunctionType(
            func.__code__, func.__globals__, func.__name__ + suffix, func.__defaults__, func.__closure__
        )
        copy.__qualname__ = func.__qualname__ + suffix
        copy.__doc__ = func.__doc__
        return copy

    return numba.njit(parallel=True, cache=True)(twin("_parallel")), numba.njit(cache=True)(twin("_serial"))
