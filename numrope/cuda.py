"""RoPE on the GPU: the cos/sin table and the rotation for device arrays, with numba.cuda kernels.

The functions take the arguments of their CPU namesakes and check them the same way, then launch
kernels on the current CUDA device. Device arrays are Numba's (``numba.cuda.to_device``, and the
CUDA simulator's) and anything with ``__cuda_array_interface__`` (CuPy arrays, PyTorch CUDA
tensors); :func:`numrope.apply_rope` and :func:`numrope.apply_rope_qk` come here by themselves when
given one. NumPy arrays are copied to the device first. Results stay on the device.

bfloat16 works where the array's dtype is ``ml_dtypes.bfloat16`` (the dtype Numba uses for it);
numrope does not import ml_dtypes.

The GPU needs the ``cuda`` extra (``pip install "numrope[cuda]"``, the numba-cuda package) and a
CUDA driver. Without them, :func:`is_available` is False and every other function raises
:class:`CudaUnavailableError`. ``NUMBA_ENABLE_CUDASIM=1`` (set before Numba is imported) runs the
same kernels on the CPU under Numba's CUDA simulator, slowly: that is how the tests run them.
"""

from __future__ import annotations

import math

import numpy as np

from numrope import _axes
from numrope import _cuda_tables as cuda_tables
from numrope._checks import (
    check_call,
    check_out,
    check_out_pair,
    check_positions,
    check_qk_shapes,
    check_seq_axis,
    check_x_meta,
    overlaps,
)
from numrope.cache import _table_request
from numrope.positions import is_int_scalar

__all__ = ["CudaUnavailableError", "apply_rope", "apply_rope_qk", "is_available", "rope_cache"]

DEFAULT_THREADS_PER_BLOCK = 256
_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)


class CudaUnavailableError(RuntimeError):
    """Raised when a GPU function is called where numba.cuda finds no usable CUDA device."""


def _numba_cuda():
    """numba.cuda, or None where it cannot be imported."""
    try:
        from numba import cuda
    except ImportError:
        return None
    return cuda


def is_available() -> bool:
    """Whether the GPU functions can run here.

    Returns
    -------
    bool
        True where numba.cuda is installed and finds a CUDA device, or runs under its simulator
        (``NUMBA_ENABLE_CUDASIM=1``).

    Examples
    --------
    >>> import numrope.cuda
    >>> isinstance(numrope.cuda.is_available(), bool)
    True
    """
    cuda = _numba_cuda()
    return bool(cuda is not None and cuda.is_available())


def _cuda():
    cuda = _numba_cuda()
    if cuda is None:
        raise CudaUnavailableError(
            'numrope\'s GPU functions need numba-cuda: install it with `pip install "numrope[cuda]"`'
        )
    if not cuda.is_available():
        raise CudaUnavailableError(
            "no CUDA GPU is available (numba.cuda.is_available() is False: no device, or no driver). "
            "Use numrope.apply_rope with NumPy arrays on the CPU, or set NUMBA_ENABLE_CUDASIM=1 before "
            "importing Numba to run the GPU kernels under Numba's CUDA simulator"
        )
    from numrope.kernels import cuda as _cuda_kernels

    return cuda, _cuda_kernels


def _check_threads(threads_per_block):
    if threads_per_block is None:
        return DEFAULT_THREADS_PER_BLOCK
    if not is_int_scalar(threads_per_block):
        raise TypeError(f"threads_per_block must be an int, got {type(threads_per_block).__name__}")
    if not 1 <= threads_per_block <= 1024:
        raise ValueError(f"threads_per_block must be in [1, 1024], got {threads_per_block}")
    return int(threads_per_block)


# Host "meta" arrays: a NumPy array with a device array's shape, strides, dtype and address. The
# shared checks run on them unchanged; nothing ever reads their memory. Under the simulator the
# device array is a NumPy array, and its meta is that array itself.


class _Interface:
    def __init__(self, interface):
        self.__array_interface__ = interface


def _meta(cuda, dev):
    if cuda.config.ENABLE_CUDASIM:
        return np.asarray(dev).view(dev.dtype)  # the interface keeps no ml_dtypes dtype
    if dev.size == 0:
        return np.empty(dev.shape, dev.dtype)
    ptr, readonly = dev.__cuda_array_interface__["data"]
    itemsize = dev.dtype.itemsize
    raw = np.asarray(
        _Interface(
            {
                "shape": tuple(dev.shape),
                "strides": tuple(dev.strides),
                "typestr": f"|u{itemsize}" if itemsize == 1 else f"<u{itemsize}",
                "data": (ptr, bool(readonly)),
                "version": 3,
            }
        )
    )
    return raw.view(dev.dtype)


def _view(cuda, meta, owner):
    """The device array that ``meta`` describes (a view of ``owner``'s memory)."""
    if cuda.config.ENABLE_CUDASIM:
        return type(owner)(meta)
    if meta.size == 0:
        return cuda.device_array(meta.shape, meta.dtype)
    interface = {
        "shape": meta.shape,
        "strides": meta.strides,
        "typestr": meta.dtype.str,
        "data": (meta.__array_interface__["data"][0], False),
        "version": 3,
    }
    return cuda.from_cuda_array_interface(interface, owner=owner, sync=False)


def _is_bf16(dtype):
    return getattr(dtype, "name", None) == "bfloat16"


class _Array:
    """A checked array on the device: what to launch on, how to check it, what to hand back."""

    def __init__(self, cuda, a, cfg, name, out=False):
        self.obj = a
        if getattr(a, "__cuda_ndarray__", False):  # Numba's device arrays, the simulator's too
            dev = a
        elif hasattr(a, "__cuda_array_interface__") and not isinstance(a, np.ndarray):
            dev = cuda.as_cuda_array(a)
        else:
            host = np.asarray(a)
            if host.dtype.kind not in "fV":
                check_x_meta(host, cfg, name)  # the CPU path's message for integer, complex, ...
            dev = cuda.to_device(np.ascontiguousarray(host))
            self.obj = dev
        self.dev = dev
        self.meta = _meta(cuda, dev)
        self.bf16 = _is_bf16(self.meta.dtype)
        # bfloat16 is checked as the float16 of the same shape, and launched on as its bit patterns
        self.kernel_meta = self.meta.view(np.uint16) if self.bf16 else self.meta
        if not out:  # check_out checks an out array against x
            check_x_meta(self.meta.view(np.float16) if self.bf16 else self.meta, cfg, name)
        if not self.meta.dtype.isnative:
            raise TypeError(f"{name} must be in native byte order, got dtype {self.meta.dtype}")

    @property
    def io(self):
        return "bf16" if self.bf16 else "float"

    @property
    def compute_dtype(self):
        return _F64 if self.meta.dtype == _F64 else _F32


def _empty_like(cuda, x):
    """A new array for x's result: of x's library where that is cheap, else a Numba device array."""
    obj = x.obj
    if hasattr(obj, "new_empty") and hasattr(obj, "__cuda_array_interface__"):  # a PyTorch tensor
        return obj.new_empty(tuple(obj.shape))
    namespace = getattr(obj, "__array_namespace__", None)
    if namespace is not None and hasattr(obj, "__cuda_array_interface__"):  # CuPy and friends
        return namespace().empty_like(obj)
    return cuda.device_array(x.meta.shape, x.meta.dtype)


def _out(cuda, out, x, cfg, name, x_name="x"):
    """(out as _Array, the object to return) after the CPU path's checks on out."""
    if out is None:
        out = _empty_like(cuda, x)
        return _Array(cuda, out, cfg, name, out=True), out
    if out is x.obj:
        check_out(x.meta, x.meta, name, x_name)
        return x, out
    if not (getattr(out, "__cuda_ndarray__", False) or hasattr(out, "__cuda_array_interface__")):
        raise TypeError(f"{name} must be a device array, got {type(out).__name__}")
    o = _Array(cuda, out, cfg, name, out=True)
    if o.bf16 != x.bf16:
        raise TypeError(f"{name} must have dtype {x.meta.dtype}, got {o.meta.dtype}")
    check_out(o.kernel_meta, x.kernel_meta, name, x_name)
    return o, out


def _copy(cuda, a, cfg, name):
    """A checked array's values in new device memory (through the host: only aliased inputs need it)."""
    return _Array(cuda, a.dev.copy_to_host(), cfg, name)


def _per_token(cuda, cfg, positions, cache, meta, ax, dtype, seq_len, threads):
    """Multi-axis coordinates as the rows of a per-token table built on the device (numrope._axes),
    for x with the meta array ``meta``."""

    def check(tables):
        return cuda_tables.check_cache(cuda, tables, cfg)

    return _axes.on_device(cfg, positions, cache, meta.shape, ax, dtype, seq_len, threads, rope_cache, check)


def _positions_arg(cuda, positions):
    """Positions as given, with a device array copied to the host for checking."""
    if getattr(positions, "__cuda_ndarray__", False):
        return positions.copy_to_host()
    if hasattr(positions, "__cuda_array_interface__") and not isinstance(positions, np.ndarray):
        return cuda.as_cuda_array(positions).copy_to_host()
    return positions


def _as_4d(meta, ax):
    shape = (math.prod(meta.shape[:ax]), meta.shape[ax], math.prod(meta.shape[ax + 1 : -1]), meta.shape[-1])
    try:
        return np.reshape(meta, shape, copy=False)
    except ValueError:
        return None


def _launch(cuda, kernels, cfg, pairs, ax, table, inverse, threads):
    """Rotate each (x, out) pair of metas (one launch for one or two pairs), out possibly x.

    Where strides admit no 4-D view, split along the first axis (or, with the sequence axis
    first, the axis after it) and launch once per index.
    """
    cos, sin, idx, offset, row_stride = table
    views = [(_as_4d(x, ax), _as_4d(out, ax)) for (x, out, _, _) in pairs]
    if any(v is None for pair in views for v in pair):
        split = 0 if ax > 0 else 1
        per = math.prod(pairs[0][0].shape[1:ax]) if ax > 0 else 0
        for i in range(pairs[0][0].shape[split]):
            sub = [
                ((x[i], out[i]) if split == 0 else (x[:, i], out[:, i])) + (owner, io) for (x, out, owner, io) in pairs
            ]
            sub_idx = idx if (idx.shape[1] == 0 or idx.shape[0] == 1 or split == 1) else idx[i * per : (i + 1) * per]
            sub_offset = offset + i * per * row_stride if split == 0 else offset
            sub_table = (cos, sin, sub_idx, sub_offset, row_stride)
            _launch(cuda, kernels, cfg, sub, ax - 1 if split == 0 else ax, sub_table, inverse, threads)
        return
    wide = np.float64 if any(x.dtype == _F64 for (x, _, _, _) in pairs) or cos.dtype == _F64 else np.float32
    args = []
    for (x4, out4), (x, out, owner, io) in zip(views, pairs, strict=True):
        x_dev = _view(cuda, x4, owner[0])
        out_dev = x_dev if out is x else _view(cuda, out4, owner[1])
        args.append((x_dev, out_dev, out is not x, io))
    n_b, n_s = views[0][0].shape[:2]
    n_heads = max(v[0].shape[2] for v in views)
    tx, ty, tz = kernels.block_shape(cfg.n_pairs, n_heads, threads)
    blocks = math.ceil(n_b * n_s / tz)
    if blocks == 0 or n_heads == 0:
        return
    if len(args) == 1:  # one array: the two-array kernel with a partner of no heads
        x_dev, out_dev, _, io = args[0]
        args.append((x_dev[:, :, :0], out_dev[:, :, :0], False, io))
    (q_dev, q_out, tail_q, io_q), (k_dev, k_out, tail_k, io_k) = args
    kernel = kernels.rotate(cfg.layout, io_q, io_k, wide, cfg.rotary_offset)
    kernel[blocks, (tx, ty, tz)](q_dev, q_out, k_dev, k_out, cos, sin, idx, offset, row_stride, inverse, tail_q, tail_k)


# numrope.apply_rope's keyword arguments, with their defaults: the GPU functions take the same
_OPTIONS = {"cache": None, "seq_axis": -3, "inverse": False, "transpose": False, "out": None, "seq_len": None}


def _begin(name, cfg, threads_per_block, options):
    """The checks both rotations start with, and their settings.

    Returns ``(cache, seq_axis, out, seq_len, backward, divide, threads, cuda, kernels)``: the
    options of :func:`numrope.apply_rope` (defaults where not given), the direction's flags,
    the threads per block and numba.cuda with numrope's kernels.
    """
    unknown = options.keys() - _OPTIONS.keys()
    if unknown:
        raise TypeError(f"{name}() got an unexpected keyword argument {min(unknown)!r}")
    o = {**_OPTIONS, **options}
    backward, divide, seq_len = check_call(cfg, o["inverse"], o["transpose"], o["seq_len"])
    if getattr(cfg.scaling, "scales_qk", False):
        raise NotImplementedError("numrope.cuda: xPos (queries and keys scaled apart) runs on the CPU only")
    threads = _check_threads(threads_per_block)
    return (o["cache"], o["seq_axis"], o["out"], seq_len, backward, divide, threads, *_cuda())


def rope_cache(cfg, positions, dtype=np.float32, *, seq_len=None, threads_per_block=None):
    """Cosine and sine of every position's rotation angles, computed on the GPU.

    Parameters
    ----------
    cfg, positions, seq_len
        As for :func:`numrope.rope_cache`; positions held in a device array are copied to the host to be checked.
    dtype : {float32, float64, float16}, default float32
        Dtype of the returned tables.
    threads_per_block : int, optional
        CUDA threads per block, at most 1024 (default 256).

    Returns
    -------
    cos, sin : numba.cuda device arrays
        Of shape ``positions.shape + (cfg.rotary_dim // 2,)``: the tables of
        :func:`numrope.rope_cache`, on the device, ready for ``apply_rope(..., cache=(cos, sin))``.

    Raises
    ------
    CudaUnavailableError
        If numba.cuda finds no CUDA device (or is not installed).
    TypeError, ValueError
        As :func:`numrope.rope_cache`, and for a bad ``threads_per_block``.

    Notes
    -----
    The same float64 computation as :func:`numrope.rope_cache`: the product ``m * theta_i`` is
    taken exactly (with a fused multiply-add on the GPU), reduced modulo pi/2 against a 169-bit pi/2
    (a 212-bit one from 2**32 radians on) and evaluated by polynomials, then rounded once to
    ``dtype``. The GPU compiler may fuse other multiply-adds, so results can differ from the CPU's by
    an ulp of float64.

    Examples
    --------
    >>> import numpy as np, numrope, numrope.cuda
    >>> cfg = numrope.RopeConfig(head_dim=8)
    >>> cos, sin = numrope.cuda.rope_cache(cfg, 16, dtype=np.float64)  # doctest: +SKIP
    >>> cos.shape  # doctest: +SKIP
    (16, 4)
    >>> bool(np.allclose(cos.copy_to_host(), numrope.rope_cache(cfg, 16, np.float64)[0]))  # doctest: +SKIP
    True
    """
    threads = _check_threads(threads_per_block)
    cuda, kernels = _cuda()
    pos, shape, dtype, inv_freq = _table_request(cfg, _positions_arg(cuda, positions), dtype, seq_len, "numrope.cuda")
    n = math.prod(shape)
    device_positions = np.empty(0) if pos is None else cuda.to_device(pos.reshape(-1).astype(np.float64))
    cos, sin = cuda_tables.fill_table(
        cuda, kernels, cfg, device_positions, 0, n, dtype, inv_freq, threads, cfg.attention_scaling
    )
    return cos.reshape(*shape, cfg.n_pairs), sin.reshape(*shape, cfg.n_pairs)


def apply_rope(x, cfg, positions=None, *, threads_per_block=None, **options):
    """Rotate the features of a device array by its positions' angles, on the GPU.

    Parameters
    ----------
    x : device array, float16, bfloat16, float32 or float64
        A Numba device array or any ``__cuda_array_interface__`` array (CuPy, PyTorch); a NumPy
        array is copied to the device. Any strided view. bfloat16 is ``ml_dtypes.bfloat16``.
    cfg, positions
        As for :func:`numrope.apply_rope`. Positions are host values (a device array of them is
        copied to the host to be checked).
    threads_per_block : int, optional
        CUDA threads per block, at most 1024 (default 256).
    **options
        The keyword arguments of :func:`numrope.apply_rope`, with its defaults: ``seq_axis``,
        ``inverse``, ``transpose`` and ``seq_len`` as there, and

        - ``cache``: ``(cos, sin)`` tables from :func:`rope_cache` (device) or
          :func:`numrope.rope_cache` (copied over);
        - ``out``: a device array to write into, of x's shape and dtype; may be ``x`` itself.

    Returns
    -------
    device array
        ``out`` if given; else a new array of x's library where that is cheap (a PyTorch tensor
        for a tensor, a CuPy array for a CuPy array), otherwise a Numba device array.

    Raises
    ------
    CudaUnavailableError
        If numba.cuda finds no CUDA device (or is not installed).
    TypeError, ValueError, IndexError
        As :func:`numrope.apply_rope`, checked before any kernel runs.

    Notes
    -----
    Pair ``(x0, x1)`` at position ``m`` becomes ``(x0 cos - x1 sin, x1 cos + x0 sin)`` of the
    angle ``m * theta_i`` (RoFormer, Su et al. 2021, eq. 34). The arithmetic is float32 for
    float16, bfloat16 and float32 inputs (rounded once, to nearest even, into the output) and
    float64 for float64 inputs or float64 tables. The kernels launch on the default stream.

    Examples
    --------
    >>> import numpy as np, numrope, numrope.cuda
    >>> from numba import cuda
    >>> cfg = numrope.RopeConfig(head_dim=8)
    >>> q = np.ones((1, 5, 2, 8), dtype=np.float32)
    >>> q_gpu = cuda.to_device(q)  # doctest: +SKIP
    >>> q_rot = numrope.cuda.apply_rope(q_gpu, cfg)  # doctest: +SKIP
    >>> bool(np.allclose(q_rot.copy_to_host(), numrope.apply_rope(q, cfg), atol=1e-6))  # doctest: +SKIP
    True
    """
    cache, seq_axis, out, seq_len, backward, divide, threads, cuda, kernels = _begin(
        "apply_rope", cfg, threads_per_block, options
    )
    xa = _Array(cuda, x, cfg, "x")
    ax = check_seq_axis(seq_axis, xa.meta.ndim, "x")
    positions = _positions_arg(cuda, positions)
    if cfg.axes is not None:  # coordinate vectors: rows of a per-token table
        positions, cache = _per_token(cuda, cfg, positions, cache, xa.meta, ax, xa.compute_dtype, seq_len, threads)
    pos = check_positions(positions, xa.meta.shape, ax)
    oa, result = _out(cuda, out, xa, cfg, "out")
    if oa is xa and cfg.layout == "interleaved_in_half_out":  # the pairs move between features: read a copy
        xa = _copy(cuda, xa, cfg, "x")
    cos, sin, index = cuda_tables.tables(
        cuda, kernels, cfg, positions, pos, cache, xa.compute_dtype, seq_len, threads, divide
    )
    out_meta = xa.kernel_meta if oa is xa else oa.kernel_meta
    pair = (xa.kernel_meta, out_meta, (xa.dev, oa.dev), xa.io)
    _launch(cuda, kernels, cfg, [pair], ax, (cos, sin, *index(xa.meta.shape[:ax])), backward, threads)
    return result


def apply_rope_qk(q, k, cfg, positions=None, *, threads_per_block=None, **options):
    """Rotate queries and keys on the GPU in one kernel launch that shares each token's cos/sin.

    Parameters
    ----------
    q, k : device arrays
        As ``x`` of :func:`apply_rope`, with the same sequence length and batch axes; their
        head counts (in either axis order, as for :func:`numrope.apply_rope_qk`) and dtypes may
        differ.
    cfg, positions, threads_per_block, **options
        As for :func:`apply_rope`, except ``out``.
    out : (q_out, k_out), optional
        A keyword argument: where to write the results; either may be ``None``, or ``q`` and ``k``
        themselves. As on the CPU, an output that overlaps the other input is allowed (that input
        is copied first, through the host); the two outputs must not overlap each other.

    Returns
    -------
    q_rot, k_rot : device arrays
        As :func:`apply_rope` returns.

    Raises
    ------
    CudaUnavailableError
        If numba.cuda finds no CUDA device (or is not installed).
    TypeError, ValueError, IndexError
        As :func:`numrope.apply_rope_qk`.

    Examples
    --------
    >>> import numpy as np, numrope, numrope.cuda
    >>> from numba import cuda
    >>> cfg = numrope.RopeConfig(head_dim=8)
    >>> q, k = np.ones((1, 4, 8, 8)), np.ones((1, 4, 2, 8))  # 8 query heads share 2 key heads
    >>> q_rot, k_rot = numrope.cuda.apply_rope_qk(cuda.to_device(q), cuda.to_device(k), cfg)  # doctest: +SKIP
    >>> bool(np.allclose(q_rot.copy_to_host()[:, :, 0], k_rot.copy_to_host()[:, :, 0]))  # doctest: +SKIP
    True
    """
    cache, seq_axis, out, seq_len, backward, divide, threads, cuda, kernels = _begin(
        "apply_rope_qk", cfg, threads_per_block, options
    )
    qa = _Array(cuda, q, cfg, "q")
    ka = _Array(cuda, k, cfg, "k")
    qm, km = qa.meta, ka.meta
    ax = check_qk_shapes(qm.shape, km.shape, seq_axis)
    positions = _positions_arg(cuda, positions)
    if cfg.axes is not None:  # coordinate vectors: rows of a per-token table
        dtype = _F64 if _F64 in (qa.compute_dtype, ka.compute_dtype) else _F32
        positions, cache = _per_token(cuda, cfg, positions, cache, qm, ax, dtype, seq_len, threads)
    pos = check_positions(positions, qm.shape, ax)
    out = check_out_pair(out)
    qo, q_result = _out(cuda, out[0], qa, cfg, "out[0]", "q")
    ko, k_result = _out(cuda, out[1], ka, cfg, "out[1]", "k")
    if overlaps(qo.meta, ko.meta):
        raise ValueError("out[0] and out[1] overlap")
    # One launch reads and writes q and k token by token: an input that the other's result
    # overwrites (out=(k, q), q is k, fused buffers) is rotated from a copy.
    if overlaps(qo.meta, km):
        ka = _copy(cuda, ka, cfg, "k")
    if overlaps(ko.meta, qm) or (qo is qa and cfg.layout == "interleaved_in_half_out"):
        qa = _copy(cuda, qa, cfg, "q")  # (the pairs of interleaved_in_half_out move between features)
    if ko is ka and cfg.layout == "interleaved_in_half_out":
        ka = _copy(cuda, ka, cfg, "k")
    dtype = _F64 if _F64 in (qa.compute_dtype, ka.compute_dtype) else _F32
    cos, sin, index = cuda_tables.tables(cuda, kernels, cfg, positions, pos, cache, dtype, seq_len, threads, divide)
    pairs = [
        (a.kernel_meta, a.kernel_meta if o is a else o.kernel_meta, (a.dev, o.dev), a.io)
        for a, o in ((qa, qo), (ka, ko))
    ]
    q_lead, k_lead = qa.meta.shape[:ax], ka.meta.shape[:ax]
    if q_lead == k_lead:  # one launch: each token's cos/sin loaded once for queries and keys
        _launch(cuda, kernels, cfg, pairs, ax, (cos, sin, *index(q_lead)), backward, threads)
    else:  # heads before the sequence axis, in different numbers: the kernels' batch rows differ
        # q's launch, then k's, on one stream; an input the other's result overwrites was copied above
        for pair, lead in zip(pairs, (q_lead, k_lead), strict=True):
            _launch(cuda, kernels, cfg, [pair], ax, (cos, sin, *index(lead)), backward, threads)
    return q_result, k_result
