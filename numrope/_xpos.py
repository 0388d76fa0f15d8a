"""The tables of queries and keys under xPos (numrope.variants.XPos): the rotation's cos and sin times
each pair's factor, ``zeta_i ** ((m - c) / scale_base)`` for queries and its inverse for keys."""

from __future__ import annotations


def scales_qk(cfg) -> bool:
    """Whether ``cfg`` scales queries and keys apart (xPos)."""
    return bool(getattr(getattr(cfg, "scaling", None), "scales_qk", False))


def refuse_single(cfg, name="apply_rope"):
    if scales_qk(cfg):
        raise NotImplementedError(
            f"{name}: xPos scales queries and keys apart (queries by zeta ** ((m - center) / scale_base), keys by "
            "its inverse): rotate both with numrope.apply_rope_qk"
        )


def qk_tables(cfg, cos, sin, positions, divide):
    """((q_cos, q_sin), (k_cos, k_sin)): tables ``(n_positions, n_pairs)`` for ``positions`` (flattened in
    the tables' row order). The forward map and the transpose scale queries up and keys down by the
    factors; the inverse divides them out again (``divide``)."""
    factors = cfg.scaling.query_factors(cfg, positions.reshape(-1))
    if divide:
        factors = 1.0 / factors
    dtype = cos.dtype
    q = ((cos * factors).astype(dtype), (sin * factors).astype(dtype))
    k = ((cos / factors).astype(dtype), (sin / factors).astype(dtype))
    return q, k


__all__ = ["qk_tables", "refuse_single", "scales_qk"]
