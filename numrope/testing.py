"""Assertions for test suites that check a RoPE implementation against numrope, as numpy.testing does.

The tolerance is derived, not guessed: see :func:`error_bound` for the per-element bound and its
derivation, and :func:`assert_rope_allclose` for the assertion built on it.
"""

from __future__ import annotations

from numrope.validation.compare import compare
from numrope.validation.tolerance import error_bound

__all__ = ["assert_rope_allclose", "error_bound"]


def assert_rope_allclose(actual, x, cfg, positions=None, *, err_msg="", **options):
    """Assert that ``actual`` is RoPE applied to ``x``, within the precision of ``actual``'s dtype.

    By default the output is held to the exact rotation rounded to its dtype (float64 angles),
    as :func:`numrope.validation.compare` holds it: the assertion passes exactly when
    ``compare(actual, x, cfg, positions, **options).ok``. ``float32_angles=True`` also accepts
    the error of angles formed in float32 (Hugging Face transformers, vLLM, llama.cpp), which
    grows with the position.

    Parameters
    ----------
    actual : array_like
        The output of the implementation under test: a NumPy array, anything with
        ``__array__`` or ``__dlpack__`` (PyTorch CPU tensors, JAX arrays), bfloat16 included.
    x : array_like
        The input it rotated, same shape.
    cfg : RopeConfig
        The RoPE configuration it should have used.
    positions : None, int or array_like, optional
        The positions, as for :func:`numrope.apply_rope`.
    err_msg : str, optional
        Printed before the report.
    **options
        The comparison's keywords, as for :func:`numrope.validation.compare`: ``seq_axis``
        (default -3; -2 for ``(batch, heads, seq, head_dim)``); ``rtol`` and ``atol``, which
        override the tolerance derived from ``actual``'s dtype (see :func:`error_bound`);
        ``float32_angles`` (default False), which lets the tolerance grow with position as
        angles formed in float32 require (without it such an output fails with a ``precision``
        diagnosis that says so); ``inverse`` (``actual`` should be the inverse rotation);
        ``seq_len``, for the scaling variants that depend on the sequence length; ``offsets``,
        instead of ``positions``; ``diagnose`` (default True), the diagnosis in the message.

    Raises
    ------
    AssertionError
        If any element is outside its bound (or is NaN). The message is the report of
        :func:`numrope.validation.compare`: the largest errors, where the worst element is, the
        error against position, and the likely mistake.
    TypeError, ValueError
        Unreadable inputs, shapes that disagree, a bad configuration, or a keyword that
        :func:`numrope.validation.compare` does not take.

    See Also
    --------
    numrope.validation.compare : the same comparison, returned as a report.
    error_bound : the tolerance and its derivation.

    Examples
    --------
    >>> import numpy as np, numrope
    >>> from numrope.testing import assert_rope_allclose
    >>> cfg = numrope.RopeConfig(head_dim=8)
    >>> x = np.random.default_rng(0).standard_normal((1, 16, 2, 8)).astype(np.float32)
    >>> assert_rope_allclose(numrope.apply_rope(x, cfg), x, cfg)
    >>> assert_rope_allclose(x, x, cfg)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    AssertionError: RoPE mismatch: ...
    """
    report = compare(actual, x, cfg, positions, **options)
    if not report.ok:
        prefix = f"{err_msg}\n" if err_msg else ""
        raise AssertionError(prefix + str(report))
