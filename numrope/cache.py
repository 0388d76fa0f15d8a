"""The cos/sin table: one row per position, one column per rotating pair."""

from __future__ import annotations

import numpy as np

from numrope._checks import check_angles, check_config, check_count, check_seq_len, table_dtype
from numrope.config import RopeConfig
from numrope.positions import as_positions, is_int_scalar


def default_seq_len(positions: np.ndarray) -> int:
    """The sequence length implied by positions: the largest one plus one (at least 1)."""
    if positions.size == 0:
        return 1
    return max(int(np.floor(positions.max())) + 1, 1)


def _inv_freq_for(cfg: RopeConfig, positions: np.ndarray, seq_len: int | None) -> np.ndarray:
    """The frequencies for these positions, whose angles are checked against them: seq_len defaults
    to the largest position plus one."""
    if seq_len is None and cfg.depends_on_seq_len:
        seq_len = default_seq_len(positions)
    inv_freq = cfg.frequencies(seq_len)
    check_angles(positions, inv_freq)
    return inv_freq


def _table(cfg: RopeConfig, positions: np.ndarray, dtype: np.dtype, seq_len: int | None, scale=None):
    """The table for checked positions (int64 or float64, any shape), times ``scale`` (default the
    attention factor). No validation."""
    from numrope.kernels import cpu  # Numba loads on first use, not on `import numrope`

    inv_freq = _inv_freq_for(cfg, positions, seq_len)
    return cpu.cos_sin_table(positions, inv_freq, cfg.attention_scaling if scale is None else scale, dtype)


def _table_request(cfg: RopeConfig, positions, dtype, seq_len, caller: str):
    """The checks of a cos/sin table's arguments, on the CPU and the GPU alike.

    Returns ``(pos, shape, dtype, inv_freq)``: ``pos`` None for an int count ``n`` (positions
    ``0 .. n-1``, whose last one decides the angle check and the default seq_len), else the
    checked positions; the table's leading shape; its dtype; the frequencies, checked against the
    angles before anything is allocated.
    """
    check_config(cfg)
    if getattr(cfg.scaling, "scales_qk", False):
        raise NotImplementedError(f"{caller}: xPos scales queries and keys apart; one table cannot serve both")
    dtype = table_dtype(dtype)
    seq_len = check_seq_len(seq_len)
    if is_int_scalar(positions):
        n = check_count(positions)
        return None, (n,), dtype, _inv_freq_for(cfg, np.array([max(n - 1, 0)]), seq_len)
    pos = as_positions(positions)
    return pos, pos.shape, dtype, _inv_freq_for(cfg, pos, seq_len)


def rope_cache(cfg: RopeConfig, positions, dtype=np.float32, *, seq_len: int | None = None):
    """Cosine and sine of every position's rotation angles, one value per pair.

    Parameters
    ----------
    cfg : RopeConfig
        The RoPE configuration.
    positions : int or array_like
        An int ``n`` means positions ``0 .. n-1``; otherwise an array of integer or real
        positions of any shape (negative positions rotate backwards).
    dtype : {float32, float64, float16, bfloat16}, default float32
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
        If ``cfg`` is not a RopeConfig, positions are not integers or reals, ``dtype`` is not
        float16, float32 or float64, or ``seq_len`` is not an int.
    ValueError
        If ``positions`` is a negative int or one from 2**63 on, holds NaN or infinite values,
        positions from ``2**53`` on in magnitude or positions whose angles ``|m * theta_i|`` reach
        ``2**53`` radians (see Notes), or if ``seq_len`` is not positive.

    Notes
    -----
    The angle ``m * theta_i`` is formed exactly (as a sum of two float64 numbers) and reduced
    modulo pi/2 exactly enough for the last bit: against a 169-bit value of pi/2 below ``2**32``
    radians, and from there against a 212-bit one, each product of it exact and the remainder
    summed without loss. So the float64 tables are within one ulp of the exact cosine and sine of
    ``m * theta_i`` for every position ``|m| < 2**53`` (every integer float64 holds) and angle
    ``|m * theta_i| < 2**53`` (so for every such position where ``theta_i <= 1``), three ulps with
    an attention factor other than 1 (YaRN, LongRoPE: one ulp of the cosine times the factor, plus
    the rounding of that product); lower precisions are rounded once from them (bfloat16 too, by
    rounding to odd at float32's precision first). The usual ``cos(float(m * theta))`` loses
    ``log2(m * theta)`` bits to the rounded product. Larger positions and angles are refused. See
    :doc:`/explanation/accuracy` for the error analysis and the measurements.

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
    pos, shape, dtype, inv_freq = _table_request(cfg, positions, dtype, seq_len, "rope_cache")
    from numrope.kernels import cpu  # Numba loads on first use, not on `import numrope`

    positions = np.arange(shape[0], dtype=np.int64) if pos is None else pos
    return cpu.cos_sin_table(positions, inv_freq, cfg.attention_scaling, dtype)
