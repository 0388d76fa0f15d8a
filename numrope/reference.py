"""Plain-NumPy RoPE, written to be read: the forms every fast path is tested against.

Three independent formulations of the same rotation, all in float64:

* :func:`complex_form` -- pairs as complex numbers multiplied by ``exp(i m theta)`` (Meta's
  ``precompute_freqs_cis`` / ``apply_rotary_emb`` style);
* :func:`rotate_half_form` -- ``x * cos + rotate(x) * sin`` with duplicated cos/sin, the
  vectorised form of GPT-NeoX and Hugging Face (and, for the interleaved layout, of RoFormer);
* :func:`matrix_form` -- the explicit block-diagonal matrix ``R_{Theta,m}`` of RoFormer eq. 13
  applied as a matrix-vector product.

The frequencies come from ``cfg.inv_freq`` (so scaling variants are included); cos and sin are
NumPy's of the float64 product ``m * theta``, accurate to about ``|m theta| * 2**-53``.
"""

from __future__ import annotations

import numpy as np


def _per_head(positions, ndim, ax):
    """(*batch, S) positions for x with the heads right before the sequence axis (``seq_axis=-2``)
    get a length-1 head axis: positions index batch axes, never heads."""
    if positions.ndim > 1 and ax == ndim - 2 and ax > 0 and positions.ndim - 1 < ax:
        return positions[..., None, :]
    return positions


def _sequence_positions(positions, n):
    """Positions as :func:`numrope.apply_rope` takes them, for a sequence of ``n`` tokens: ``None``
    is ``0 .. n-1``, an int an offset (``offset .. offset + n - 1``); arrays are returned as given."""
    if positions is None:
        return np.arange(n)
    if np.ndim(positions) == 0:
        return int(positions) + np.arange(n)
    return positions


def _axes_angles(x_shape, cfg, coords, seq_axis, seq_len=None):
    """Multi-axis RoPE (numrope.axes): pair ``i`` turns by ``coords[axis[i]] * theta_i``, the
    coordinates ``(n_axes, *batch, S)`` indexing x's batch axes as positions do."""
    coords = np.asarray(coords, dtype=np.float64)
    if coords.shape[0] != cfg.n_axes:
        raise ValueError(f"coordinates must have {cfg.n_axes} rows (axes {cfg.axes.names}), got shape {coords.shape}")
    ndim = len(x_shape)
    ax = seq_axis % ndim
    rows = [_per_head(c, ndim, ax) for c in coords]
    rows = np.stack(np.broadcast_arrays(*[np.broadcast_to(r, r.shape[:-1] + (x_shape[ax],)) for r in rows]))
    if seq_len is None and cfg.depends_on_seq_len:
        seq_len = int(np.floor(rows.max())) + 1 if rows.size else 1
    theta = cfg.inv_freq(seq_len)
    angles = np.moveaxis(rows[np.asarray(cfg.axes.axis)], 0, -1) * theta  # (*batch, S, n_pairs)
    return angles.reshape(angles.shape[:-1] + (1,) * (ndim - ax - 2) + (theta.size,))


def _angles(x_shape, cfg, positions, seq_axis, seq_len=None):
    """Angles m * theta_i broadcastable against x's pairs: shape x.shape[:-1] (+ singletons) + (n_pairs,)."""
    ndim = len(x_shape)
    ax = seq_axis % ndim
    n = x_shape[ax]
    positions = _sequence_positions(positions, n)
    if getattr(cfg, "axes", None) is not None and np.ndim(positions) >= 2:
        return _axes_angles(x_shape, cfg, positions, seq_axis, seq_len)
    positions = _per_head(np.asarray(positions, dtype=np.float64), ndim, ax)
    positions = np.broadcast_to(positions, positions.shape[:-1] + (n,))
    if seq_len is None and cfg.depends_on_seq_len:
        seq_len = int(np.floor(positions.max())) + 1 if positions.size else 1
    theta = cfg.inv_freq(seq_len)
    angles = positions[..., None] * theta  # (*batch, S, n_pairs)
    # one singleton per axis between the sequence axis and head_dim (the head axes)
    return angles.reshape(angles.shape[:-1] + (1,) * (ndim - ax - 2) + (theta.size,))


def _pairs(x, cfg, backward=False):
    """The two members of each rotating pair, where the map reads them (the inverse and the transpose
    read where the forward map writes: the layouts ``"interleaved_in_half_out"`` tells apart)."""
    j0, j1 = cfg.pair_indices(output=backward)
    return x[..., j0], x[..., j1]


def _unpairs(first, second, x, cfg, backward=False):
    out = np.array(x, dtype=np.float64)
    k0, k1 = cfg.pair_indices(output=not backward)
    out[..., k0] = first
    out[..., k1] = second
    return out


def _direction(cfg, inverse, transpose):
    """(angle sign, factor): the forward map is ``a R``, its inverse ``R^T / a``, its transpose ``a R^T``."""
    if inverse and transpose:
        raise ValueError("inverse and transpose are different maps; pass one of them")
    if inverse:
        return -1.0, 1.0 / cfg.attention_scaling
    return (-1.0 if transpose else 1.0), cfg.attention_scaling


def complex_form(x, cfg, positions=None, *, seq_axis=-3, inverse=False, transpose=False, seq_len=None):
    """RoPE as complex multiplication: ``(x0 + i x1) * scaling * exp(i m theta)``. Returns float64.

    ``inverse`` undoes it (``exp(-i m theta) / scaling``); ``transpose`` is its transpose, the
    backward pass (``scaling * exp(-i m theta)``).
    """
    x = np.asarray(x, dtype=np.float64)
    sign, factor = _direction(cfg, inverse, transpose)
    angles = sign * _angles(x.shape, cfg, positions, seq_axis, seq_len)
    x0, x1 = _pairs(x, cfg, sign < 0)
    z = (x0 + 1j * x1) * (factor * np.exp(1j * angles))
    return _unpairs(z.real, z.imag, x, cfg, sign < 0)


def rotate_half_form(x, cfg, positions=None, *, seq_axis=-3, inverse=False, transpose=False, seq_len=None):
    """RoPE as ``x * cos + rotate(x) * sin`` with cos and sin repeated to the rotary width. float64.

    ``inverse`` and ``transpose`` as for :func:`complex_form`.
    """
    x = np.asarray(x, dtype=np.float64)
    sign, factor = _direction(cfg, inverse, transpose)
    angles = sign * _angles(x.shape, cfg, positions, seq_axis, seq_len)
    cos = factor * np.cos(angles)
    sin = factor * np.sin(angles)
    lo, hi = cfg.rotary_offset, cfg.rotary_offset + cfg.rotary_dim
    rot = x[..., lo:hi]
    if cfg.layout == "interleaved_in_half_out":
        # transformers' apply_rotary_pos_emb_interleave: de-interleave, then the half layout; the inverse
        # and the transpose take the half layout back and interleave it again
        if sign > 0:
            rot = np.concatenate([rot[..., 0::2], rot[..., 1::2]], axis=-1)
        rotated = np.concatenate([-rot[..., cfg.n_pairs :], rot[..., : cfg.n_pairs]], axis=-1)
        part = rot * np.concatenate([cos, cos], axis=-1) + rotated * np.concatenate([sin, sin], axis=-1)
        if sign < 0:
            part = np.stack([part[..., : cfg.n_pairs], part[..., cfg.n_pairs :]], axis=-1).reshape(part.shape)
    elif cfg.layout == "interleaved":
        cos, sin = np.repeat(cos, 2, axis=-1), np.repeat(sin, 2, axis=-1)
        rotated = np.stack([-rot[..., 1::2], rot[..., 0::2]], axis=-1).reshape(rot.shape)
        part = rot * cos + rotated * sin
    else:
        cos, sin = np.concatenate([cos, cos], axis=-1), np.concatenate([sin, sin], axis=-1)
        rotated = np.concatenate([-rot[..., cfg.n_pairs :], rot[..., : cfg.n_pairs]], axis=-1)
        part = rot * cos + rotated * sin
    return np.concatenate([x[..., :lo], part, x[..., hi:]], axis=-1)


def rope_matrix(cfg, m, seq_len=None):
    """The ``head_dim x head_dim`` matrix ``R_{Theta,m}`` (times the attention scaling), float64.

    Block ``i`` takes features ``(j0_i, j1_i)`` to ``(k0_i, k1_i)`` (:meth:`numrope.RopeConfig.pair_indices`,
    the same for all but the ``"interleaved_in_half_out"`` layout) turned by ``m * theta_i``; features
    outside the rotary part map to themselves.
    """
    theta = cfg.inv_freq(seq_len)
    r = np.eye(cfg.head_dim)
    r[cfg.rotary_offset : cfg.rotary_offset + cfg.rotary_dim] = 0.0  # the rotary rows, set pair by pair
    j0, j1 = cfg.pair_indices()
    k0, k1 = cfg.pair_indices(output=True)
    c = cfg.attention_scaling * np.cos(m * theta)
    s = cfg.attention_scaling * np.sin(m * theta)
    r[k0, j0], r[k0, j1] = c, -s
    r[k1, j0], r[k1, j1] = s, c
    return r


def matrix_form(x, cfg, positions=None, *, seq_axis=-3, inverse=False, transpose=False, seq_len=None):
    """RoPE as ``R_{Theta,m} @ x`` token by token (slow; for small inputs). Returns float64.

    ``inverse`` applies the inverse matrix, ``transpose`` the transpose.
    """
    if inverse and transpose:
        raise ValueError("inverse and transpose are different maps; pass one of them")
    if getattr(cfg, "axes", None) is not None and np.ndim(positions) >= 2:
        raise NotImplementedError(
            "matrix_form takes one position per token; for coordinate vectors (multi-axis RoPE) use "
            "complex_form, rotate_half_form or numrope.checks.multiaxis.exact_rotation_matrix"
        )
    x = np.asarray(x, dtype=np.float64)
    ax = seq_axis % x.ndim
    positions = np.asarray(_sequence_positions(positions, x.shape[ax]), dtype=np.float64)
    positions = np.broadcast_to(_per_head(positions, x.ndim, ax), x.shape[: ax + 1])
    if seq_len is None and cfg.depends_on_seq_len:
        seq_len = int(np.floor(positions.max())) + 1 if positions.size else 1
    out = np.empty_like(x)
    for index in np.ndindex(*x.shape[: ax + 1]):
        r = rope_matrix(cfg, positions[index], seq_len)
        if inverse:
            r = np.linalg.inv(r)  # not r.T / a**2: the features past rotary_dim are not scaled
        elif transpose:
            r = r.T
        out[index] = x[index] @ r.T
    return out


def vectorised_numpy(x, cfg, positions=None, *, seq_axis=-3):
    """RoPE the usual vectorised NumPy way: the speed baseline of ``numrope bench``, not a reference.

    This is what a NumPy user writes after the RoPE papers and PyTorch code: float32 angles
    ``np.outer(positions, theta)``, cos and sin duplicated to the rotary width, then
    ``x * cos + rotate(x) * sin`` with temporaries the size of ``x``, in ``x``'s dtype. It is
    deliberately not tuned and leaves out the attention scaling; its angles lose accuracy with the
    position (the error of float32 angles). For correctness use the forms above.
    """
    x = np.asarray(x)
    ax = seq_axis % x.ndim
    n = x.shape[ax]
    positions = np.arange(n) if positions is None else np.asarray(positions)
    exponents = np.arange(0, cfg.rotary_dim, 2) / cfg.rotary_dim
    theta = (cfg.direction / cfg.base**exponents).astype(np.float32)
    angles = np.outer(positions.astype(np.float32), theta)  # (S, n_pairs)
    shape = (n,) + (1,) * (x.ndim - ax - 2) + (cfg.rotary_dim,)
    if cfg.layout == "interleaved":
        cos = np.repeat(np.cos(angles), 2, axis=-1).reshape(shape).astype(x.dtype)
        sin = np.repeat(np.sin(angles), 2, axis=-1).reshape(shape).astype(x.dtype)
    else:
        cos = np.concatenate([np.cos(angles)] * 2, axis=-1).reshape(shape).astype(x.dtype)
        sin = np.concatenate([np.sin(angles)] * 2, axis=-1).reshape(shape).astype(x.dtype)
    lo, hi = cfg.rotary_offset, cfg.rotary_offset + cfg.rotary_dim
    rot = x[..., lo:hi]
    if cfg.layout == "interleaved_in_half_out":  # de-interleaved first, as apply_rotary_pos_emb_interleave
        rot = np.concatenate([rot[..., 0::2], rot[..., 1::2]], axis=-1)
    if cfg.layout == "interleaved":
        rotated = np.stack([-rot[..., 1::2], rot[..., 0::2]], axis=-1).reshape(rot.shape)
    else:
        h = cfg.n_pairs
        rotated = np.concatenate([-rot[..., h:], rot[..., :h]], axis=-1)
    rotated_part = rot * cos + rotated * sin
    if cfg.rotary_dim == x.shape[-1]:
        return rotated_part
    return np.concatenate([x[..., :lo], rotated_part, x[..., hi:]], axis=-1)
