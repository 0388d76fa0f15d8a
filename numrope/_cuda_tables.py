"""The cos/sin tables of the GPU path: built on the device, read from a cache, or rescaled for
the inverse, with the index that maps each token to its row. Private to :mod:`numrope.cuda`."""

from __future__ import annotations

import functools
import math

import numpy as np

from numrope._checks import check_cache_index, inverse_scale, per_token, table_dtype
from numrope._interop import is_bfloat16
from numrope.cache import _inv_freq_for
from numrope.positions import is_int_scalar

_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)


def check_cache(cuda, cache, cfg):
    """Device (cos, sin) tables: the CPU path's checks on their dtypes and shapes."""
    if not (isinstance(cache, (tuple, list)) and len(cache) == 2):
        raise TypeError("cache must be a (cos, sin) pair as returned by numrope.cuda.rope_cache")
    tables = []
    for name, t in zip(("cos", "sin"), cache, strict=True):
        if not (getattr(t, "__cuda_ndarray__", False) or hasattr(t, "__cuda_array_interface__")):
            t = cuda.to_device(np.ascontiguousarray(t))
        elif not getattr(t, "__cuda_ndarray__", False):
            t = cuda.as_cuda_array(t)
        if is_bfloat16(t.dtype):
            t = _convert_bf16(cuda, t, None)  # read as float32, which holds every bfloat16 exactly
        if t.dtype.kind != "f":
            raise TypeError(f"cache {name} table must be float16, float32 or float64, got dtype {t.dtype}")
        table_dtype(t.dtype)
        if len(t.shape) != 2 or t.shape[1] != cfg.n_pairs:
            raise ValueError(
                f"cache {name} table must have shape (n_positions, rotary_dim // 2 = {cfg.n_pairs}), "
                f"got {tuple(t.shape)}; build it with numrope.cuda.rope_cache(cfg, n_positions)"
            )
        tables.append(t)
    cos, sin = tables
    if tuple(cos.shape) != tuple(sin.shape) or cos.dtype != sin.dtype:
        raise ValueError(
            f"cache cos and sin must match, got {cos.dtype}{tuple(cos.shape)} and {sin.dtype}{tuple(sin.shape)}"
        )
    return cos, sin


def _convert_bf16(cuda, t, dtype):
    """A contiguous device table converted: bfloat16 to float32 (``dtype`` None, exact), or float64 to
    ``dtype`` bfloat16 (rounded once, to nearest even)."""
    from numrope.kernels import cuda as kernels

    if t.size and not (hasattr(t, "is_c_contiguous") and t.is_c_contiguous()):
        t = cuda.to_device(np.ascontiguousarray(t.copy_to_host()))
    to_bf16 = dtype is not None
    out = cuda.device_array(t.shape, np.uint16 if to_bf16 else _F32)
    if t.size:
        src = t.reshape(t.size)
        src = src if to_bf16 else src.view(np.uint16)
        kernel = kernels.round_to_bf16 if to_bf16 else kernels.widen_bf16
        kernel[math.ceil(t.size / 256), 256](src, out.reshape(t.size))
    return out.view(dtype) if to_bf16 else out


def fill_table(cuda, kernels, cfg, positions, start, n_rows, dtype, inv_freq, threads, scale):
    """Device scale * (cos, sin) of shape (n_rows, n_pairs) for positions (float64, device) or start + n."""
    if is_bfloat16(dtype):  # rounded once from the float64 table
        cos, sin = fill_table(cuda, kernels, cfg, positions, start, n_rows, _F64, inv_freq, threads, scale)
        return _convert_bf16(cuda, cos, dtype), _convert_bf16(cuda, sin, dtype)
    cos = cuda.device_array((n_rows, cfg.n_pairs), dtype)
    sin = cuda.device_array((n_rows, cfg.n_pairs), dtype)
    if n_rows == 0:
        return cos, sin
    tx, _, rows = kernels.block_shape(cfg.n_pairs, 1, threads)
    kernels.table[math.ceil(n_rows / rows), (tx, rows)](
        positions, np.int64(start), cuda.to_device(inv_freq), np.float64(scale), cos, sin
    )
    return cos, sin


_device = None  # numba.cuda once a kernel here is compiled: a global, as the CUDA simulator needs


@functools.cache
def _gather_kernel():
    global _device
    from numba import cuda

    _device = cuda

    @cuda.jit
    def gather(cos, sin, rows, factor, cos_out, sin_out):
        """cos_out[n, i] = cos[rows[n], i] * factor, in float64 rounded once; the same for sin.
        Blocks of (tx, ty): x over pairs, y over rows."""
        n = _device.blockIdx.x * _device.blockDim.y + _device.threadIdx.y
        if n >= rows.shape[0]:
            return
        p = rows[n]
        i = _device.threadIdx.x
        while i < cos.shape[1]:
            cos_out[n, i] = np.float64(cos[p, i]) * factor
            sin_out[n, i] = np.float64(sin[p, i]) * factor
            i += _device.blockDim.x

    return gather


def gather(cuda, kernels, cos, sin, rows, factor, threads):
    """Device tables of the rows ``rows`` (host int64) of cos and sin, times ``factor``: float64
    tables stay float64, others become float32."""
    dtype = _F64 if cos.dtype == _F64 else _F32
    n_pairs = cos.shape[1]
    cos_out = cuda.device_array((rows.size, n_pairs), dtype)
    sin_out = cuda.device_array((rows.size, n_pairs), dtype)
    if rows.size and n_pairs:
        tx, _, per_block = kernels.block_shape(n_pairs, 1, threads)
        _gather_kernel()[math.ceil(rows.size / per_block), (tx, per_block)](
            cos, sin, cuda.to_device(np.ascontiguousarray(rows, dtype=np.int64)), np.float64(factor), cos_out, sin_out
        )
    return cos_out, sin_out


def tables(cuda, kernels, cfg, positions, pos, cache, dtype, seq_len, threads, divide=False):
    """(cos, sin, index): the tables, and ``index(lead)``, which gives ``(idx, offset, row_stride)``
    for an array with the axes ``lead`` before its sequence axis: token (b, s) reads row
    idx[b or 0, s], or, where idx has no columns, row offset + b * row_stride + s. ``divide``:
    tables for the inverse, the attention factor divided out instead of folded in."""
    affine = positions is None or is_int_scalar(positions)
    no_idx = cuda.device_array((1, 0), np.int64)

    def rows_of(rows):
        # a device index per distinct leading shape (q and k differ with heads before the sequence)
        indices = {}

        def index(lead):
            if lead not in indices:
                indices[lead] = (cuda.to_device(np.ascontiguousarray(per_token(rows, lead))), 0, 0)
            return indices[lead]

        return index

    if cache is not None:
        cos, sin = check_cache(cuda, cache, cfg)
        pos = check_cache_index(pos, cos.shape[0])
        if not (divide and cfg.attention_scaling != 1.0):
            if affine:
                start = int(pos[0]) if pos.size else 0
                return cos, sin, lambda lead: (no_idx, start, 0)
            return cos, sin, rows_of(pos)
        # the inverse divides by the attention factor the table holds: rescale the rows used
        cos, sin = gather(cuda, kernels, cos, sin, pos.reshape(-1), inverse_scale(cfg) ** 2, threads)
    else:
        scale = inverse_scale(cfg) if divide else cfg.attention_scaling
        inv_freq = _inv_freq_for(cfg, pos, seq_len)
        if affine:
            start = int(pos[0]) if pos.size else 0
            cos, sin = fill_table(cuda, kernels, cfg, np.empty(0), start, pos.size, dtype, inv_freq, threads, scale)
        else:
            flat = cuda.to_device(np.ascontiguousarray(pos, dtype=np.float64).reshape(-1))
            cos, sin = fill_table(cuda, kernels, cfg, flat, 0, pos.size, dtype, inv_freq, threads, scale)
    # from here the tables have one row per entry of pos, in order
    if pos.ndim == 1 or math.prod(pos.shape[:-1]) == 1:
        return cos, sin, lambda lead: (no_idx, 0, 0)
    by_row = rows_of(np.arange(pos.size, dtype=np.int64).reshape(pos.shape))

    def index(lead):
        if math.prod(lead) == math.prod(pos.shape[:-1]):  # one row of positions per batch row, in order
            return no_idx, 0, pos.shape[-1]
        return by_row(lead)  # rows shared between batch rows or heads: through an index

    return cos, sin, index
