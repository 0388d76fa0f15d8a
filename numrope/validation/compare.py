"""Comparing another framework's RoPE output with numrope: a report that names the likely mistake.

:func:`compare` checks one rotated array, :func:`compare_qk` a pair of queries and keys. Both
return a report with the errors (absolute, relative to each pair's norm, in ulps), where the
worst element is, the error against position, and a diagnosis that tests the common mistakes:
layouts swapped, wrong base, positions off by a constant, attention scaling missing or doubled,
wrong rotary_dim, rotation the wrong way or cos and sin swapped, q and k swapped, and angles
formed in float32 as opposed to a real bug.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from numrope._checks import check_seq_axis, heads_before_seq
from numrope._interop import as_numpy
from numrope.validation import diagnose as _diagnose
from numrope.validation import diagnose_axes as _diagnose_axes
from numrope.validation import stream as _stream
from numrope.validation.case import prepare, ulp
from numrope.validation.report import Finding, QKReport, RopeReport, _config_text
from numrope.validation.tolerance import _check_tolerance, default_atol, default_rtol, pair_norms, verdict_ratios

__all__ = ["compare", "compare_qk"]


def _ratios(case, cfg, *, rtol, atol, float32_angles):
    """``(err, bound, element ratio, pair-norm ratio)``: an element passes when both ratios are at most 1."""
    kw = {"float32_angles": float32_angles, "rtol": rtol, "atol": atol}
    return verdict_ratios(case.actual, case.expected, case.pos, case.theta, cfg, case.precision, **kw)


def _report(case, cfg, *, rtol, atol, float32_angles, diagnose):
    err, bound, element, norm = _ratios(case, cfg, rtol=rtol, atol=atol, float32_angles=float32_angles)
    ratio = np.maximum(element, norm)
    outside = ratio > 1
    n_outside = int(outside.sum())
    ok = n_outside == 0
    norms = pair_norms(case.expected, cfg)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rel = np.where(norms > 0, err / norms, np.where(err > 0, np.inf, 0.0))
    ulps = err / ulp(norms, case.precision)
    positions, by_pos = _by_position(case.pos, rel.max(axis=(1, 2)) if rel.size else np.zeros(case.pos.size))
    worst = {}
    if ratio.size:
        t, h, j = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
        worst = _worst(case, cfg, t, h, j, err, bound, element, norm)
    tolerance = {
        "rtol": float(bound_rtol(case.precision, rtol)),
        "atol": float(bound_atol(case.precision, atol)),
        "float32_angles": bool(float32_angles),
        "atol_matters": atol is not None or bool((2 * bound_atol(case.precision, atol) >= bound).any()),
    }
    diagnosis, notes, angles = (), [], None
    if ok and float32_angles and err.size:
        strict = _ratios(case, cfg, rtol=rtol, atol=atol, float32_angles=False)
        if (np.maximum(strict[2], strict[3]) > 1).any():
            notes.append(_diagnose.float32_note(case, err, norms))
    elif not ok and diagnose:
        if case.coords is None:  # the findings, and the angles each pair received (numrope.validation.angles)
            found, analysis = _diagnose.diagnose_with_angles(_diagnose.sample(case, ratio), cfg, rtol=rtol, atol=atol)
            diagnosis, angles = tuple(found), None if analysis is None else analysis.to_dict()
        else:  # multi-axis: its own mistakes
            diagnosis = tuple(_diagnose_axes.diagnose(_diagnose.sample(case, ratio), cfg, rtol=rtol, atol=atol))
    if float32_angles and err.size:
        limit = _diagnose.angle_limit_note(case, cfg)
        if limit is not None:
            notes.append(limit)
    return RopeReport(
        ok=ok,
        shape=tuple(case.shape),
        precision=case.precision,
        n_outside=n_outside,
        max_abs_error=float(err.max(initial=0.0)),
        max_rel_error=float(rel.max(initial=0.0)),
        max_ulp_error=float(ulps.max(initial=0.0)),
        worst=worst,
        positions=positions,
        error_by_position=by_pos,
        tolerance=tolerance,
        diagnosis=diagnosis,
        notes=tuple(notes),
        config=_config_text(cfg),
        n_nonfinite=int((~np.isfinite(case.actual)).sum()),
        angles=angles,
    )


def _from_offsets(offsets, positions, x, seq_axis):
    from numrope.positions import positions_from_offsets

    if positions is not None:
        raise ValueError("give positions or offsets, not both")
    shape = tuple(getattr(x, "shape", np.shape(x)))
    ax = check_seq_axis(seq_axis, len(shape), "x")
    return positions_from_offsets(as_numpy(offsets, "offsets").array, shape[ax])


def bound_rtol(precision, rtol):
    return default_rtol(precision) if rtol is None else rtol


def bound_atol(precision, atol):
    return default_atol(precision) if atol is None else atol


def _by_position(pos, token_err):
    positions, inverse = np.unique(pos, return_inverse=True)
    out = np.zeros(positions.size)
    np.maximum.at(out, inverse.reshape(-1), token_err)
    return positions, out


def _worst(case, cfg, t, h, j, err, bound, element, norm):
    lead, seq = case.shape[: case.seq_axis], case.shape[case.seq_axis]
    heads = case.shape[case.seq_axis + 1 : -1]
    lead_index = np.unravel_index(t // seq, lead) if lead else ()
    head_index = np.unravel_index(h, heads) if heads else ()
    index = (*(int(i) for i in lead_index), int(t % seq), *(int(i) for i in head_index), int(j))
    batch_index = tuple(int(i) for i in lead_index)
    if not heads and heads_before_seq(len(case.shape), case.seq_axis):  # (*batch, heads, seq, head_dim)
        batch_index, head_index = batch_index[:-1], batch_index[-1:]
    j0, j1 = cfg.pair_indices(output=True)
    pair = int(np.flatnonzero(j0 == j)[0]) if j in j0 else (int(np.flatnonzero(j1 == j)[0]) if j in j1 else None)
    out = {
        "index": index,
        "batch": batch_index,
        "position": float(case.pos[t]),
        "head": tuple(int(i) for i in head_index),
        "feature": int(j),
        "pair": pair,
        "actual": float(case.actual[t, h, j]),
        "expected": float(case.expected[t, h, j]),
        "error": float(err[t, h, j]),
        "bound": float(bound[t, h, j]),
        "ratio": float(max(element[t, h, j], norm[t, h, j])),
        "measure": "element",
    }
    if pair is not None and norm[t, h, j] > element[t, h, j]:
        a, e = case.actual[t, h], case.expected[t, h]
        out["measure"] = "pair norm"
        with np.errstate(over="ignore", invalid="ignore"):
            out["pair_norm"] = float(np.hypot(a[j0[pair]], a[j1[pair]]))
        out["expected_pair_norm"] = float(np.hypot(e[j0[pair]], e[j1[pair]]))
    return out


def compare(
    actual,
    x,
    cfg,
    positions=None,
    *,
    seq_axis=-3,
    rtol=None,
    atol=None,
    float32_angles=False,
    inverse=False,
    seq_len=None,
    diagnose=True,
    offsets=None,
):
    """Compare another implementation's RoPE output with numrope's and say what is wrong.

    By default the output is held to the exact rotation rounded to its dtype (float64 angles),
    as :func:`numrope.testing.assert_rope_allclose` holds it: the two agree on every output.
    ``float32_angles=True`` also accepts the error of angles formed in float32, as Hugging Face
    transformers, vLLM and llama.cpp form them; without it, such an output is a mismatch
    diagnosed as ``"precision"``.

    Parameters
    ----------
    actual : array_like
        The output under test: NumPy, anything with ``__array__`` or ``__dlpack__`` (PyTorch
        CPU tensors, JAX arrays), bfloat16 included. Its dtype sets the tolerance.
    x : array_like
        The input it rotated, same shape.
    cfg : RopeConfig
        The configuration it should have used.
    positions : None, int or array_like, optional
        As for :func:`numrope.apply_rope`.
    seq_axis : int, default -3
        The sequence axis.
    rtol, atol : float, optional
        Override the derived tolerance (see :func:`numrope.testing.error_bound`).
    float32_angles : bool, default False
        ``False`` holds the output to float64 angles, and an error that only float32 angles
        explain is diagnosed as ``"precision"``. ``True`` accepts the error of angles formed in
        float32, which grows with position (as Hugging Face transformers, vLLM and llama.cpp form
        them); an accepted result then carries a ``"precision"`` note, and an ``"angle_limit"``
        note where positions reach the point beyond which float32 angles carry no information.
    inverse : bool, default False
        ``actual`` should be the inverse rotation.
    seq_len : int, optional
        For the scaling variants that depend on the sequence length.
    diagnose : bool, default True
        Run the diagnosis on a mismatch (on a sample of at most 512 tokens and 8 heads).
    offsets : array_like of int, optional
        Instead of ``positions``: where each sequence of the batch starts, shape ``(batch,)``
        (flash-attn's ``seqlen_offsets``, MLX's array ``offset``); the positions are then
        :func:`numrope.positions_from_offsets` ``(offsets, seq_len)``.

    Returns
    -------
    RopeReport

    Raises
    ------
    TypeError
        Inputs that are not float arrays, or ``cfg`` not a RopeConfig.
    ValueError
        Shapes that disagree, a last axis that is not ``head_dim``, bad positions or ``seq_axis``.

    Notes
    -----
    Inputs of more than :data:`numrope.validation.stream.STREAM_ELEMENTS` elements, memory-mapped
    ones (``np.load(path, mmap_mode="r")``) and Dask arrays are compared chunk by chunk, in memory
    that does not grow with them (:mod:`numrope.validation.stream`); the report is the same.

    The expected output is numrope's in float64 (cos and sin within an ulp of the exact values).
    Each hypothesis of the diagnosis predicts the output under one mistake, with estimated
    parameters where needed (the base from the measured rotation angles, the position offset
    from the phase of every pair, lowest frequency first), and is reported only if the output
    then matches within the tolerance with float32 angles allowed. When none does, the single
    finding is of kind ``"unexplained"``.

    Examples
    --------
    >>> import numpy as np, numrope
    >>> from numrope.validation import compare
    >>> cfg = numrope.RopeConfig(head_dim=16)
    >>> x = np.random.default_rng(0).standard_normal((1, 32, 2, 16))
    >>> wrong = numrope.apply_rope(x, numrope.RopeConfig(head_dim=16, layout="interleaved"))
    >>> report = compare(wrong, x, cfg)
    >>> report.ok, [f.kind for f in report.diagnosis]
    (False, ['layout'])
    >>> compare(numrope.apply_rope(x, cfg), x, cfg).ok
    True
    """
    rtol, atol = _check_tolerance("rtol", rtol), _check_tolerance("atol", atol)
    if offsets is not None:
        positions = _from_offsets(offsets, positions, x, seq_axis)
    if _stream.wants_streaming(actual, x, cfg):  # large, memory-mapped or Dask inputs: chunk by chunk
        return _stream.compare_chunked(
            actual,
            x,
            cfg,
            positions,
            worst_element=_worst,
            by_position=_by_position,
            seq_axis=seq_axis,
            rtol=rtol,
            atol=atol,
            float32_angles=float32_angles,
            inverse=inverse,
            seq_len=seq_len,
            diagnose=diagnose,
        )
    case = prepare(actual, x, cfg, positions, seq_axis=seq_axis, seq_len=seq_len, inverse=inverse)
    return _report(case, cfg, rtol=rtol, atol=atol, float32_angles=bool(float32_angles), diagnose=bool(diagnose))


def compare_qk(actual_q, actual_k, q, k, cfg, positions=None, **kwargs):
    """Compare rotated queries and keys with numrope's; also detects q and k swapped.

    The tolerance is :func:`compare`'s: float64 angles unless ``float32_angles=True``.

    Parameters
    ----------
    actual_q, actual_k : array_like
        The outputs under test.
    q, k : array_like
        The inputs they rotated. Their head counts may differ (grouped-query attention).
    cfg, positions
        As for :func:`compare`; the positions apply to both.
    **kwargs
        ``seq_axis``, ``rtol``, ``atol``, ``float32_angles``, ``inverse``, ``seq_len``,
        ``diagnose``, ``offsets``, as for :func:`compare`.

    Returns
    -------
    QKReport

    Raises
    ------
    TypeError, ValueError
        As :func:`compare`.

    Examples
    --------
    >>> import numpy as np, numrope
    >>> from numrope.validation import compare_qk
    >>> cfg = numrope.RopeConfig(head_dim=8)
    >>> rng = np.random.default_rng(0)
    >>> q, k = rng.standard_normal((2, 1, 16, 2, 8))
    >>> q_rot, k_rot = numrope.apply_rope_qk(q, k, cfg)
    >>> [f.kind for f in compare_qk(k_rot, q_rot, q, k, cfg).diagnosis]
    ['swapped']
    """
    unknown = set(kwargs) - {"seq_axis", "rtol", "atol", "float32_angles", "inverse", "seq_len", "diagnose", "offsets"}
    if unknown:
        raise TypeError(f"compare_qk() got unexpected keyword arguments {sorted(unknown)}")
    diagnose = kwargs.pop("diagnose", True)
    rq = compare(actual_q, q, cfg, positions, diagnose=False, **kwargs)
    rk = compare(actual_k, k, cfg, positions, diagnose=False, **kwargs)
    if rq.ok and rk.ok:
        return QKReport(rq, rk, ())
    if diagnose:
        if rq.shape == rk.shape:  # the reports' shapes are those of q and k, checked
            # judged as every hypothesis of the diagnosis is, with float32 angles allowed
            swapped = {**kwargs, "float32_angles": True}
            sq = compare(actual_q, k, cfg, positions, diagnose=False, **swapped)
            sk = compare(actual_k, q, cfg, positions, diagnose=False, **swapped)
            if sq.ok and sk.ok:
                finding = Finding(
                    "swapped",
                    "q and k are swapped: the rotated queries are the rotated keys and the other way round",
                )
                return QKReport(rq, rk, (finding,))
        rq = compare(actual_q, q, cfg, positions, **kwargs) if not rq.ok else rq
        rk = compare(actual_k, k, cfg, positions, **kwargs) if not rk.ok else rk
    findings = [
        dataclasses.replace(f, message=f"{name}: {f.message}")
        for name, report in (("q", rq), ("k", rk))
        for f in report.diagnosis
    ]
    return QKReport(rq, rk, tuple(findings))
