"""Write docs/variants/model_sweep.csv: what RopeConfig.from_hf makes of every transformers model type.

Runs the model sweep of tests/test_model_sweep.py (tests/model_sweep.py) over every model type whose
transformers modeling code has a text rotary embedding, and writes one row per model type and variant:
reproduced (with what numrope reads), refused (with the reason), no RoPE in the default config,
multi-axis, or not a text RoPE model. tests/test_model_sweep.py checks every row against the code, so
rerun this after a change that moves one:

    python scripts/model_table.py [--jobs N] [--check]
    python scripts/model_table.py --no-rope   # rewrite numrope/models/_no_rope.py instead

Needs torch and transformers 5.24.0. Exits 1 (writing nothing) if a model type is read and reproduced
wrongly, printing those rows; with --check, exits 1 if the committed table differs, writing nothing.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "docs" / "variants" / "model_sweep.csv"
NO_ROPE = ROOT / "numrope" / "models" / "_no_rope.py"
_NO_ROPE_DOC = '''"""Model types whose transformers 5.24 modeling code has no rotary embedding: no RoPE to read.

:meth:`numrope.RopeConfig.from_hf` refuses a language model of one of these types rather than read
its config as plain RoPE. Written by ``scripts/model_table.py --no-rope`` from transformers 5.24
(``CONFIG_MAPPING_NAMES`` whose ``modeling_<module>.py`` defines no ``*RotaryEmbedding`` class);
``tests/test_model_sweep.py`` checks the list against the installed transformers. Composite models
(LLaVA, PaliGemma, ...) are here too: their language model, in ``text_config``, is read instead.
"""
'''
sys.path.insert(0, str(ROOT / "tests"))


def _row(case):
    import model_sweep

    return model_sweep.sweep(*case)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--check", action="store_true", help="compare with the committed table, write nothing")
    parser.add_argument("--no-rope", action="store_true", help="rewrite numrope/models/_no_rope.py instead")
    args = parser.parse_args(argv)
    import model_sweep

    if args.no_rope:
        import textwrap

        names = " ".join(sorted(model_sweep.no_rope_model_types()))
        lines = textwrap.wrap(names, 112, break_on_hyphens=False, break_long_words=False)
        body = "\n".join("    " + line for line in lines)
        NO_ROPE.write_text(
            _NO_ROPE_DOC + f'\nNO_ROPE: frozenset = frozenset(\n    """\n{body}\n    """.split()\n)\n', encoding="utf-8"
        )
        print(f"wrote {NO_ROPE.relative_to(ROOT)}")
        return 0

    cases = model_sweep.cases()
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        rows = list(pool.map(_row, cases, chunksize=4))
    bad = [r for r in rows if r.status == model_sweep.MISMATCH]
    for r in bad:
        print(f"{r.name}: {r.detail}", file=sys.stderr)
    if bad:
        print(f"{len(bad)} model types read wrongly: table not written", file=sys.stderr)
        return 1
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(model_sweep.HEADER)
    for r in rows:
        writer.writerow(r.csv())
    text = out.getvalue()
    if args.check:
        same = TABLE.exists() and TABLE.read_text(encoding="utf-8") == text
        print("the committed table is current" if same else f"{TABLE} differs from the code", file=sys.stderr)
        return 0 if same else 1
    TABLE.write_text(text, encoding="utf-8")
    counts = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    print(
        f"wrote {TABLE.relative_to(ROOT)}: {len(rows)} rows, {counts}, "
        f"{model_sweep.reproduced_share(rows):.1%} of the buildable model types reproduced"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
