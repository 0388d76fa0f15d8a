"""The frameworks numrope runs, one adapter each. Importing this imports no framework.

=========================  ===========  ==================================================================
adapter                    level        the framework's code that runs
=========================  ===========  ==================================================================
``transformers``           model        each family's rotary module and the apply function its attention calls
``mlx_lm``                 model        the rope its model code builds from the config (``initialize_rope``)
``mlx``                    parameters   ``mlx.core.fast.rope``
``torchtune``              parameters   ``RotaryPositionalEmbeddings``, ``Qwen2RotaryPositionalEmbeddings``,
                                        ``Llama3ScaledRoPE``
``rotary_embedding_torch`` parameters   ``RotaryEmbedding`` with ``rotate_queries_or_keys`` / ``apply_rotary_emb``
``x_transformers``         parameters   ``RotaryEmbedding`` with ``apply_rotary_pos_emb``
``keras_hub``              parameters   ``keras_hub.layers.RotaryEmbedding`` on the JAX backend
``gemma``                  parameters   ``gemma.gm.math.apply_rope`` (JAX)
``penzai``                 parameters   ``pz.nn.ApplyRoPE`` / ``ApplyRoPEToSubset`` (JAX)
``ggml``                   parameters   ``ggml_rope_ext`` on ggml's CPU backend (llama.cpp), via ggml-python
=========================  ===========  ==================================================================

*model*: the framework reads the model's config.json itself; *parameters*: its RoPE is given
numrope's reading of the config.
"""

from __future__ import annotations

from numrope.conformance.adapters._base import DTYPES, Adapter, Unsupported
from numrope.conformance.adapters.apple_mlx import Mlx, MlxLm
from numrope.conformance.adapters.ggml_cpu import Ggml
from numrope.conformance.adapters.hf_transformers import Transformers
from numrope.conformance.adapters.jax_libs import Gemma, KerasHub, Penzai
from numrope.conformance.adapters.torch_libs import RotaryEmbeddingTorch, Torchtune, XTransformers

__all__ = ["ADAPTERS", "DTYPES", "Adapter", "Unsupported", "by_name"]

#: Every adapter, in report order.
ADAPTERS: tuple[Adapter, ...] = (
    Transformers(),
    MlxLm(),
    Mlx(),
    Torchtune(),
    RotaryEmbeddingTorch(),
    XTransformers(),
    KerasHub(),
    Gemma(),
    Penzai(),
    Ggml(),
)


def by_name() -> dict[str, Adapter]:
    """The adapters by name.

    Examples
    --------
    >>> from numrope.conformance import adapters
    >>> sorted(adapters.by_name())[:3]
    ['gemma', 'ggml', 'keras_hub']
    """
    return {a.name: a for a in ADAPTERS}
