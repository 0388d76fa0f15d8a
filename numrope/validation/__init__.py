"""Checking other frameworks' RoPE against numrope.

* :func:`compare` and :func:`compare_qk` -- the errors of an output, where the worst one is, and
  which common mistake explains a mismatch (:mod:`numrope.validation.diagnose`);
* :func:`compare_table` -- a framework's cos/sin cache table checked on its own, and
  :func:`tables.from_framework` reading one as numrope's tables (:mod:`numrope.validation.tables`);
* :func:`error_bound` -- the tolerance every comparison uses (:mod:`numrope.validation.tolerance`);
* :mod:`numrope.validation.emulate` -- RoPE rounded as other frameworks round it;
* :mod:`numrope.validation.convert` -- moving q/k projection weights between pair layouts.

:mod:`numrope.testing` builds its assertions on these.
"""

from numrope.validation.compare import compare, compare_qk
from numrope.validation.report import Finding, QKReport, RopeReport
from numrope.validation.tables import compare_table
from numrope.validation.tolerance import error_bound

__all__ = ["Finding", "QKReport", "RopeReport", "compare", "compare_qk", "compare_table", "error_bound"]
