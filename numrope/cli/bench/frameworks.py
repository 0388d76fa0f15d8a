"""The baselines from other frameworks: the same RoPE in eager PyTorch and under jax.jit, where installed."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from numrope.cli.bench.cases import JAX, TORCH


def framework_rope(xp, cat, cast, x, cfg, positions, seq_axis=-3):
    """RoPE as Hugging Face's eager code writes it, in a NumPy-like namespace: the framework baselines.

    Parameters
    ----------
    xp : module
        ``torch``, ``jax.numpy`` or ``numpy``: provides ``outer``, ``stack``, ``cos``, ``sin``,
        ``asarray``.
    cat : callable
        ``cat(arrays)`` joins arrays on the last axis (``torch.cat(a, dim=-1)``, ...).
    cast : callable
        ``cast(a, dtype)`` converts an array to a dtype (``a.to(d)`` in torch, ``a.astype(d)``).
    x : array
        Queries or keys, an ``xp`` array whose last axis is ``cfg.head_dim``.
    cfg : RopeConfig
        The configuration (base, rotary part, layout; scaling variants are not applied).
    positions : array
        float32 positions of shape ``(S,)``, an ``xp`` array.
    seq_axis : int, default -3
        The sequence axis of ``x``.

    Returns
    -------
    array
        ``x`` rotated, in x's dtype.

    Notes
    -----
    The angles ``outer(positions, inv_freq)`` are formed in float32, cos and sin are duplicated to
    the rotary width (concatenated for ``layout="half"``, repeated pairwise for ``"interleaved"``)
    and cast to x's dtype, then ``x * cos + rotate(x) * sin`` with temporaries the size of ``x``,
    as in transformers' ``apply_rotary_pos_emb`` and ``rotate_half``. The angle carries a relative
    error of about float32 epsilon, so results drift from numrope's by ``|m theta| * 2**-23``.

    Examples
    --------
    >>> import numpy as np, numrope
    >>> from numrope.cli.bench.frameworks import framework_rope
    >>> cfg = numrope.RopeConfig(head_dim=8)
    >>> x = np.ones((1, 3, 2, 8))
    >>> y = framework_rope(np, lambda a: np.concatenate(a, axis=-1), lambda a, d: a.astype(d),
    ...                    x, cfg, np.arange(3, dtype=np.float32))
    >>> bool(np.allclose(y, numrope.apply_rope(x, cfg), atol=1e-6))
    True
    """
    rd = cfg.rotary_dim
    freqs = xp.outer(positions, xp.asarray(cfg.inv_freq().astype(np.float32)))
    if cfg.layout == "half":
        emb = cat([freqs, freqs])
    else:
        emb = xp.stack([freqs, freqs], -1).reshape(freqs.shape[0], rd)
    shape = (freqs.shape[0],) + (1,) * (x.ndim - seq_axis % x.ndim - 2) + (rd,)
    cos = cast(xp.cos(emb), x.dtype).reshape(shape)
    sin = cast(xp.sin(emb), x.dtype).reshape(shape)
    rot = x[..., :rd]
    if cfg.layout == "half":
        rotated = cat([-rot[..., rd // 2 :], rot[..., : rd // 2]])
    else:
        rotated = xp.stack([-rot[..., 1::2], rot[..., 0::2]], -1).reshape(rot.shape)
    y = rot * cos + rotated * sin
    return y if rd == x.shape[-1] else cat([y, x[..., rd:]])


@dataclasses.dataclass(frozen=True)
class Framework:
    """An array library the rotation is compared with: how to move arrays in, run, and wait."""

    name: str
    array: object  # numpy array -> framework array
    rope: object  # (x, cfg, positions, seq_axis) -> rotated x
    sync: object  # wait for an asynchronous result
    dtypes: tuple = ("float16", "float32", "float64")


def find_frameworks():
    """The importable frameworks among PyTorch and JAX."""
    found = []
    try:
        import torch
    except ImportError:
        pass
    else:

        def torch_rope(x, cfg, positions, seq_axis):
            return framework_rope(
                torch, lambda a: torch.cat(a, dim=-1), lambda a, d: a.to(d), x, cfg, positions, seq_axis
            )

        found.append(Framework(TORCH, torch.from_numpy, torch_rope, lambda y: y))
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        pass
    else:
        jax_rope = jax.jit(
            functools.partial(framework_rope, jnp, lambda a: jnp.concatenate(a, axis=-1), lambda a, d: a.astype(d)),
            static_argnums=(1, 3),
        )
        dtypes = ("float16", "float32", "float64") if jax.config.jax_enable_x64 else ("float16", "float32")
        found.append(Framework(JAX, jnp.asarray, jax_rope, lambda y: y.block_until_ready(), dtypes))
    return found
