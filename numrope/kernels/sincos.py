"""cos and sin of ``m * theta`` accurate to the last bit of float64: one source for the CPU and the GPU.

The product ``m * theta`` is formed exactly as a double-double (Dekker's product), reduced modulo
pi/2 against a 169-bit split of pi/2 (Cody and Waite), and the reduced angle's low word is folded
in with a first-order correction. For ``|m * theta| < 2**32`` (k < 2**32 quarter turns keeps every
``k * C_j`` product exact) the result is within one ulp of the exact cosine and sine of the float64
product.

:func:`_cos_sin` is compiled by Numba for the CPU kernels and by numba.cuda for the GPU kernels.
The two targets differ in two primitives only, each a function here with a per-target
implementation: :func:`_exact_prod` (Dekker's splitting on the CPU, where Numba never contracts
``a * b + c`` into an FMA; an explicit FMA on the GPU, where NVVM contracts by default and would break
Dekker's splitting) and :func:`_round_half_even` (``np.rint``; numba.cuda has no ``np.rint``, and its
``round`` also rounds half to even). The GPU implementations are registered by
:mod:`numrope.kernels.cuda`.
"""

import math

import numba
import numpy as np
from numba.extending import overload

from numrope.kernels.jit import jit_twins, njit

# pi/2 = _C1 + _C2 + _C3 + _C4 + _C5 + O(2**-173). _C1.._C3 carry 21 bits each, so k * _Cj is
# exact for |k| < 2**32.
_C1 = float.fromhex("0x1.921fb00000000p+0")
_C2 = float.fromhex("0x1.5110b00000000p-22")
_C3 = float.fromhex("0x1.1846900000000p-44")
_C4 = float.fromhex("0x1.13198a2e03707p-65")
_C5 = float.fromhex("0x1.a252049c1114dp-120")
_TWO_OVER_PI = 0.6366197723675814
_SPLITTER = 134217729.0  # 2**27 + 1, Veltkamp's constant for float64


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


@overload(_exact_prod, target="cpu", inline="always")
def _exact_prod_cpu(a, b):
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


@overload(_round_half_even, target="cpu", inline="always")
def _round_half_even_cpu(x):
    return lambda x: np.rint(x)


# Taylor coefficients (-1)^j / (2j+1)! and (-1)^j / (2j)!: on |r| <= pi/4 the first omitted terms,
# r**19/19! and r**20/20!, are below 2**-66 relative to the result.
_S3, _S5, _S7, _S9, _S11, _S13, _S15, _S17 = ((-1) ** j / math.factorial(2 * j + 1) for j in range(1, 9))
_K4, _K6, _K8, _K10, _K12, _K14, _K16, _K18 = ((-1) ** j / math.factorial(2 * j) for j in range(2, 10))


@njit(inline="always")
def _cos_sin_reduced(r, dr):
    """cos and sin of r + dr for |r| <= pi/4 and |dr| <= ulp(r): polynomials, no library call.

    The large leading terms (r for sin; 1 - r**2/2 for cos, with its rounding error recovered
    exactly) are added last, so each result carries one final rounding plus small-term errors.
    """
    z = r * r
    sin_tail = z * r * (_S3 + z * (_S5 + z * (_S7 + z * (_S9 + z * (_S11 + z * (_S13 + z * (_S15 + z * _S17)))))))
    cos_tail = z * z * (_K4 + z * (_K6 + z * (_K8 + z * (_K10 + z * (_K12 + z * (_K14 + z * (_K16 + z * _K18)))))))
    half_z = 0.5 * z
    w = 1.0 - half_z
    cos = w + (((1.0 - w) - half_z) + (cos_tail - r * dr))
    sin = r + (sin_tail + dr * (1.0 - half_z))
    return cos, sin


@njit(inline="always")
def _cos_sin(m, theta):
    """cos(m * theta), sin(m * theta) for float64 m and theta, the product taken exactly."""
    p, e = _exact_prod(m, theta)
    k = _round_half_even(p * _TWO_OVER_PI)
    hi = p - k * _C1  # exact: Sterbenz's lemma, k * _C1 is exact
    hi, lo = _two_sum(hi, -k * _C2)
    hi, t = _two_sum(hi, e)
    lo += t
    hi, t = _two_sum(hi, -k * _C3)
    lo += t
    c4h, c4l = _exact_prod(k, _C4)
    hi, t = _two_sum(hi, -c4h)
    lo += t - c4l - k * _C5
    r = hi + lo
    dr = lo - (r - hi)
    c, s = _cos_sin_reduced(r, dr)
    # quadrant k mod 4 in floating point, branch-free so that the CPU loops vectorise
    quadrant = k - 4.0 * _round_half_even(0.25 * k - 0.375)
    odd = (quadrant == 1.0) | (quadrant == 3.0)
    cos = s if odd else c
    sin = c if odd else s
    cos = -cos if (quadrant == 1.0) | (quadrant == 2.0) else cos
    sin = -sin if quadrant >= 2.0 else sin
    return cos, sin


def _cos_sin_table(positions, inv_freq, scale, cos, sin):
    """cos[n, i], sin[n, i] = scale * cos/sin(positions[n] * inv_freq[i])."""
    half = inv_freq.shape[0]
    for n in numba.prange(positions.shape[0]):
        m = positions[n]
        for i in range(half):
            c, s = _cos_sin(m, inv_freq[i])
            cos[n, i] = scale * c
            sin[n, i] = scale * s


cos_sin_table_parallel, cos_sin_table_serial = jit_twins(_cos_sin_table)
