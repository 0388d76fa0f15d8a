"""Every bad input gets a clear exception that names the problem, before any kernel runs."""

import numpy as np
import pytest

import numrope

CFG = numrope.RopeConfig(head_dim=8)
X = np.zeros((1, 4, 2, 8), np.float32)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"head_dim": 7}, ValueError, "head_dim must be even"),
        ({"head_dim": 0}, ValueError, "head_dim must be positive"),
        ({"head_dim": 8.0}, TypeError, "head_dim must be an int"),
        ({"head_dim": 8, "rotary_dim": 5}, ValueError, "rotary_dim must be even"),
        ({"head_dim": 8, "rotary_dim": 10}, ValueError, r"rotary_dim \(10\) must be at most head_dim \(8\)"),
        ({"head_dim": 8, "base": 0.0}, ValueError, "base must be positive"),
        ({"head_dim": 8, "base": -5}, ValueError, "base must be positive"),
        ({"head_dim": 8, "base": float("nan")}, ValueError, "base must be positive and finite"),
        ({"head_dim": 8, "base": "10000"}, TypeError, "base must be a real number"),
        ({"head_dim": 8, "layout": "neox"}, ValueError, "layout must be one of"),
        ({"head_dim": 8, "scaling": {"rope_type": "linear"}}, TypeError, "scaling must be a numrope.variants"),
    ],
)
def test_bad_config(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        numrope.RopeConfig(**kwargs)


def test_config_is_immutable():
    with pytest.raises(AttributeError):
        CFG.base = 5.0


def test_not_a_config():
    with pytest.raises(TypeError, match=r"cfg must be a numrope\.RopeConfig"):
        numrope.apply_rope(X, {"head_dim": 8})
    with pytest.raises(TypeError, match=r"cfg must be a numrope\.RopeConfig"):
        numrope.rope_cache(8, 10)


def test_wrong_head_dim():
    with pytest.raises(ValueError, match="last axis must be head_dim=8"):
        numrope.apply_rope(np.zeros((1, 4, 2, 6)), CFG)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_, np.complex64, np.complex128, object])
def test_bad_x_dtype(dtype):
    x = np.zeros((1, 4, 2, 8), dtype)
    with pytest.raises(TypeError, match=f"must be float16, float32 or float64, got ([a-z]+ )?dtype {x.dtype}"):
        numrope.apply_rope(x, CFG)


def test_x_without_sequence_axis():
    with pytest.raises(ValueError, match="must have a sequence axis"):
        numrope.apply_rope(np.zeros(8), CFG)


@pytest.mark.parametrize("seq_axis", [-1, 3, 4, -5])
def test_bad_seq_axis(seq_axis):
    with pytest.raises(ValueError, match=f"seq_axis={seq_axis} is not a sequence axis"):
        numrope.apply_rope(X, CFG, seq_axis=seq_axis)


def test_seq_axis_not_int():
    with pytest.raises(TypeError, match="seq_axis must be an int"):
        numrope.apply_rope(X, CFG, seq_axis=1.0)


def test_positions_wrong_length():
    with pytest.raises(ValueError, match="positions must have 4 entries"):
        numrope.apply_rope(X, CFG, np.arange(5))


@pytest.mark.parametrize("batch", [(4,), (2,), (3, 1), (1, 2, 3), (2, 3, 1)])
def test_positions_wrong_batch_shape(batch):
    # x's axes before the sequence axis are (2, 3)
    with pytest.raises(ValueError, match="do not broadcast against the axes before the sequence axis"):
        numrope.apply_rope(np.zeros((2, 3, 4, 2, 8)), CFG, np.zeros((*batch, 4), int))


@pytest.mark.parametrize("batch", [(), (1,), (3,), (1, 3), (2, 1), (2, 3), (1, 1)])
def test_positions_batch_shapes_that_broadcast(batch):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 2, 8))
    positions = np.arange(4) + np.zeros((*batch, 4), int)
    expected = numrope.apply_rope(x, CFG, np.broadcast_to(positions, (2, 3, 4)))
    np.testing.assert_array_equal(numrope.apply_rope(x, CFG, positions), expected)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_positions(bad):
    positions = np.array([0.0, 1.0, bad, 3.0])
    with pytest.raises(ValueError, match="positions must be finite"):
        numrope.apply_rope(X, CFG, positions)
    with pytest.raises(ValueError, match="positions must be finite"):
        numrope.rope_cache(CFG, positions)


@pytest.mark.parametrize("bad", [np.array([True, False, True, True]), np.array(["a"] * 4), np.arange(4) + 0j])
def test_positions_bad_dtype(bad):
    with pytest.raises(TypeError, match="positions must hold integers or real numbers"):
        numrope.apply_rope(X, CFG, bad)


def test_positions_zero_d_array():
    with pytest.raises(TypeError, match="use an int for an offset"):
        numrope.apply_rope(X, CFG, np.float64(3.0))


def test_positions_outside_cache():
    cache = numrope.rope_cache(CFG, 10)
    numrope.apply_rope(X, CFG, 6, cache=cache)  # positions 6..9: the last row is fine
    with pytest.raises(IndexError, match=r"position 10 is outside the cache table of 10 positions \(0\.\.9\)"):
        numrope.apply_rope(X, CFG, 7, cache=cache)
    with pytest.raises(IndexError, match="position -1 is negative"):
        numrope.apply_rope(X, CFG, np.array([-1, 0, 1, 2]), cache=cache)
    with pytest.raises(TypeError, match="positions must be integers to index a cache"):
        numrope.apply_rope(X, CFG, np.arange(4.0), cache=cache)


def test_bad_cache():
    cos, sin = numrope.rope_cache(CFG, 10)
    with pytest.raises(TypeError, match=r"cache must be a \(cos, sin\) pair"):
        numrope.apply_rope(X, CFG, cache=cos)
    with pytest.raises(ValueError, match=r"must have shape \(n_positions, rotary_dim // 2 = 4\)"):
        numrope.apply_rope(X, CFG, cache=(cos[:, :3], sin[:, :3]))
    with pytest.raises(ValueError, match="cache cos and sin must match"):
        numrope.apply_rope(X, CFG, cache=(cos, sin.astype(np.float64)))
    with pytest.raises(TypeError, match="table must be float16, float32 or float64"):
        numrope.apply_rope(X, CFG, cache=(cos.astype(int), sin.astype(int)))


def test_rope_cache_bad_arguments():
    with pytest.raises(ValueError, match="must be non-negative"):
        numrope.rope_cache(CFG, -3)
    with pytest.raises(TypeError, match="dtype must be float16, float32 or float64"):
        numrope.rope_cache(CFG, 3, dtype=np.int32)
    with pytest.raises(TypeError, match="seq_len must be an int"):
        numrope.rope_cache(CFG, 3, seq_len=2.5)


def test_bad_out():
    with pytest.raises(ValueError, match=r"out must have shape \(1, 4, 2, 8\)"):
        numrope.apply_rope(X, CFG, out=np.zeros((1, 4, 2, 4), np.float32))
    with pytest.raises(TypeError, match="out must have dtype float32"):
        numrope.apply_rope(X, CFG, out=np.zeros(X.shape, np.float64))
    read_only = np.zeros_like(X)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        numrope.apply_rope(X, CFG, out=read_only)
    with pytest.raises(ValueError, match="in place needs a writable x"):
        numrope.apply_rope(read_only, CFG, out=read_only)
    with pytest.raises(TypeError, match=r"out must be a numpy\.ndarray"):
        numrope.apply_rope(X, CFG, out=[0.0])
    buf = np.zeros((1, 5, 2, 8), np.float32)
    with pytest.raises(ValueError, match="partly overlaps x"):
        numrope.apply_rope(buf[:, :4], CFG, out=buf[:, 1:])


def test_qk_mismatches():
    q = np.zeros((1, 4, 4, 8))
    with pytest.raises(ValueError, match="same sequence length"):
        numrope.apply_rope_qk(q, np.zeros((1, 5, 2, 8)), CFG)
    with pytest.raises(ValueError, match="q and k must agree on the batch axes"):
        numrope.apply_rope_qk(q, np.zeros((2, 4, 2, 8)), CFG)
    with pytest.raises(ValueError, match="same number of dimensions"):
        numrope.apply_rope_qk(q, np.zeros((4, 2, 8)), CFG)
    with pytest.raises(TypeError, match=r"out must be a \(q_out, k_out\) pair"):
        numrope.apply_rope_qk(q, q.copy(), CFG, out=q)
    with pytest.raises(ValueError, match="out\\[0\\] and out\\[1\\] overlap"):
        numrope.apply_rope_qk(q, q.copy(), CFG, out=(q, q))
    with pytest.raises(TypeError, match="k must be float16, float32 or float64"):
        numrope.apply_rope_qk(q, np.zeros((1, 4, 2, 8), int), CFG)


def test_cu_seqlens_errors():
    with pytest.raises(ValueError, match="must start at 0"):
        numrope.positions_from_cu_seqlens([1, 3])
    with pytest.raises(ValueError, match=r"non-decreasing, but cu_seqlens\[2\] < cu_seqlens\[1\]"):
        numrope.positions_from_cu_seqlens([0, 3, 2])
    with pytest.raises(ValueError, match="non-empty 1-D"):
        numrope.positions_from_cu_seqlens(np.array([], dtype=np.int64))
    with pytest.raises(TypeError, match="integer array"):
        numrope.positions_from_cu_seqlens([0.0, 2.0])


def test_seq_len_must_be_positive():
    with pytest.raises(ValueError, match="seq_len must be positive"):
        CFG.inv_freq(seq_len=0)


@pytest.mark.parametrize(
    ("seq_len", "exc", "match"),
    [
        ("abc", TypeError, "seq_len must be an int, got str"),
        (2.7, TypeError, "seq_len must be an int, got float"),
        (True, TypeError, "seq_len must be an int, got bool"),
        (-5, ValueError, "seq_len must be positive, got -5"),
        (0, ValueError, "seq_len must be positive, got 0"),
    ],
)
def test_bad_seq_len(seq_len, exc, match):
    for call in (
        lambda: numrope.apply_rope(X, CFG, seq_len=seq_len),
        lambda: numrope.apply_rope(X, CFG, seq_len=seq_len, cache=numrope.rope_cache(CFG, 4)),
        lambda: numrope.apply_rope_qk(X, X, CFG, seq_len=seq_len),
        lambda: numrope.rope_cache(CFG, 4, seq_len=seq_len),
    ):
        with pytest.raises(exc, match=match):
            call()


def test_int_offset_past_int64():
    for offset in (2**63 - 1, 2**63 - 4, -(2**63) - 1):
        for cache in (None, numrope.rope_cache(CFG, 4)):
            with pytest.raises(ValueError, match="positions as an int offset must be at least -2"):
                numrope.apply_rope(X, CFG, offset, cache=cache)
    with pytest.raises(ValueError, match="must be non-negative and below 2"):
        numrope.rope_cache(CFG, 2**63)  # was an empty table


@pytest.mark.parametrize(
    "positions",
    [np.full(4, 2**63 - 1), np.full(4, 2**53), np.full(4, 1e300), np.array([0.0, 1.0, -(2.0**53), 3.0])],
    ids=["2**63-1", "2**53", "1e300", "-2**53"],
)
def test_positions_past_float64_integers(positions):
    """|m| >= 2**53: float64 no longer holds every integer (and cos/sin were unbounded far beyond, |cos| ~ 1e47)."""
    with pytest.raises(ValueError, match=r"positions must be below 2\*\*53 in magnitude"):
        numrope.apply_rope(X, CFG, positions)
    with pytest.raises(ValueError, match=r"positions must be below 2\*\*53 in magnitude"):
        numrope.rope_cache(CFG, positions)
    with pytest.raises(ValueError, match=r"positions must be below 2\*\*53 in magnitude"):
        numrope.apply_rope_qk(X, X, CFG, positions)


def test_positions_at_the_edge_of_the_exact_angle_range():
    fast = numrope.RopeConfig(head_dim=8, scaling=numrope.variants.Linear(factor=0.25))  # theta_0 = 4
    numrope.apply_rope(X, CFG, 2**53 - 4)  # positions up to 2**53 - 1, theta_0 = 1
    with pytest.raises(
        ValueError, match=r"below 2\*\*53 in magnitude \(float64's exact integers\), got 9007199254740992"
    ):
        numrope.apply_rope(X, CFG, 2**53 - 3)
    numrope.apply_rope(X, fast, 2**51 - 4)  # angles below 2**53
    with pytest.raises(ValueError, match=r"positions up to 2251799813685248 turn the fastest pair by 9\.0072e\+15"):
        numrope.apply_rope(X, fast, 2**51 - 3)
    with pytest.raises(ValueError, match=r"here \|m\| < 2.2518e\+15"):
        numrope.apply_rope(X, fast, 2**51 - 3)


def test_uint64_cu_seqlens_from_2_63():
    for cu in ([0, 2**63], [0, 3, 2**64 - 1]):
        with pytest.raises(ValueError, match="cu_seqlens must be below 2\\*\\*63"):
            numrope.positions_from_cu_seqlens(np.array(cu, np.uint64))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"base": 1e-300}, r"\(base=1e-300\) reach 1e\+225 radians per position"),
        ({"scaling": numrope.variants.Linear(factor=1e-320)}, r"scaling=Linear\(factor=1e-320\)\) reach inf"),
        ({"scaling": numrope.variants.Linear(factor=1e-16)}, r"reach 1e\+16 radians per position"),
    ],
)
def test_frequencies_past_the_exact_angle_range(kwargs, match):
    with pytest.raises(ValueError, match=match):
        numrope.RopeConfig(head_dim=8, **kwargs)


def test_frequencies_depending_on_seq_len_are_checked_as_formed():
    scaling = numrope.variants.LongRoPE(
        short_factor=[1.0] * 4, long_factor=[1e-300] * 4, original_max_position_embeddings=4, factor=2.0
    )
    cfg = numrope.RopeConfig(head_dim=8, scaling=scaling)
    numrope.apply_rope(X, cfg)  # 4 positions: the short factors
    with pytest.raises(ValueError, match=r"seq_len=5\) reach 1e\+300 radians per position"):
        numrope.apply_rope(X, cfg, seq_len=5)
