"""The conformance report for people: a table grouped by framework, and a plot of the error against position."""

from __future__ import annotations

import json
import math


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, str) or not math.isfinite(value):
        return str(value)
    return f"{value:.1e}"


def failures(report) -> list[dict]:
    """The rows that do not conform."""
    return [r for r in report["results"] if not r["ok"]]


def format_report(report: dict) -> str:
    """The report of :func:`numrope.conformance.run` as text: one table per framework, then what was not measured.

    Each table has a line per model: the largest position measured and, for each precision, the
    largest error relative to the pair's norm with the verdict (``ok`` or ``FAIL``). Below it,
    each failing row with its diagnosis, and the models the framework cannot express, by reason.

    Examples
    --------
    >>> from numrope.conformance import run
    >>> from numrope.conformance.report import format_report
    >>> print(format_report(run(frameworks=[], models="phi-2", quick=True)).splitlines()[0])
    numrope conformance: 0 rows, 0 frameworks installed, 1 models, seed 0 (quick)
    """
    dtypes = report["dtypes"]
    rows = report["results"]
    installed = [f for f in report["frameworks"] if f.get("installed")]
    quick = " (quick)" if report.get("quick") else ""
    lines = [
        f"numrope conformance: {len(rows)} rows, {len(installed)} frameworks installed, "
        f"{len(report['models'])} models, seed {report['seed']}{quick}",
        "error: largest |framework - numrope| relative to the pair's norm, over every position measured; "
        "verdict: numrope's tolerance with float32 angles allowed",
    ]
    for fw in report["frameworks"]:
        lines.append("")
        if not fw.get("installed"):
            lines.append(f"{fw['name']}: not installed ({fw['missing']})")
            continue
        lines += _framework_lines(fw, [r for r in rows if r["framework"] == fw["name"]], dtypes, report)
    if report["not_expressible"]:
        lines += ["", "models numrope does not read (not measured):"]
        lines += [
            f"  {m['model']} ({m['hf_repo']}): {m['kind']}: {m['exception']}: {m['message']}"
            for m in report["not_expressible"]
        ]
    bad = failures(report)
    lines.append("")
    if bad:
        lines.append(f"{len(bad)} of {len(rows)} rows do not conform:")
        lines += [
            f"  {r['framework']} / {r['model']} / {r['dtype']}: {', '.join(r['diagnosis']) or 'mismatch'}" for r in bad
        ]
    else:
        lines.append(f"all {len(rows)} rows conform")
    return "\n".join(lines)


def _framework_lines(fw, rows, dtypes, report) -> list[str]:
    lines = [f"{fw['name']} {fw.get('version', '')} ({fw['level']} level: {fw['call']})"]
    by_model: dict[str, dict] = {}
    for r in rows:
        by_model.setdefault(r["model"], {})[r["dtype"]] = r
    width = max([len(m) for m in by_model] + [5])
    if by_model:
        header = f"  {'model':<{width}}  {'max pos':>9}" + "".join(f"  {d:<14}" for d in dtypes)
        lines.append(header.rstrip())
        for model, cells in by_model.items():
            top = max(c["max_position"] for c in cells.values())
            text = f"  {model:<{width}}  {top:>9}"
            for d in dtypes:
                c = cells.get(d)
                cell = "-" if c is None else f"{_fmt(c['max_rel_error'])} {'ok' if c['ok'] else 'FAIL'}"
                text += f"  {cell:<14}"
            lines.append(text.rstrip())
    for r in rows:
        if not r["ok"]:
            lines.append(f"  FAIL {r['model']} {r['dtype']}: {', '.join(r['diagnosis'])}")
            lines += [f"       {m}" for m in r["messages"][:2]]
    reasons: dict[str, list[str]] = {}
    for n in report["not_measured"]:
        if n["framework"] == fw["name"] and n["dtype"] is None:
            reasons.setdefault(n["reason"], []).append(n["model"])
    for reason, models in reasons.items():
        lines.append(f"  not measured: {', '.join(models)}: {reason}")
    return lines


def _series(rows):
    """{bin edge: largest error} over rows."""
    out: dict[int, float] = {}
    for r in rows:
        for edge, err in r.get("error_by_position", []):
            if isinstance(err, (int, float)) and math.isfinite(err):
                out[edge] = max(out.get(edge, 0.0), err)
    return dict(sorted(out.items()))


def draw(report, fig=None):
    """Error against position, log-log: one panel per precision, one line per framework.

    Parameters
    ----------
    report : dict
        As returned by :func:`numrope.conformance.run`.
    fig : matplotlib.figure.Figure, optional
        The figure to draw on; a new one by default (matplotlib is imported only here).

    Returns
    -------
    matplotlib.figure.Figure
        Each line is the largest error relative to the pair's norm over the framework's models, in
        power-of-two bins of position. The dotted line is ``m * 2**-24``: rounding an angle of
        ``m`` radians to float32, the floor of a framework that forms its angles in float32.
    """
    if fig is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(5 * max(len(report["dtypes"]), 1), 5), layout="constrained")
    dtypes = [d for d in report["dtypes"] if any(r["dtype"] == d for r in report["results"])] or report["dtypes"]
    axes = fig.subplots(1, len(dtypes), sharey=True, squeeze=False)[0]
    names = [f["name"] for f in report["frameworks"] if f.get("installed")]
    for ax, dtype in zip(axes, dtypes, strict=True):
        top = 2
        for name in names:
            series = _series([r for r in report["results"] if r["framework"] == name and r["dtype"] == dtype])
            if series:
                edges = list(series)
                ax.plot(edges, [max(v, 1e-9) for v in series.values()], marker=".", label=name)
                top = max(top, edges[-1])
        ax.plot([1, top], [2**-24, top * 2**-24], "k:", linewidth=1, label="m · 2⁻²⁴")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("position (upper edge of a power-of-two bin)")
        ax.set_title(dtype)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("largest error / pair norm")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 6), fontsize="small")
    models = len({m["model"].split("/")[0] for m in report["models"]})
    fig.suptitle(f"RoPE of {models} models in each framework, against numrope")
    return fig


def plot(report, path):
    """Draw :func:`draw`'s figure into an image file (the format from the suffix)."""
    draw(report).savefig(path, dpi=100)


#: Short column names for the tables of the documentation.
SHORT = {
    "transformers": "transformers",
    "mlx_lm": "mlx-lm",
    "mlx": "MLX",
    "torchtune": "torchtune",
    "rotary_embedding_torch": "rotary-emb.-torch",
    "x_transformers": "x-transformers",
    "keras_hub": "keras-hub",
    "gemma": "gemma",
    "penzai": "penzai",
    "ggml": "ggml",
}


def _cell(row) -> str:
    if row is None:
        return "·"
    err = _fmt(row["max_rel_error"]) + (" †" if row.get("segments_skipped") else "")
    if row["ok"]:
        return err
    return f"**{err} ✗** ({', '.join(row['diagnosis'])})"


def format_rst(report: dict) -> str:
    """The report as reStructuredText for the documentation: the setup, then one grid per precision.

    Each grid has a row per model and a column per framework; a cell is the largest error relative
    to the pair's norm, marked ✗ with the diagnosis where the row does not conform, † where the
    framework was not run on the model's longest contexts (``segments_skipped``), ``·`` where the
    framework cannot express the model's RoPE or does not compute in that precision.

    Examples
    --------
    >>> from numrope.conformance import run
    >>> from numrope.conformance.report import format_rst
    >>> print(format_rst(run(frameworks=[], models="phi-2", quick=True)).splitlines()[0])
    .. list-table:: The run
    """
    m = report["machine"]
    installed = [f for f in report["frameworks"] if f.get("installed")]
    rows = report["results"]
    bad = failures(report)
    refused = ", ".join(x["model"] for x in report["not_expressible"]) or "none"
    out = [
        ".. list-table:: The run",
        "   :stub-columns: 1",
        "",
        f"   * - machine\n     - {m['platform']}, {m['cpus']} CPUs, Python {m['python']}, NumPy {m['numpy']}",
        f"   * - numrope\n     - {m['numrope']}",
        f"   * - models\n     - {len({x['model'].split('/')[0] for x in report['models']})} "
        f"({len(report['models'])} with Gemma 3's layer types apart); not read by numrope: {refused}",
        f"   * - precisions\n     - {', '.join(report['dtypes'])}",
        f"   * - rows\n     - {len(rows)} measured, {len(rows) - len(bad)} conform, {len(bad)} do not",
        f"   * - seed; wall time\n     - {report['seed']}; {report['seconds']:.0f} s",
        "",
        ".. list-table:: The frameworks",
        "   :header-rows: 1",
        "",
        "   * - framework\n     - versions\n     - level\n     - rows\n     - conform\n     - do not (diagnosis)",
    ]
    for f in installed:
        mine = [r for r in rows if r["framework"] == f["name"]]
        wrong = [r for r in mine if not r["ok"]]
        kinds = sorted({k for r in wrong for k in r["diagnosis"]})
        versions = ", ".join(f"{d} {v}" for d, v in f.get("versions", {f["name"]: f.get("version", "")}).items())
        out += [
            f"   * - {SHORT.get(f['name'], f['name'])}",
            f"     - {versions}",
            f"     - {f['level']}",
            f"     - {len(mine)}",
            f"     - {len(mine) - len(wrong)}",
            f"     - {len(wrong)}" + (f" ({', '.join(kinds)})" if kinds else ""),
        ]
    out.append("")
    for f in report["frameworks"]:
        if not f.get("installed"):
            out += [f"{f['name']} was not installed: {f['missing']}.", ""]
    by_key = {(r["framework"], r["model"], r["dtype"]): r for r in rows}
    names = [f["name"] for f in installed]
    models = [m["model"] for m in report["models"] if "numrope" in m]
    for dtype in report["dtypes"]:
        if not any(r["dtype"] == dtype for r in rows):
            continue
        out += [
            f".. list-table:: {dtype}",
            "   :header-rows: 1",
            "   :stub-columns: 1",
            "",
            "   * - model",
        ]
        out += [f"     - {SHORT.get(n, n)}" for n in names]
        for model in models:
            out.append(f"   * - {model}")
            out += [f"     - {_cell(by_key.get((n, model, dtype)))}" for n in names]
        out.append("")
    return "\n".join(out)


def to_json(report: dict) -> str:
    """The report as JSON text: one line per top-level key, and one per row of its lists.

    Examples
    --------
    >>> import json
    >>> from numrope.conformance.report import to_json
    >>> text = to_json({"results": [{"ok": True}, {"ok": False}], "seed": 0})
    >>> print(text)
    {
    "results": [
     {"ok": true},
     {"ok": false}
    ],
    "seed": 0
    }
    >>> json.loads(text)["seed"]
    0
    """
    parts = []
    for key, value in report.items():
        if isinstance(value, list) and value:
            items = ",\n".join(" " + json.dumps(v, allow_nan=False) for v in value)
            parts.append(f"{json.dumps(key)}: [\n{items}\n]")
        else:
            parts.append(f"{json.dumps(key)}: {json.dumps(value, allow_nan=False)}")
    return "{\n" + ",\n".join(parts) + "\n}"
