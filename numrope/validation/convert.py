"""Converting q/k projection weights between the half and interleaved RoPE layouts."""

from __future__ import annotations

import numpy as np

from numrope.config import LAYOUTS, _check_positive_int

__all__ = ["permute_qk_weights"]


def layout_permutation(head_dim: int, rotary_dim: int | None = None, to: str = "half") -> np.ndarray:
    """Feature order within one head: ``new[j] = old[perm[j]]`` converts to layout ``to``.

    To ``"half"``, new feature ``i`` is old ``2i`` and new ``i + rotary_dim/2`` is old ``2i + 1``;
    to ``"interleaved"`` the inverse. Features past ``rotary_dim`` stay where they are.
    """
    rotary_dim = head_dim if rotary_dim is None else rotary_dim
    half_from_interleaved = np.concatenate([np.arange(0, rotary_dim, 2), np.arange(1, rotary_dim, 2)])
    perm = half_from_interleaved if to == "half" else np.argsort(half_from_interleaved)
    return np.concatenate([perm, np.arange(rotary_dim, head_dim)])


def permute_qk_weights(w, n_heads, head_dim, to="half", *, rotary_dim=None, axis=0):
    """Reorder the rows of a query or key projection between Meta's and Hugging Face's RoPE layouts.

    Parameters
    ----------
    w : array_like
        The projection weight (or bias), with ``n_heads * head_dim`` entries along ``axis``:
        PyTorch's ``nn.Linear`` weight ``(n_heads * head_dim, hidden)`` with ``axis=0``, a
        JAX/Flax kernel ``(hidden, n_heads * head_dim)`` with ``axis=1``, a bias with ``axis=0``.
    n_heads : int
        Heads in this projection (for grouped-query keys, the number of key-value heads).
    head_dim : int
        Features per head.
    to : {"half", "interleaved"}, default "half"
        The target layout. ``"half"`` converts Meta's interleaved checkpoints (pairs ``2i, 2i+1``)
        for code that pairs ``i, i + head_dim/2`` (Hugging Face transformers' ``rotate_half``);
        ``"interleaved"`` converts back.
    rotary_dim : int, optional
        Only the first ``rotary_dim`` features of each head rotate (partial rotary); the rest
        keep their place. Defaults to ``head_dim``.
    axis : int, default 0
        The axis of ``w`` holding the heads' features.

    Returns
    -------
    numpy.ndarray
        ``w`` with the entries along ``axis`` permuted within each head: a new array.

    Raises
    ------
    TypeError
        ``n_heads``, ``head_dim`` or ``rotary_dim`` not an int.
    ValueError
        An unknown layout, an odd ``head_dim`` or ``rotary_dim``, ``rotary_dim > head_dim``, or
        ``w.shape[axis] != n_heads * head_dim``.

    Notes
    -----
    RoPE in one layout applied to the permuted projection gives the other layout's rotated
    features in permuted order, the same permutation for queries and keys, so every attention
    score ``q . k`` is unchanged. The conversion to ``"half"`` is the ``permute`` of Hugging Face's
    ``convert_llama_weights_to_hf.py``: ``w.view(n_heads, head_dim // 2, 2, hidden).transpose(1, 2)``.

    Examples
    --------
    >>> import numpy as np
    >>> from numrope.validation.convert import permute_qk_weights
    >>> w = np.arange(8.0)[:, None]  # one head of 8 features, hidden size 1
    >>> permute_qk_weights(w, n_heads=1, head_dim=8, to="half")[:, 0]
    array([0., 2., 4., 6., 1., 3., 5., 7.])
    >>> back = permute_qk_weights(permute_qk_weights(w, 1, 8, "half"), 1, 8, "interleaved")
    >>> bool((back == w).all())
    True
    """
    n_heads = _check_positive_int("n_heads", n_heads)
    head_dim = _check_positive_int("head_dim", head_dim)
    rotary_dim = head_dim if rotary_dim is None else _check_positive_int("rotary_dim", rotary_dim)
    if to not in LAYOUTS:
        raise ValueError(f"to must be one of {LAYOUTS}, got {to!r}")
    if head_dim % 2 or rotary_dim % 2:
        raise ValueError(f"head_dim and rotary_dim must be even, got {head_dim} and {rotary_dim}")
    if rotary_dim > head_dim:
        raise ValueError(f"rotary_dim ({rotary_dim}) must be at most head_dim ({head_dim})")
    w = np.asarray(w)
    if w.ndim == 0:
        raise ValueError("w must have at least one axis")
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -w.ndim <= axis < w.ndim:
        raise ValueError(f"axis must be an int in [-{w.ndim}, {w.ndim - 1}], got {axis!r}")
    if w.shape[axis] != n_heads * head_dim:
        raise ValueError(
            f"w has {w.shape[axis]} entries along axis {axis}, expected n_heads * head_dim = "
            f"{n_heads} * {head_dim} = {n_heads * head_dim}"
        )
    perm = layout_permutation(head_dim, rotary_dim, to)
    index = (np.arange(n_heads)[:, None] * head_dim + perm[None, :]).reshape(-1)
    return np.take(w, index, axis=axis)
