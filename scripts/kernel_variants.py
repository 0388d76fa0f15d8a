"""How the shape of a Numba kernel's loops costs time: the float16 half-layout rotation of a
(1, 4096, 32, 128) prefill with a float32 table, one thread, CPU time, as shares of the copy floor.

Each variant computes numrope's result bit for bit (checked before timing). They differ only in
how the loops are written:

* ``tail after each head``: a loop copying the features past the rotary part after each head's
  rotation, with a runtime flag, as the kernels had it: the loop never runs here (no tail), but
  its presence slows the rotation;
* ``tail after the token``: numrope's kernel, which copies the tails after all of a token's heads;
* ``serial, head loop inlined by Numba`` / ``by LLVM``: a serial (not ``parallel=True``) kernel whose
  per-token function, holding the loop over heads, is inlined by Numba (``inline="always"``) or, as in
  numrope's serial kernel, left to LLVM. Inlined by Numba, its array arguments cost atomic reference count updates in
  every iteration of the head loop;
* numrope's call, ``apply_rope(x, cfg, cache=..., out=out)``.

    python scripts/kernel_variants.py
"""

import time

import numba
import numpy as np

import numrope
from numrope.cli.bench.timing import parallel_copy, time_calls
from numrope.kernels import cpu
from numrope.kernels.cpu import _UP, _chunk, _next_token, _rotate_head


@numba.njit(parallel=True)
def tail_after_each_head(x, out, cos, sin, idx, sign, layout, copy_tail, n_chunks):
    for c in numba.prange(n_chunks):
        first, stop, b, s = _chunk(c, n_chunks, x)
        for _ in range(first, stop):
            for h in range(_UP(x.shape[2])):
                _rotate_head(x, out, b, s, h, (b, s, h, _UP(0)), cos, sin, idx[0, s], sign, layout, copy_tail)
            b, s = _next_token(x, b, s)


@numba.njit(inline="always")
def _token_numba_inlined(x, out, b, s, cos, sin, p, sign, layout, copy_tail):
    """numrope's ``_rotate_token`` as it was, with its tail loop written out, inlined by Numba."""
    for h in range(_UP(x.shape[2])):
        _rotate_head(x, out, b, s, h, (b, s, h, _UP(0)), cos, sin, p, sign, layout, False)
    if copy_tail:
        for h in range(_UP(x.shape[2])):
            for j in range(_UP(2) * _UP(cos.shape[1]), _UP(x.shape[3])):
                out[b, s, h, j] = x[b, s, h, j]


@numba.njit
def serial_numba_inlined(x, out, cos, sin, idx, sign, layout, copy_tail, n_chunks):
    for c in range(n_chunks):
        first, stop, b, s = _chunk(c, n_chunks, x)
        for _ in range(first, stop):
            _token_numba_inlined(x, out, b, s, cos, sin, idx[0, s], sign, layout, copy_tail)
            b, s = _next_token(x, b, s)


def main():
    numba.set_num_threads(1)
    cfg = numrope.RopeConfig(128)
    x = np.random.default_rng(0).standard_normal((1, 4096, 32, 128)).astype(np.float16)
    out = np.empty_like(x)
    cache = numrope.rope_cache(cfg, 4096, dtype=np.float32)
    cos, sin = cache  # (positions, pairs)
    # the kernels' arguments for this call: float16 as bit patterns, a table row per token, forwards, the
    # half layout with out apart from x (4), no tail, one chunk, plain stores
    args = (x.view(np.uint16), out.view(np.uint16), cos, sin, np.arange(4096)[None], np.float32(1), 4, False, 1)
    calls = {
        "floor": lambda: parallel_copy(x, out),
        "numrope": lambda: numrope.apply_rope(x, cfg, cache=cache, out=out),
        "tail after each head": lambda: tail_after_each_head(*args),
        "tail after the token": lambda: cpu.rotate_parallel(*args, None, _UP(0)),
        "serial, head loop inlined by Numba": lambda: serial_numba_inlined(*args),
        "serial, head loop inlined by LLVM": lambda: cpu.rotate_serial(*args, None, _UP(0)),
    }
    expected = numrope.apply_rope(x, cfg, cache=cache).view(np.uint16)
    for name, call in calls.items():
        out[...] = 0
        call()
        if name != "floor" and not np.array_equal(out.view(np.uint16), expected):
            raise AssertionError(f"{name} differs from numrope's result")
    for _ in range(3):
        t = time_calls(calls, repeat=7, clock=time.thread_time)
        print("  ".join(f"{name} {t[name] * 1e3:.2f} ms ({t['floor'] / t[name]:.2f})" for name in calls))


if __name__ == "__main__":
    main()
