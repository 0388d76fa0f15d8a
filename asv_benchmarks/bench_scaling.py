"""Each long-context scaling variant's cost per call: frequencies, table, and a decoding step."""

import numpy as np

import numrope
from numrope import variants as scaling

from . import HEAD_DIM, HEADS, SEQ, random

N_PAIRS = HEAD_DIM // 2

#: One example of each variant, shaped like the published configurations that use it (Code Llama
#: for linear, YaRN-Llama-2 and DeepSeek for YaRN, Phi-3 for LongRoPE, Llama 3.1 for llama3).
EXAMPLES = {
    "none": lambda: None,
    "linear": lambda: scaling.Linear(factor=4.0),
    "ntk": lambda: scaling.NTK(factor=4.0),
    "dynamic": lambda: scaling.DynamicNTK(factor=4.0, max_position_embeddings=SEQ),
    "yarn": lambda: scaling.YaRN(factor=4.0, original_max_position_embeddings=SEQ),
    "longrope": lambda: scaling.LongRoPE(
        short_factor=tuple(np.linspace(1.0, 1.5, N_PAIRS)),
        long_factor=tuple(np.linspace(1.0, 4.0, N_PAIRS)),
        original_max_position_embeddings=SEQ,
        max_position_embeddings=4 * SEQ,
    ),
    "llama3": lambda: scaling.Llama3(
        factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0, original_max_position_embeddings=SEQ
    ),
    "proportional": lambda: scaling.Proportional(partial_rotary_factor=0.25),  # Gemma 4's full attention
}


class ScalingVariants:
    """Per-call cost of each variant against plain RoPE ("none"), all cores."""

    params = (list(EXAMPLES),)
    param_names = ("rope_type",)

    def setup(self, rope_type):
        self.cfg = numrope.RopeConfig(HEAD_DIM, scaling=EXAMPLES[rope_type]())
        self.x = random((1, 1, HEADS, HEAD_DIM))
        self.out = np.empty_like(self.x)
        self.time_decode_step(rope_type)
        self.time_rope_cache(rope_type)

    def time_inv_freq(self, rope_type):
        self.cfg.inv_freq(2 * SEQ)

    def time_rope_cache(self, rope_type):
        numrope.rope_cache(self.cfg, SEQ)

    def time_decode_step(self, rope_type):
        """One token at a position past the original context, no table: frequencies computed in the call."""
        numrope.apply_rope(self.x, self.cfg, 2 * SEQ, out=self.out)
