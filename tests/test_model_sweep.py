"""Every transformers model type with a text rotary embedding: read right by RopeConfig.from_hf, or refused by name.

For each model type (and each variant whose flag is off by default) :func:`model_sweep.sweep` runs the
model's own rotary module, with the function its attention calls, on random q and k at positions up to
the model's context, and requires numrope to reproduce it within the float32-angle bound, or to answer
None where the layer has no RoPE, or to raise NotImplementedError naming what it lacks. Each row must
also be the one committed to the documentation (``docs/variants/model_sweep.csv``, written by
``scripts/model_table.py``), so the table cannot drift from the code.

Runs where transformers 5.24 is installed (CI pins it); a model type's default config is built, never
its weights.
"""

from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="torch is not installed: the models' rotary code cannot run")
transformers = pytest.importorskip("transformers", reason="transformers is not installed")
if transformers.__version__ != "5.24.0":
    pytest.skip(
        f"the model sweep and its table follow transformers 5.24.0, not {transformers.__version__}",
        allow_module_level=True,
    )

import model_sweep as S  # noqa: E402

from numrope.models._no_rope import NO_ROPE  # noqa: E402

TABLE = Path(__file__).resolve().parent.parent / "docs" / "variants" / "model_sweep.csv"
CASES = S.cases()
COMMITTED = S.read_table(TABLE) if TABLE.exists() else {}


@pytest.mark.parametrize(("model_type", "variant"), CASES, ids=[S.case_id(*c) for c in CASES])
def test_model_type_is_reproduced_or_refused_by_name(model_type, variant):
    row = S.sweep(model_type, variant)
    assert row.status != S.MISMATCH, f"{row.name}: {row.detail}"
    assert COMMITTED.get(row.name) == row, (
        f"{row.name}: the committed table says {COMMITTED.get(row.name)}, the code {row}; "
        "regenerate it with python scripts/model_table.py"
    )


def test_the_table_lists_every_model_type_once():
    assert sorted(COMMITTED) == sorted(S.case_id(*c) for c in CASES)


def test_at_least_95_percent_of_buildable_model_types_are_reproduced():
    share = S.reproduced_share(COMMITTED.values())
    assert share >= 0.95, f"{share:.1%} reproduced"
    refused = [r for r in COMMITTED.values() if r.status == S.REFUSED]
    assert all(r.detail for r in refused)


def test_model_types_without_rope_are_the_ones_transformers_has():
    assert S.no_rope_model_types() == NO_ROPE
