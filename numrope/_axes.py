"""Multi-axis positions: checking coordinate vectors and turning them into a per-token cos/sin table.

A configuration with ``axes`` (:mod:`numrope.axes`) takes positions of shape ``(n_axes, seq)`` or
``(n_axes, *batch, seq)``: each token's coordinates. The rotation is then plain RoPE with one table
row per token, ``cos_tok[t, i] = cos(positions[axis[i], t] * theta_i)``, gathered from a table with
one row per coordinate value (the caller's cache, or one built here over the values that occur
with the exact kernels of :func:`numrope.rope_cache`). The rotation kernels read it through the
identity index (``positions = arange(tokens)``, ``cache = per-token table``), so every calling
form of plain RoPE (batch rows, packed sequences, grouped-query heads, both axis orders, ``out=``,
inverse, transpose) works unchanged, and a token whose coordinates are all equal gets the table row
of plain RoPE bit for bit.

Positions that are ``None``, an int offset or a 1-D array are text tokens (every axis at the same
position): they need no per-token table, and the plain path takes them as they are. Private.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from numrope._checks import check_cache, check_cache_index, check_positions, check_seq_axis, check_x
from numrope.positions import as_positions, is_int_scalar

_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)


def _shape_text(cfg) -> str:
    names = ", ".join(cfg.axes.names)
    return f"({cfg.n_axes}, seq_len) or ({cfg.n_axes}, *batch, seq_len), one row per axis ({names})"


def coordinates(cfg, positions, shape, ax):
    """Checked coordinates ``(n_axes, *batch, S)`` (int64 or float64), or None for text positions.

    ``shape`` is x's shape and ``ax`` its sequence axis (checked). The shape after the first axis
    must be one that plain RoPE accepts for x; the error names both.
    """
    if positions is None or (type(positions) is not np.ndarray and is_int_scalar(positions)):
        return None
    arr = as_positions(positions)
    if arr.ndim <= 1:
        return None  # text positions (a 0-d array is refused by the plain path, as it is there)
    if arr.shape[0] != cfg.n_axes:
        raise ValueError(
            f"positions of shape {arr.shape} do not fit a configuration with {cfg.n_axes} coordinate axes: give "
            f"{_shape_text(cfg)}; text tokens (every axis at the same position) take None, an int offset or a 1-D array"
        )
    try:
        check_positions(np.zeros(arr.shape[1:], dtype=np.int64), shape, ax)
    except ValueError as exc:
        raise ValueError(f"multi-axis positions of shape {arr.shape} (axes first): {exc}") from None
    return arr


def _lookup(coords):
    """(values, rows): the distinct coordinate values, and where each coordinate is among them.

    Integer coordinates over a short range take the whole range (no sort); others np.unique.
    """
    if coords.dtype.kind == "i" and coords.size:
        lo, hi = int(coords.min()), int(coords.max())
        if hi - lo < 2 * coords.size + 64:
            return np.arange(lo, hi + 1, dtype=np.int64), coords - lo
    values, rows = np.unique(coords, return_inverse=True)
    return values, rows.reshape(coords.shape).astype(np.int64, copy=False)


def _compute_dtype(arrays) -> np.dtype:
    return _F64 if any(np.dtype(a.dtype).char == "d" for a in arrays) else _F32


@functools.lru_cache(maxsize=64)
def without_axes(cfg):
    """``cfg`` with ``axes=None``: what rotates by a per-token table's rows (the rows are not coordinates).

    Dask's chunks call numrope again with slices of those rows; they must not read them as
    coordinate vectors.
    """
    return dataclasses.replace(cfg, axes=None)


def per_token(cfg, positions, cache, arrays, seq_axis, seq_len, names=("q", "k")):
    """``(positions, cache)`` for the plain path: unchanged for text positions, else the per-token
    rows ``arange`` and the per-token ``(cos, sin)`` tables (dtype: the cache's, or the compute
    dtype of ``arrays``: float64 if any is float64, else float32).

    The tables of NumPy ``arrays`` are scratch memory valid for this call; for Dask arrays, which
    are computed later, they are arrays of their own.
    """
    names = ("x",) if len(arrays) == 1 else names
    # shape and dtype only: a Dask array stays lazy (the caller checks the arrays in full)
    xs = [a if hasattr(a, "shape") and hasattr(a, "dtype") else check_x(a, cfg, names[i]) for i, a in enumerate(arrays)]
    ax = check_seq_axis(seq_axis, len(xs[0].shape), names[0])
    coords = coordinates(cfg, positions, tuple(xs[0].shape), ax)
    if coords is None:
        return positions, cache
    batch = coords.shape[1:]
    flat = coords.reshape(cfg.n_axes, -1)
    if cache is not None:
        cos, sin = check_cache(cache, cfg)
        rows = check_cache_index(flat, cos.shape[0])
    else:
        import numrope

        values, rows = _lookup(flat)
        cos, sin = numrope.rope_cache(cfg, values, _compute_dtype(xs), seq_len=seq_len)
    from numrope.kernels import axes as kernels  # Numba loads on first use

    lazy = any(not isinstance(a, np.ndarray) for a in xs)  # read after this call returns
    tables = kernels.gather(cos, sin, rows, cfg.axes.axis_index, keep=lazy)
    return np.arange(math.prod(batch), dtype=np.int64).reshape(batch), tables


def on_device(cfg, positions, cache, shape, ax, dtype, seq_len, threads, device_rope_cache, check_device_cache):
    """As :func:`per_token` for the GPU path: the per-token tables built and gathered on the device.

    ``shape`` and ``ax`` are the checked x's; ``positions`` are host values;
    ``device_rope_cache`` is :func:`numrope.cuda.rope_cache`, and ``check_device_cache(cache)``
    checks the caller's tables and returns them as device arrays.
    """
    coords = coordinates(cfg, positions, shape, ax)
    if coords is None:
        return positions, cache
    batch = coords.shape[1:]
    flat = coords.reshape(cfg.n_axes, -1)
    if cache is not None:
        cos, sin = check_device_cache(cache)
        rows = check_cache_index(flat, cos.shape[0])
    else:
        values, rows = _lookup(flat)
        cos, sin = device_rope_cache(cfg, values, dtype, seq_len=seq_len, threads_per_block=threads)
    from numrope.kernels import cuda as kernels

    tables = kernels.gather_axes(cos, sin, rows, cfg.axes.axis_index, threads)
    return np.arange(math.prod(batch), dtype=np.int64).reshape(batch), tables


def bound_positions(cfg, positions, shape, ax):
    """``(positions, coordinates)`` for a comparison: text positions as given with no coordinates, or
    each token's largest ``|coordinate|`` (what bounds its angles) and the checked coordinates."""
    coords = coordinates(cfg, positions, shape, ax)
    if coords is None:
        return positions, None
    return np.abs(coords).max(axis=0), coords


def flat_coordinates(coords, shape, ax):
    """Checked coordinates broadcast to x's tokens as the comparison orders them: (n_axes, tokens) float64."""
    lead = tuple(shape[:ax]) + (shape[ax],)
    rows = [np.broadcast_to(check_positions(c, shape, ax), lead).reshape(-1) for c in coords]
    return np.stack(rows).astype(np.float64)
