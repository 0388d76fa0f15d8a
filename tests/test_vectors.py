"""The vector kernels (numrope.kernels.simd) give bit for bit the rotation written in plain NumPy, in every dtype
they take (float32 and float64 with a table of their dtype; float16 and bfloat16 with one of theirs or of float32),
in place and into ``out``, by plain and by streaming stores, serial and parallel, with a table and without one; the
launchers pick them exactly where they apply, and they round float16 and bfloat16 as the general loops do."""

import itertools

import ml_dtypes
import numpy as np
import pytest
from conftest import numpy_rotation

import numrope
from numrope.kernels import cpu, jit, simd, step, stream
from numrope.kernels.half import target_converts_bfloat16, target_converts_half

BF16 = np.dtype(ml_dtypes.bfloat16)


@pytest.fixture(autouse=True)
def general_launcher(monkeypatch):
    """The general launcher (numrope.kernels.cpu.rotate) for every call: these tests are of its kernels and of its
    choice of them. The lean launcher's (numrope.kernels.step) are tests/test_decode_step.py's."""
    monkeypatch.setattr(step, "table_step", lambda *a: None)


@pytest.fixture
def codes(monkeypatch):
    """The layout codes the table launcher gives the kernels."""
    seen = []
    pick = cpu.vector_code

    def recording(*args):
        seen.append(pick(*args))
        return seen[-1]

    monkeypatch.setattr(cpu, "vector_code", recording)
    return seen


@pytest.fixture
def words_kernels(monkeypatch):
    """The calls of the words kernel (numrope.kernels.cpu._rotate_words) by the table launcher."""
    calls = []
    for name in ("rotate_words_parallel", "rotate_words_serial"):
        kernel = getattr(cpu, name)
        monkeypatch.setattr(cpu, name, lambda *args, kernel=kernel: calls.append(kernel(*args)))
    return calls


TYPES = [("float32", "float32"), ("float64", "float64"), ("float16", "float16"), ("float16", "float32")]
TYPES += [(BF16, BF16), (BF16, "float32")]


@pytest.mark.parametrize(
    "dtype, table_dtype, layout, head_dim, inverse, where, twin",
    [
        (*types, *rest)
        for types, rest in itertools.product(
            TYPES,
            itertools.product(
                ["half", "interleaved"],
                # whole vectors of pairs only (float64: 16 pairs, float32: 32); whole vectors and a tail of
                # simd.TAIL_PAIRS (float32), a tail only (float32)
                [64, 80, 16],
                [False, True],
                ["out", "in place", "streamed", "no table"],
                ["serial", "parallel"],
            ),
        )
    ],
)
def test_vector_kernels_give_the_numpy_rotation(
    monkeypatch, codes, words_kernels, dtype, table_dtype, layout, head_dim, inverse, where, twin
):
    monkeypatch.setattr(jit, "PARALLEL_MIN_ELEMENTS", 0 if twin == "parallel" else 1 << 62)
    if where == "streamed":
        monkeypatch.setattr(stream, "MIN_BYTES", 0)
    dtype = np.dtype(dtype)
    if where == "no table":  # the launcher computes the tables in the compute dtype
        table_dtype = np.float64 if dtype == np.float64 else np.float32
    cfg = numrope.RopeConfig(head_dim, layout=layout)
    batch = 1 if where == "no table" else 2  # positions shared by every row: rotated in the pass of the angles
    x = (np.random.default_rng(head_dim).standard_normal((batch, 23, 5, head_dim)) * 4).astype(dtype)
    cos, sin = numrope.rope_cache(cfg, 23, dtype=table_dtype)
    expected = numpy_rotation(x, cos, sin, layout, inverse)
    if where == "in place":
        got = x.copy()
        numrope.apply_rope(got, cfg, cache=(cos, sin), out=got, inverse=inverse)
    elif where == "no table":
        got = numrope.apply_rope(x, cfg, inverse=inverse)
    else:
        got = numrope.apply_rope(x, cfg, cache=(cos, sin), out=np.zeros_like(x), inverse=inverse)
    assert np.array_equal(got.view(f"u{x.itemsize}"), expected.view(f"u{x.itemsize}"))
    lanes = simd.pairs_per_vector(x.itemsize)
    # 2-byte pairs with a table: as 32-bit words (numrope.kernels.cpu._rotate_words), except in whole vectors where
    # the CPU converts: bfloat16 rounded by its conversion, float16 widened and rounded by it
    converts = target_converts_bfloat16() if dtype == BF16 else dtype == np.float16 and target_converts_half()
    words_in_vectors = converts and (head_dim // 2) % lanes == 0
    words = x.itemsize == 2 and layout == "interleaved" and where != "no table" and not words_in_vectors
    assert len(words_kernels) == words
    if words:
        return
    if dtype == np.float64 and layout == "half" and where != "in place":
        assert codes == [4]  # float64 rows written in order, each half in turn (numrope.kernels.cpu._in_order)
    elif dtype == np.float16 and not simd.HALF_IN_HARDWARE:
        assert codes and codes[0] < 5
    elif (head_dim // 2) % lanes == 0:
        assert codes == [6 if layout == "interleaved" else 5]
    elif dtype == np.float32 and not (where == "streamed" and twin == "parallel"):
        assert codes == [8 if layout == "interleaved" else 7]  # the tails after each token's heads
    elif x.itemsize == 2 and (dtype == BF16 or where == "in place"):  # the 2-byte dtypes are never streamed
        assert codes == [8 if layout == "interleaved" else 7]  # float16: tails in place only
    else:  # float64's rows with a tail, float16's out of place, and rows streamed (written before the tails)
        assert len(codes) == 1 and codes[0] < 5


@pytest.mark.parametrize("dtype", ["float16", BF16])
def test_vector_kernels_round_as_the_general_loops(monkeypatch, dtype):
    """Results that round specially (ties, subnormals, overflow to infinity, infinities, NaNs with payloads), rounded
    by the vector kernels and by the general loops: the same bits, and NaN where NaN."""
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(0)
    info = ml_dtypes.finfo(dtype)
    special = np.array([np.inf, -np.inf, np.nan, info.max, info.tiny, info.smallest_subnormal, 0.0, -0.0], dtype)
    payloads = np.array([0x7C01, 0x7E01, 0xFE55] if dtype == np.float16 else [0x7F81, 0x7FC1, 0xFFA5], np.uint16)
    magnitudes = rng.standard_normal(4 * 2 * 64 * 3) * 2.0 ** rng.integers(-30, 17, 4 * 2 * 64 * 3)
    with np.errstate(over="ignore"):
        x = np.concatenate([special, payloads.view(dtype), magnitudes.astype(dtype)])[: 4 * 2 * 64 * 3]
    x = x.reshape(3, 4, 2, 64)
    # one position's rows about the smallest normal: products and sums below it, subnormal in the rounded dtype
    # and (bfloat16) in float32, beside normal ones in the same vectors
    x[:, 2] = (rng.standard_normal((3, 2, 64)) * info.tiny * 2.0 ** rng.integers(-4, 5, (3, 2, 64))).astype(dtype)
    cfg = numrope.RopeConfig(64)
    # float32 tables of every magnitude: products in float32 that round to ties, subnormals and infinity
    cos = (rng.standard_normal((4, 32)) * 2.0 ** rng.integers(-12, 6, (4, 32))).astype(np.float32)
    sin = (rng.standard_normal((4, 32)) * 2.0 ** rng.integers(-12, 6, (4, 32))).astype(np.float32)
    # NaNs whose low bits would carry into the sign or exponent if rounded as numbers
    cos[0, :3] = np.array([0x7FFFFFFF, 0xFFFFFFFF, 0x7F80FFFF], np.uint32).view(np.float32)
    sin[1, :3] = np.array([0x7FC0FFFF, 0xFFBFFFFF, 0x7FFF8001], np.uint32).view(np.float32)
    with np.errstate(all="ignore"):
        vector = numrope.apply_rope(x, cfg, cache=(cos, sin), seq_axis=-3)
        monkeypatch.setattr(cpu, "vector_code", lambda code, *arrays: code)
        general = numrope.apply_rope(x, cfg, cache=(cos, sin), seq_axis=-3)
    # NaNs where the general loops give NaNs; which NaN's payload a sum or product of two carries is the
    # hardware's choice (IEEE 754 leaves it open), and it differs with the order LLVM puts the operands in
    nan = np.isnan(general.astype(np.float32))
    assert np.array_equal(np.isnan(vector.astype(np.float32)), nan)
    assert np.array_equal(vector.view(np.uint16)[~nan], general.view(np.uint16)[~nan])
    subnormal = (general != 0) & (abs(general.astype(np.float32)) < info.tiny)
    assert subnormal[:, 2].sum() > 100 and not subnormal[:, 2].all()


@pytest.mark.parametrize(
    "case",
    [
        "float16 into a new array, rotary part of 48",
        "float32 data, float64 table",
        "strided features",
        "rotary part of 36",
    ],
)
def test_vector_kernels_are_not_picked_where_they_do_not_apply(codes, case):
    dtype, table_dtype, head_dim = "float32", "float32", 64
    if case == "float16 into a new array, rotary part of 48":
        dtype = table_dtype = "float16"
    elif case == "float32 data, float64 table":
        table_dtype = "float64"
    # float16 takes tails in place only; float32 takes them where half the rotary part is a multiple of 8 (36: 18)
    rotary_dim = {"float16 into a new array, rotary part of 48": 48, "rotary part of 36": 36}.get(case)
    cfg = numrope.RopeConfig(head_dim, rotary_dim=rotary_dim)
    x = np.random.default_rng(0).standard_normal((1, 9, 3, 2 * head_dim)).astype(dtype)
    x = x[..., ::2] if case == "strided features" else x[..., :head_dim]
    cos, sin = numrope.rope_cache(cfg, 9, dtype=table_dtype)
    got = numrope.apply_rope(x, cfg, cache=(cos, sin))
    assert codes and all(code < 5 for code in codes)
    wide = x.astype(np.float64)
    half = cfg.rotary_dim // 2
    c, s = cos.astype(np.float64)[:, None], sin.astype(np.float64)[:, None]
    x0, x1 = wide[..., :half], wide[..., half : 2 * half]
    expected = np.concatenate([x0 * c - x1 * s, x1 * c + x0 * s, wide[..., 2 * half :]], axis=-1)
    np.testing.assert_allclose(got.astype(np.float64), expected, rtol=4 * np.finfo(dtype).eps, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float16", BF16])
@pytest.mark.parametrize("layout", ["half", "interleaved"])
def test_tails_leave_the_features_past_the_rotary_part(codes, words_kernels, dtype, layout):
    """A rotary part of 48 of 64 features (24 pairs: no whole vector; tails of 16 and 8 pairs in bfloat16, three of
    8 otherwise) rotates as plain NumPy does, bit for bit, in place and into ``out=``, and the last 16 features of
    every row keep their bits; without a table in place too, as into a new array (float16: by the general loops
    there)."""
    cfg = numrope.RopeConfig(64, rotary_dim=48, layout=layout)
    dtype = np.dtype(dtype)
    x = (np.random.default_rng(7).standard_normal((2, 11, 3, 64)) * 4).astype(dtype)
    bits = f"u{dtype.itemsize}"
    cos, sin = numrope.rope_cache(cfg, 11, dtype=np.float32)
    expected = np.concatenate([numpy_rotation(x[..., :48], cos, sin, layout, False), x[..., 48:]], axis=-1)
    words = dtype.itemsize == 2 and layout == "interleaved"  # 2-byte pairs with a table: the words kernel
    for where in ("in place", "out="):
        codes.clear()
        words_kernels.clear()
        got = x.copy() if where == "in place" else np.zeros_like(x)
        numrope.apply_rope(got if where == "in place" else x, cfg, cache=(cos, sin), out=got)
        assert np.array_equal(got.view(bits), expected.view(bits)), where
        assert len(words_kernels) == words
        if words:
            continue
        if where == "in place" or dtype != np.float16:
            assert codes == [8 if layout == "interleaved" else 7]
        else:  # float16 into out=: the general loops
            assert len(codes) == 1 and codes[0] < 5
    codes.clear()
    own = x.copy()
    numrope.apply_rope(own, cfg, out=own)
    assert codes == [8 if layout == "interleaved" else 7]
    assert np.array_equal(own.view(bits), numrope.apply_rope(x, cfg).view(bits))
    assert np.array_equal(own[..., 48:].view(bits), x[..., 48:].view(bits))


def test_a_sign_keeps_the_general_loops():
    """Given a sign to multiply by (forwards or backwards), codes 5 and 6 rotate by the general loops, the same
    pairs as codes 0 and 1."""
    from numrope.kernels.cpu import rotate_serial

    x = np.random.default_rng(1).standard_normal((1, 7, 2, 64)).astype(np.float32)
    cos, sin = numrope.rope_cache(numrope.RopeConfig(64), 7, dtype=np.float32)
    idx = np.arange(7)[None]
    for general, vector in ((0, 5), (1, 6)):
        for sign in (np.float32(1), np.float32(-1)):
            a, b = np.empty_like(x), np.empty_like(x)
            rotate_serial(x, a, cos, sin, idx, sign, general, False, 1, None, np.uintp(0))
            rotate_serial(x, b, cos, sin, idx, sign, vector, False, 1, None, np.uintp(0))
            assert np.array_equal(a, b)
