"""RoPE on Dask arrays: lazily, chunk by chunk, each chunk with its own positions.

:func:`numrope.apply_rope` and :func:`numrope.apply_rope_qk` hand Dask arrays here. The result is a
Dask array of the same shape, chunks and dtype; each output chunk is :func:`numrope.apply_rope` of
the input chunk with the positions of its tokens: a sequence chunk starting at token ``s0`` gets
positions ``s0 .. s0 + n - 1`` (plus an int offset), and per-row position arrays, NumPy or Dask,
are cut along the same chunk boundaries. Everything that depends on the whole array (the default
``seq_len`` of the scaling variants that depend on it: the largest position plus one) is fixed
before the chunks are scheduled, so every chunk computes what the in-memory call computes for its
elements, bit for bit, on any scheduler (threads, processes, a ``dask.distributed`` cluster).
"""

from __future__ import annotations

import math

import numpy as np

from numrope._checks import (
    check_call,
    check_config,
    check_positions,
    check_qk_shapes,
    check_seq_axis,
    check_x_meta,
    heads_before_seq,
)


def is_dask_array(a) -> bool:
    """Whether ``a`` is a Dask array, without importing Dask where it is not in use."""
    return type(a).__module__.startswith("dask.") and hasattr(a, "chunks") and hasattr(a, "map_blocks")


def _dask_array():
    try:
        import dask.array as da
    except ImportError as exc:  # pragma: no cover - a Dask array implies Dask
        raise ImportError('numrope needs dask for Dask arrays: pip install "numrope[dask]"') from exc
    return da


def _positions(positions, shape, ax):
    """Positions expanded to x's number of dimensions, as a Dask array, and the largest position.

    The result has x's sequence axis at ``ax``, x's batch axes where the positions have them
    (length 1 where shared) and length 1 everywhere else, so that it broadcasts against x chunk by
    chunk. The largest position is a number (for the default ``seq_len``), computed from a Dask
    array of positions if one was given.
    """
    da = _dask_array()
    if is_dask_array(positions):
        if positions.dtype.kind not in "iuf":
            raise TypeError(f"positions must hold integers or real numbers, got dtype {positions.dtype}")
        if positions.ndim == 0 or positions.shape[-1] != shape[ax]:
            raise ValueError(
                f"positions must have {shape[ax]} entries along its last axis (the sequence length), "
                f"got shape {positions.shape}"
            )
        # Check the values (finite, in range, shape rules) once, on a small array: positions are
        # one number per token, not per feature.
        checked = check_positions(np.asarray(positions.compute()), shape, ax)
        lazy = positions if checked.shape == positions.shape else da.from_array(checked, chunks=-1)
    else:
        checked = check_positions(positions, shape, ax)
        lazy = da.from_array(checked, chunks=-1)
    lead = checked.shape[:-1]
    full = (1,) * (ax - len(lead)) + lead + (shape[ax],) + (1,) * (len(shape) - ax - 1)
    largest = int(np.floor(checked.max())) if checked.size else 0
    return lazy.reshape(full), largest


def _rotate_chunk(x, pos, cfg, options, partner):
    """One chunk: numrope's in-memory rotation with the chunk's own positions.

    ``options``: apply_rope's keyword arguments, the sequence axis a non-negative int.
    """
    import numrope

    ax = options["seq_axis"]
    rows = pos.reshape(pos.shape[: ax + 1])  # drop the length-1 axes after the sequence axis
    if partner is None:
        return numrope.apply_rope(x, cfg, rows, **options)
    # apply_rope_qk computes in the wider dtype of q and k: a head-less partner of the other's dtype
    # gives each chunk the arithmetic of the in-memory call.
    shape = list(x.shape)
    shape[ax - 1 if heads_before_seq(x.ndim, ax) else ax + 1] = 0
    return numrope.apply_rope_qk(x, np.empty(shape, partner), cfg, rows, **options)[0]


def apply_rope(x, cfg, positions, *, cache, seq_axis, seq_len, inverse, transpose, out=None, partner=None):
    """:func:`numrope.apply_rope` for a Dask array ``x``: a Dask array, computed when asked for.

    ``partner``: the other array's dtype, where this is one of :func:`apply_rope_qk`'s pair.
    """
    seq_len = check_call(cfg, inverse, transpose, seq_len)[2]
    if out is not None:
        raise TypeError("out= cannot be used with Dask arrays, which are immutable: use the returned array")
    check_x_meta(x, cfg)
    if any(math.isnan(n) for n in x.shape):
        raise ValueError("x has chunks of unknown size: call x.compute_chunk_sizes() first")
    ax = check_seq_axis(seq_axis, x.ndim)
    if cache is not None:
        cache = tuple(np.asarray(t) for t in cache) if isinstance(cache, (tuple, list)) else cache
    pos, largest = _positions(positions, x.shape, ax)
    if seq_len is None and cfg.depends_on_seq_len:
        seq_len = max(largest + 1, 1)  # as default_seq_len over the whole array, not per chunk
    pos = pos.rechunk(tuple(c if n > 1 else (1,) for c, n in zip(x.chunks, pos.shape, strict=True)))
    options = {"cache": cache, "seq_axis": ax, "inverse": inverse, "transpose": transpose, "seq_len": seq_len}
    meta = np.empty((0,) * x.ndim, x.dtype)
    return x.map_blocks(_rotate_chunk, pos, cfg=cfg, options=options, partner=partner, dtype=x.dtype, meta=meta)


def apply_rope_qk(q, k, cfg, positions, *, out=None, **kwargs):
    """:func:`numrope.apply_rope_qk` where ``q`` or ``k`` is a Dask array: both results are Dask arrays."""
    da = _dask_array()
    if out is not None:
        raise TypeError("out= cannot be used with Dask arrays, which are immutable: use the returned arrays")
    q = q if is_dask_array(q) else da.from_array(np.asarray(q), chunks=-1)
    k = k if is_dask_array(k) else da.from_array(np.asarray(k), chunks=-1)
    check_config(cfg)
    check_x_meta(q, cfg, "q")
    check_x_meta(k, cfg, "k")
    ax = check_qk_shapes(q.shape, k.shape, kwargs["seq_axis"])
    if kwargs["seq_len"] is None and cfg.depends_on_seq_len:
        kwargs["seq_len"] = max(_positions(positions, q.shape, ax)[1] + 1, 1)
    wide = np.result_type(np.float32, q.dtype, k.dtype)
    return apply_rope(q, cfg, positions, partner=wide, **kwargs), apply_rope(k, cfg, positions, partner=wide, **kwargs)
