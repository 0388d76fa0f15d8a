"""The model-family table: what transformers' config classes and attention code imply per model type.

A config.json leaves out what its transformers config class fills in, and some model types pair
features differently from the rest; :mod:`numrope.models.hf` reads both from here.
"""

#: Values the transformers config classes (or the model's own configuration code) fill in when a
#: config.json leaves a key out, for the model types whose defaults differ from plain RoPE.
MODEL_DEFAULTS: dict[str, dict] = {
    "gemma3_text": {
        "head_dim": 256,
        "rope_theta": 1_000_000.0,
        "rope_local_base_freq": 10_000.0,
        "max_position_embeddings": 131072,
    },
    "phi": {"partial_rotary_factor": 0.5},
    "glm": {"partial_rotary_factor": 0.5},
    "glm4": {"partial_rotary_factor": 0.5},
    "gpt_neox": {"rotary_pct": 0.25, "rotary_emb_base": 10000},
    "gptj": {"rotary_dim": 64},
    "chatglm": {"rope_ratio": 1},
    "deepseek_v3": {"rope_interleave": True},
}

#: Model types whose pairs are adjacent features (2i, 2i+1) rather than i and i + d/2.
INTERLEAVED_MODEL_TYPES = frozenset({"chatglm", "glm", "glm4", "gptj", "cohere", "deepseek_v2", "deepseek_v3"})
