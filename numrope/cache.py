"""The cos/sin table: one row per position, one column per rotating pair."""

from __future__ import annotations

import numpy as np

from numrope._checks import check_config, table_dtype
from numrope.config import RopeConfig
from numrope.positions import as_positions, is_int_scalar


def default_seq_len(positions: np.ndarray) -> int:
    """The sequence length implied by positions: the largest one plus one (at least 1)."""
    if positions.size == 0:
        return 1
    return max(int(np.floor(positions.max())) + 1, 1)


def _inv_freq_for(cfg: RopeConfig, positions: np.ndarray, seq_len: int | None) -> np.ndarray:
    """The frequencies for these positions: seq_len defaults to the largest position plus one."""
    if seq_len is None and cfg.depends_on_seq_len:
        seq_len = default_seq_len(positions)
    return cfg.frequencies(seq_len)


def _cos_sin(cfg: RopeConfig, positions: np.ndarray, dtype: np.dtype, seq_len: int | None, scale=None):
    """The table for checked positions (int64 or float64, any shape), times ``scale`` (default the
    attention factor). No validation."""
    from numrope.kernels import cpu  # Numba loads on first use, not on `import numrope`

    inv_freq = _inv_freq_for(cfg, positions, seq_len)
    return cpu.cos_sin_table(positions, inv_freq, cfg.attention_scaling if scale is None else scale, dtype)


def rope_cache(cfg: RopeConfig, positions, dtype=np.float32, *, seq_len: int | None = None):
    """Cosine and sine of every position's rotation angles, one value per pair.

    Parameters
    ----------
    cfg : RopeConfig
        The RoPE configuration.
    positions : int or array_like
        An int ``n`` means positions ``0 .. n-1``; otherwise an array of integer or real
        positions of any shape (negative positions rotate backwards).
    dtype : {float32, float64, float16}, default float32
        Dtype of the returned tables.
    seq_len : int, optional
        Sequence length for the scaling variants that depend on it (dynamic NTK, LongRoPE).
        Defaults to the largest position plus one.

    Returns
    -------
    cos, sin : numpy.ndarray
        Arrays of shape ``positions.shape + (cfg.rotary_dim // 2,)`` holding
        ``attention_scaling * cos(m * theta_i)`` and ``attention_scaling * sin(m * theta_i)``.
        Row ``p`` of a table built from ``positions=n`` is position ``p``, ready for
        ``apply_rope(..., cache=(cos, sin))``.

    Raises
    ------
    TypeError
        If ``cfg`` is not a RopeConfig, positions are not integers or reals, or ``dtype`` is not
        float16, float32 or float64.
    ValueError
        If ``positions`` is a negative int, or holds NaN or infinite values.

    Notes
    -----
    The angle ``m * theta_i`` is formed exactly (as a sum of two float64 numbers) and reduced
    modulo pi/2 against a 169-bit value of pi/2, so the float64 tables are within one ulp of the
    exact cosine and sine of ``m * theta_i`` for every ``|m * theta_i| < 2**32``, and lower
    precisions are rounded once from them. The usual ``cos(float(m * theta))`` loses
    ``log2(m * theta)`` bits to the rounded product.

    Examples
    --------
    >>> import numpy as np, numrope
    >>> cfg = numrope.RopeConfig(head_dim=4)
    >>> cos, sin = numrope.rope_cache(cfg, 3, dtype=np.float64)
    >>> cos.shape
    (3, 2)
    >>> bool(np.allclose(cos[2], np.cos(2 * cfg.inv_freq())))
    True
    """
    check_config(cfg)
    dtype = table_dtype(dtype)
    if is_int_scalar(positions):
        if positions < 0:
            raise ValueError(f"positions as an int is a count and must be non-negative, got {positions}")
        positions = np.arange(int(positions), dtype=np.int64)
    else:
        positions = as_positions(positions)
    if seq_len is not None and not is_int_scalar(seq_len):
        raise TypeError(f"seq_len must be an int, got {type(seq_len).__name__}")
    return _cos_sin(cfg, positions, dtype, seq_len)
