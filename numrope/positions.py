"""Position arrays: checking them and deriving them from packed variable-length batches."""

from __future__ import annotations

import numbers

import numpy as np

_INT64 = np.dtype(np.int64)
_F64 = np.dtype(np.float64)


def _may_change(a) -> bool:
    """Whether someone can still write the memory of ``a``: it, or an array or buffer it views, is writable."""
    while isinstance(a, np.ndarray):
        if a.flags.writeable:
            return True
        a = a.base
    return a is not None and not isinstance(a, bytes)  # other exporters (mmap, bytearray, tensors) may


def as_positions(positions, name="positions") -> np.ndarray:
    """Check an array of positions: integer or finite float values. Returns int64 or float64.

    The result is checked in memory that nothing else writes: the caller's array is copied first
    where another thread could change it after the checks (a position the bounds check passed
    could otherwise be out of a cache table's bounds when a kernel reads it).
    """
    arr = np.asarray(positions)
    if arr.dtype.kind not in "iuf":  # not "b": booleans are not positions
        raise TypeError(f"{name} must hold integers or real numbers, got dtype {arr.dtype}")
    shared = arr is positions or arr.base is not None  # not an array np.asarray just made
    if arr.dtype.kind == "f":
        if arr.dtype != _F64 or not arr.dtype.isnative:
            arr = arr.astype(_F64)
        elif shared and _may_change(arr):
            arr = arr.copy()
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} must be finite, got NaN or infinite values")
        return arr
    if arr.dtype is _INT64 or (arr.dtype == _INT64 and arr.dtype.isnative):
        return arr.copy() if shared and _may_change(arr) else arr
    wide = arr.astype(_INT64)  # a copy: checked below, where no one else writes
    if arr.dtype.kind == "u" and arr.itemsize == 8 and wide.size and wide.min() < 0:
        # uint64 values from 2**63 on wrap to negative int64
        raise ValueError(f"{name} must be below 2**63, got {wide.view(np.uint64).max()}")
    return wide


def is_int_scalar(value) -> bool:
    if type(value) is int:  # the common case, without the slower ABC check
        return True
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def positions_from_cu_seqlens(cu_seqlens) -> np.ndarray:
    """Per-token positions of a packed variable-length batch.

    Parameters
    ----------
    cu_seqlens : array_like of int, shape (n_seqs + 1,)
        Cumulative sequence lengths as used by varlen attention kernels: ``cu_seqlens[0] == 0``,
        non-decreasing; sequence ``j`` occupies tokens ``cu_seqlens[j]:cu_seqlens[j + 1]``.

    Returns
    -------
    numpy.ndarray
        int64 array of shape ``(cu_seqlens[-1],)``: each token's position within its own sequence,
        counting from 0. Pass it to :func:`numrope.apply_rope` with ``seq_axis=-3`` on a packed
        ``(tokens, heads, head_dim)`` array.

    Raises
    ------
    TypeError
        If ``cu_seqlens`` is not an integer array.
    ValueError
        If it is not one-dimensional, is empty, does not start at 0, decreases, or holds values
        from 2**63 on.

    Examples
    --------
    >>> import numrope
    >>> numrope.positions_from_cu_seqlens([0, 3, 5])
    array([0, 1, 2, 0, 1])
    """
    cu = np.asarray(cu_seqlens)
    if cu.dtype == np.bool_ or cu.dtype.kind not in "iu":
        raise TypeError(f"cu_seqlens must be an integer array, got dtype {cu.dtype}")
    if cu.ndim != 1 or cu.size == 0:
        raise ValueError(f"cu_seqlens must be a non-empty 1-D array, got shape {cu.shape}")
    if cu.dtype.kind == "u" and cu.itemsize == 8 and cu.max() > np.iinfo(np.int64).max:
        raise ValueError(f"cu_seqlens must be below 2**63, got {cu.max()}")
    cu = cu.astype(np.int64)
    if cu[0] != 0:
        raise ValueError(f"cu_seqlens must start at 0, got {cu[0]}")
    lengths = np.diff(cu)
    if (lengths < 0).any():
        bad = int(np.argmax(lengths < 0))
        raise ValueError(f"cu_seqlens must be non-decreasing, but cu_seqlens[{bad + 1}] < cu_seqlens[{bad}]")
    starts = np.repeat(cu[:-1], lengths)
    return np.arange(cu[-1], dtype=np.int64) - starts


def positions_from_offsets(offsets, seq_len) -> np.ndarray:
    """Per-sequence positions ``offsets[b] + arange(seq_len)``: a batch whose rows start at different positions.

    The form of flash-attn's ``seqlen_offsets`` and of MLX's array ``offset`` (batched decoding,
    where every sequence of the batch has its own cache length).

    Parameters
    ----------
    offsets : array_like of int
        The position of each sequence's first token, shape ``(batch,)`` (or more batch axes).
    seq_len : int
        The number of tokens of each sequence.

    Returns
    -------
    numpy.ndarray
        int64 array of shape ``(*batch, seq_len)``, accepted as ``positions`` by
        :func:`numrope.apply_rope` for x of shape ``(*batch, seq_len, heads, head_dim)`` (or
        ``(*batch, heads, seq_len, head_dim)`` with ``seq_axis=-2``).

    Raises
    ------
    TypeError
        If ``offsets`` is not an integer array or ``seq_len`` not an int.
    ValueError
        If ``seq_len`` is negative, or a position would leave int64.

    Examples
    --------
    >>> import numrope
    >>> numrope.positions_from_offsets([0, 5, 20], 3)
    array([[ 0,  1,  2],
           [ 5,  6,  7],
           [20, 21, 22]])
    """
    off = np.asarray(offsets)
    if off.dtype == np.bool_ or off.dtype.kind not in "iu":
        raise TypeError(f"offsets must be an integer array, got dtype {off.dtype}")
    if not is_int_scalar(seq_len):
        raise TypeError(f"seq_len must be an int, got {type(seq_len).__name__}")
    seq_len = int(seq_len)
    if seq_len < 0:
        raise ValueError(f"seq_len must be non-negative, got {seq_len}")
    if off.size and (int(off.max()) + max(seq_len - 1, 0) > np.iinfo(np.int64).max or int(off.min()) < -(2**63)):
        raise ValueError(f"offsets from {int(off.min())} to {int(off.max())} with seq_len {seq_len} leave int64")
    return off.astype(np.int64)[..., None] + np.arange(seq_len, dtype=np.int64)
