"""Streaming stores (numrope.kernels.stream): large outputs written a cache line at a time give, bit for bit, what
plain stores give, wherever a row starts within a line, in every calling form that streams."""

import itertools

import numba
import numpy as np
import pytest

import numrope
from numrope import _checks
from numrope.kernels import jit, stream

pytestmark = pytest.mark.skipif(not stream.AVAILABLE, reason="streaming stores are used on x86-64 only")


@pytest.fixture
def plans(monkeypatch):
    """Stream every output, run the parallel twins on small inputs, and record each launch's plan."""
    seen = []
    plan = stream.plan

    def recording(x4, out4, chunks, new=False):
        result = plan(x4, out4, chunks, new)
        seen.append(None if result is None else (result[1], chunks))
        return result

    monkeypatch.setattr(stream, "MIN_BYTES", 0)
    monkeypatch.setattr(stream, "plan", recording)
    monkeypatch.setattr(jit, "PARALLEL_MIN_ELEMENTS", 0)
    return seen


def plain(monkeypatch, fn):
    """``fn()`` with plain stores only."""
    with monkeypatch.context() as m:
        m.setattr(stream, "MIN_BYTES", 1 << 62)
        return fn()


def at_byte(shape, dtype, skip):
    """A zeroed array of ``shape`` starting ``skip`` bytes after a 64-byte boundary."""
    dtype = np.dtype(dtype)
    raw = np.zeros(int(np.prod(shape)) * dtype.itemsize + 128, np.uint8)
    start = -raw.ctypes.data % 64 + skip
    return raw[start : start + int(np.prod(shape)) * dtype.itemsize].view(dtype).reshape(shape)


def same_bits(a, b):
    return np.array_equal(np.ascontiguousarray(a).view(np.uint8), np.ascontiguousarray(b).view(np.uint8))


CASES = list(
    itertools.product(
        ["float32", "float64"],
        ["half", "interleaved", "interleaved_in_half_out"],
        [0, 8, 16, 48],  # where each row starts within a line
        [-3, -2],
    )
)


@pytest.mark.parametrize("dtype, layout, skip, seq_axis", CASES)
@pytest.mark.parametrize("threads", [1, 2])
def test_streamed_outputs_are_the_plain_outputs(dtype, layout, skip, seq_axis, threads, plans, monkeypatch, rng):
    shape = (3, 29, 5, 64) if seq_axis == -3 else (3, 5, 29, 64)
    x = rng.standard_normal(shape).astype(dtype)
    cfg = numrope.RopeConfig(64, layout=layout)
    cache = numrope.rope_cache(cfg, 40, dtype=dtype)
    calls = {
        "table": lambda out: numrope.apply_rope(x, cfg, 3, cache=cache, seq_axis=seq_axis, out=out),
        "angles": lambda out: numrope.apply_rope(x, cfg, 1000, seq_axis=seq_axis, out=out),
        "backwards": lambda out: numrope.apply_rope(x, cfg, seq_axis=seq_axis, inverse=True, out=out),
        "per row": lambda out: numrope.apply_rope(x, cfg, np.arange(3 * 29).reshape(3, 29), seq_axis=seq_axis, out=out),
    }
    old = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        for name, call in calls.items():
            expected = plain(monkeypatch, lambda call=call: call(np.empty_like(x)))
            out = at_byte(shape, dtype, skip)
            call(out)
            assert same_bits(out, expected), name
    finally:
        numba.set_num_threads(old)
    streamed = [p for p in plans if p is not None]
    assert len(streamed) == len(calls), plans  # every call above streamed
    assert {p[0] for p in streamed} == {skip}


@pytest.mark.parametrize("rotary", [dict(rotary_dim=32), dict(rotary_dim=32, rotary_offset=16)])
def test_partial_rotation_streams_its_rotary_part(rotary, plans, monkeypatch, rng):
    """The features outside the rotary part are copied before the kernel, which streams the rest."""
    x = rng.standard_normal((2, 33, 4, 64)).astype(np.float32)
    cfg = numrope.RopeConfig(64, **rotary)
    expected = plain(monkeypatch, lambda: numrope.apply_rope(x, cfg))
    for skip in (0, 16):
        out = at_byte(x.shape, x.dtype, skip)
        numrope.apply_rope(x, cfg, out=out)
        assert same_bits(out, expected)
    assert any(p is not None for p in plans)


def test_more_chunks_than_a_row_can_fill(plans, monkeypatch, rng):
    """Chunks of one token, and the last partial line of every chunk stored plainly."""
    x = rng.standard_normal((1, 3, 2, 32)).astype(np.float32)
    cfg = numrope.RopeConfig(32)
    expected = plain(monkeypatch, lambda: numrope.apply_rope(x, cfg))
    for skip in (0, 4, 60):
        out = at_byte(x.shape, x.dtype, skip)
        numrope.apply_rope(x, cfg, out=out)
        assert same_bits(out, expected)
    assert [p[1] for p in plans if p is not None] == [3, 3, 3]


def test_what_is_not_streamed(monkeypatch, rng):
    """Plain stores where streaming does not apply or was measured slower."""
    monkeypatch.setattr(stream, "MIN_BYTES", 0)
    x = rng.standard_normal((2, 8, 4, 64)).astype(np.float32)
    assert stream.plan(x, np.empty_like(x), 4) is not None
    assert stream.plan(x, x, 4) is None  # in place
    assert stream.plan(x, np.empty((2, 8, 4, 64), np.float16), 4) is None  # 2-byte elements
    odd = rng.standard_normal((2, 8, 4, 40)).astype(np.float32)  # 160-byte rows: not whole lines
    assert stream.plan(odd, np.empty_like(odd), 4) is None
    wide = at_byte((2, 8, 8, 64), np.float32, 16)[:, :, :4]  # rows apart, not on lines
    assert stream.plan(x, wide, 4) is None
    unaligned = at_byte(x.shape, np.float32, 1)
    assert not unaligned.flags.aligned and stream.plan(x, unaligned, 4) is None
    on_lines = at_byte((2, 8, 8, 64), np.float32, 0)[:, :, :4]  # rows apart, each on a line
    assert stream.plan(x, on_lines, 4) is not None
    assert stream.plan(x, np.empty_like(x), 4, new=True) is None  # made for the call: its pages not yet touched
    monkeypatch.setattr(stream, "MIN_BYTES", 1 << 62)
    assert stream.plan(x, np.empty_like(x), 4) is None  # small enough to stay in cache


def test_the_serial_kernels_store_plainly(plans, monkeypatch, rng):
    """Calls that take the serial twins (small ones, or any in a process forked from GNU OpenMP) are not streamed:
    streaming there was measured four times slower than plain stores."""
    monkeypatch.setattr(jit, "PARALLEL_MIN_ELEMENTS", 1 << 62)
    x = rng.standard_normal((2, 9, 4, 64)).astype(np.float32)
    cfg = numrope.RopeConfig(64)
    out = at_byte(x.shape, np.float32, 0)
    numrope.apply_rope(x, cfg, out=out)
    numrope.apply_rope(x, cfg, np.arange(9), out=out)
    assert plans == []  # never planned
    assert stream.plan(x, out, 1) is not None  # it could have been
    assert same_bits(out, plain(monkeypatch, lambda: numrope.apply_rope(x, cfg)))


def test_unaligned_outputs_are_written_plainly(plans, monkeypatch, rng):
    """An output at an odd byte offset (NumPy allows unaligned views) has no element on a line boundary."""
    x = rng.standard_normal((2, 9, 4, 64)).astype(np.float32)
    cfg = numrope.RopeConfig(64)
    out = at_byte(x.shape, np.float32, 1)
    numrope.apply_rope(x, cfg, out=out)
    assert same_bits(out, plain(monkeypatch, lambda: numrope.apply_rope(x, cfg)))


def test_new_outputs_start_on_a_line(rng):
    big = _checks.new_array((64, 64, 64), np.float32)  # 1 MiB
    assert big.ctypes.data % 64 == 0 and big.shape == (64, 64, 64) and big.dtype == np.float32
    assert big.flags.c_contiguous and big.flags.writeable
    small = _checks.new_array((3, 5), np.float64)
    assert small.shape == (3, 5) and small.flags.owndata
    x = rng.standard_normal((1, 256, 8, 128)).astype(np.float32)
    assert numrope.apply_rope(x, numrope.RopeConfig(128)).ctypes.data % 64 == 0


def test_a_large_call_streams_by_default(monkeypatch):
    """The caller's outputs of at least MIN_BYTES (the last-level cache's size, at most CAP_BYTES) stream without
    any setting; the outputs numrope makes for a call never do (see stream.plan)."""
    assert stream.MIN_BYTES == min(stream._last_level_cache(), stream.CAP_BYTES)
    streamed = []
    plan = stream.plan

    def recording(x4, out4, chunks, new=False):
        result = plan(x4, out4, chunks, new)
        streamed.append(result is not None)
        return result

    monkeypatch.setattr(stream, "plan", recording)
    x = np.ones((1, stream.MIN_BYTES // (8 * 128 * 4) + 1, 8, 128), np.float32)
    cfg = numrope.RopeConfig(128)
    cache = numrope.rope_cache(cfg, x.shape[1])
    new = numrope.apply_rope(x, cfg)
    out = _checks.new_array(x.shape, x.dtype)
    numrope.apply_rope(x, cfg, out=out)
    assert same_bits(out, new)
    numrope.apply_rope(x, cfg, cache=cache, out=out)  # by the general path: the lean one declines it
    assert same_bits(out, new)
    q, k = numrope.apply_rope_qk(x, x, cfg, cache=cache)
    assert same_bits(q, new) and same_bits(k, new)
    assert streamed == [False, True, True, False, False]


@pytest.mark.parametrize("view", ["heads apart", "tokens reversed"])
def test_rows_apart_on_lines(view, plans, monkeypatch, rng):
    """Rows that do not follow each other in memory stream where each starts on a line, whatever the strides."""
    x = rng.standard_normal((2, 11, 4, 64)).astype(np.float32)
    cfg = numrope.RopeConfig(64)
    big = at_byte((2, 11, 8, 64), np.float32, 0)
    out = big[:, :, :4] if view == "heads apart" else big[:, ::-1, :4]
    numrope.apply_rope(x, cfg, out=out)
    assert same_bits(out, plain(monkeypatch, lambda: numrope.apply_rope(x, cfg)))
    assert [p[0] for p in plans if p is not None] == [0]
    assert np.array_equal(big[:, :, 4:], np.zeros((2, 11, 4, 64), np.float32))  # nothing written beside the rows
