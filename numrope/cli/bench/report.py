"""The benchmark report as text: the table, the targets and their verdicts, and progress on a terminal."""

from __future__ import annotations

from numrope.cli._common import Progress
from numrope.cli.bench.cases import BARE_NUMBA, JAX, NUMPY_COS_SIN, TORCH, VECTORISED

__all__ = ["Progress", "format_report"]


def _time(seconds):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def _measured(t):
    if t["measured"] is None:
        return "not measured"
    return f"{t['measured']:.3g}{t['unit']}"


def format_report(report) -> str:
    """The report of :func:`collect` as text: the machine, a table of the cases, and the targets.

    Parameters
    ----------
    report : dict
        As returned by :func:`collect` (or read back from ``numrope bench --json``).

    Returns
    -------
    str
        A header naming the machine, one row per case (time, GB/s, share of the copy floor, and a
        ``vs X`` column per baseline: X's time over numrope's), then one line per target.
    """
    m = report["machine"]
    lines = [
        f"numrope {report['numrope']} on {m['platform']}: {m['cpus']} CPUs, {m['threads']} Numba threads "
        f"({m['threading_layer']} layer), numpy {m['numpy']}, numba {m['numba']}",
        f"time: best of several runs, by the {m.get('clock', 'wall clock')}; GB/s: bytes read and written once; "
        "floor: a Numba parallel copy of the",
        "same arrays' time / numrope's (100%: as fast as the copy); vs X: X's time / numrope's time, all",
        "in this process.",
        "vectorised NumPy: numrope.reference.vectorised_numpy; PyTorch: eager, Hugging Face's form",
        "(JAX: the same, jitted);",
        "baselines compute their cos/sin in the call.",
        "",
    ]
    names = [
        n
        for n in (BARE_NUMBA, NUMPY_COS_SIN, VECTORISED, TORCH, JAX)
        if any(n in r["speedup"] for r in report["cases"])
    ]
    header = ["case", "shape", "dtype", "time", "GB/s", "floor"] + [f"vs {n}" for n in names]
    body = [
        [
            r["name"],
            "x".join(map(str, r["shape"])),
            r["dtype"],
            _time(r["seconds"]),
            f"{r['gb_per_s']:.1f}",
            "-" if r["fraction_of_floor"] is None else f"{r['fraction_of_floor']:.0%}",
        ]
        + [f"{r['speedup'][n]:.2f}x" if n in r["speedup"] else "-" for n in names]
        for r in report["cases"]
    ]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    for row in [header, *body]:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    lines += ["", "targets:"]
    width = max((len(t["target"]) for t in report["targets"]), default=0)
    for t in report["targets"]:
        verdict = {True: "met", False: "MISSED", None: "-"}[t["met"]]
        lines.append(f"  {t['target']:<{width}}  {_measured(t):>12}  goal {t['goal']:<8} {verdict}{_copy_speed(t)}")
    return "\n".join(lines)


def _copy_speed(target):
    """The speed-up a rotation exactly as fast as the parallel copy would have: a yardstick, not a limit.

    A measured speed-up can exceed it: the copy into a new array is timed separately, and the two
    runs see different page faults and caches. Reports written before the key was renamed call it
    ``ceiling``.
    """
    value = target.get("copy_speed", target.get("ceiling"))
    if not value:
        return ""
    return f" (a rotation as fast as a copy: {value:.3g}x)"
