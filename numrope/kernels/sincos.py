"""cos and sin of ``m * theta`` accurate to the last bit of float64: one source for the CPU and the GPU.

The product ``m * theta`` is formed exactly as a double-double (Dekker's product) and reduced modulo
pi/2 in one of two ways:

* near, ``|m * theta| < 2**32`` (:func:`_cos_sin`): against a 169-bit split of pi/2 whose leading
  parts carry 21 bits (Cody and Waite), so that ``k * C_j`` is exact for ``k < 2**32`` quarter turns.
  Branch-free: the CPU loops over it vectorise.
* far, ``2**32 <= |m * theta| < 1.5 * 2**53`` (:func:`_cos_sin_far`): the nearest ``k`` taken from a
  double-double ``2/pi``, then ``k`` times pi/2 in 53-bit parts, each product exact (``_exact_prod``),
  and the eight terms of the remainder summed by three passes of error-free additions (Ogita, Rump
  and Oishi's cascaded summation), exact to about ``2**-160`` radians.

Either way the reduced angle and its low word go to the same polynomials, and the result is within
one ulp of the exact cosine and sine of the float64 product. Beyond the far range ``k`` would not
be an integer in float64: :func:`_cos_sin_any` returns NaN there, and the callers refuse angles from
``2**53`` on (:func:`numrope._checks.check_angles`) before any kernel runs.

The CPU kernels come in two compilations (see :func:`far_twin`): the common one holds the near
path only, in a loop LLVM vectorises, and the far one, run only where some angle needs it, follows
each row's near loop with the far path for its far entries (:func:`_far_entries`). The GPU kernels
branch per entry (:func:`_cos_sin_any`).

:func:`_cos_sin` is compiled by Numba for the CPU kernels and by numba.cuda for the GPU kernels.
The two targets differ in three primitives only, each a function here with a per-target
implementation: :func:`_exact_prod` (on the CPU an explicit FMA where the machine has one, else
Dekker's splitting, which Numba never breaks by contracting ``a * b + c`` into an FMA; an explicit
FMA on the GPU, where NVVM contracts by default and would break Dekker's splitting),
:func:`_mul_add` (the polynomials' Horner steps and the small terms of the reduction, fused where the
machine has an FMA: one rounding fewer each, and the CPU's table kernel 3.0 -> 2.35 ns an angle on
one thread) and :func:`_round_half_even` (``np.rint``; numba.cuda has no ``np.rint``, and its
``round`` also rounds half to even). The GPU implementations are registered by
:mod:`numrope.kernels.cuda`.
"""

import math
import types

import numba
import numpy as np
from llvmlite import binding
from numba.core import types as nbtypes
from numba.extending import intrinsic, overload

from numrope.kernels.jit import jit_twins, njit, wide_vectors

# pi/2 = _C1 + _C2 + _C3 + _C4 + _C5 + O(2**-173). _C1.._C3 carry 21 bits each, so k * _Cj is
# exact for |k| < 2**32.
_C1 = float.fromhex("0x1.921fb00000000p+0")
_C2 = float.fromhex("0x1.5110b00000000p-22")
_C3 = float.fromhex("0x1.1846900000000p-44")
_C4 = float.fromhex("0x1.13198a2e03707p-65")
_C5 = float.fromhex("0x1.a252049c1114dp-120")
_TWO_OVER_PI = 0.6366197723675814
_SPLITTER = 134217729.0  # 2**27 + 1, Veltkamp's constant for float64

# The far path. pi/2 = _P1 + _P2 + _P3 + _P4 + O(2**-217), each part the rest rounded to 53 bits;
# 2/pi = _TWO_OVER_PI + _TWO_OVER_PI_LO + O(2**-108).
_P1 = float.fromhex("0x1.921fb54442d18p+0")
_P2 = float.fromhex("0x1.1a62633145c07p-54")
_P3 = float.fromhex("-0x1.f1976b7ed8fbcp-110")
_P4 = float.fromhex("0x1.4cf98e804177dp-164")
_TWO_OVER_PI_LO = float.fromhex("-0x1.6b01ec5417056p-55")
#: ``|fl(m * theta)|`` from which the far path is taken (the near path's k * C_j are exact below).
NEAR_LIMIT = 2.0**32
#: ``|fl(m * theta)|`` from which the far path has no exact result: there the nearest number of quarter
#: turns, ``k``, nears 2**53, past which float64 holds no longer every integer. numrope accepts angles
#: below 2**53 (numrope.config.MAX_ANGLE); the margin absorbs the rounding of the checks.
FAR_LIMIT = 1.5 * 2.0**53


@njit(inline="always")
def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _split(a):
    t = _SPLITTER * a
    hi = t - (t - a)
    return hi, a - hi


def _exact_prod(a, b):
    """``p, e`` with ``p = fl(a * b)`` and ``p + e == a * b`` exactly (Dekker's product).

    This Python body is what runs under ``NUMBA_DISABLE_JIT``; compiled code uses the target's
    implementation registered below (CPU) or in :mod:`numrope.kernels.cuda` (GPU).
    """
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _round_half_even(x):
    """``x`` rounded to the nearest integer, ties to even, as a float."""
    return np.rint(x)


def _host_fma() -> bool:
    """Whether the CPU kernels are compiled for this machine's CPU and it has a fused multiply-add."""
    if numba.config.CPU_NAME or numba.config.CPU_FEATURES:  # a portable target: maybe no FMA instruction
        return False
    try:
        return "+fma" in binding.get_host_cpu_features().flatten().split(",")
    except RuntimeError:  # features unknown on this platform
        return False


@intrinsic
def _fma(typingctx, a, b, c):
    """``a * b + c`` rounded once: the hardware's fused multiply-add."""

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return nbtypes.float64(nbtypes.float64, nbtypes.float64, nbtypes.float64), codegen


@overload(_exact_prod, target="cpu", inline="always")
def _exact_prod_cpu(a, b):
    if _host_fma():
        # the error of a rounded product is exactly representable, and an FMA computes it in one
        # rounding: the same (p, e) as Dekker's product, which is exact too, in two operations
        # instead of seventeen (the table of cos/sin 12% faster)
        def fused(a, b):
            p = a * b
            return p, _fma(a, b, -p)

        return fused

    def impl(a, b):
        p = a * b
        t = _SPLITTER * a
        ah = t - (t - a)
        al = a - ah
        t = _SPLITTER * b
        bh = t - (t - b)
        bl = b - bh
        return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl

    return impl


def _mul_add(a, b, c):
    """``a * b + c``, fused into one rounding where the target has an FMA: the polynomials' Horner steps and the
    small terms of the reduction."""
    return a * b + c


@overload(_mul_add, target="cpu", inline="always")
def _mul_add_cpu(a, b, c):
    if _host_fma():
        return lambda a, b, c: _fma(a, b, c)
    return lambda a, b, c: a * b + c


@overload(_round_half_even, target="cpu", inline="always")
def _round_half_even_cpu(x):
    return lambda x: np.rint(x)


# Taylor coefficients (-1)^j / (2j+1)! and (-1)^j / (2j)!: on |r| <= pi/4 the first omitted terms,
# r**19/19! and r**20/20!, are below 2**-66 relative to the result.
_S3, _S5, _S7, _S9, _S11, _S13, _S15, _S17 = ((-1) ** j / math.factorial(2 * j + 1) for j in range(1, 9))
_K4, _K6, _K8, _K10, _K12, _K14, _K16, _K18 = ((-1) ** j / math.factorial(2 * j) for j in range(2, 10))


@njit(inline="always")
def _horner(z, c0, c1, c2, c3, c4, c5, c6, c7):
    """``c0 + z * (c1 + z * (... + z * c7))``, each step one :func:`_mul_add`."""
    p = _mul_add(z, c7, c6)
    p = _mul_add(z, p, c5)
    p = _mul_add(z, p, c4)
    p = _mul_add(z, p, c3)
    p = _mul_add(z, p, c2)
    p = _mul_add(z, p, c1)
    return _mul_add(z, p, c0)


@njit(inline="always")
def _cos_sin_reduced(r, dr):
    """cos and sin of r + dr for |r| <= pi/4 and |dr| <= ulp(r): polynomials, no library call.

    The large leading terms (r for sin; 1 - r**2/2 for cos, with its rounding error recovered
    exactly) are added last, so each result carries one final rounding plus small-term errors.
    """
    z = r * r
    sin_tail = z * r * _horner(z, _S3, _S5, _S7, _S9, _S11, _S13, _S15, _S17)
    cos_tail = z * z * _horner(z, _K4, _K6, _K8, _K10, _K12, _K14, _K16, _K18)
    half_z = 0.5 * z
    w = 1.0 - half_z
    cos = w + (((1.0 - w) - half_z) + _mul_add(-r, dr, cos_tail))
    sin = r + _mul_add(dr, 1.0 - half_z, sin_tail)
    return cos, sin


@njit(inline="always")
def _in_quadrant(c, s, quadrant):
    """cos and sin of ``r + quadrant * pi/2`` from those of ``r``, for ``quadrant`` in 0.0 .. 3.0."""
    odd = (quadrant == 1.0) | (quadrant == 3.0)
    cos = s if odd else c
    sin = c if odd else s
    cos = -cos if (quadrant == 1.0) | (quadrant == 2.0) else cos
    sin = -sin if quadrant >= 2.0 else sin
    return cos, sin


@njit(inline="always")
def _cos_sin(m, theta):
    """cos(m * theta), sin(m * theta) for float64 m and theta, the product taken exactly.

    Exact to an ulp for ``|fl(m * theta)| < NEAR_LIMIT`` only (see :func:`_cos_sin_any`).
    """
    p, e = _exact_prod(m, theta)
    k = _round_half_even(p * _TWO_OVER_PI)
    hi = _mul_add(k, -_C1, p)  # exact: Sterbenz's lemma, k * _C1 is exact
    hi, lo = _two_sum(hi, -k * _C2)
    hi, t = _two_sum(hi, e)
    lo += t
    hi, t = _two_sum(hi, -k * _C3)
    lo += t
    c4h, c4l = _exact_prod(k, _C4)
    hi, t = _two_sum(hi, -c4h)
    lo += _mul_add(k, -_C5, t - c4l)
    r = hi + lo
    dr = lo - (r - hi)
    c, s = _cos_sin_reduced(r, dr)
    # quadrant k mod 4 in floating point, branch-free so that the CPU loops vectorise
    return _in_quadrant(c, s, k - 4.0 * _round_half_even(0.25 * k - 0.375))


@njit(inline="always")
def _distil(a0, a1, a2, a3, a4, a5, a6, a7):
    """One pass of error-free additions: the same exact sum, its rounded value carried into ``a7``."""
    a1, a0 = _two_sum(a1, a0)
    a2, a1 = _two_sum(a2, a1)
    a3, a2 = _two_sum(a3, a2)
    a4, a3 = _two_sum(a4, a3)
    a5, a4 = _two_sum(a5, a4)
    a6, a5 = _two_sum(a6, a5)
    a7, a6 = _two_sum(a7, a6)
    return a0, a1, a2, a3, a4, a5, a6, a7


@njit(inline="always")
def _cos_sin_far(m, theta):
    """cos(m * theta), sin(m * theta) for ``|fl(m * theta)| < FAR_LIMIT``, the product taken exactly.

    The far path: ``m * theta = p + e`` exactly; ``k``, the nearest integer to ``(p + e) * 2/pi``
    (``|k| < 2**53``), from a double-double 2/pi; and the remainder ``p + e - k * pi/2`` as eight
    terms, ``k * _Pj`` split exactly into ``hi + lo``: ``p - hi_1`` (exact, Sterbenz's lemma),
    ``e``, ``-lo_1``, ``-hi_2``, ``-lo_2``, ``-hi_3``, ``-lo_3`` and ``-k * _P4``, rounded, from
    about 2 down to ``2**-110``. Their sum is the remainder to within ``|k| 2**-217`` and the
    rounding of ``k * _P4``, together below ``2**-163``. It may be tiny (``m * theta`` next to a
    multiple of pi/2 after a long cancellation), so it is summed by cascaded summation (Ogita, Rump
    and Oishi 2005, SumK with K = 4): three error-free passes, then the rest added to the result,
    which is within about ``2**-100`` of it relative plus ``2**-190`` absolute.
    """
    p, e = _exact_prod(m, theta)
    y, y_lo = _exact_prod(p, _TWO_OVER_PI)
    k = _round_half_even(y)
    # y - k is exact; the rest of (p + e) * 2/pi is below 2 in magnitude and known to ~2**-50
    k += _round_half_even((y - k) + (y_lo + (p * _TWO_OVER_PI_LO + e * _TWO_OVER_PI)))
    h1, l1 = _exact_prod(k, _P1)
    h2, l2 = _exact_prod(k, _P2)
    h3, l3 = _exact_prod(k, _P3)
    a = _distil(-k * _P4, -l3, -h3, -l2, -h2, -l1, e, p - h1)
    a = _distil(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7])
    a = _distil(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7])
    r, dr = _two_sum(a[7], ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + a[6]))
    c, s = _cos_sin_reduced(r, dr)
    # |k| < 2**53: exact as an integer, whose two low bits are the quadrant
    return _in_quadrant(c, s, float(int(k) & 3))


@njit(inline="always")
def _cos_sin_any(m, theta):
    """cos(m * theta), sin(m * theta) by the near or the far path; NaN from FAR_LIMIT on."""
    angle = abs(m * theta)
    if angle < NEAR_LIMIT:
        return _cos_sin(m, theta)
    if angle < FAR_LIMIT:
        return _cos_sin_far(m, theta)
    return math.nan, math.nan


@njit(inline="always")
def _top_frequency(inv_freq):
    """The largest ``|inv_freq[i]|`` (0.0 for none): four running maxima, for a short dependency chain."""
    t0 = t1 = t2 = t3 = 0.0
    n = inv_freq.shape[0]
    i = 0
    while i + 4 <= n:
        t0 = max(t0, abs(inv_freq[i]))
        t1 = max(t1, abs(inv_freq[i + 1]))
        t2 = max(t2, abs(inv_freq[i + 2]))
        t3 = max(t3, abs(inv_freq[i + 3]))
        i += 4
    while i < n:
        t0 = max(t0, abs(inv_freq[i]))
        i += 1
    return max(max(t0, t1), max(t2, t3))


@njit(inline="always")
def _any_far(m_max, inv_freq):
    """Whether some ``|fl(m * inv_freq[i])|`` reaches NEAR_LIMIT for some ``|m| <= m_max``: a count
    LLVM vectorises (``fl`` is monotonic, so ``m_max`` decides)."""
    n = 0
    for i in range(inv_freq.shape[0]):
        n += m_max * abs(inv_freq[i]) >= NEAR_LIMIT
    return n > 0


@njit
def _far_entries(m, inv_freq, scale, cos, sin, row):
    """Recompute by the far path the entries of row ``row`` whose angle reaches NEAR_LIMIT.

    Called by the far compilation of a kernel only, after its near loop has filled the row.
    """
    for i in range(inv_freq.shape[0]):
        if abs(m * inv_freq[i]) >= NEAR_LIMIT:
            c, s = _cos_sin_any(m, inv_freq[i])
            cos[row, i] = scale * c
            sin[row, i] = scale * s


#: False in the common compilation of a kernel, True in its far compilation (see :func:`far_twin`).
_FAR_TWIN = False


def far_twin(kernel):
    """The far compilation's source: a copy of the Python function ``kernel`` that sees ``_FAR_TWIN`` True.

    A kernel's common compilation computes near angles only: if some angle may reach NEAR_LIMIT, it
    returns False before writing anything, and the launcher runs the far compilation, which follows
    each row's near loop with :func:`_far_entries` where the row needs it. Numba compiles a global as
    a constant, so the common compilation holds no far code (a call in the loop nest, even one never
    taken, cost its vectorised loop a few per cent), and it takes the arguments it always took (an
    argument telling the two apart cost each call 75 ns of dispatch). The copy is named
    ``<name>_far``: Numba's disk cache keys entries by name.
    """
    g = dict(kernel.__globals__, _FAR_TWIN=True)
    twin = types.FunctionType(kernel.__code__, g, kernel.__name__ + "_far", kernel.__defaults__, kernel.__closure__)
    twin.__qualname__ = kernel.__qualname__ + "_far"
    twin.__doc__ = kernel.__doc__
    return twin


def _cos_sin_table(positions, inv_freq, scale, cos, sin):
    """cos[n, i], sin[n, i] = scale * cos/sin(positions[n] * inv_freq[i]); returns whether it wrote them
    (False, in the common compilation, where some angle is far: see :func:`far_twin`)."""
    top = _top_frequency(inv_freq)
    if not _FAR_TWIN:
        n_far = 0
        for n in range(positions.shape[0]):  # a vectorised count: cheaper than a parallel launch
            n_far += abs(positions[n]) * top >= NEAR_LIMIT  # fl is monotonic: top decides
        if n_far:
            return False
    half = inv_freq.shape[0]
    for n in numba.prange(positions.shape[0]):
        wide_vectors()
        m = positions[n]
        for i in range(half):
            c, s = _cos_sin(m, inv_freq[i])
            cos[n, i] = scale * c
            sin[n, i] = scale * s
        if _FAR_TWIN:
            if abs(m) * top >= NEAR_LIMIT:
                _far_entries(m, inv_freq, scale, cos, sin, n)
    return True


cos_sin_table_parallel, cos_sin_table_serial = jit_twins(_cos_sin_table)
cos_sin_table_far_parallel, cos_sin_table_far_serial = jit_twins(far_twin(_cos_sin_table))
