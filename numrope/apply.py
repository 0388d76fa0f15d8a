"""Rotating queries and keys: the validating wrappers around the kernels."""

from __future__ import annotations

import math

import numpy as np

from numrope import _dask, _xpos
from numrope._checks import (
    check_cache,
    check_cache_index,
    check_call,
    check_out,
    check_out_pair,
    check_positions,
    check_qk_shapes,
    check_x,
    check_x_positions,
    inverse_scale,
    is_device_array,
    overlaps,
    per_token,
    written,
)
from numrope._dask import is_dask_array
from numrope.cache import _inv_freq_for, _table

_F64 = np.dtype(np.float64)
_cpu_module = _step_module = None


def _cpu():
    """The kernels, imported on first use so that ``import numrope`` does not load Numba."""
    global _cpu_module
    if _cpu_module is None:
        from numrope.kernels import cpu as module

        _cpu_module = module
    return _cpu_module


def _step():
    """The decoding step's kernel, imported on first use."""
    global _step_module
    if _step_module is None:
        from numrope.kernels import step as module

        _step_module = module
    return _step_module


def _compute_dtype(*arrays) -> np.dtype:
    """float64 if any array is float64, else float32 (float16 is computed in float32)."""
    for a in arrays:
        if a.dtype.char == "d":
            return _F64
    return np.dtype(np.float32)


def _tables_for(cfg, pos, cache, arrays, seq_len, divide=False):
    """(cos, sin, rows): tables and the table row of each position, ``rows`` of the shape of ``pos``.

    Without ``cache`` the tables are built in the compute dtype of ``arrays``. ``divide``: tables
    for the inverse, the attention factor divided out instead of folded in.
    """
    if cache is not None:
        cos, sin = check_cache(cache, cfg)
        rows = check_cache_index(pos, cos.shape[0])
        if divide and cfg.attention_scaling != 1.0:
            return _rescaled_rows(cos, sin, rows, inverse_scale(cfg) ** 2)
        return cos, sin, rows
    scale = inverse_scale(cfg) if divide else None
    cos, sin = _table(cfg, pos.reshape(-1), _compute_dtype(*arrays), seq_len, scale)
    return cos, sin, np.arange(pos.size, dtype=np.int64).reshape(pos.shape)


def _rescaled_rows(cos, sin, rows, factor):
    """The table rows that ``rows`` reads, times ``factor`` (in float64, rounded once to float32 or
    float64), and the index of each position in them."""
    dtype = _F64 if cos.dtype == _F64 else np.dtype(np.float32)
    flat = rows.reshape(-1)
    cos = (cos[flat].astype(_F64) * factor).astype(dtype)
    sin = (sin[flat].astype(_F64) * factor).astype(dtype)
    return cos, sin, np.arange(flat.size, dtype=np.int64).reshape(rows.shape)


def _elsewhere(name, arrays, cfg, positions, out, kwargs):
    """``name`` (apply_rope or apply_rope_qk) run by the engine of Dask or device ``arrays``; None for NumPy ones.

    A multi-axis configuration reaches Dask as a per-token table of plain RoPE, cut into chunks with x.
    """
    if any(is_dask_array(a) for a in arrays):
        if getattr(cfg, "axes", None) is not None:
            from numrope import _axes

            table = _axes.per_token(cfg, positions, kwargs["cache"], arrays, kwargs["seq_axis"], kwargs["seq_len"])
            positions, kwargs["cache"] = table
            cfg = _axes.without_axes(cfg)
        return getattr(_dask, name)(*arrays, cfg, positions, out=out, **kwargs)
    if any(is_device_array(a) for a in arrays):
        from numrope import cuda

        return getattr(cuda, name)(*arrays, cfg, positions, out=out, **kwargs)
    return None


def _begin(cfg, inverse, transpose, seq_len, positions, cache, arrays, seq_axis):
    """The checks every CPU call starts with: (backward, divide, seq_len, positions, cache).

    The positions and cache of a multi-axis configuration become rows of a per-token table (numrope._axes).
    """
    backward, divide, seq_len = check_call(cfg, inverse, transpose, seq_len)
    if cfg.axes is not None:
        from numrope import _axes

        positions, cache = _axes.per_token(cfg, positions, cache, arrays, seq_axis, seq_len)
    return backward, divide, seq_len, positions, cache


def apply_rope(
    x, cfg, positions=None, *, cache=None, seq_axis=-3, inverse=False, transpose=False, out=None, seq_len=None
):
    """Rotate the features of ``x`` by its positions' angles (Rotary Position Embedding).

    Parameters
    ----------
    x : array_like, float16, bfloat16, float32 or float64
        Queries or keys; the last axis is ``cfg.head_dim``. Any strided view or byte order;
        read-only is fine.
    cfg : RopeConfig
        The RoPE configuration (base, rotary part, layout, scaling).
    positions : None, int or array_like, optional
        ``None``: positions ``0 .. S-1`` where ``S = x.shape[seq_axis]``. An int ``o``: ``o .. o+S-1``
        (decoding with a KV cache). An array of shape ``(S,)``: the same positions for every
        sequence. An array of shape ``(*batch, S)``: per-sequence positions (left padding, packed
        batches; see :func:`positions_from_cu_seqlens`), with ``batch`` broadcasting (NumPy's rules)
        against x's batch axes. Those are the axes before the sequence axis for
        ``(*batch, seq, heads, head_dim)`` arrays (``seq_axis=-3``), and the axes before the head
        axis for ``(*batch, heads, seq, head_dim)`` arrays (``seq_axis=-2``: the axis right before
        the sequence axis holds the heads). Positions are the same for every head, in either
        order: a ``(batch, seq)`` array is transformers' ``position_ids`` for both, and with
        ``seq_axis=-2`` the head axis may also be kept with length 1, ``(batch, 1, seq)``. Integer
        or real values; with ``cache``, integers only.
    cache : (cos, sin), optional
        Tables from :func:`rope_cache` whose row ``p`` is position ``p``. Positions index into it,
        bounds-checked. Without it the angles of exactly the positions needed are computed.
    seq_axis : int, default -3
        The sequence axis: -3 for ``(batch, seq, heads, head_dim)``, -2 for
        ``(batch, heads, seq, head_dim)``. Must not be the last axis.
    inverse : bool, default False
        Undo the forward map: rotate by minus the angle and divide by the attention factor ``a``
        (``cfg.attention_scaling``: 1 for plain RoPE, more for YaRN and LongRoPE), so that
        ``apply_rope(apply_rope(x, cfg), cfg, inverse=True)`` is ``x``.
    transpose : bool, default False
        Apply the transpose of the forward map: rotate by minus the angle and multiply by ``a``.
        This is the backward pass (the vector-Jacobian product): given the gradient of a loss
        with respect to the result, it returns the gradient with respect to ``x``. The forward
        map is ``a R`` with ``R`` a rotation, so the inverse is ``R^T / a`` and the transpose
        ``a R^T``: the same for ``a == 1`` only.
    out : numpy.ndarray, optional
        Where to write the result: same shape and dtype as ``x`` (either byte order), writable.
        May be ``x`` itself,
        or any array that shares no element with it (such as ``a[..., 1::2]`` for ``x = a[..., ::2]``).
    seq_len : int, optional
        Sequence length for the scaling variants that depend on it (dynamic NTK, LongRoPE);
        defaults to the largest position plus one. Ignored with ``cache``.

    Returns
    -------
    numpy.ndarray
        The rotated array, same shape and dtype as ``x`` (``out`` if given).

    Raises
    ------
    TypeError
        ``x`` not float16/32/64 (integer, complex, ...), ``cfg`` not a RopeConfig, non-integer
        positions with a cache, ``out`` of the wrong dtype, ``seq_len`` not an int.
    ValueError
        ``x``'s last axis not ``head_dim``, a bad ``seq_axis``, positions of the wrong length or
        shape, NaN or infinite positions, positions from ``2**53`` on in magnitude or whose angles
        ``|m * theta_i|`` reach ``2**53`` radians without a cache (numrope's cos and sin are exact
        below that), an int offset past int64, ``out`` of the wrong shape, read-only, or partly overlapping ``x``,
        ``inverse`` and ``transpose`` both true, ``seq_len`` not positive.
    IndexError
        A position outside the cache table (negative ones included).

    Notes
    -----
    Pair ``(x0, x1)`` at position ``m`` becomes ``(x0 cos - x1 sin, x1 cos + x0 sin)`` of the
    angle ``m * theta_i`` (RoFormer, Su et al. 2021, eq. 34), the pairs chosen by
    ``cfg.layout`` (:meth:`RopeConfig.pair_indices`); the features outside the rotary part are copied.
    The cos/sin values are those of :func:`rope_cache`. The arithmetic is done in float32 for float16,
    bfloat16 and float32 inputs (float16 and bfloat16 rounded once at the end, to nearest even) and in
    float64 for float64 inputs, or in the cache's dtype if wider. bfloat16 is ``ml_dtypes.bfloat16``.

    Examples
    --------
    >>> import numpy as np, numrope
    >>> cfg = numrope.RopeConfig(head_dim=8)
    >>> q = np.ones((1, 5, 2, 8), dtype=np.float32)  # (batch, seq, heads, head_dim)
    >>> q_rot = numrope.apply_rope(q, cfg)
    >>> bool(np.allclose(numrope.apply_rope(q_rot, cfg, inverse=True), q, atol=1e-6))
    True
    """
    if cache is not None and seq_axis == -3 and inverse is False and transpose is False and seq_len is None:
        done = (_step_module or _step()).table_step(x, cfg, positions, cache, out)  # a decoding step, or None
        if done is not None:
            return done
    _xpos.refuse_single(cfg)  # (after the decoding step, which takes no xPos configuration)
    if type(x) is not np.ndarray:  # a Dask or device array goes to its own engine
        kwargs = {"cache": cache, "seq_axis": seq_axis, "inverse": inverse, "transpose": transpose, "seq_len": seq_len}
        done = _elsewhere("apply_rope", (x,), cfg, positions, out, kwargs)
        if done is not None:
            return done
    backward, divide, seq_len, positions, cache = _begin(
        cfg, inverse, transpose, seq_len, positions, cache, (x,), seq_axis
    )
    x, ax, pos = check_x_positions(x, cfg, positions, seq_axis)
    target = check_out(out, x)
    lead = x.shape[:ax]
    layout, offset = cfg.layout, cfg.rotary_offset
    if cache is None and math.prod(pos.shape[:-1]) == math.prod(lead):
        # each row of tokens has its own positions (none shared): compute the angles in the same pass
        rows = pos.reshape(1, -1) if pos.ndim == 1 else per_token(pos, lead)
        inv_freq = _inv_freq_for(cfg, pos, seq_len)
        scale = inverse_scale(cfg) if divide else cfg.attention_scaling
        result = _cpu().rotate_at(x, target, ax, layout, rows, inv_freq, scale, backward, offset, target is not out)
    else:
        cos, sin, rows = _tables_for(cfg, pos, cache, (x,), seq_len, divide)
        idx = per_token(rows, lead)
        result = _cpu().rotate(x, target, ax, layout, cos, sin, idx, backward, offset, target is not out)
    return result if result is out or out is None else written(out, result)


def apply_rope_qk(
    q, k, cfg, positions=None, *, cache=None, seq_axis=-3, inverse=False, transpose=False, out=None, seq_len=None
):
    """Rotate queries and keys in one call that shares one cos/sin table.

    Parameters
    ----------
    q, k : array_like, float16, bfloat16, float32 or float64
        Queries and keys with the same sequence length and batch axes; their head counts may
        differ (grouped-query and multi-query attention), in either axis order: ``(B, S, Hq, D)``
        and ``(B, S, Hk, D)``, or ``(B, Hq, S, D)`` and ``(B, Hk, S, D)`` with ``seq_axis=-2``.
    cfg, positions, cache, seq_axis, inverse, transpose, seq_len
        As for :func:`apply_rope`; the positions apply to both.
    out : (q_out, k_out), optional
        Where to write the results; either may be ``None``, or ``q`` and ``k`` themselves. The
        results are those of reading both inputs before writing either, whatever the outputs
        share with the other input (``out=(k, q)``, ``q`` and ``k`` slices of one fused buffer);
        the two outputs must not overlap each other.

    Returns
    -------
    q_rot, k_rot : numpy.ndarray
        The rotated queries and keys.

    Raises
    ------
    ValueError
        As :func:`apply_rope`, if ``q`` and ``k`` have different sequence lengths or batch
        axes, or if ``out[0]`` and ``out[1]`` overlap.

    Examples
    --------
    >>> import numpy as np, numrope
    >>> cfg = numrope.RopeConfig(head_dim=8)
    >>> q, k = np.ones((1, 4, 8, 8)), np.ones((1, 4, 2, 8))  # 8 query heads share 2 key heads
    >>> q_rot, k_rot = numrope.apply_rope_qk(q, k, cfg, positions=10)
    >>> bool(np.allclose(q_rot[:, :, 0], k_rot[:, :, 0]))
    True
    """
    if type(q) is not np.ndarray or type(k) is not np.ndarray:  # a Dask or device array goes to its own engine
        kwargs = {"cache": cache, "seq_axis": seq_axis, "inverse": inverse, "transpose": transpose, "seq_len": seq_len}
        done = _elsewhere("apply_rope_qk", (q, k), cfg, positions, out, kwargs)
        if done is not None:
            return done
    backward, divide, seq_len, positions, cache = _begin(
        cfg, inverse, transpose, seq_len, positions, cache, (q, k), seq_axis
    )
    q = check_x(q, cfg, "q")
    k = check_x(k, cfg, "k")
    ax = check_qk_shapes(q.shape, k.shape, seq_axis)
    pos = check_positions(positions, q.shape, ax)
    out = check_out_pair(out)
    q_target = check_out(out[0], q, "out[0]", "q")
    k_target = check_out(out[1], k, "out[1]", "k")
    # the arrays written last: out itself, or the targets (new arrays, or scratch for another byte order)
    q_out = q_target if out[0] is None else out[0]
    k_out = k_target if out[1] is None else out[1]
    if overlaps(q_out, k_out):
        raise ValueError("out[0] and out[1] overlap")
    if overlaps(q_out, k):
        # q's result would overwrite keys not yet read (out=(k, ...), q is k, fused buffers):
        # rotate a copy of them. k's result may overwrite q, which is read first.
        k = k.copy()
    if cache is not None and _xpos.scales_qk(cfg):
        raise NotImplementedError("xPos with cache=: the tables of queries and keys differ; leave cache out")
    cos, sin, rows = _tables_for(cfg, pos, cache, (q, k), seq_len, divide)
    (q_cos, q_sin), (k_cos, k_sin) = (cos, sin), (cos, sin)
    if _xpos.scales_qk(cfg):  # xPos: queries scaled up by the position's factors, keys down
        (q_cos, q_sin), (k_cos, k_sin) = _xpos.qk_tables(cfg, cos, sin, pos, divide)
    cpu, layout, offset = _cpu(), cfg.layout, cfg.rotary_offset
    q_idx = per_token(rows, q.shape[:ax])
    k_idx = q_idx if k.shape[:ax] == q.shape[:ax] else per_token(rows, k.shape[:ax])
    q_result = cpu.rotate(q, q_target, ax, layout, q_cos, q_sin, q_idx, backward, offset, q_target is not out[0])
    k_result = cpu.rotate(k, k_target, ax, layout, k_cos, k_sin, k_idx, backward, offset, k_target is not out[1])
    return written(out[0], q_result), written(out[1], k_result)
