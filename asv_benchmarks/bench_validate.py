"""numrope.validation.compare of large outputs: memory-mapped .npy files compared chunk by chunk, against the same
arrays compared in memory (time and peak memory)."""

import os
import tempfile

import numpy as np

import numrope
from numrope.validation import compare

from . import HEAD_DIM, HEADS, SEQ, random

#: (batch, seq, heads, head_dim): a quarter of the prefill, 16 MiB in float32, so that the in-memory
#: comparison (about 20 float64 temporaries of the inputs' size) stays within a benchmark machine's memory.
SHAPE = (1, max(1, SEQ // 4), HEADS, HEAD_DIM)


class StreamingCompare:
    """A right output (float32) and one with positions off by one, from files or from memory."""

    params = (["memory-mapped", "in memory"], ["right", "offset"])
    param_names = ("source", "output")
    timeout = 300

    def setup_cache(self):
        folder = tempfile.mkdtemp(prefix="numrope-asv-")
        cfg = numrope.RopeConfig(HEAD_DIM)
        x = random(SHAPE)
        np.save(os.path.join(folder, "x.npy"), x)
        np.save(os.path.join(folder, "right.npy"), numrope.apply_rope(x, cfg))
        np.save(os.path.join(folder, "offset.npy"), numrope.apply_rope(x, cfg, 1))
        return folder

    def setup(self, folder, source, output):
        mode = "r" if source == "memory-mapped" else None
        self.x = np.load(os.path.join(folder, "x.npy"), mmap_mode=mode)
        self.actual = np.load(os.path.join(folder, f"{output}.npy"), mmap_mode=mode)
        self.cfg = numrope.RopeConfig(HEAD_DIM)

    def time_compare(self, folder, source, output):
        compare(self.actual, self.x, self.cfg)

    def peakmem_compare(self, folder, source, output):
        compare(self.actual, self.x, self.cfg)
