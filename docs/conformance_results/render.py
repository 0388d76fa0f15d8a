"""Write tables.inc, the tables of docs/howto/conformance.rst, from the stored report conformance.json.

Run after storing a new report:

    numrope conformance --json > docs/conformance_results/conformance.json
    python docs/conformance_results/render.py
"""

import json
from pathlib import Path

from numrope.conformance.report import format_rst

HERE = Path(__file__).parent

if __name__ == "__main__":
    report = json.loads((HERE / "conformance.json").read_text())
    (HERE / "tables.inc").write_text(format_rst(report) + "\n")
