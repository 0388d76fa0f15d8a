"""Conformance: other frameworks' own RoPE code, run on the RoPE of real models, judged against numrope.

:func:`run` takes the models of the catalogue (:mod:`numrope.conformance.catalogue`, config.json
excerpts of real models), reads each with :meth:`numrope.RopeConfig.from_hf`, runs every installed
framework's RoPE on it through an adapter (:mod:`numrope.conformance.adapters`) and judges each
output with :func:`numrope.validation.compare_qk` (:mod:`numrope.conformance.measure`). No framework
is a dependency of numrope: an adapter runs only where its framework imports.
``numrope conformance`` prints the report (:mod:`numrope.conformance.report`).
"""

from __future__ import annotations

import os
import platform
import time
import typing

import numpy as np

from numrope.conformance import adapters as _adapters
from numrope.conformance import catalogue as _catalogue
from numrope.conformance import measure as _measure
from numrope.conformance.adapters import DTYPES, Unsupported

__all__ = ["QUICK_MODELS", "Plan", "plan", "run"]

#: The models of ``quick=True``: one or two per scaling variant, pair layout and partial rotary.
QUICK_MODELS = (
    "llama-3.1-8b",
    "qwen2.5-7b-instruct-yarn",
    "phi-3.5-mini-instruct",
    "gpt-neox-20b",
    "gemma-3-4b-it/full_attention",
    "command-r-v01",
    "deepseek-v3",
    "glm-4-9b-0414",
)
#: The precisions of ``quick=True``.
QUICK_DTYPES = ("float32", "bfloat16")


def _choose_frameworks(frameworks):
    known = _adapters.by_name()
    if frameworks is None:
        return list(_adapters.ADAPTERS)
    if isinstance(frameworks, str):
        frameworks = [frameworks]
    unknown = [f for f in frameworks if f not in known]
    if unknown:
        raise ValueError(f"unknown framework {unknown[0]!r}; known: {', '.join(known)}")
    return [known[f] for f in dict.fromkeys(frameworks)]


def _choose_models(models, quick):
    everything = _catalogue.load()
    if models:
        if isinstance(models, str):
            models = [models]
        chosen = _catalogue.select(everything, models)
        if not chosen:
            raise ValueError(f"no model of the catalogue matches {', '.join(map(repr, models))}")
        return chosen
    if quick:
        return [m for m in everything if m.name in QUICK_MODELS]
    return everything


def _choose_dtypes(dtypes, quick):
    if dtypes is None:
        return list(QUICK_DTYPES if quick else DTYPES)
    if isinstance(dtypes, str):
        dtypes = [dtypes]
    for d in dtypes:
        if d not in DTYPES:
            raise ValueError(f"unknown dtype {d!r}; choose from {', '.join(DTYPES)}")
    return list(dict.fromkeys(dtypes))


def _machine() -> dict:
    import numrope

    return {
        "platform": f"{platform.machine()} {platform.system()}",
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numrope": numrope.__version__,
    }


class Plan(typing.NamedTuple):
    """What a run covers: the adapters asked for, the models and the precisions."""

    adapters: list
    models: list
    dtypes: list

    @property
    def installed(self) -> list:
        """The adapters whose framework imports."""
        return [a for a in self.adapters if a.missing() is None]


def plan(frameworks=None, models=None, dtypes=None, *, quick=False) -> Plan:
    """Check and resolve the choices of :func:`run` (ValueError for an unknown name) without running anything.

    Examples
    --------
    >>> from numrope.conformance import plan
    >>> p = plan(frameworks="transformers", models="llama-3", quick=True)
    >>> [m.name for m in p.models], p.dtypes
    (['llama-3.1-8b', 'llama-3.2-1b', 'llama-3.2-3b'], ['float32', 'bfloat16'])
    """
    return Plan(_choose_frameworks(frameworks), _choose_models(models, quick), _choose_dtypes(dtypes, quick))


def run(frameworks=None, models=None, dtypes=None, *, quick=False, seed=0, progress=None) -> dict:
    """Run each installed framework's own RoPE on each catalogue model and judge it against numrope.

    Parameters
    ----------
    frameworks : str or list of str, optional
        Adapter names (see :data:`numrope.conformance.adapters.ADAPTERS`); all by default. A
        framework that is not installed is listed as such, not run.
    models : str or list of str, optional
        Substrings of model names or Hugging Face repository ids; all by default
        (:data:`QUICK_MODELS` with ``quick``).
    dtypes : str or list of str, optional
        Among ``"float32"``, ``"bfloat16"``, ``"float16"``; all by default (float32 and bfloat16
        with ``quick``). Each framework runs those it computes in.
    quick : bool, default False
        Fewer models, precisions, contexts and positions.
    seed : int, default 0
        Seed of the random queries and keys.
    progress : callable, optional
        Called with a label before each (model, framework) pair, e.g. a progress bar's step.

    Returns
    -------
    dict
        JSON-ready: ``results`` (one row per framework, model and precision measured: ``framework``,
        ``version``, ``model``, ``hf_repo``, ``dtype``, ``max_position``, ``max_rel_error``, ``ok``,
        ``diagnosis`` (finding kinds), ``messages``, ``error_at`` (``4k``, ``32k``, ``128k``),
        ``decode_rel_error``, ``error_by_position`` and plumbing ``notes``); ``not_measured``
        (framework, model, reason); ``not_expressible`` (models numrope refuses, with the
        exception and its message); ``frameworks`` (each adapter, its version, or why it is
        missing); ``models``; ``seed``, ``quick``, ``machine``, ``versions``, ``seconds``.

    Raises
    ------
    ValueError
        An unknown framework or precision, or models that match nothing.

    Examples
    --------
    >>> from numrope.conformance import run
    >>> report = run(frameworks=[], models="llama-2-7b", quick=True)
    >>> report["results"], [m["model"] for m in report["models"]]
    ([], ['llama-2-7b'])
    """
    chosen, chosen_models, chosen_dtypes = plan(frameworks, models, dtypes, quick=quick)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    start = time.perf_counter()
    installed, described = [], []
    for adapter in chosen:
        info = adapter.describe()
        why = adapter.missing()
        info["installed"] = why is None
        if why is None:
            info["version"] = adapter.version()
            info["versions"] = adapter.versions()
            installed.append(adapter)
        else:
            info["missing"] = why
        described.append(info)
    results, not_measured, refused, models_out = [], [], [], []
    for model in chosen_models:
        models_out.append(model.describe())
        try:
            cfg = model.read()
        except Exception as exc:  # numrope refuses this config: reported, never guessed around
            refused.append(_refusal(model, exc))
            continue
        models_out[-1]["numrope"] = _config_text(cfg)
        segs = _measure.segments(model.context, quick)
        for adapter in installed:
            if progress is not None:
                progress(f"{adapter.name}: {model.name}")
            results_for, skipped = _run_pair(adapter, model, cfg, chosen_dtypes, segs, int(seed))
            results.extend(results_for)
            not_measured.extend(skipped)
    return _jsonable(
        {
            "results": results,
            "not_measured": not_measured,
            "not_expressible": refused,
            "frameworks": described,
            "models": models_out,
            "seed": int(seed),
            "quick": bool(quick),
            "dtypes": chosen_dtypes,
            "machine": _machine(),
            "versions": {d: v for a in installed for d, v in a.versions().items()},
            "seconds": round(time.perf_counter() - start, 1),
        }
    )


def _jsonable(value):
    """Plain JSON values: NumPy scalars as Python numbers, errors to 4 significant digits, a non-finite one
    as the string "inf" or "nan"."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(f"{float(value):.4g}") if np.isfinite(value) else str(float(value))
    return value


def _refusal(model, exc) -> dict:
    kind = "not expressible by numrope" if isinstance(exc, NotImplementedError) else "not read by numrope"
    return {
        "model": model.name,
        "hf_repo": model.hf_repo,
        "kind": kind,
        "exception": type(exc).__name__,
        "message": str(exc).splitlines()[0] if str(exc) else "",
    }


def _config_text(cfg) -> str:
    from numrope.validation.report import _config_text as text

    return text(cfg)


def _run_pair(adapter, model, cfg, dtypes, segs, seed):
    rows, skipped = [], []
    base = {"framework": adapter.name, "model": model.name}
    try:
        state = adapter.setup(model, cfg)
    except Unsupported as exc:
        return [], [{**base, "dtype": None, "reason": str(exc)}]
    except (Exception, SystemExit) as exc:  # the framework's own setup code failed (or exited) on this model
        state, setup_error = None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    else:
        setup_error = None
    for dtype in dtypes:
        if dtype not in adapter.dtypes:
            skipped.append({**base, "dtype": dtype, "reason": f"{adapter.label} does not compute in {dtype}"})
            continue
        row = {**base, "version": adapter.version(), "hf_repo": model.hf_repo, "dtype": dtype}
        if setup_error is not None:
            row.update(_error_row(segs, setup_error))
        else:
            try:
                row.update(_measure.measure(adapter, state, model, cfg, dtype, segs, seed))
            except Unsupported as exc:
                skipped.append({**base, "dtype": dtype, "reason": str(exc)})
                continue
        row["notes"] = list(state.get("notes", ())) if state else []
        rows.append(row)
    return rows, skipped


def _error_row(segs, message) -> dict:
    return {
        "max_position": int(max(s.max_position for s in segs)),
        "max_rel_error": None,
        "ok": False,
        "diagnosis": ["error"],
        "messages": [f"setup: {message}"],
        "error_at": {},
        "decode_rel_error": None,
        "remarks": [],
        "judged_as": [],
        "segments_skipped": [],
        "error_by_position": [],
    }
