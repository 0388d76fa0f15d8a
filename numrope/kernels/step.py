"""The lean launcher and its kernel: a table, an int position offset or none, and nothing unusual.

:func:`table_step` serves ``apply_rope(x, cfg, positions, cache=(cos, sin), out=out)`` for the common call (a
decoding step, or a prefill with positions 0 .. S-1 or from an offset), or declines it (None), having done
nothing, for the general path of :mod:`numrope.kernels.cpu` to take. Private: the kernel trusts its launcher,
which checks what the kernel's types cannot carry.

Its Python is lean because every call pays for it, and a prefill pays for it cold: right after its kernel has
streamed the arrays through the caches, the general path's checks and launcher took 100 - 170 us a call
against this launcher's 25 - 60 (``scripts/prefill_launch.py``), 5 - 10% of a float16 or bfloat16 prefill of
(1, 4096, 32, 128) on one thread.
"""

import numba
import numpy as np

from numrope._checks import new_array
from numrope._interop import is_bfloat16
from numrope.config import RopeConfig
from numrope.kernels import stream
from numrope.kernels.ahead import prefetch_ahead
from numrope.kernels.cpu import _F32, _F64, _UP, _copy_tails, _rotate_head, _widen
from numrope.kernels.jit import PARALLEL_MIN_ELEMENTS, jit_twins, njit, use_parallel
from numrope.kernels.simd import (
    WORDS_IN_VECTORS,
    rotate_half_in_order,
    rotate_interleaved_swapped,
    step_code,
    swapped_applies,
    tails_apply,
    token_tails,
)

# The lean path: a table, an int position offset or none, and nothing unusual. A call costs about as much
# as its checks and Numba's dispatch of the kernel's arguments (about 0.1 microsecond per array, half that
# per scalar), so this kernel takes the offset and one int of flags and sizes instead of an index array, a sign
# and two flags, and checks the shapes itself: compiled, the comparisons cost nothing, where each read of a
# shape in Python costs 50 ns. Its launcher checks in Python only what the kernel's types cannot carry.

_FLAG_INTERLEAVED, _FLAG_COPY_TAIL = 1, 2
_PAIRS_SHIFT, _HEAD_DIM_SHIFT, _SIZE_LIMIT = 2, 32, 1 << 29  # the fields of ``code`` (see _rotate_rows)


def _rotate_rows(x, out, cos, sin, start, code):
    """As ``_rotate`` forwards, token ``(b, s)`` reading table row ``start + s``, if the shapes are those of a
    valid call; returns whether they were (nothing is written where not).

    ``code``: bit 1 interleaved, bit 2 ``out`` is not ``x`` (copy the features past the rotary part), then the
    configuration's pairs (from bit 2) and head_dim (from bit 32), which ``x``, ``cos`` and ``sin`` must match;
    ``out`` must have x's shape and the rows ``start`` to ``start + seq - 1`` must lie in the tables. Each token
    is rotated as ``numrope.kernels.cpu._rotate_token`` rotates it, forwards (no sign to multiply by), with the
    vector kernels where the general path takes them (:func:`numrope.kernels.simd.step_code`; in place, LLVM's
    loops run scalar: float32 (1, 1, 32, 128) 2.7 -> 1.7 us a step). Its steps are written out here, not called:
    through ``_rotate_token`` a float64 step took 2.9 us instead of 2.1.
    """
    pairs = (code >> _PAIRS_SHIFT) & (_SIZE_LIMIT - 1)
    if x.shape[3] != code >> _HEAD_DIM_SHIFT or cos.shape[1] != pairs or sin.shape[1] != pairs:
        return False
    if sin.shape[0] != cos.shape[0] or not 0 <= start <= cos.shape[0] - x.shape[1]:
        return False
    for k in range(4):
        if out.shape[k] != x.shape[k]:
            return False
    apart = (code & _FLAG_COPY_TAIL) != 0
    layout = step_code(x, out, cos, sin, code & _FLAG_INTERLEAVED, not apart)
    copy_tail = apart and x.shape[3] > 2 * pairs
    # The half layout's whole vectors (the decoding step of most models) in a loop of their own, compiled apart, with
    # their rows stored in order (numrope.kernels.simd.rotate_half_in_order). With the code a run-time value, a
    # float32 step into out= took 1.9 - 2.1 us instead of 1.7 - 1.85. A loop of its own for the interleaved layout's
    # split pairs gained nothing (float16 into out=, (1, 4096, 32, 128), one thread: 0.80 - 0.85 of the copy
    # floor against 0.81 - 0.91), and every code a loop of its own took twice as long to compile (9.8 s against 4.6).
    # The interleaved layout's 2-byte pairs unsplit take a third (_tokens_swapped). In the first (from _AHEAD_MIN_TOKENS
    # tokens on) and the third, every row is preceded by software prefetches of the rows ahead (numrope.kernels.ahead).
    if layout == 5:
        _tokens(x, out, cos, sin, start, 5, copy_tail, pairs, True)
    elif layout == 6 and swapped_applies(x) and x.shape[0] * x.shape[1] >= _CHUNK:
        _tokens_swapped(x, out, cos, sin, start, copy_tail, pairs)
    else:
        _tokens(x, out, cos, sin, start, layout, copy_tail, pairs, False)
    return True


@njit(inline="always")
def _tokens(x, out, cos, sin, start, layout, copy_tail, pairs, in_order):
    """The tokens of ``_rotate_rows``, token ``(b, s)`` by table row ``start + s`` (``in_order``: layout code 5, by
    :func:`numrope.kernels.simd.rotate_half_in_order`)."""
    n_s = x.shape[1]
    ahead = x.shape[0] * n_s >= _AHEAD_MIN_TOKENS
    for t in numba.prange(x.shape[0] * n_s):
        b = t // n_s
        s = t - b * n_s
        p = start + s
        if in_order:
            for h in range(_UP(x.shape[2])):
                if ahead:
                    prefetch_ahead(x, out, b, s, h)
                rotate_half_in_order(x, out, b, s, h, cos, sin, p)
        else:
            for h in range(_UP(x.shape[2])):
                _rotate_head(x, out, b, s, h, (b, s, h, _UP(0)), cos, sin, p, None, layout, False)
            if tails_apply(x, out, cos, sin, None) and layout >= 7:
                token_tails(x, out, b, s, cos, sin, p, layout)
        if copy_tail:
            _copy_tails(x, out, b, s, _UP(2) * _UP(pairs))


_CHUNK = 64  # tokens a scratch table serves: two allocations a chunk
# Tokens from which the half layout's rows ahead are prefetched: a decoding step's arrays are in cache already, and with
# the prefetches a float16 step ran 5 - 8% slower. The loop of the other codes prefetches nothing: there the mere
# presence of the prefetches, taken or not, made the interleaved layout's steps take 3 - 4 us instead of 2 (float16,
# bfloat16 and float32, (1, 1, 32, 128)), though float32 interleaved prefills gained (in place, head 64: 1.64 - 1.82 of
# the copy floor against 1.45 - 1.52).
_AHEAD_MIN_TOKENS = 64


@njit(inline="always")
def _tokens_swapped(x, out, cos, sin, start, copy_tail, pairs):
    """The tokens of ``_rotate_rows`` in the interleaved layout's whole vectors of 2-byte features, by
    :func:`numrope.kernels.simd.rotate_interleaved_swapped`: each token's tables laid out as its features once, in a
    scratch of each chunk of tokens, for all its heads."""
    n_s = x.shape[1]
    n_tokens = x.shape[0] * n_s
    for c in numba.prange((n_tokens + _CHUNK - 1) // _CHUNK):
        cos2 = np.empty(2 * pairs, np.float32)
        sin2 = np.empty(2 * pairs, np.float32)
        for t in range(c * _CHUNK, min(n_tokens, (c + 1) * _CHUNK)):
            b = t // n_s
            s = t - b * n_s
            p = start + s
            for i in range(pairs):
                cv = np.float32(_widen(cos[p, i]))
                sv = np.float32(_widen(sin[p, i]))
                cos2[2 * i] = cv
                cos2[2 * i + 1] = cv
                sin2[2 * i] = -sv
                sin2[2 * i + 1] = sv
            for h in range(_UP(x.shape[2])):
                prefetch_ahead(x, out, b, s, h)
                rotate_interleaved_swapped(x, out, b, s, h, cos2, sin2)
            if copy_tail:
                _copy_tails(x, out, b, s, _UP(2) * _UP(pairs))


rotate_rows_parallel, rotate_rows_serial = jit_twins(_rotate_rows)
_LAYOUT_FLAGS = {"half": 0, "interleaved": _FLAG_INTERLEAVED}
_ARRAY = np.ndarray  # a module global: a read of np.ndarray is two lookups, and the step counts them


def table_step(x, cfg, positions, cache, out):
    """``apply_rope(x, cfg, positions, cache=cache, out=out)`` for the common call, or None.

    The call: ``x`` a 4-D float16, bfloat16, float32 or float64 array ``(batch, seq, heads, head_dim)``,
    ``positions`` None (0 .. S-1) or an int offset, whose rows all lie in the table, ``cache`` a pair of 2-D tables
    from :func:`numrope.rope_cache` of x's dtype or float32 (or float64, for float32 and float64 x), ``out`` None, x
    itself, or an array of x's shape and dtype owning memory that x does not (``x`` owning its memory too); ``cfg``
    a RopeConfig with one axis, the half or interleaved layout, the rotary part first and no reversal. Anything else
    returns None, having done nothing: the caller then takes the general path, whose checks say what is wrong, if
    anything. Each condition here is one the general path's checks would also accept, so the results are the same.
    The types, dimensions, ownership and writability are checked here; the shapes and the table's bounds by the
    kernel, which writes nothing where they fail. A call the parallel kernel would run is declined where the general
    path's kernels are the faster: streaming stores (float32 and float64 outputs past the last-level cache, other
    than new ones: :mod:`numrope.kernels.stream`) and the words kernel (2-byte interleaved rows,
    :data:`numrope.kernels.simd.WORDS_IN_VECTORS`).
    """
    if positions is None:  # positions 0 .. S-1
        positions = 0
    if type(x) is not _ARRAY or type(positions) is not int or positions >> 62:
        return None  # (negative offsets and those an int64 cannot hold: the general path)
    facts = _step_facts
    if cfg is not facts[0]:  # a RopeConfig is immutable: what was found true of it stays true
        facts = _config_facts(cfg)
        if facts is None:
            return None
    if type(cache) is not tuple and type(cache) is not list:
        return None
    try:
        cos, sin = cache
    except ValueError:  # not two tables
        return None
    if type(cos) is not _ARRAY or type(sin) is not _ARRAY:
        return None
    dtype, table = x.dtype, cos.dtype
    if sin.dtype is not table:
        return None
    if dtype is _F32 or dtype is _F64:
        bits = None
        if table is not _F32 and table is not _F64:
            return None
    else:  # float16 or bfloat16, read as their bit patterns (numrope.kernels.cpu), with a float32 table or their own
        bits = _bit_patterns(dtype)
        if bits is None or (table is not _F32 and table is not dtype):
            return None
    if x.ndim != 4 or cos.ndim != 2 or sin.ndim != 2:
        return None
    code = facts[1]
    size = x.size
    parallel = size >= PARALLEL_MIN_ELEMENTS and use_parallel(size)  # a decoding step's test is the first
    if parallel and (  # (streamed by the general path)
        (out is not None and out is not x and x.nbytes >= stream.MIN_BYTES and x.itemsize >= stream.MIN_ITEMSIZE)
        or (bits in _WORDS_KERNEL and code & _FLAG_INTERLEAVED)  # rotated by the general path's words kernel
    ):
        return None
    if out is None:
        out = new_array(x.shape, dtype)
    elif type(out) is not _ARRAY or out.dtype is not dtype or out.ndim != 4 or not out.flags.writeable:
        return None
    elif out is not x and (out.base is not None or x.base is not None):
        return None  # views may overlap: the general path tells the cases apart
    if out is not x:
        code |= _FLAG_COPY_TAIL
    xk, outk = x, out
    if bits is not None:
        xk, outk = x.view(bits), out.view(bits)
        if table is dtype:
            cos, sin = cos.view(bits), sin.view(bits)
    if not (rotate_rows_parallel if parallel else rotate_rows_serial)(xk, outk, cos, sin, positions, code):
        return None  # shapes or bounds the general path must judge (nothing was written)
    return out


_F16 = np.dtype(np.float16)
#: The bit-pattern types whose interleaved rows the general path rotates by its words kernel (numrope.kernels.cpu)
_WORDS_KERNEL = {np.uint16, np.int16} - {dtype.type for dtype in WORDS_IN_VECTORS}
_bf16 = None  # native bfloat16's dtype, once seen: reading a dtype's name takes 0.6 us, a decoding step's third


def _bit_patterns(dtype):
    """The integer type the kernels read a 2-byte float dtype as (float16 uint16, bfloat16 int16, native byte
    order), or None."""
    global _bf16
    if dtype is _F16:
        return np.uint16
    if dtype is _bf16:
        return np.int16
    if dtype.isnative and is_bfloat16(dtype):
        _bf16 = dtype
        return np.int16
    return None


_step_facts = (None, 0)  # (cfg, the kernel's code for it) of the last configuration table_step took


def _config_facts(cfg):
    """``(cfg, code)`` for a configuration :func:`table_step` takes (``code`` as for ``_rotate_rows``), or
    None."""
    global _step_facts
    if type(cfg) is not RopeConfig or cfg.axes is not None or getattr(cfg, "rotary_offset", 0) != 0:
        return None
    if getattr(cfg.scaling, "scales_qk", False):  # xPos: apply_rope refuses it, on its general path
        return None
    flags = _LAYOUT_FLAGS.get(cfg.layout)
    if flags is None or getattr(cfg, "direction", 1) != 1:
        return None
    pairs, head_dim = cfg.rotary_dim >> 1, cfg.head_dim
    if not (0 <= pairs < _SIZE_LIMIT and 0 <= head_dim < _SIZE_LIMIT):
        return None  # sizes the code cannot carry (no such array fits in memory)
    _step_facts = (cfg, flags | pairs << _PAIRS_SHIFT | head_dim << _HEAD_DIM_SHIFT)
    return _step_facts
