"""How the CPU kernels are compiled: Numba's disk cache kept honest, parallel and serial twins, threads.

* :func:`njit` -- ``numba.njit`` with the disk cache where one can be written, and without it
  where none can (a read-only install with an unwritable home): compiling on every run is slow,
  failing is worse.
* The disk cache is keyed on the kernels' sources (:func:`guard_disk_cache`). Numba keys a cached
  kernel on the file that defines it, but the kernels inline code from other modules
  (:mod:`~numrope.kernels.sincos`, :mod:`~numrope.kernels.half`): after an edit of those alone,
  Numba would load the old machine code. numrope stores a hash of every kernel source beside the
  cache and clears its entries when the hash changes.
* :func:`jit_twins` and :func:`use_parallel` -- a parallel and a serial compilation of each kernel,
  and when to run which.
* Processes forked after a parallel call run the serial twins where the threading layer cannot
  survive ``fork`` (GNU OpenMP).
"""

from __future__ import annotations

import glob
import hashlib
import os
import threading
import types

import numba
from numba.core import types as nbtypes
from numba.extending import intrinsic, overload

# Below this many elements a parallel launch costs more than it saves (measured with
# asv_benchmarks: the decode step, 4096 elements, is ~3x slower through the thread pool).
PARALLEL_MIN_ELEMENTS = 1 << 16

#: The modules whose code is compiled into the cached kernels: a change to any of them clears the cache.
KERNEL_MODULES = ("sincos", "half", "cpu", "simd", "step", "stream", "axes", "ahead", "jit")
_HERE = os.path.dirname(os.path.abspath(__file__))
_STAMP = "numrope-kernels.sha256"


def sources_hash() -> str:
    """SHA-256 of the kernel modules' sources and the Numba version that compiles them."""
    digest = hashlib.sha256(numba.__version__.encode())
    for name in KERNEL_MODULES:
        with open(os.path.join(_HERE, f"{name}.py"), "rb") as fh:
            digest.update(name.encode() + b"\0" + fh.read())
    return digest.hexdigest()


def _probe():  # a stand-in function for Numba's cache locators, which read a line number from one
    pass


def cache_dir() -> str | None:
    """The directory where Numba caches this package's kernels, or None where it cannot write one."""
    from numba.core import caching

    for cls in caching.CacheImpl._locator_classes:
        try:
            locator = cls.from_function(_probe, os.path.join(_HERE, "cpu.py"))
        except Exception:  # a locator that does not apply here
            continue
        if locator is not None:
            return locator.get_cache_path()
    return None


def guard_disk_cache(directory: str | None = None) -> bool:
    """Clear numrope's cached kernels in ``directory`` if they were compiled from other sources.

    Returns True if entries were removed. Must run before the first kernel is loaded, which is
    why :mod:`numrope.kernels.jit` calls it on import. Errors (a cache directory another process
    is clearing, a read-only one) leave the cache as it is: Numba then checks each entry itself.
    """
    directory = directory or cache_dir()
    if directory is None:
        return False
    stamp_path = os.path.join(directory, _STAMP)
    current = sources_hash()
    try:
        with open(stamp_path) as fh:
            if fh.read().strip() == current:
                return False
    except OSError:
        pass
    removed = False
    for name in KERNEL_MODULES:
        for path in glob.glob(os.path.join(directory, f"{name}.*.nb[ic]")):
            try:
                os.remove(path)
                removed = True
            except OSError:
                pass
    try:
        os.makedirs(directory, exist_ok=True)
        tmp = f"{stamp_path}.{os.getpid()}"
        with open(tmp, "w") as fh:
            fh.write(current + "\n")
        os.replace(tmp, stamp_path)
    except OSError:
        pass
    return removed


CACHE = cache_dir() is not None
if CACHE:
    guard_disk_cache()


def read_only(a):
    """``a``, or a read-only view of it: how the launchers pass the arrays a kernel only reads.

    Numba compiles a kernel once per signature, and an array's write flag is part of the signature.
    Without this, a read-only input (a memmap opened ``"r"``, a broadcast table), positions that a
    copy made writable, and a call in place would each compile the same kernel again (4 - 5 s each).
    """
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a


#: The function attribute :func:`wide_vectors` sets, as clang's ``-mprefer-vector-width=512`` does.
WIDE_VECTORS = '"prefer-vector-width"="512"'


def wide_vectors():
    """Let LLVM vectorise the loops of the compiled function this is called in with 512-bit vectors.

    LLVM tunes its loop vectoriser for 256-bit vectors on the Intel CPUs with AVX-512, and so vectorised the
    float64 cos/sin loops four entries at a time on the Xeon. Eight at a time they give the same bits,
    sooner (docs/benchmarks.md, the eleventh pass). Where 512-bit vectors are not legal (no AVX-512), LLVM
    splits them as before. Emits no instruction: the attribute is set on the function being compiled, the
    outlined body of a ``prange`` loop where called in one. Nothing in Python (``NUMBA_DISABLE_JIT``).
    """


@intrinsic
def _prefer_wide_vectors(typingctx):
    def codegen(context, builder, signature, args):
        # llvmlite's attribute set takes only the attributes it knows by name; a string attribute goes into
        # the IR text as written, which is how LLVM reads one
        set.add(builder.function.attributes, WIDE_VECTORS)
        return context.get_dummy_value()

    return nbtypes.void(), codegen


# Inlined, so that the intrinsic's code generation runs in the calling function, whose attribute it sets
@overload(wide_vectors, inline="always")
def _wide_vectors_impl():
    return lambda: _prefer_wide_vectors()


def njit(*args, **options):
    """``numba.njit`` caching to disk where a cache can be written (see the module docstring)."""
    options.setdefault("cache", CACHE)
    return numba.njit(*args, **options)


_forked_from_gnu_openmp = False


def _after_fork_in_child():
    """In a child forked after a parallel launch on GNU OpenMP, run the serial kernels only.

    GNU OpenMP cannot run in a process forked from one that used it: Numba aborts the child at its
    first parallel launch ("fork() called from a process already using GNU OpenMP"), which kills
    ``multiprocessing`` workers started by ``fork`` (Linux's default) and hangs ``Pool.map``. The
    serial twins need no threads, so the child computes the same results, one core each.
    """
    global _forked_from_gnu_openmp
    try:
        layer = numba.threading_layer()
    except ValueError:  # the parent never launched in parallel: the child may start any layer
        return
    if layer == "omp":
        try:
            from numba.np.ufunc import omppool

            vendor = getattr(omppool, "openmp_vendor", "GNU")
        except ImportError:  # pragma: no cover - omp was running, so it imports
            vendor = "GNU"
        _forked_from_gnu_openmp = vendor == "GNU"


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

_layer_unsafe = None


def _threading_layer_is_unsafe() -> bool:
    """True if Numba's threading layer cannot run kernels from several threads at once.

    The ``workqueue`` layer is not thread-safe. Numba reports its layer after a parallel launch;
    where it does not, judge from its configuration and which layers can load.
    """
    global _layer_unsafe
    if _layer_unsafe is not None:
        return _layer_unsafe
    try:
        layer = numba.threading_layer()
    except ValueError:  # not reported (yet): predict Numba's choice
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
    if n_elements < PARALLEL_MIN_ELEMENTS or _forked_from_gnu_openmp:
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

    def twin(suffix):
        copy = types.FunctionType(
            func.__code__, func.__globals__, func.__name__ + suffix, func.__defaults__, func.__closure__
        )
        copy.__qualname__ = func.__qualname__ + suffix
        copy.__doc__ = func.__doc__
        return copy

    return njit(parallel=True)(twin("_parallel")), njit(twin("_serial"))
