"""A picture of a comparison: the error against position, and the frequencies each pair received.

Needs matplotlib (the ``numrope[bench]`` extra), imported only when a plot is drawn.
"""

from __future__ import annotations

import numpy as np

__all__ = ["plot_report"]


def _reports(report):
    """``(label, RopeReport)`` for a report or each side of a q/k report."""
    if hasattr(report, "q") and hasattr(report, "k"):
        return [("queries", report.q), ("keys", report.k)]
    return [("", report)]


def _array(values):
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def plot_report(report, path=None, *, fig=None):
    """Draw a report: the largest error against position, and the received frequencies against cfg's.

    Parameters
    ----------
    report : RopeReport or QKReport
        A report of :func:`numrope.validation.compare`, :func:`~numrope.validation.compare_qk` or
        :func:`~numrope.validation.compare_table`.
    path : str or path-like, optional
        Where to save the figure (the format from the suffix, as matplotlib's ``savefig``).
    fig : matplotlib.figure.Figure, optional
        The figure to draw on; a new one by default.

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    The left panel is ``error_by_position`` (largest error relative to the pair's norm). The
    right panel, where the report carries an angle analysis (a mismatch), is each pair's
    frequency as received (fitted to the angles it received against the position) and as the
    configuration has it, on a log scale, with the pairs whose frequencies differ marked, and
    the gain each pair received against the attention factor.

    Examples
    --------
    >>> import numpy as np, numrope
    >>> from numrope.validation import compare
    >>> from numrope.validation.plot import plot_report
    >>> cfg = numrope.RopeConfig(head_dim=32, base=500000.0)
    >>> x = np.random.default_rng(0).standard_normal((1, 64, 2, 32))
    >>> report = compare(numrope.apply_rope(x, numrope.RopeConfig(head_dim=32)), x, cfg)
    >>> fig = plot_report(report)
    >>> len(fig.axes) >= 2
    True
    """
    if fig is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(11, 4), layout="constrained")
    sides = _reports(report)
    axes = fig.subplots(1, 2, squeeze=False)[0]
    err_ax, freq_ax = axes
    gain_ax = None
    drawn = False
    for label, r in sides:
        name = f"{label} " if label else ""
        if r.positions.size:
            err_ax.plot(r.positions, np.maximum(r.error_by_position, 1e-17), marker=".", ms=3, label=f"{name}error")
        angles = r.angles
        if not angles:
            continue
        drawn = True
        expected, theta = _array(angles["theta_expected"]), _array(angles["theta"])
        pairs = np.arange(expected.size)
        freq_ax.semilogy(pairs, expected, "k-", lw=1, label="cfg" if not name else f"{name}cfg")
        freq_ax.semilogy(pairs, np.abs(theta), ".", ms=5, label=f"{name}received")
        freq = angles.get("frequencies")
        if freq:
            off = np.array(freq["pairs"], dtype=int)
            freq_ax.semilogy(off, np.abs(theta[off]), "rx", ms=6, label=f"{name}differs")
        if gain_ax is None:
            gain_ax = freq_ax.twinx()
            gain_ax.set_ylabel("gain received / attention factor", color="tab:green")
        gain = _array(angles["gain"]) / angles["gain_expected"]
        gain_ax.plot(pairs, gain, color="tab:green", lw=1, alpha=0.7)
        finite = gain[np.isfinite(gain)]
        if finite.size:  # rounding noise around 1 is not worth a full axis
            gain_ax.set_ylim(min(0.8, 0.95 * finite.min()), max(1.2, 1.05 * finite.max()))
    err_ax.set_xlabel("position")
    err_ax.set_ylabel("largest |error| / |pair|")
    err_ax.set_yscale("log")
    err_ax.set_title("error against position")
    if err_ax.lines:
        err_ax.legend(fontsize=8)
    freq_ax.set_xlabel("pair i")
    freq_ax.set_title("frequency each pair received (radians per position)")
    if drawn:
        freq_ax.set_ylabel("theta_i")
        freq_ax.legend(fontsize=8, loc="lower left")
    else:
        freq_ax.text(0.5, 0.5, "a match: no angles to analyse", ha="center", va="center", transform=freq_ax.transAxes)
        freq_ax.set_xticks([])
        freq_ax.set_yticks([])
    if path is not None:
        fig.savefig(path)
    return fig
