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

from numrope._checks import check_seq_axis
from numrope._interop import as_numpy
from numrope.validation import stream as _stream
from numrope.validation.case import prepare
from numrope.validation.report import Finding, QKReport
from numrope.validation.tally import Options, in_memory, refuse_unknown

__all__ = ["compare", "compare_qk"]


def _from_offsets(offsets, positions, x, seq_axis):
    from numrope.positions import positions_from_offsets

    if positions is not None:
        raise ValueError("give positions or offsets, not both")
    shape = tuple(getattr(x, "shape", np.shape(x)))
    ax = check_seq_axis(seq_axis, len(shape), "x")
    return positions_from_offsets(as_numpy(offsets, "offsets").array, shape[ax])


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
    options = Options(seq_axis, rtol, atol, float32_angles, inverse, seq_len, diagnose)  # checked once, here
    if offsets is not None:
        positions = _from_offsets(offsets, positions, x, seq_axis)
    if _stream.wants_streaming(actual, x, cfg):  # large, memory-mapped or Dask inputs: chunk by chunk
        return _stream.compare_chunked(actual, x, cfg, positions, options=options)
    case = prepare(actual, x, cfg, positions, seq_axis=seq_axis, seq_len=seq_len, inverse=inverse)
    return in_memory(case, cfg, options)


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
    refuse_unknown("compare_qk", kwargs, Options.names() | {"offsets"})
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
