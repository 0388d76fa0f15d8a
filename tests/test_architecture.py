"""The package's structure: no import cycles, modules of one concept each, one source per algorithm."""

import ast
import importlib
import warnings
from pathlib import Path

import pytest

import numrope

PACKAGE = Path(numrope.__file__).resolve().parent
MAX_LINES = 600


def _modules():
    """module name -> path for every module of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name, path, modules):
    """numrope modules imported anywhere in ``path`` (function-level imports included)."""
    found = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # "from numrope.x import y" imports numrope.x.y where y is a module
            targets = [
                f"{module}.{alias.name}" if f"{module}.{alias.name}" in modules else module for alias in node.names
            ]
        else:
            continue
        found.update(t for t in targets if t in modules and t != name)
    return found


def import_graph():
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycle(graph):
    """One import cycle as a list of modules, or None."""
    state = {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt == "numrope":  # the package itself: its __init__ imports only the core
                continue
            if state.get(nxt) == "open":
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt, stack)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [])
            if found:
                return found
    return None


def test_no_import_cycles():
    assert _cycle(import_graph()) is None, " -> ".join(_cycle(import_graph()))


def test_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert _cycle(graph) == ["a", "b", "c", "a"]


def test_core_imports_nothing_outside_the_core():
    """The core (config, positions, cache, apply) never reaches into validation, checks, models or the CLI."""
    graph = import_graph()
    core = {"numrope", "numrope.config", "numrope.positions", "numrope.cache", "numrope.apply", "numrope._checks"}
    reach, todo = set(), list(core)
    while todo:
        for nxt in graph[todo.pop()]:
            if nxt not in reach:
                reach.add(nxt)
                todo.append(nxt)
    outside = {m for m in reach if m.split(".")[1:2] and m.split(".")[1] in ("validation", "checks", "cli", "testing")}
    assert not outside


@pytest.mark.parametrize("name", sorted(_modules()))
def test_module_size(name):
    lines = len(_modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines: split it by concept"


def test_one_cos_sin_source():
    """The CPU and GPU kernels compile the same cos/sin function; nothing else in the package defines one."""
    from numrope.kernels import cpu, sincos

    assert cpu._cos_sin is sincos._cos_sin
    for path in PACKAGE.rglob("*.py"):
        if path.parent.name == "checks":
            continue  # numrope's proofs compute exact angles their own, independent way on purpose
        defs = {n.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.FunctionDef)}
        if path.name != "sincos.py":
            assert not defs & {"_cos_sin", "_cos_sin_reduced", "_exact_prod", "_two_prod"}, path
    cuda_source = (PACKAGE / "kernels" / "cuda.py").read_text()
    assert "from numrope.kernels.sincos import _cos_sin" in cuda_source


def test_one_bfloat16_rounding():
    for path in PACKAGE.rglob("*.py"):
        if path.name != "half.py":
            constants = {n.value for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Constant)}
            assert 0x7FFF not in constants, f"{path} rounds to bfloat16 itself"


OLD_NAMES = {
    "numrope.scaling": ("numrope.variants", "YaRN"),
    "numrope.hf": ("numrope.models.hf", "rope_config_to_hf"),
    "numrope.identity": ("numrope.checks.identity", "check_relative"),
    "numrope.precision": ("numrope.checks.precision", "exact_cos_sin"),
    "numrope.validate": ("numrope.validation", "compare"),
    "numrope.emulate": ("numrope.validation.emulate", "round_to"),
    "numrope.convert": ("numrope.validation.convert", "permute_qk_weights"),
    "numrope.bench": ("numrope.cli.bench", "collect"),
}


@pytest.mark.parametrize("old", sorted(OLD_NAMES))
def test_old_module_names_forward_with_a_warning(old):
    new, attr = OLD_NAMES[old]
    import sys

    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    assert any(issubclass(w.category, DeprecationWarning) and new in str(w.message) for w in caught)
    assert getattr(module, attr) is getattr(importlib.import_module(new), attr)
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018
