"""The decoding step's path (numrope.kernels.step.table_step): taken for the common call with a table and an int
offset, equal to the general path bit for bit, and never taken where the general path would refuse the call."""

import ml_dtypes
import numpy as np
import pytest
from conftest import numpy_rotation

import numrope
from numrope.kernels import jit, step, stream
from numrope.kernels.half import target_converts_bfloat16, target_converts_half

DTYPES = {name: np.dtype(name) for name in ("float16", "float32", "float64")} | {
    "bfloat16": np.dtype(ml_dtypes.bfloat16)
}


@pytest.fixture
def spy(monkeypatch):
    """Records what table_step returned: None (not taken) or the result."""
    calls = []
    original = step.table_step

    def recording(*args):
        result = original(*args)
        calls.append(result is not None)
        return result

    monkeypatch.setattr(step, "table_step", recording)
    return calls


def general(monkeypatch, *args, **kwargs):
    """apply_rope by the general path only."""
    with monkeypatch.context() as m:
        m.setattr(step, "table_step", lambda *a: None)
        return numrope.apply_rope(*args, **kwargs)


CASES = [
    ("float32", "float32", "half", None),
    ("float32", "float64", "half", None),
    ("float64", "float64", "interleaved", None),
    ("float64", "float32", "half", None),
    ("float32", "float32", "interleaved", 8),  # the features past the rotary part are copied
    ("float16", "float32", "half", None),
    ("float16", "float16", "interleaved", None),
    ("float16", "float32", "interleaved", 8),
    ("bfloat16", "float32", "interleaved", None),
    ("bfloat16", "bfloat16", "half", None),
    ("bfloat16", "float32", "half", 8),
]


@pytest.mark.parametrize(("x_dtype", "table_dtype", "layout", "rotary_dim"), CASES)
@pytest.mark.parametrize("shape", [(1, 1, 4, 16), (3, 5, 2, 16)], ids=["decode", "batch-and-tokens"])
@pytest.mark.parametrize("output", ["out", "new", "in place"])
def test_taken_and_equal_to_the_general_path(
    x_dtype, table_dtype, layout, rotary_dim, shape, output, spy, rng, monkeypatch
):
    cfg = numrope.RopeConfig(16, layout=layout, rotary_dim=rotary_dim)
    cache = numrope.rope_cache(cfg, 40, DTYPES[table_dtype])
    x = rng.standard_normal(shape).astype(DTYPES[x_dtype])
    offset = 40 - shape[1]  # the last rows of the table
    want = general(monkeypatch, x, cfg, offset, cache=cache)
    y = x.copy()
    out = {"out": np.full_like(x, np.nan), "new": None, "in place": y}[output]
    got = numrope.apply_rope(y, cfg, offset, cache=cache, out=out)
    assert spy == [True]
    np.testing.assert_array_equal(got, want)
    if out is not None:
        assert got is out


@pytest.mark.parametrize("head_dim", [256, 128, 96, 80, 64])
@pytest.mark.parametrize("layout", ["half", "interleaved"])
@pytest.mark.parametrize(
    ("x_dtype", "table_dtype"), [("float16", "float32"), ("bfloat16", "bfloat16"), ("float32", "float32")]
)
@pytest.mark.parametrize("output", ["out", "in place"])
def test_the_plain_numpy_rotation_at_model_head_sizes(x_dtype, table_dtype, layout, head_dim, output, spy, rng):
    """Heads of whole vectors of pairs (256 and 128, the half layout's rotated two vectors at a time; 64, one) and of
    vectors and tails (96, 80), in the 2-byte dtypes a model decodes in: bit for bit the rotation in plain NumPy
    (products and sums rounded one at a time in float32, then once to x's dtype)."""
    cfg = numrope.RopeConfig(head_dim, layout=layout)
    cos, sin = numrope.rope_cache(cfg, 64, DTYPES[table_dtype])
    x = rng.standard_normal((2, 1, 32, head_dim)).astype(DTYPES[x_dtype])
    want = numpy_rotation(x, cos[41:42], sin[41:42], layout, inverse=False)
    y = x.copy()
    out = y if output == "in place" else np.full_like(x, np.nan)
    got = numrope.apply_rope(y, cfg, 41, cache=(cos, sin), out=out)
    assert spy == [True]
    assert got is out
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


@pytest.mark.parametrize("layout", ["half", "interleaved"])
@pytest.mark.parametrize("x_dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("output", ["out", "new", "in place"])
def test_a_prefill_with_no_positions(x_dtype, layout, output, spy, rng, monkeypatch):
    """Positions 0 .. S-1 (None), on enough elements for the parallel kernel: taken, bit for bit the general path's
    rotation, except where the general path's kernels are the faster (2-byte interleaved rows by its words kernel
    where the CPU does not convert them, float32 and float64 into the caller's output larger than the last-level
    cache by streaming stores)."""
    monkeypatch.setattr(stream, "MIN_BYTES", 1 << 16)  # the streaming stores' threshold, within this test's sizes
    cfg = numrope.RopeConfig(128, layout=layout)
    table = numrope.rope_cache(cfg, 64, np.float64 if x_dtype == "float64" else np.float32)
    x = rng.standard_normal((2, 64, 8, 128)).astype(DTYPES[x_dtype])  # 2**17 elements
    assert jit.use_parallel(x.size)
    want = general(monkeypatch, x, cfg, cache=table)
    y = x.copy()
    out = {"out": np.full_like(x, np.nan), "new": None, "in place": y}[output]
    got = numrope.apply_rope(y, cfg, cache=table, out=out)
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
    words = layout == "interleaved" and (
        (x_dtype == "float16" and not target_converts_half())
        or (x_dtype == "bfloat16" and not target_converts_bfloat16())
    )
    streamed = x_dtype in ("float32", "float64") and output == "out"  # (never into a new output)
    assert spy == [not (words or streamed)]


def test_not_taken_where_the_call_is_not_the_common_one(spy, rng):
    cfg = numrope.RopeConfig(16)
    cache = numrope.rope_cache(cfg, 40)
    x = rng.standard_normal((1, 1, 4, 16)).astype(np.float32)
    base = rng.standard_normal((1, 1, 4, 32)).astype(np.float32)
    calls = [
        lambda: numrope.apply_rope(x, cfg, np.int64(5), cache=cache),  # not a Python int
        lambda: numrope.apply_rope(x.astype(np.float16), cfg, 5, cache=tuple(t.astype(np.float64) for t in cache)),
        lambda: numrope.apply_rope(
            x.astype(DTYPES["bfloat16"]), cfg, 5, cache=tuple(t.astype(np.float16) for t in cache)
        ),
        lambda: numrope.apply_rope(x, cfg, 5, cache=tuple(t.astype(np.float16) for t in cache)),  # float16 table
        lambda: numrope.apply_rope(x.astype(">f2"), cfg, 5, cache=cache),  # float16 in the other byte order
        lambda: numrope.apply_rope(x[0], cfg, 5, cache=cache),  # 3-D
        lambda: numrope.apply_rope(base[..., :16], cfg, 5, cache=cache, out=base[..., 16:]),  # views of one buffer
        lambda: numrope.apply_rope(x, numrope.RopeConfig(16, layout="interleaved"), 5, cache=cache[::-1]),
    ]
    for call in calls:
        call()
    assert spy[:-1] == [False] * (len(calls) - 1)
    assert spy[-1] is True  # another configuration: its own facts, checked again


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"positions": 39}, IndexError, "outside the cache table"),  # one row past the table for 2 tokens
        ({"positions": -1}, IndexError, "negative"),
        ({"out": "read-only"}, ValueError, "read-only"),
        ({"out": np.empty((1, 2, 4, 16), np.float64)}, TypeError, "out must have dtype float32"),
        ({"out": np.empty((1, 2, 4, 8), np.float32)}, ValueError, "out must have shape"),
        ({"cache": "generator"}, TypeError, "cache must be a"),
        ({"cache": "short"}, ValueError, "rotary_dim // 2"),
    ],
)
def test_refusals_are_the_general_path_s(kwargs, error, match, spy, rng):
    cfg = numrope.RopeConfig(16)
    cos, sin = numrope.rope_cache(cfg, 40)
    x = rng.standard_normal((1, 2, 4, 16)).astype(np.float32)
    call = {"positions": 5, "cache": (cos, sin), "out": None} | kwargs
    if isinstance(call["out"], str):  # "read-only"
        call["out"] = np.empty_like(x)
        call["out"].flags.writeable = False
    if isinstance(call["cache"], str) and call["cache"] == "generator":
        call["cache"] = (t for t in (cos, sin))
    elif isinstance(call["cache"], str):  # "short"
        call["cache"] = (cos[:, :4], sin[:, :4])
    with pytest.raises(error, match=match):
        numrope.apply_rope(x, cfg, call["positions"], cache=call["cache"], out=call["out"])
    assert spy == [False]


def test_xpos_with_a_table_is_refused_not_rotated(spy):
    """xPos scales queries and keys apart: a single array with a table is refused, the decoding path included."""
    cfg = numrope.RopeConfig(head_dim=8, scaling=numrope.variants.XPos(scale_base=512.0))
    table = numrope.rope_cache(numrope.RopeConfig(head_dim=8), 16)
    x = np.ones((1, 1, 2, 8), np.float32)
    with pytest.raises(NotImplementedError, match="xPos"):
        numrope.apply_rope(x, cfg, 3, cache=table, out=np.empty_like(x))
    assert spy == [False]


def test_the_half_layout_s_rows_are_stored_in_order():
    """The lean kernel stores the half layout's rows of whole vectors a line at a time, in the order of the lines'
    addresses (numrope.kernels.simd.rotate_half_in_order): its compiled code holds the empty asm statements that keep
    LLVM from reordering the stores, one for each line of a row (float32, head 128: 512 bytes, 8 lines), and the
    general kernels hold none. The order is a matter of speed, not of bits (the tests above), and with the rows ahead
    prefetched no longer a measurable one (docs/benchmarks.md, the thirteenth pass)."""
    import numba

    from numrope.kernels import cpu

    x = np.zeros((1, 2, 1, 128), np.float32)
    cos, sin = numrope.rope_cache(numrope.RopeConfig(128), 2, dtype=np.float32)
    kernel = numba.njit(step.rotate_rows_serial.py_func)  # compiled here: the cached one cannot be inspected
    assert kernel(x, np.empty_like(x), cos, sin, 0, 2 | 64 << 2 | 128 << 32)
    barrier = 'asm sideeffect "", "~{memory}"'
    (signature,) = kernel.signatures
    assert kernel.inspect_llvm(signature).count(f"call void {barrier}") == 8
    general = numba.njit(cpu.rotate_serial.py_func)
    general(x, np.empty_like(x), cos, sin, np.zeros((1, 2), np.intp), None, 5, False, 1, None, 0)
    (signature,) = general.signatures
    assert barrier not in general.inspect_llvm(signature)


def test_the_lean_kernel_prefetches_the_rows_ahead():
    """Before each row, the lean kernel prefetches the lines ``AHEAD`` bytes past it in x, to read, and in out, to
    write (numrope.kernels.ahead; out= only: in place a write prefetch lost to none). A matter of speed, the bits are
    the tests above: on the Xeon, bare loops of float16 rows ran at 0.91 - 0.99 of the copy floor without them and
    1.05 - 1.07 with them 4 KiB ahead (``scripts/prefetch_ahead.py``)."""
    import numba

    x = np.zeros((1, 2, 1, 128), np.float32)
    cos, sin = numrope.rope_cache(numrope.RopeConfig(128), 2, dtype=np.float32)
    kernel = numba.njit(step.rotate_rows_serial.py_func)  # compiled here: the cached one cannot be inspected
    assert kernel(x, np.empty_like(x), cos, sin, 0, 2 | 64 << 2 | 128 << 32)
    (signature,) = kernel.signatures
    ir = kernel.inspect_llvm(signature)
    # llvm.prefetch(address, 0 to read or 1 to write, locality 3, data cache)
    assert ir.count("i32 0, i32 3, i32 1)") >= 1 and ir.count("i32 1, i32 3, i32 1)") >= 1


@pytest.mark.parametrize("tokens", [63, 64, 130])
@pytest.mark.parametrize("head_dim", [256, 128, 64])
@pytest.mark.parametrize("x_dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("parallel", [False, True])
def test_interleaved_2_byte_rows_by_swapped_features(x_dtype, head_dim, tokens, parallel, spy, rng, monkeypatch):
    """From 64 tokens on (a chunk's), the lean kernel rotates 2-byte interleaved rows of whole vectors without
    splitting their pairs (numrope.kernels.simd.rotate_interleaved_swapped), each token's tables laid out as its
    features once for all heads: bit for bit the rotation in plain NumPy, for whole chunks of tokens and the rest
    of one (and below a chunk, by the vectors of split pairs), in the serial and the parallel kernel, with a table
    of float32 or of x's dtype. Leaving the first features' sines unnegated fails it."""
    monkeypatch.setattr(step, "PARALLEL_MIN_ELEMENTS", 0)
    monkeypatch.setattr(step, "use_parallel", lambda size: parallel)
    cfg = numrope.RopeConfig(head_dim, layout="interleaved")
    x = rng.standard_normal((2, tokens, 4, head_dim)).astype(DTYPES[x_dtype])
    for table_dtype in (np.float32, DTYPES[x_dtype]):
        cos, sin = numrope.rope_cache(cfg, 200, table_dtype)
        want = numpy_rotation(x, cos[5 : 5 + tokens], sin[5 : 5 + tokens], "interleaved", inverse=False)
        got = numrope.apply_rope(x, cfg, 5, cache=(cos, sin))
        np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
    assert spy == [True, True]
