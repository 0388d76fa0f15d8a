"""Frameworks' cos/sin cache tables: read as numrope's tables, and checked on their own.

Three forms are in use:

===============  ===========================================  =====================================
``kind``         the table                                    framework
===============  ===========================================  =====================================
``"vllm"``       ``cos_sin_cache`` of shape                   vLLM's ``RotaryEmbedding``
                 ``(max_position, rotary_dim)``:
                 ``cat(cos, sin)`` along the last axis
``"hf"``         a pair ``(cos, sin)``, each                  Hugging Face transformers' rotary
                 ``(positions, head_dim)`` or                 modules (the ``position_embeddings``
                 ``(positions, rotary_dim)``:                 every attention layer receives)
                 ``cat(f, f)`` of the per-pair values
``"freqs_cis"``  complex ``(positions, rotary_dim / 2)``:     Meta's ``precompute_freqs_cis``
                 ``exp(i m theta)`` (or its                   (llama, llama-models)
                 ``view_as_real``, ``(..., 2)``)
===============  ===========================================  =====================================

:func:`from_framework` returns numrope's ``(cos, sin)`` tables (one column per pair, as
:func:`numrope.rope_cache` builds them), ready for ``apply_rope(..., cache=(cos, sin))``.
:func:`compare_table` checks a table against the configuration it should hold and names what is
wrong with it, from the angles its rows hold (:mod:`numrope.validation.angles`): a table is the
rotation of the unit pairs ``(1, 0)``, so every diagnosis of :func:`compare` applies.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from numrope._interop import as_numpy
from numrope.validation.report import Finding

__all__ = ["KINDS", "compare_table", "from_framework"]

KINDS = ("vllm", "hf", "freqs_cis")


def _real(obj, name):
    arr, precision = as_numpy(obj, name)
    if arr.dtype.kind not in "f" or not precision:
        raise TypeError(f"{name} must hold floats (bfloat16, float16, float32 or float64), got dtype {arr.dtype}")
    return arr, precision


def _squeeze_leading(arr, name):
    """A table with leading axes of length 1 (transformers returns (batch, seq, dim)) as (rows, width)."""
    while arr.ndim > 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (positions, width) (leading axes of 1 allowed), got {arr.shape}")
    return arr


def _read(table, kind):
    """``(cos, sin, precision, layout)``: per-pair columns of the table as it is, before any check of its width."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if kind == "vllm":
        arr, precision = _real(table, "cos_sin_cache")
        arr = _squeeze_leading(arr, "cos_sin_cache")
        if arr.shape[1] % 2:
            raise ValueError(f"cos_sin_cache must have an even width, cat(cos, sin), got shape {arr.shape}")
        half = arr.shape[1] // 2
        return arr[:, :half], arr[:, half:], precision, "half"
    if kind == "freqs_cis":
        arr, precision = as_numpy(table, "freqs_cis")
        if arr.dtype.kind == "c":
            while arr.ndim > 2 and arr.shape[0] == 1:
                arr = arr[0]
            if arr.ndim != 2:
                raise ValueError(f"freqs_cis must have shape (positions, rotary_dim / 2), got {arr.shape}")
            precision = "float32" if arr.dtype == np.complex64 else "float64"
            return arr.real, arr.imag, precision, "half"
        if arr.dtype.kind == "f" and arr.ndim >= 3 and arr.shape[-1] == 2:  # torch.view_as_real
            arr = arr.reshape(arr.shape[:-1] + (2,))
            while arr.ndim > 3 and arr.shape[0] == 1:
                arr = arr[0]
            if arr.ndim != 3:
                raise ValueError(f"freqs_cis as real must have shape (positions, rotary_dim / 2, 2), got {arr.shape}")
            return arr[..., 0], arr[..., 1], precision, "half"
        raise TypeError(
            f"freqs_cis must be complex (positions, rotary_dim / 2) or its view_as_real (..., 2), got dtype "
            f"{arr.dtype} of shape {arr.shape}"
        )
    if not (isinstance(table, (tuple, list)) and len(table) == 2):
        raise TypeError("an hf table is the pair (cos, sin) that transformers' rotary module returns")
    cos, p_cos = _real(table[0], "cos")
    sin, p_sin = _real(table[1], "sin")
    cos, sin = _squeeze_leading(cos, "cos"), _squeeze_leading(sin, "sin")
    if cos.shape != sin.shape:
        raise ValueError(f"cos and sin must have the same shape, got {cos.shape} and {sin.shape}")
    if cos.shape[1] % 2:
        raise ValueError(f"cos and sin must have an even width, cat(f, f), got shape {cos.shape}")
    half = cos.shape[1] // 2
    precision = p_cos if p_cos == p_sin else "float64"
    if np.array_equal(cos[:, :half], cos[:, half:]) and np.array_equal(sin[:, :half], sin[:, half:]):
        return cos[:, :half], sin[:, :half], precision, "half"
    if np.array_equal(cos[:, 0::2], cos[:, 1::2]) and np.array_equal(sin[:, 0::2], sin[:, 1::2]):
        return cos[:, 0::2], sin[:, 0::2], precision, "interleaved"
    return cos[:, :half], sin[:, :half], precision, None


def from_framework(table, kind, cfg):
    """A framework's cos/sin table as numrope's ``(cos, sin)`` tables.

    Parameters
    ----------
    table : array_like or (array_like, array_like)
        ``kind="vllm"``: the ``cos_sin_cache``, ``(max_position, rotary_dim)``;
        ``kind="hf"``: the pair ``(cos, sin)``, each ``(positions, head_dim)`` or
        ``(positions, rotary_dim)`` (leading axes of length 1 allowed);
        ``kind="freqs_cis"``: complex ``(positions, rotary_dim / 2)``, or its ``view_as_real``.
        NumPy arrays, PyTorch CPU tensors (through DLPack), bfloat16 included.
    kind : {"vllm", "hf", "freqs_cis"}
        The form of ``table``.
    cfg : RopeConfig
        The configuration, for the rotary dimension.

    Returns
    -------
    cos, sin : numpy.ndarray
        Shape ``(positions, cfg.rotary_dim // 2)``, float16, float32 or float64 as the table
        (bfloat16 widened to float32, complex64 as float32), C-contiguous, for
        ``numrope.apply_rope(x, cfg, positions, cache=(cos, sin))``.

    Raises
    ------
    TypeError
        A table that is not a float (or, for ``freqs_cis``, complex) array, an hf table that is
        not a pair.
    ValueError
        An unknown ``kind``; a table whose width does not fit ``cfg`` (it names the rotary
        dimension the table is for); an hf table whose halves differ (built with
        ``repeat_interleave`` for the interleaved layout, or not ``cat(f, f)``).

    Examples
    --------
    >>> import numpy as np, numrope
    >>> from numrope.validation.tables import from_framework
    >>> cfg = numrope.RopeConfig(head_dim=8)
    >>> cos, sin = numrope.rope_cache(cfg, 4)
    >>> vllm_cache = np.concatenate([cos, sin], axis=-1)  # (max_position, rotary_dim)
    >>> c, s = from_framework(vllm_cache, "vllm", cfg)
    >>> bool((c == cos).all() and (s == sin).all())
    True
    >>> hf = (np.concatenate([cos, cos], -1), np.concatenate([sin, sin], -1))  # (positions, head_dim)
    >>> bool((from_framework(hf, "hf", cfg)[1] == sin).all())
    True
    """
    from numrope._checks import check_config

    check_config(cfg)
    cos, sin, _, layout = _read(table, kind)
    if kind == "hf" and layout != "half":
        what = (
            "repeats each frequency (repeat_interleave), the form of the interleaved layout"
            if layout == "interleaved"
            else "is not cat(f, f)"
        )
        raise ValueError(f"the hf table's two halves differ: it {what}; transformers' rotate_half reads cat(f, f)")
    if cos.shape[1] != cfg.n_pairs:
        raise ValueError(
            f"the {kind} table holds {cos.shape[1]} pairs, a table for rotary_dim={2 * cos.shape[1]}; cfg has "
            f"rotary_dim={cfg.rotary_dim} ({cfg.n_pairs} pairs)"
        )
    dtype = np.result_type(cos.dtype, np.float16)
    return np.ascontiguousarray(cos, dtype=dtype), np.ascontiguousarray(sin, dtype=dtype)


def _table_cfg(cfg, n_pairs):
    """``cfg`` as the table sees it: half layout, every feature a rotating one, ``n_pairs`` pairs."""
    from numrope.validation.mistakes import replace

    width = 2 * n_pairs
    out = replace(cfg, head_dim=width, rotary_dim=width, layout="half")
    if out is None:
        raise ValueError(f"cfg cannot describe a table of {n_pairs} pairs (rotary_dim {width})")
    return out


def compare_table(table, cfg, *, kind, positions=None, **options):
    """Check a framework's cos/sin table against the configuration it should hold; name what is wrong.

    The table is judged as what it is: the rotation of the unit pair ``(1, 0)`` by each row's
    angles, so the tolerance, the report and the diagnosis are :func:`compare`'s (its dtype sets
    the tolerance; float64 angles unless ``float32_angles=True``, which accepts the tables that
    vLLM and transformers build, angles formed in float32). On top, the table's own form is
    checked: its width (the rotary dimension it is for) and, for ``kind="hf"``, whether it is
    ``cat(f, f)`` or was built for the interleaved layout.

    Parameters
    ----------
    table : array_like or (array_like, array_like)
        As for :func:`from_framework`.
    cfg : RopeConfig
        The configuration the table should hold (scaling and attention factor included).
    kind : {"vllm", "hf", "freqs_cis"}
        The form of ``table``.
    positions : None, int or array_like, optional
        The position of each row: rows ``0 .. n-1`` by default, an int for rows starting there.
    **options
        ``rtol``, ``atol``, ``float32_angles``, ``seq_len`` and ``diagnose``, as for :func:`compare`.

    Returns
    -------
    RopeReport
        ``shape`` is the table's (``(positions, pairs)`` per cos and sin); the worst element is
        located by its row and column in the framework's table, with ``table`` saying ``"cos"``
        or ``"sin"``; the diagnosis names the mistakes (a ``"rotary_dim"`` or ``"layout"``
        finding first where the table's form is wrong).

    Raises
    ------
    TypeError, ValueError
        As :func:`from_framework` (a width that does not fit is a finding, not an error), and
        for bad positions or options; TypeError for a keyword it does not take.
    NotImplementedError
        For multi-axis configurations (``cfg.axes``): their tables are indexed by coordinates.

    Examples
    --------
    >>> import numpy as np, numrope
    >>> from numrope.validation import compare_table
    >>> cfg = numrope.RopeConfig(head_dim=64, base=500000.0)
    >>> cos, sin = numrope.rope_cache(numrope.RopeConfig(head_dim=64), 256)  # base 10000 by mistake
    >>> report = compare_table(np.concatenate([cos, sin], -1), cfg, kind="vllm")
    >>> [f.kind for f in report.diagnosis], report.diagnosis[0].details["base"]
    (['base'], 10000.0)
    """
    from numrope._checks import check_config
    from numrope.validation.case import prepare
    from numrope.validation.tally import Options, in_memory, refuse_unknown

    refuse_unknown("compare_table", options, Options.names() - {"seq_axis", "inverse"})  # a table has neither
    check_config(cfg)
    if cfg.axes is not None:
        raise NotImplementedError("compare_table does not check multi-axis tables (cfg.axes): they hold coordinates")
    cos, sin, precision, layout = _read(table, kind)
    form = []
    if kind == "hf" and layout != "half":
        if layout == "interleaved":
            form.append(
                Finding(
                    "layout",
                    "the table repeats each frequency (repeat_interleave(freqs, 2)), the form of the interleaved "
                    "layout (GPT-J, Meta): transformers' rotate_half pairs features i and i + rotary_dim/2 and "
                    "reads cat(freqs, freqs)",
                    {"layout": "interleaved"},
                )
            )
        else:
            form.append(
                Finding(
                    "layout",
                    "the table's two halves differ: it is not cat(f, f), so features i and i + rotary_dim/2 are "
                    "turned by different angles (its first half is checked below)",
                    {"layout": None},
                )
            )
    n_pairs = cos.shape[1]
    if n_pairs != cfg.n_pairs:
        form.append(
            Finding(
                "rotary_dim",
                f"the table is for rotary_dim={2 * n_pairs} ({n_pairs} pairs), but cfg has rotary_dim="
                f"{cfg.rotary_dim}: its rows are checked against rotary_dim={2 * n_pairs}",
                {"rotary_dim": 2 * n_pairs},
            )
        )
    t_cfg = _table_cfg(cfg, n_pairs)
    options = Options(**options)
    rows = cos.shape[0]
    x = np.zeros((rows, 1, 2 * n_pairs))
    x[..., :n_pairs] = 1.0
    actual = np.concatenate([cos, sin], axis=-1).astype(np.float64)[:, None, :]
    case = prepare(actual, x, t_cfg, positions, seq_axis=-3, seq_len=options.seq_len, names=("table", "x"))
    case = dataclasses.replace(case, precision=precision)
    report = in_memory(case, t_cfg, options)
    worst = _locate(report.worst, kind, n_pairs, layout)
    ok = report.ok and not form
    return dataclasses.replace(
        report,
        ok=ok,
        shape=(rows, n_pairs),
        worst=worst,
        diagnosis=tuple(form) + (report.diagnosis if not report.ok else ()),
    )


def _locate(worst, kind, n_pairs, layout):
    """The worst element located in the framework's table: its row and column, cos or sin."""
    if not worst:
        return worst
    row, feature = worst["index"][0], worst["index"][-1]
    pair, part = feature % n_pairs, ("cos" if feature < n_pairs else "sin")
    if kind == "vllm":
        column = feature
    elif kind == "hf":
        column = 2 * pair if layout == "interleaved" else pair
    else:
        column = pair
    return {**worst, "index": (row, column), "batch": (), "head": (), "feature": column, "pair": pair, "table": part}
