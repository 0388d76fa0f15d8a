"""The results of numrope's self-checks: one comparison against its derived bound, and a report of many."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from numrope.checks.matrices import U64, _gamma


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One checked statement: its largest deviation and the bound the deviation was held to.

    Attributes
    ----------
    name : str
        What was compared.
    max_abs_error : float
        Largest absolute deviation.
    max_rel_error : float
        Largest deviation relative to the scale of the compared quantity (see ``scale``).
    rel_bound : float
        The error bound, relative to the same scale, from the error analysis.
    scale : str
        What the relative error is relative to.
    """

    name: str
    max_abs_error: float
    max_rel_error: float
    rel_bound: float
    scale: str = ""

    @property
    def passed(self) -> bool:
        """Whether the deviation stayed within the bound."""
        return bool(self.max_rel_error <= self.rel_bound)


@dataclasses.dataclass(frozen=True)
class Report:
    """The outcome of one of the checks: a list of :class:`Comparison` for one configuration.

    Attributes
    ----------
    title : str
        What was checked, on what.
    comparisons : tuple of Comparison
        The individual statements and their errors and bounds.
    """

    title: str
    comparisons: tuple[Comparison, ...]

    @property
    def passed(self) -> bool:
        """Whether every comparison held."""
        return all(c.passed for c in self.comparisons)

    def __str__(self) -> str:
        width = max([len(c.name) for c in self.comparisons] + [10])
        lines = [self.title, f"  {'comparison':<{width}}  {'max abs':>9}  {'max rel':>9}  {'rel bound':>9}  result"]
        for c in self.comparisons:
            lines.append(
                f"  {c.name:<{width}}  {c.max_abs_error:9.2e}  {c.max_rel_error:9.2e}  {c.rel_bound:9.2e}  "
                + ("holds" if c.passed else "FAILS")
            )
        return "\n".join(lines)


def _describe(cfg, seq_len=None) -> str:
    parts = [f"head_dim={cfg.head_dim}", f"base={cfg.base:g}", f"layout={cfg.layout}"]
    if cfg.rotary_dim != cfg.head_dim:
        parts.append(f"rotary_dim={cfg.rotary_dim}")
    if cfg.scaling is not None:
        factor = getattr(cfg.scaling, "factor", None)
        parts.append(type(cfg.scaling).__name__ + (f"(factor={factor:g})" if factor is not None else ""))
    if seq_len is not None:
        parts.append(f"seq_len={seq_len}")
    return ", ".join(parts)


def _apply_bound_coefficient(cfg, dtype, table_dtype=None) -> float:
    """Relative bound on |<f(q,m), f(k,n)> computed - exact| for apply_rope in ``dtype``.

    Relative to ``a**2 sum_p |q_p| |k_p| + sum_pass |q_j k_j|``; see the "Accuracy" page.
    """
    dtype = np.dtype(dtype)
    compute = np.result_type(np.float32, dtype)
    u = float(np.finfo(compute).eps) / 2
    u_t = float(np.finfo(table_dtype or compute).eps) / 2
    u_o = float(np.finfo(dtype).eps) / 2 if dtype.itemsize < compute.itemsize else 0.0
    tau = 3 * U64 + u_t  # table entry vs a * cos(m theta): 1 ulp, the product by a, the cast
    eta = 2 * u + math.sqrt(2) * tau + u_o  # per output feature, relative to a |x_pair|
    g = _gamma(cfg.head_dim)
    return 2 * math.sqrt(2) * eta + 2 * eta**2 + g * (1 + eta) ** 2
