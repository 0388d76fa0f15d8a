"""numrope proving itself: the mathematics of RoPE and the accuracy of numrope, against independent references.

* :mod:`~numrope.checks.identity` -- the relative-position identity and the rotation-matrix form;
* :mod:`~numrope.checks.matrices` -- the exact rotation matrix, two independent ways;
* :mod:`~numrope.checks.decay` -- RoFormer's long-term decay bound;
* :mod:`~numrope.checks.precision` -- cos/sin against mpmath, in ulps;
* :mod:`~numrope.checks.configs` -- the configurations ``numrope verify`` runs them on.

Each check returns a :class:`~numrope.checks.report.Report`: every comparison against its derived bound.
"""
