"""Doctests of numrope's modules: an example that needs an optional package skips where it is missing.

numrope's docstrings show, among others, plots (matplotlib) and framework arrays (torch, dask);
the test extra does not install those. An example that stops with ModuleNotFoundError for a package
numrope does not require is reported as skipped, naming the package, rather than failed. A missing
required package (NumPy, Numba, SciPy, mpmath) still fails. This file imports nothing heavy: the
tests' conftest decides on Numba's CUDA simulator before Numba is imported.
"""

import doctest

import pytest

_REQUIRED = {"numrope", "numpy", "numba", "llvmlite", "scipy", "mpmath"}


def _missing_optional(exc):
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        top = exc.name.split(".")[0]
        if top not in _REQUIRED:
            return top
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    try:
        return (yield)
    except doctest.UnexpectedException as failure:
        missing = _missing_optional(failure.exc_info[1])
        if missing is None:
            raise
        pytest.skip(f"the example needs {missing}, which is not installed")
