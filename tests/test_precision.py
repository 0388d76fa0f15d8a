"""cos/sin tables against an arbitrary-precision reference (numrope.checks.precision, mpmath).

numrope.rope_cache claims: float64 within 1 ulp of the exact cos/sin(m theta_i) for every position
below 2**53 (inv_freq's float64 values taken as exact; 3 ulp with an attention factor other than 1),
float32 and float16 correctly rounded from that. These tests measure the claim with mpmath on random
positions over the whole range and on adversarial ones, where m theta_i lies next to a multiple of
pi/2: below 2**31, where angles take the near path of numrope's cos/sin, and from 2**32 to 2**53,
where they take the far path.
"""

import math
import sys

import numpy as np
import pytest

import numrope

mpmath = pytest.importorskip("mpmath", reason="the precision tests need mpmath (pip install mpmath)")

from numrope.checks import precision  # noqa: E402
from numrope.checks.configs import standard_configs  # noqa: E402

LLAMA2 = numrope.RopeConfig(head_dim=128, base=10000.0)
LLAMA3 = numrope.RopeConfig(head_dim=128, base=500000.0)
MAX_POSITION = 2**31


def _max_ulp(cfg, positions, dtype=np.float64, **kw):
    ulp_cos, ulp_sin = precision.cos_sin_ulp_error(cfg, positions, dtype, **kw)
    return max(ulp_cos.max(), ulp_sin.max())


# --- the reference itself -------------------------------------------------------------------------


def test_exact_cos_sin_agrees_with_the_c_library_on_small_angles():
    # math.cos/math.sin (the platform libm) are within an ulp for small arguments; the exact
    # values' hi parts must be within an ulp of them (positions are powers of two, so m * t is
    # exact in float64 too), and hi + lo satisfy cos^2 + sin^2 = 1 to far beyond float64
    theta = np.array([1.0, 0.3, 1e-4])
    ex = precision.exact_cos_sin([0, 1, 2, 4, 16], theta)
    for a, m in enumerate((0, 1, 2, 4, 16)):
        for i, t in enumerate(theta):
            assert abs(ex.cos[a, i] - math.cos(m * t)) <= math.ulp(ex.cos[a, i])
            assert abs(ex.sin[a, i] - math.sin(m * t)) <= math.ulp(ex.sin[a, i]) + 1e-300
    with mpmath.workprec(256):
        for c, cl, s, sl in zip(ex.cos.ravel(), ex.cos_lo.ravel(), ex.sin.ravel(), ex.sin_lo.ravel(), strict=True):
            one = (mpmath.mpf(c) + mpmath.mpf(cl)) ** 2 + (mpmath.mpf(s) + mpmath.mpf(sl)) ** 2
            assert abs(one - 1) < mpmath.mpf(2) ** -100


def test_exact_cos_sin_applies_the_scale():
    ex = precision.exact_cos_sin([2], [0.25], scale=1.5)
    assert ex.cos[0, 0] == pytest.approx(1.5 * math.cos(0.5), rel=2e-16)


def test_ulp_error_by_hand():
    one = np.array([1.0])
    assert precision.ulp_error(np.array([1.0 + 2.0**-52]), one).tolist() == [1.0]
    assert precision.ulp_error(np.float32([1.0 + 2.0**-23]), one).tolist() == [1.0]
    assert precision.ulp_error(np.float16([1.0]), np.array([1.0 + 2.0**-11])).tolist() == [0.5]
    # exact just below 1: the ulp is that of [0.5, 1), 2**-53
    assert precision.ulp_error(np.array([1.0]), one, -(2.0**-60)).tolist() == [2.0**-7]
    assert precision.ulp_error(np.array([1.0 - 2.0**-53]), one, -(2.0**-54)).tolist() == [0.5]
    # subnormal spacing at zero
    assert precision.ulp_error(np.array([0.0]), np.array([0.0])).tolist() == [0.0]
    with pytest.raises(TypeError, match="float16, float32 or float64"):
        precision.ulp_error(np.array([1]), one)


def test_missing_mpmath_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpmath", None)
    with pytest.raises(ImportError, match="pip install mpmath"):
        precision.exact_cos_sin([1], [1.0])


def test_bad_positions():
    with pytest.raises(ValueError, match="finite"):
        precision.exact_cos_sin([np.nan], [1.0])
    with pytest.raises(TypeError, match="integers or real"):
        precision.exact_cos_sin(["a"], [1.0])
    with pytest.raises(ValueError, match="1-D"):
        precision.error_vs_position(LLAMA2, [[1, 2]])


# --- numrope's float64 tables: within one ulp ----------------------------------------------------


@pytest.mark.parametrize("cfg", [LLAMA2, LLAMA3], ids=["base 1e4", "base 5e5"])
def test_float64_within_one_ulp_at_random_positions_over_the_whole_range(cfg):
    rng = np.random.default_rng(2021)
    positions = np.concatenate([rng.integers(0, MAX_POSITION, 160), [MAX_POSITION - 1, MAX_POSITION - 2]])
    assert _max_ulp(cfg, positions) <= 1.0


def test_float64_within_one_ulp_at_every_small_position():
    assert _max_ulp(LLAMA2, np.arange(512)) <= 1.0


def test_float64_within_one_ulp_at_random_positions_per_binade():
    # log-uniform positions: every binade from 1 to 2**31 gets its share
    rng = np.random.default_rng(7)
    positions = np.unique(np.exp2(rng.uniform(0, 31, 200)).astype(np.int64))
    assert _max_ulp(LLAMA3, positions) <= 1.0


def _adversarial(cfg, pairs):
    """(pair, positions) with m theta_pair near a multiple of pi/2, from the continued fractions."""
    theta = cfg.inv_freq()
    return [(i, precision.adversarial_positions(theta[i : i + 1], MAX_POSITION - 1)) for i in pairs]


@pytest.mark.parametrize("cfg", [LLAMA2, LLAMA3], ids=["base 1e4", "base 5e5"])
def test_float64_within_one_ulp_next_to_multiples_of_half_pi(cfg):
    worst = (0.0, None)
    for i, positions in _adversarial(cfg, range(cfg.n_pairs)):
        cos, sin = numrope.rope_cache(cfg, positions, np.float64)
        ex = precision.exact_cos_sin(positions, cfg.inv_freq()[i : i + 1])
        err = np.maximum(
            precision.ulp_error(cos[:, i : i + 1], ex.cos, ex.cos_lo),
            precision.ulp_error(sin[:, i : i + 1], ex.sin, ex.sin_lo),
        )[:, 0]
        j = int(np.argmax(err))
        if err[j] > worst[0]:
            worst = (float(err[j]), (int(positions[j]), i, float(cfg.inv_freq()[i])))
    assert worst[0] <= 1.0, f"{worst[0]:.3f} ulp at (m, pair, theta) = {worst[1]}"


def test_float64_within_one_ulp_for_the_hardest_of_many_frequencies():
    # Any float64 theta counts, not only those of common bases. Frequencies in (0.5, 1) (Linear
    # scaling by a factor in (1, 2)) reach ~10**9 quarter turns by position 2**31, so the whole
    # 169-bit pi/2 matters. Over 3000 of them the continued fractions find m theta within ~3e-15
    # of a multiple of pi/2 (a cosine of ~2**-48): there an argument reduction that drops the last
    # terms of pi/2 is off by hundreds of ulps.
    rng = np.random.default_rng(0)
    cases = []
    for factor in rng.uniform(1.0, 2.0, 3000):
        cfg = numrope.RopeConfig(head_dim=2, scaling=numrope.variants.Linear(factor=float(factor)))
        positions = precision.adversarial_positions(cfg.inv_freq(), MAX_POSITION - 1)[-2:]
        cos, sin = numrope.rope_cache(cfg, positions, np.float64)
        closeness = np.minimum(np.abs(cos), np.abs(sin))[:, 0]
        cases.append((float(closeness.min()), cfg, positions))
    cases.sort(key=lambda case: case[0])
    assert cases[0][0] < 1e-14  # the search did find hard cases
    for _closeness, cfg, positions in cases[:12]:
        ulp_cos, ulp_sin = precision.cos_sin_ulp_error(cfg, positions, np.float64)
        worst = max(ulp_cos.max(), ulp_sin.max())
        assert worst <= 1.0, f"{worst:.3f} ulp at theta={cfg.inv_freq()[0]!r}, positions {positions.tolist()}"


def test_adversarial_positions_are_adversarial():
    # they bring m theta within 1e-8 of a multiple of pi/2, where the rounded float64 product
    # (what plain NumPy computes) is off by millions of ulps
    cfg = LLAMA2
    ((_, positions),) = _adversarial(cfg, [0])
    ex = precision.exact_cos_sin(positions, cfg.inv_freq()[:1])
    closeness = np.minimum(np.abs(ex.cos), np.abs(ex.sin))[:, 0]
    assert closeness.min() < 1e-8
    naive = precision.float64_angle_cos_sin(cfg, positions)
    err = precision.cos_sin_ulp_error(cfg, positions, tables=naive)
    assert max(e.max() for e in err) > 1e6
    assert 355 in precision.adversarial_positions([1.0], 1000)  # 355 ~ 113 pi (Zu Chongzhi)


def test_negative_and_fractional_positions():
    rng = np.random.default_rng(11)
    assert _max_ulp(LLAMA2, -rng.integers(0, MAX_POSITION, 64)) <= 1.0
    assert _max_ulp(LLAMA2, rng.random(64) * MAX_POSITION) <= 1.0


@pytest.mark.parametrize(("cfg", "seq_len"), standard_configs(head_dim=64), ids=lambda v: getattr(v, "layout", v))
def test_every_variant_layout_and_partial_rotary(cfg, seq_len):
    report = precision.check_precision(cfg, n_random=24, seq_len=seq_len, seed=5)
    assert report.passed, str(report)


# --- lower precisions: correctly rounded from float64 ---------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_narrow_tables_are_the_float64_table_rounded_once(dtype):
    rng = np.random.default_rng(3)
    positions = np.concatenate([rng.integers(0, MAX_POSITION, 256), np.arange(256)])
    cos64, sin64 = numrope.rope_cache(LLAMA3, positions, np.float64)
    cos, sin = numrope.rope_cache(LLAMA3, positions, dtype)
    np.testing.assert_array_equal(cos, cos64.astype(dtype))
    np.testing.assert_array_equal(sin, sin64.astype(dtype))


def test_float32_within_half_an_ulp_plus_the_float64_error():
    # |t32 - exact| <= ulp32/2 + ulp64 = (1/2 + 2**-29) ulp32
    rng = np.random.default_rng(4)
    positions = rng.integers(0, MAX_POSITION, 128)
    assert _max_ulp(LLAMA2, positions, np.float32) <= 0.5 + 2.0**-29


# --- the measurement can fail ----------------------------------------------------------------------


def test_one_ulp_off_is_seen():
    positions = np.arange(1, 9)
    cos, sin = numrope.rope_cache(LLAMA2, positions, np.float64)
    nudged = np.nextafter(np.nextafter(cos, 2.0), 2.0)  # two ulps up
    ulp_cos, _ = precision.cos_sin_ulp_error(LLAMA2, positions, tables=(nudged, sin))
    assert ulp_cos.min() > 1.0


def test_float32_angles_lose_accuracy_with_position():
    # frameworks' float32 angle: theta rounded to float32 (relative 2**-24) and the product rounded
    # (relative 2**-24) move the angle by up to m theta 2**-23; cos/sin add a few float32 ulps
    positions = np.array([10, 1000, 100_000, 1_234_567])
    err = precision.error_vs_position(LLAMA2, positions)
    assert err["numrope float64"].max() <= 2.0**-53
    assert err["numrope float32"].max() <= 2.0**-24 + 2.0**-53
    assert err["float32 angle"][-1] > 1e-4 > err["float32 angle"][0]
    assert err["float64 angle"][-1] > 10 * err["numrope float64"][-1]
    assert (err["float32 angle"] <= positions * 2.0**-23 + 4 * 2.0**-24).all()


# --- far positions, 2**32 to 2**53: the far path of the argument reduction -------------------------

FAR = 2**53  # positions must be below it in magnitude


def _far_positions(seed, n):
    """Random integer positions in [2**32, 2**53), some negated, and the ends of the range."""
    rng = np.random.default_rng(seed)
    m = rng.integers(2**32, FAR, n)
    m[: n // 8] *= -1
    edges = [2**32, 2**32 + 1, 2**40, 2**52 - 1, 2**52 + 1, FAR - 2, FAR - 1, -(FAR - 1)]
    return np.concatenate([m, edges])


@pytest.mark.parametrize("cfg", [LLAMA2, LLAMA3], ids=["base 1e4", "base 5e5"])
def test_float64_within_one_ulp_at_far_random_positions(cfg):
    # the old reduction (exact products k * C_j for k < 2**32 only) was off by 5e-6 at 2**40, 1.15 at 2**56
    assert _max_ulp(cfg, _far_positions(40, 120)) <= 1.0


def test_float64_within_one_ulp_at_far_positions_per_binade():
    rng = np.random.default_rng(41)
    positions = np.unique(np.exp2(rng.uniform(32, 53, 160)).astype(np.int64))
    assert _max_ulp(LLAMA2, positions) <= 1.0


def _worst_adversarial(cfg, pairs, max_position, seq_len=None):
    """(worst error in ulps, where, closest |cos| or |sin|) over the adversarial positions of ``pairs``."""
    theta = cfg.inv_freq(seq_len)
    a = cfg.attention_scaling
    worst, where, closest = 0.0, None, 1.0
    for i in pairs:
        positions = precision.adversarial_positions(theta[i : i + 1], max_position)
        positions = positions[positions >= 2**31]  # the near path's are tested above
        if not positions.size:
            continue
        cos, sin = numrope.rope_cache(cfg, positions, np.float64, seq_len=seq_len)
        ex = precision.exact_cos_sin(positions, theta[i : i + 1], a)
        err = np.maximum(
            precision.ulp_error(cos[:, i : i + 1], ex.cos, ex.cos_lo),
            precision.ulp_error(sin[:, i : i + 1], ex.sin, ex.sin_lo),
        )[:, 0]
        closest = min(closest, float(np.minimum(np.abs(ex.cos), np.abs(ex.sin)).min()) / a)
        j = int(np.argmax(err))
        if err[j] > worst:
            worst, where = float(err[j]), (int(positions[j]), i, float(theta[i]))
    return worst, where, closest


@pytest.mark.parametrize("cfg", [LLAMA2, LLAMA3], ids=["base 1e4", "base 5e5"])
def test_float64_within_one_ulp_next_to_multiples_of_half_pi_far(cfg):
    # every pair's best rational approximations of theta / (pi/2) with denominators up to 2**53: the
    # positions whose angle comes closest to a multiple of pi/2, after cancelling up to 53 bits
    worst, where, closest = _worst_adversarial(cfg, range(cfg.n_pairs), FAR - 1)
    assert closest < 1e-14  # the search did reach hard cases
    assert worst <= 1.0, f"{worst:.3f} ulp at (m, pair, theta) = {where}"


def _hardest_frequencies(n_factors, seed):
    """The 12 Linear-scaled configurations (factors in (1, 2), theta_0 in (1/2, 1)) of ``n_factors``
    whose adversarial positions below 2**53 bring an angle closest to a multiple of pi/2."""
    rng = np.random.default_rng(seed)
    cases = []
    for factor in rng.uniform(1.0, 2.0, n_factors):
        cfg = numrope.RopeConfig(head_dim=2, scaling=numrope.variants.Linear(factor=float(factor)))
        positions = precision.adversarial_positions(cfg.inv_freq(), FAR - 1)[-3:]
        cos, sin = numrope.rope_cache(cfg, positions, np.float64)
        closeness = np.minimum(np.abs(cos), np.abs(sin))[:, 0]
        cases.append((float(closeness.min()), cfg, positions))
    cases.sort(key=lambda case: case[0])
    return cases[:12]


def _assert_hardest_within_one_ulp(cases, closest):
    assert cases[0][0] < closest  # the search did find hard cases
    for _closeness, cfg, positions in cases:
        ulp_cos, ulp_sin = precision.cos_sin_ulp_error(cfg, positions, np.float64)
        worst = max(ulp_cos.max(), ulp_sin.max())
        assert worst <= 1.0, f"{worst:.3f} ulp at theta={cfg.inv_freq()[0]!r}, positions {positions.tolist()}"


def test_float64_far_within_one_ulp_for_the_hardest_of_many_frequencies():
    # ~2**52 quarter turns: an angle within ~1e-17 of a multiple of pi/2 after cancelling its 53
    # leading bits. A reduction with a 169-bit pi/2, or a remainder summed in double-double, is off
    # by many ulps there.
    _assert_hardest_within_one_ulp(_hardest_frequencies(4000, 1), 1e-17)


@pytest.mark.slow
def test_float64_far_within_one_ulp_for_the_hardest_of_many_more_frequencies():
    _assert_hardest_within_one_ulp(_hardest_frequencies(40000, 2), 1e-18)


FAR_VARIANTS = [
    (numrope.RopeConfig(head_dim=128, base=1e4, scaling=numrope.variants.Linear(factor=4.0)), None),
    (numrope.RopeConfig(head_dim=128, base=5e5, scaling=numrope.variants.Llama3(8.0, 1.0, 4.0, 8192)), None),
    (numrope.RopeConfig(head_dim=128, base=1e4, scaling=numrope.variants.NTK(factor=8.0)), None),
    (
        numrope.RopeConfig(
            head_dim=128, base=1e4, scaling=numrope.variants.YaRN(factor=16.0, original_max_position_embeddings=4096)
        ),
        None,
    ),
    (
        numrope.RopeConfig(
            head_dim=96,
            base=1e4,
            scaling=numrope.variants.LongRoPE(
                short_factor=list(np.linspace(1.0, 1.5, 48)),
                long_factor=list(np.linspace(1.0, 40.0, 48)),
                original_max_position_embeddings=4096,
                max_position_embeddings=131072,
            ),
        ),
        2**40,
    ),
]


@pytest.mark.parametrize(("cfg", "seq_len"), FAR_VARIANTS, ids=["linear", "llama3", "ntk", "yarn", "longrope"])
def test_scaled_variants_at_far_positions(cfg, seq_len):
    # one ulp, or with an attention factor a != 1 (YaRN, LongRoPE) 3: a times the cosine's error,
    # plus the rounding of that product
    bound = 1.0 if cfg.attention_scaling == 1.0 else 3.0
    ulp_cos, ulp_sin = precision.cos_sin_ulp_error(cfg, _far_positions(42, 48), np.float64, seq_len=seq_len)
    assert max(ulp_cos.max(), ulp_sin.max()) <= bound
    worst, where, _ = _worst_adversarial(cfg, [0, cfg.n_pairs // 3, cfg.n_pairs - 1], FAR - 1, seq_len)
    assert worst <= bound, f"{worst:.3f} ulp at (m, pair, theta) = {where}"


def test_narrow_far_tables_are_the_float64_table_rounded_once():
    positions = _far_positions(43, 200)
    cos64, sin64 = numrope.rope_cache(LLAMA3, positions, np.float64)
    for dtype in (np.float32, np.float16):
        cos, sin = numrope.rope_cache(LLAMA3, positions, dtype)
        np.testing.assert_array_equal(cos, cos64.astype(dtype))
        np.testing.assert_array_equal(sin, sin64.astype(dtype))


def test_far_and_near_positions_in_one_call():
    # one call with both takes the far compilation for all rows: the near rows must not change
    near = np.random.default_rng(44).integers(0, 2**31, 64)
    both = np.concatenate([near, _far_positions(44, 64)])
    np.testing.assert_array_equal(
        numrope.rope_cache(LLAMA2, both, np.float64)[0][:64], numrope.rope_cache(LLAMA2, near, np.float64)[0]
    )
    assert _max_ulp(LLAMA2, both) <= 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_apply_rope_at_far_positions_rotates_by_the_table(dtype):
    # the on-the-fly kernel (no cache) computes the same cos/sin as the table, in the same arithmetic
    cfg = numrope.RopeConfig(head_dim=64, base=1e4)
    rng = np.random.default_rng(45)
    positions = rng.integers(-(FAR - 1), FAR, (2, 9))
    positions[0, :3] = [0, 7, 2**31]  # near rows too
    q = rng.standard_normal((2, 9, 3, 64)).astype(dtype)
    k = rng.standard_normal((2, 9, 1, 64)).astype(dtype)
    cos, sin = numrope.rope_cache(cfg, positions, dtype)
    half = cfg.n_pairs
    for x, got in ((q, numrope.apply_rope(q, cfg, positions)), (k, numrope.apply_rope_qk(q, k, cfg, positions)[1])):
        c, s = cos[:, :, None], sin[:, :, None]
        x0, x1 = x[..., :half], x[..., half:]
        np.testing.assert_array_equal(got, np.concatenate([x0 * c - x1 * s, x1 * c + x0 * s], -1))
        # in place: the common compilation, finding far angles, must leave x to the far one untouched
        for rows in (positions, positions % 2**31):
            y = x.copy()
            numrope.apply_rope(y, cfg, rows, out=y)
            np.testing.assert_array_equal(y, numrope.apply_rope(x, cfg, rows))
    back = numrope.apply_rope(numrope.apply_rope(q, cfg, positions), cfg, positions, inverse=True)
    np.testing.assert_allclose(back, q, rtol=0, atol=64 * np.finfo(dtype).eps)


def test_gpu_tables_at_far_positions():
    # numrope.cuda's table kernel branches per entry between the near and the far path (the
    # simulator runs it on the CPU where no GPU is present). On a GPU the compiler may fuse other
    # multiply-adds than the CPU does, by an ulp.
    import numrope.cuda

    if not numrope.cuda.is_available():
        pytest.skip("no CUDA device and no simulator")
    positions = np.concatenate([_far_positions(46, 24), [0, 1, 2**31 + 5]])
    cos, sin = numrope.cuda.rope_cache(LLAMA2, positions, np.float64)
    from numrope.kernels.cuda import SIMULATED

    bound = 1.0 if SIMULATED else 2.0
    assert _max_ulp(LLAMA2, positions, tables=(cos.copy_to_host(), sin.copy_to_host())) <= bound


@pytest.mark.parametrize(
    "positions", [[2**53], [-(2**53)], [2.0**53], [1.0, 2.0**60], [1e300], [0, 2**63 - 1]], ids=str
)
def test_positions_from_2_53_are_refused(positions):
    positions = np.array(positions)
    x = np.zeros((1, positions.size, 2, 8))
    cfg = numrope.RopeConfig(head_dim=8)
    match = r"positions must be below 2\*\*53 in magnitude"
    for call in (
        lambda: numrope.rope_cache(cfg, positions),
        lambda: numrope.apply_rope(x, cfg, positions),
        lambda: numrope.apply_rope_qk(x, x, cfg, positions),
        lambda: numrope.validation.compare(x, x, cfg, positions),
    ):
        with pytest.raises(ValueError, match=match):
            call()
    with pytest.raises(ValueError, match=match):
        numrope.apply_rope(x[:, :1], cfg, 2**53 - 1 + positions.size)  # an int offset


def test_angles_from_2_53_are_refused():
    # a frequency above 1 (a linear factor below 1) turns positions below 2**53 further
    fast = numrope.RopeConfig(head_dim=8, scaling=numrope.variants.Linear(factor=0.5))  # theta_0 = 2
    assert _max_ulp(fast, [2**52 - 1, -(2**52 - 1)]) <= 1.0
    with pytest.raises(ValueError, match=r"exact for angles \|m \* theta\| below 2\*\*53"):
        numrope.rope_cache(fast, [2**52])


def test_the_kernels_give_nan_past_their_range():
    # the callers refuse such angles; should one reach a kernel, it answers NaN, not a wrong number
    from numrope.kernels import cpu

    theta = np.array([1.0, 2.0**-30])
    for m in (2.0**54, -(2.0**60), 1e300):
        cos, sin = cpu.cos_sin_table(np.array([m]), theta, 1.0, np.dtype(np.float64))
        assert np.isnan(cos[0, 0]) and np.isnan(sin[0, 0])
        assert np.isfinite(cos[0, 1]) or m == 1e300


def test_check_precision_covers_far_positions():
    # numrope verify's precision check: its default positions reach 2**53 - 1, or the angle 2**53
    report = precision.check_precision(LLAMA2, n_random=16)
    assert report.passed, str(report)
    assert report.title.startswith("cos/sin precision at ") and "9007199254740991]" in report.title
    fast = numrope.RopeConfig(head_dim=8, scaling=numrope.variants.Linear(factor=0.25))  # theta_0 = 4
    report = precision.check_precision(fast, n_random=16)
    assert report.passed, str(report)
    assert f"{2**51 - 1}]" in report.title
    assert "9007199254740991" not in str(precision.check_precision(LLAMA2, n_random=16, far=False))


def test_the_polynomials_are_fused_where_the_machine_has_an_fma():
    """Where the CPU kernels are compiled for a machine with an FMA, each Horner step of the polynomials (seven for
    the sine, seven for the cosine) and the two small terms added to them are one fused multiply-add: one rounding
    fewer each, and the table's kernel 3.0 -> 2.35 ns an angle on one thread (numrope.kernels.sincos). The bits'
    accuracy is the tests above; this one keeps the speed from being lost unseen."""
    import numba

    from numrope.kernels import sincos

    if not sincos._host_fma():
        pytest.skip("the CPU kernels are compiled for a target without an FMA here")
    kernel = numba.njit(sincos._cos_sin_reduced.py_func)  # compiled here: the cached one cannot be inspected
    assert kernel(0.5, 0.0) == pytest.approx((math.cos(0.5), math.sin(0.5)), rel=1e-15)
    (signature,) = kernel.signatures
    assert kernel.inspect_llvm(signature).count("call double @llvm.fma.f64") == 16
