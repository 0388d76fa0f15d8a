"""The benchmark report as a figure (matplotlib)."""

from __future__ import annotations

import numpy as np


def plot(report, path):
    """Draw a report of :func:`collect` (see :func:`draw`) into an image file.

    Parameters
    ----------
    report : dict
        As returned by :func:`collect`.
    path : str or path-like
        The image to write; matplotlib picks the format from the suffix (``bench.png``).
    """
    draw(report).savefig(path, dpi=100)


def draw(report, fig=None):
    """Bar charts of a report: GB/s against a parallel copy's, and the speed-ups over each baseline.

    Parameters
    ----------
    report : dict
        As returned by :func:`collect`.
    fig : matplotlib.figure.Figure, optional
        The figure to draw on; by default a new one sized for the report (matplotlib is imported
        only here).

    Returns
    -------
    matplotlib.figure.Figure
        The figure: left, each case's GB/s with a parallel copy's of the same arrays marked (a
        yardstick: a rotation reads and writes as many bytes); right, numrope's speed-up
        over each baseline on a log scale (right of 1: numrope is faster).
    """
    if fig is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(13, 0.35 * len(report["cases"]) + 1.8), layout="constrained")
    rows = report["cases"]
    # the dtype, unless the case's name already says it ("rope_cache(4096 positions), float64")
    labels = [r["name"] if r["dtype"] in r["name"] else f"{r['name']} ({r['dtype']})" for r in rows]
    y = np.arange(len(rows))
    bw, su = fig.subplots(1, 2, sharey=True)
    bw.barh(y, [r["gb_per_s"] for r in rows], color="tab:blue", label="numrope")
    floors = [(i, r["gb_per_s"] / r["fraction_of_floor"]) for i, r in enumerate(rows) if r["fraction_of_floor"]]
    if floors:
        bw.plot([f for _, f in floors], [i for i, _ in floors], "k|", markersize=14, label="parallel copy, same arrays")
    bw.set_xlabel("GB/s (bytes read + written)")
    bw.set_yticks(y, labels)
    bw.invert_yaxis()
    bw.legend(loc="upper center", bbox_to_anchor=(0.5, -0.06), ncols=2)
    names = sorted({n for r in rows for n in r["speedup"]})
    height = 0.8 / max(len(names), 1)
    for j, name in enumerate(names):
        pts = [(i, r["speedup"][name]) for i, r in enumerate(rows) if name in r["speedup"]]
        su.barh([i - 0.4 + (j + 0.5) * height for i, _ in pts], [s for _, s in pts], height, label=f"vs {name}")
    su.axvline(1.0, color="k", linewidth=0.8)
    su.set_xscale("log")
    su.set_xlabel("speed-up of numrope (baseline time / numrope time)")
    su.legend(loc="upper center", bbox_to_anchor=(0.5, -0.06), ncols=2)
    m = report["machine"]
    fig.suptitle(f"numrope {report['numrope']}: {m['cpus']} CPUs, {m['threads']} threads, shape {report['shape']}")
    return fig
