"""A comparison's inputs, checked and reshaped, with numrope's exact result beside them."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from numrope import _axes
from numrope._checks import check_config, check_positions, check_seq_axis
from numrope._interop import MANTISSA_BITS, MIN_EXP, as_numpy
from numrope.cache import default_seq_len


@dataclasses.dataclass(frozen=True)
class Case:
    """Checked inputs reshaped to ``(tokens, heads, head_dim)`` (sequence-major), with the exact result."""

    shape: tuple
    seq_axis: int
    actual: np.ndarray  # (T, H, D) float64
    x: np.ndarray  # (T, H, D) float64
    expected: np.ndarray  # (T, H, D) float64
    pos: np.ndarray  # (T,) float64
    theta: np.ndarray  # (n_pairs,) float64
    precision: str
    seq_len: int | None
    inverse: bool
    coords: np.ndarray | None = None  # (n_axes, T) float64: multi-axis coordinates; pos is then max |coordinate|


def _float_array(obj, name):
    arr, precision = as_numpy(obj, name)
    if precision not in MANTISSA_BITS:
        raise TypeError(f"{name} must hold floats (bfloat16, float16, float32 or float64), got dtype {arr.dtype}")
    return arr, precision


def prepare(actual, x, cfg, positions=None, *, seq_axis=-3, seq_len=None, inverse=False, names=("actual", "x")):
    """Check and convert the inputs of a comparison; compute numrope's float64 result."""
    from numrope.apply import apply_rope  # the package's core imports nothing from validation

    check_config(cfg)
    a, precision = _float_array(actual, names[0])
    xa, _ = _float_array(x, names[1])
    if a.shape != xa.shape:
        raise ValueError(f"{names[0]} and {names[1]} must have the same shape, got {a.shape} and {xa.shape}")
    if xa.ndim < 2 or xa.shape[-1] != cfg.head_dim:
        raise ValueError(f"{names[1]}'s last axis must be head_dim={cfg.head_dim}, got shape {xa.shape}")
    ax = check_seq_axis(seq_axis, xa.ndim, names[1])
    _check_finite(xa, names[1], "RoPE of a non-finite input has no reference to compare with")
    if isinstance(positions, (int, np.integer)) and not isinstance(positions, bool):
        last = int(positions) + xa.shape[ax] - 1
        if not (-(2**63) <= int(positions) and last < 2**63):
            raise ValueError(f"positions {int(positions)} .. {last} do not fit in int64 (-2**63 .. 2**63 - 1)")
    elif positions is not None:
        positions = as_numpy(positions, "positions").array
    coords = None
    if cfg.axes is not None:  # coordinate vectors (numrope.validation.diagnose_axes)
        positions, coords = _axes.bound_positions(cfg, positions, xa.shape, ax)
    pos = check_positions(positions, xa.shape, ax)
    if seq_len is not None and (isinstance(seq_len, bool) or not isinstance(seq_len, (int, np.integer))):
        raise TypeError(f"seq_len must be an int, got {type(seq_len).__name__}")
    x64 = np.ascontiguousarray(xa, dtype=np.float64)
    lead, seq = xa.shape[:ax], xa.shape[ax]
    pos = np.asarray(pos)
    at = pos if coords is None else coords
    expected = apply_rope(x64, cfg, at, seq_axis=ax, inverse=bool(inverse), seq_len=seq_len)
    j0, j1 = cfg.pair_indices(output=True)
    with np.errstate(over="ignore", invalid="ignore"):
        norms = np.hypot(expected[..., j0], expected[..., j1])  # the bounds scale with these
    if not np.isfinite(norms).all():
        raise ValueError(
            f"numrope's float64 result for {names[1]} is not finite: {names[1]}'s values are too large for float64 "
            "or the configuration's frequencies are not finite"
        )
    if norms.size and norms.max() > 2.0**1020:  # headroom for the bounds, a few times the norm
        raise ValueError(
            f"{names[1]}'s pair norms reach {norms.max():.3g}, too large for float64 error bounds (at most 2**1020)"
        )
    shape3 = (math.prod(lead) * seq, math.prod(xa.shape[ax + 1 : -1]), cfg.head_dim)
    pos_t = np.broadcast_to(pos, lead + (seq,)).reshape(-1)
    if seq_len is None and cfg.depends_on_seq_len:
        seq_len = default_seq_len(pos)
    return Case(
        shape=xa.shape,
        seq_axis=ax,
        actual=np.asarray(a, dtype=np.float64).reshape(shape3),
        x=x64.reshape(shape3),
        expected=expected.reshape(shape3),
        pos=pos_t.astype(np.float64),
        theta=cfg.inv_freq(seq_len),
        precision=precision,
        seq_len=seq_len,
        inverse=bool(inverse),
        coords=None if coords is None else _axes.flat_coordinates(coords, xa.shape, ax),
    )


def _check_finite(a, name, why):
    bad = ~np.isfinite(a)
    if bad.any():
        where = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), a.shape))
        raise ValueError(f"{name} holds {int(bad.sum()):,} NaN or infinite values (the first at index {where}): {why}")


def ulp(values: np.ndarray, precision: str) -> np.ndarray:
    """The spacing of ``precision`` at ``|values|`` (subnormal spacing below the normal range)."""
    mant, min_exp = MANTISSA_BITS[precision], MIN_EXP[precision]
    _, exp = np.frexp(np.abs(values))  # |v| = f * 2**exp with f in [0.5, 1)
    return np.ldexp(1.0, np.maximum(exp - 1, min_exp) - mant)
