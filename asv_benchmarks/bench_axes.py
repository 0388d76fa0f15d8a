"""Multi-axis RoPE on a Llama-sized prefill of text and image tokens: M-RoPE and a vision tower's 2-D RoPE.

Compare with ``bench_apply.Prefill`` (float32, BSHD, half): the multi-axis call gathers a per-token
table before the same rotation, and the copy floor is ``bench_apply``'s too.
"""

import math

import numpy as np

import numrope
from numrope.models.vision import mrope_positions, vision_positions

from . import HEAD_DIM, SEQ, THREADS, prefill, use_threads


def _coordinates(kind):
    """Text and an image of about half the tokens (M-RoPE), or one image's patches (the vision tower)."""
    side = max(1, math.isqrt(SEQ // 2))
    rows = max(1, min(side, SEQ // side // 2))
    if kind == "axial":
        n_rows = max(1, SEQ // 64)
        grid = np.array([[1, 2 * n_rows, 2 * (SEQ // (4 * n_rows) or 1)]])
        coords = vision_positions(grid, 2)
        reps = math.ceil(SEQ / coords.shape[1])
        return np.tile(coords, (1, reps))[:, :SEQ]
    return mrope_positions([("image", (1, 2 * rows, 2 * side)), ("text", SEQ - rows * side)])


def _config(kind):
    pairs = HEAD_DIM // 2
    sections = [pairs - 2 * (3 * pairs // 8), 3 * pairs // 8, 3 * pairs // 8]
    if kind == "sectioned":
        return numrope.RopeConfig(HEAD_DIM, 1e6, axes=numrope.axes.sectioned(sections))
    if kind == "interleaved":
        return numrope.RopeConfig(HEAD_DIM, 5e6, axes=numrope.axes.interleaved(sections))
    return numrope.RopeConfig(HEAD_DIM, 1e4, axes=numrope.axes.axial(pairs))


class MultiAxis:
    """Coordinates (n_axes, seq) into ``out=``, with a table (rows per coordinate value) or without."""

    params = (["sectioned", "interleaved", "axial"], ["table", "no table"], THREADS)
    param_names = ("map", "cache", "threads")

    def setup(self, kind, cache, threads):
        use_threads(threads)
        self.x, _ = prefill()
        self.out = np.empty_like(self.x)
        self.cfg = _config(kind)
        self.coords = _coordinates(kind)
        n = int(self.coords.max()) + 1
        self.cache = numrope.rope_cache(self.cfg, n) if cache == "table" else None
        self.time_apply_rope(kind, cache, threads)

    def time_apply_rope(self, kind, cache, threads):
        numrope.apply_rope(self.x, self.cfg, self.coords, cache=self.cache, out=self.out)


class MultiAxisQK:
    """apply_rope_qk with grouped-query heads (4 query heads per key head) and M-RoPE coordinates, table."""

    params = (THREADS,)
    param_names = ("threads",)

    def setup(self, threads):
        use_threads(threads)
        self.q, _ = prefill()
        self.k, _ = prefill(heads=max(1, self.q.shape[2] // 4), seed=1)
        self.cfg = _config("sectioned")
        self.coords = _coordinates("sectioned")
        self.cache = numrope.rope_cache(self.cfg, int(self.coords.max()) + 1)
        self.time_apply_rope_qk(threads)

    def time_apply_rope_qk(self, threads):
        numrope.apply_rope_qk(self.q, self.k, self.cfg, self.coords, cache=self.cache)
