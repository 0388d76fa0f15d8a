"""The module paths of numrope 0.1, kept importable with a DeprecationWarning.

numrope 0.1 kept every module in one folder; the subpackages replaced them. Code written for it
(``from numrope.validate import compare``, ``numrope.scaling.YaRN``) keeps working: each old name
is a small module that forwards attribute reads to the new one and warns once when imported.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

#: old module -> new module
RENAMED = {
    "numrope.scaling": "numrope.variants",
    "numrope.hf": "numrope.models.hf",
    "numrope.identity": "numrope.checks.identity",
    "numrope.precision": "numrope.checks.precision",
    "numrope.validate": "numrope.validation",
    "numrope.emulate": "numrope.validation.emulate",
    "numrope.convert": "numrope.validation.convert",
    "numrope.bench": "numrope.cli.bench",
}


class _Forward(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname in RENAMED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return None  # a fresh module object, filled in by exec_module

    def exec_module(self, module):
        new = RENAMED[module.__name__]
        warnings.warn(f"{module.__name__} is now {new}; the old name will be removed", DeprecationWarning, stacklevel=2)
        target = importlib.import_module(new)
        module.__doc__ = f"Renamed: see :mod:`{new}`."
        module.__getattr__ = lambda name: getattr(target, name)
        module.__dir__ = lambda: dir(target)


_FINDER = _Forward()


def install():
    if _FINDER not in sys.meta_path:
        sys.meta_path.append(_FINDER)


def forwarded(name: str) -> types.ModuleType | None:
    """The forwarding module for ``numrope.<name>`` if that is an old name, else None."""
    full = f"numrope.{name}"
    return importlib.import_module(full) if full in RENAMED else None
