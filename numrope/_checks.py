"""Checks on the arguments of the public functions, shared by the CPU and GPU paths.

Every kernel trusts its arguments; these functions are why it can. Each raises TypeError,
ValueError or IndexError with a message that names the argument and what was wrong.
"""

from __future__ import annotations

import math

import numpy as np

from numrope._interop import is_bfloat16
from numrope.config import MAX_ANGLE, MAX_POSITION, RopeConfig
from numrope.positions import as_positions, is_int_scalar

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
X_DTYPES = frozenset((np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)))
TABLE_DTYPES = X_DTYPES
# bfloat16 (ml_dtypes.bfloat16, not imported here) is accepted besides these: is_bfloat16
_BF16_TOO = "; bfloat16 (ml_dtypes.bfloat16) is accepted too"


def check_config(cfg):
    if not isinstance(cfg, RopeConfig):
        raise TypeError(f"cfg must be a numrope.RopeConfig, got {type(cfg).__name__}")


def table_dtype(dtype) -> np.dtype:
    try:
        dtype = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be float16, float32 or float64, got {dtype!r}{_BF16_TOO}") from exc
    if dtype not in TABLE_DTYPES and not is_bfloat16(dtype):
        raise TypeError(f"dtype must be float16, float32 or float64, got {dtype}{_BF16_TOO}")
    return dtype


def is_device_array(a) -> bool:
    if isinstance(a, np.ndarray):
        return False
    # Numba device arrays (the CUDA simulator's have no __cuda_array_interface__) and CAI producers
    return bool(getattr(a, "__cuda_ndarray__", False)) or hasattr(a, "__cuda_array_interface__")


def check_x_meta(x, cfg, name="x"):
    """Check dtype and shape of anything with ``.dtype`` and ``.shape`` (NumPy or device arrays)."""
    if x.dtype not in X_DTYPES and x.dtype.newbyteorder("=") not in X_DTYPES and not is_bfloat16(x.dtype):
        kind = {"i": "integer ", "u": "integer ", "b": "boolean ", "c": "complex "}.get(x.dtype.kind, "")
        hint = " (convert with .astype(np.float32))" if kind in ("integer ", "boolean ") else _BF16_TOO
        raise TypeError(f"{name} must be float16, float32 or float64, got {kind}dtype {x.dtype}{hint}")
    if x.ndim < 2:
        raise ValueError(f"{name} must have a sequence axis and a head_dim axis, got shape {x.shape}")
    if x.shape[-1] != cfg.head_dim:
        raise ValueError(f"{name}'s last axis must be head_dim={cfg.head_dim}, got shape {x.shape}")


def check_x(x, cfg, name="x") -> np.ndarray:
    if type(x) is not np.ndarray:
        x = np.asarray(x)
    check_x_meta(x, cfg, name)
    if not x.dtype.isnative:
        x = x.astype(x.dtype.newbyteorder("="))
    return x


def check_direction(inverse, transpose):
    """``(backward, divide)``: whether to rotate by minus the angle, and whether to divide by the
    attention factor instead of multiplying (the inverse; the transpose multiplies, as forward)."""
    if inverse is False and transpose is False:  # the common case, without the conversions below
        return False, False
    inverse, transpose = bool(inverse), bool(transpose)
    if inverse and transpose:
        raise ValueError(
            "inverse=True and transpose=True are different maps (the inverse divides by the attention "
            "factor, the transpose multiplies by it); pass one of them"
        )
    return inverse or transpose, inverse


def check_call(cfg, inverse, transpose, seq_len):
    """What every rotation checks first: ``(backward, divide, seq_len)`` of a checked configuration."""
    check_config(cfg)
    backward, divide = check_direction(inverse, transpose)
    return backward, divide, check_seq_len(seq_len)


def inverse_scale(cfg) -> float:
    """1 / the attention factor: what the inverse folds into cos and sin."""
    scale = 1.0 / cfg.attention_scaling
    if not math.isfinite(scale):
        raise ValueError(f"the attention factor {cfg.attention_scaling:g} has no finite inverse")
    return scale


def check_seq_len(seq_len):
    """None, or a positive int: the sequence length the variants that depend on one are given."""
    if seq_len is None:
        return None
    if not is_int_scalar(seq_len):
        raise TypeError(f"seq_len must be an int, got {type(seq_len).__name__} {seq_len!r}")
    if seq_len <= 0:
        raise ValueError(f"seq_len must be positive, got {seq_len}")
    return int(seq_len)


_last_limit = (None, 0.0)  # the latest frequency array and the positions' bound it sets: static configs share one


def check_angles(pos, inv_freq):
    """Refuse positions from MAX_POSITION on in magnitude (float64 does not hold every integer past
    it), and positions whose angles ``|m * theta|`` reach MAX_ANGLE: beyond it numrope's cos and
    sin are not exact."""
    global _last_limit
    if pos.size == 1:  # a decode step's position: no reductions
        lo = hi = pos.item()
    elif pos.size:
        lo, hi = _bounds(pos)
    else:
        return
    if hi >= MAX_POSITION or -lo >= MAX_POSITION:
        m = hi if hi >= -lo else lo
        raise ValueError(f"positions must be below 2**53 in magnitude (float64's exact integers), got {m}")
    arr, limit = _last_limit
    if arr is not inv_freq:
        top = float(np.abs(inv_freq).max()) if inv_freq.size else 0.0  # negative with direction=-1
        limit = MAX_ANGLE / top if top > 0 else math.inf
        _last_limit = (inv_freq, limit)
    if hi >= limit or -lo >= limit:
        m = hi if hi >= -lo else lo
        raise ValueError(
            f"positions up to {m} turn the fastest pair by {abs(m) * MAX_ANGLE / limit:.6g} radians: "
            f"numrope's cos and sin are exact for angles |m * theta| below 2**53 = {int(MAX_ANGLE)} and are not "
            f"computed beyond (here |m| < {limit:.6g})"
        )


def check_count(n) -> int:
    """An int count of positions ``0 .. n-1`` (rope_cache's ``positions=n``)."""
    if not 0 <= n <= _INT64_MAX:
        raise ValueError(f"positions as an int is a count and must be non-negative and below 2**63, got {n}")
    return int(n)


def check_seq_axis(seq_axis, ndim, name="x") -> int:
    if not is_int_scalar(seq_axis):
        raise TypeError(f"seq_axis must be an int, got {type(seq_axis).__name__}")
    if not -ndim <= seq_axis < ndim - 1 or seq_axis == -1:
        raise ValueError(
            f"seq_axis={seq_axis} is not a sequence axis of {name} with {ndim} dimensions: "
            f"it must be in [{-ndim}, -2] or [0, {ndim - 2}] (the last axis is head_dim)"
        )
    return int(seq_axis) % ndim


def heads_before_seq(ndim, ax) -> bool:
    """Whether the axis before the sequence axis is the head axis: ``(*batch, heads, seq, head_dim)``.

    With the sequence axis right before head_dim (``seq_axis=-2``) the axis before it holds the
    heads; with ``seq_axis=-3`` or lower every axis before the sequence axis is a batch axis and
    the heads come after it.
    """
    return ax == ndim - 2 and ax > 0


_BATCH_AXES = " (the axes before the sequence axis, less the head axis where it comes right before the sequence axis)"


def check_qk_shapes(q_shape, k_shape, seq_axis) -> int:
    """The sequence axis of queries and keys of these shapes, which must agree on everything but their heads."""
    if len(q_shape) != len(k_shape):
        raise ValueError(f"q and k must have the same number of dimensions, got shapes {q_shape} and {k_shape}")
    ax = check_seq_axis(seq_axis, len(q_shape), "q")
    if q_shape[ax] != k_shape[ax]:
        raise ValueError(
            f"q and k must have the same sequence length along axis {seq_axis}, got {q_shape[ax]} and {k_shape[ax]}"
        )
    batch = ax - 1 if heads_before_seq(len(q_shape), ax) else ax
    if q_shape[:batch] != k_shape[:batch]:
        raise ValueError(f"q and k must agree on the batch axes, got shapes {q_shape} and {k_shape}{_BATCH_AXES}")
    return ax


def check_out_pair(out) -> tuple:
    """apply_rope_qk's ``out``: a (q_out, k_out) pair, either possibly None."""
    if out is None:
        return (None, None)
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise TypeError("out must be a (q_out, k_out) pair")
    return tuple(out)


def check_positions(positions, shape, ax) -> np.ndarray:
    """Checked positions, int64 or float64, for x of ``shape`` with the sequence axis ``ax``.

    Accepted: ``(S,)``, shared by every sequence; ``(*batch, S)`` with ``batch`` broadcastable
    (NumPy's rules) to x's batch axes, which are the axes before the sequence axis less the head
    axis where that comes right before it (:func:`heads_before_seq`); and there also
    ``(*batch, 1, S)``, with one axis for every axis before the sequence axis, the head axis of
    length 1. Positions never differ between heads.

    Returned as ``(S,)`` or with axes that broadcast against ``shape[:ax]`` from the right: the
    head axis is kept with length 1 (and the batch axes padded to their full count) so that
    callers broadcast the result against the axes before the sequence axis. Not broadcast: rows
    shared by several sequences stay shared. Checking a result again returns it unchanged.
    """
    seq_len = shape[ax]
    if positions is None:
        return np.arange(seq_len, dtype=np.int64)
    if type(positions) is not np.ndarray and is_int_scalar(positions):
        start = int(positions)
        if not _INT64_MIN <= start <= _INT64_MAX - seq_len:
            raise ValueError(
                f"positions as an int offset must be at least -2**63 and at most 2**63 - 1 - {seq_len} "
                f"(the sequence length), got {start}"
            )
        return np.arange(start, start + seq_len, dtype=np.int64)
    pos = as_positions(positions)
    if pos.ndim == 0:
        raise TypeError(
            f"positions must be None, an int offset or an array, got a 0-d {pos.dtype} array; use an int for an offset"
        )
    if pos.shape[-1] != seq_len:
        raise ValueError(
            f"positions must have {seq_len} entries along its last axis (the sequence length), got shape {pos.shape}"
        )
    if pos.ndim == 1:
        return pos
    lead = shape[:ax]
    if not heads_before_seq(len(shape), ax):
        if not _broadcasts_to(pos.shape[:-1], lead):
            raise ValueError(
                f"positions of shape {pos.shape} do not broadcast against the axes before the sequence "
                f"axis, {lead}: give shape (seq_len,) or (*batch, seq_len) with batch broadcastable to {lead}"
            )
        return pos
    batch = lead[:-1]
    if pos.ndim - 1 == len(lead):  # (*batch, heads, S): the head axis must have length 1
        if pos.shape[-2] == 1 and _broadcasts_to(pos.shape[:-2], batch):
            return pos
    elif _broadcasts_to(pos.shape[:-1], batch):
        return pos.reshape((1,) * (len(batch) + 1 - pos.ndim) + pos.shape[:-1] + (1, seq_len))
    raise ValueError(
        f"positions of shape {pos.shape} do not fit x of shape {tuple(shape)} with the sequence axis {ax}: "
        f"the axis before the sequence axis holds the heads ({lead[-1]}), and positions are the same for "
        f"every head. Give shape (seq_len,), (*batch, seq_len) with batch broadcastable to the batch axes "
        f"{batch}, or (*batch, 1, seq_len)"
    )


def check_x_positions(x, cfg, positions, seq_axis, name="x"):
    """``(x, ax, pos)``: x as a checked NumPy array, its sequence axis and its checked positions."""
    x = check_x(x, cfg, name)
    ax = check_seq_axis(seq_axis, x.ndim, name)
    return x, ax, check_positions(positions, x.shape, ax)


def _broadcasts_to(shape, target) -> bool:
    """Whether NumPy broadcasts ``shape`` to exactly ``target`` (np.broadcast_shapes costs ~3 us)."""
    if len(shape) > len(target):
        return False
    if shape == target[len(target) - len(shape) :]:
        return True
    return all(n == 1 or n == m for n, m in zip(reversed(shape), reversed(target), strict=False))


def per_token(a, lead) -> np.ndarray:
    """``a`` of shape (*batch, S) as (1 or prod(lead), S): one row for all, or one per leading index."""
    if a.ndim == 1:
        return a[np.newaxis]
    if a.ndim == 2 and a.shape[0] == 1:
        return a
    if math.prod(a.shape[:-1]) == 1:
        return a.reshape(1, a.shape[-1])
    return np.broadcast_to(a, (*lead, a.shape[-1])).reshape(-1, a.shape[-1])


def check_cache(cache, cfg):
    """The (cos, sin) tables as the kernels read them: float16, float32 or float64, native byte order."""
    if not (isinstance(cache, (tuple, list)) and len(cache) == 2):
        raise TypeError("cache must be a (cos, sin) pair as returned by numrope.rope_cache")
    cos, sin = cache
    # what rope_cache returns passes in a few attribute reads: decode steps call this per token
    if (
        type(cos) is np.ndarray
        and type(sin) is np.ndarray
        and cos.dtype is sin.dtype
        and (cos.dtype in TABLE_DTYPES or is_bfloat16(cos.dtype))
        and cos.ndim == 2
        and cos.shape == sin.shape
        and cos.shape[1] == cfg.n_pairs
    ):
        return cos, sin
    cos, sin = np.asarray(cos), np.asarray(sin)
    for name, t in (("cos", cos), ("sin", sin)):
        if t.dtype.kind != "f" and not is_bfloat16(t.dtype):
            raise TypeError(f"cache {name} table must be float16, float32 or float64, got dtype {t.dtype}{_BF16_TOO}")
        table_dtype(t.dtype.newbyteorder("="))
        if t.ndim != 2 or t.shape[1] != cfg.n_pairs:
            raise ValueError(
                f"cache {name} table must have shape (n_positions, rotary_dim // 2 = {cfg.n_pairs}), "
                f"got {t.shape}; build it with numrope.rope_cache(cfg, n_positions)"
            )
    if cos.shape != sin.shape or cos.dtype != sin.dtype:
        raise ValueError(f"cache cos and sin must match, got {cos.dtype}{cos.shape} and {sin.dtype}{sin.shape}")
    dtype = cos.dtype.newbyteorder("=")
    return cos.astype(dtype, copy=False), sin.astype(dtype, copy=False)


def _bounds(pos):
    if pos.size == 1:
        value = pos.item()
        return value, value
    if pos.size <= 64:  # cheaper than two reductions for a decode step's few positions
        values = pos.ravel().tolist()
        return min(values), max(values)
    return int(pos.min()), int(pos.max())


def check_cache_index(pos, n_rows):
    if pos.dtype.kind != "i":
        raise TypeError(f"positions must be integers to index a cache table, got dtype {pos.dtype}")
    if pos.size:
        lo, hi = _bounds(pos)
        if lo < 0:
            raise IndexError(f"position {lo} is negative; a cache table's row p is position p")
        if hi >= n_rows:
            raise IndexError(f"position {hi} is outside the cache table of {n_rows} positions (0..{n_rows - 1})")
    return pos


# Bound on np.shares_memory's search: exact answers for the strided views people pass (fused
# QKV slices, interleaved halves) cost about a microsecond; beyond it the answer is "may overlap".
_OVERLAP_MAX_WORK = 1 << 16


def overlaps(a, b) -> bool:
    """Whether two arrays share memory: exact where NumPy decides it within a bounded search, else True."""
    if not np.may_share_memory(a, b):
        return False
    try:
        return bool(np.shares_memory(a, b, max_work=_OVERLAP_MAX_WORK))
    except np.exceptions.TooHardError:
        return True


#: New arrays of at least this many bytes start on a cache line (64 bytes), where NumPy's allocator gives 16.
LINE_ALIGNED_BYTES = 1 << 20


def new_array(shape, dtype) -> np.ndarray:
    """``np.empty(shape, dtype)``, starting on a 64-byte cache line if it is large.

    Its rows then start where those of the callers' line-aligned arrays (PyTorch's tensors, ``.npy``
    memmaps) do, so that the kernels write numrope's outputs and the callers' alike. The kernels never
    stream into an output made for the call (:func:`numrope.kernels.stream.plan`), whose pages the
    operating system zeroes through the cache as the kernel first writes them.
    """
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < LINE_ALIGNED_BYTES:
        return np.empty(shape, dtype)
    raw = np.empty(nbytes + 64, np.uint8)
    skip = -raw.ctypes.data % 64
    return raw[skip : skip + nbytes].view(dtype).reshape(shape)


def check_out(out, x, name="out", x_name="x"):
    """The array to write x's result into: ``out``, a new array for ``out=None``, or, for an ``out``
    in the other byte order, a native scratch array that the caller copies into ``out`` with
    :func:`written` (the kernels write native floats only)."""
    if out is None:
        return new_array(x.shape, x.dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != x.shape:
        raise ValueError(f"{name} must have shape {x.shape}, got {out.shape}")
    if out.dtype != x.dtype and out.dtype.newbyteorder("=") != x.dtype:
        raise TypeError(f"{name} must have dtype {x.dtype} (in either byte order), got {out.dtype}")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only" + (f" (in place needs a writable {x_name})" if out is x else ""))
    if out is not x and overlaps(out, x):
        same = out.__array_interface__["data"][0] == x.__array_interface__["data"][0] and out.strides == x.strides
        if not same:
            raise ValueError(f"{name} partly overlaps {x_name}; pass {x_name} itself for in place or a separate array")
    if not out.dtype.isnative:
        return np.empty(x.shape, x.dtype)
    return out


def written(out, result):
    """What a function returns for the ``out`` it was given, once ``result`` (from check_out) is computed."""
    if out is None or result is out:
        return result
    np.copyto(out, result)  # into the other byte order
    return out
