"""numrope: the framework-neutral reference implementation of Rotary Position Embedding for NumPy.

The core is here: :class:`RopeConfig`, :func:`apply_rope`, :func:`apply_rope_qk`,
:func:`rope_cache`, :func:`positions_from_cu_seqlens` and :func:`positions_from_offsets`. The
subpackages load on first use:
:mod:`numrope.variants` (scaling variants), :mod:`numrope.axes` (multi-axis RoPE),
:mod:`numrope.models` (model configs), :mod:`numrope.checks` (numrope proving itself),
:mod:`numrope.validation` and
:mod:`numrope.testing` (checking other frameworks), :mod:`numrope.reference` (plain NumPy) and
:mod:`numrope.cuda` (device arrays).
"""

from importlib.metadata import PackageNotFoundError, version

from numrope import _renamed
from numrope.apply import apply_rope, apply_rope_qk
from numrope.cache import rope_cache
from numrope.config import RopeConfig
from numrope.positions import positions_from_cu_seqlens, positions_from_offsets

try:
    __version__ = version("numrope")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

_SUBMODULES = ("axes", "reference", "variants", "models", "checks", "validation", "testing", "cuda")

_renamed.install()


def __getattr__(name):
    # Submodules load on first use, so that `import numrope` stays fast and needs no CUDA.
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"numrope.{name}")
    old = _renamed.forwarded(name)
    if old is not None:
        return old
    raise AttributeError(f"module 'numrope' has no attribute {name!r}")


__all__ = [
    "RopeConfig",
    "apply_rope",
    "apply_rope_qk",
    "positions_from_cu_seqlens",
    "positions_from_offsets",
    "rope_cache",
    "__version__",
]
