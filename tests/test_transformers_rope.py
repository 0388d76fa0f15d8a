"""numrope against Hugging Face transformers' own RoPE code, on the real configs of tests/fixtures.

Runs where torch and transformers are importable (``.ci/run`` installs both) and is skipped,
visibly, elsewhere. transformers computes in float32 and numrope in float64, so every comparison
is held to a bound derived from float32 rounding:

* a frequency ``theta = base**(-2i/d)`` formed in float32 carries the rounding of the exponent
  ``2i/d`` (relative ``eps/2``, which ``pow`` turns into ``|ln theta| eps/2``), of ``pow`` and of the
  reciprocal, plus a few roundings in the variant's own arithmetic: relative error at most
  ``(|ln theta| + 8) eps32`` (a safety factor of about 2 included). Llama 3's smoothed band also
  carries the error of its weight ``a``, computed from the float32 wavelength, amplified by up to
  ``factor * high / (high - low)`` relative to the result. YaRN's ramp weight
  ``g = (i - lo) / (hi - lo)`` is formed in float32 from float32 ``lo`` and ``hi``: off by at most
  ``delta = eps32 ((i + |lo|) + g (|hi| + |lo|)) / (2 (hi - lo)) + eps32`` (the last term for the
  division and ``1 - g``), and exact where the clamp decides it. A weight off by ``delta`` moves
  ``theta ((1 - g) + g / s)`` by ``theta (1 - 1/s) delta``, relative ``(1 - 1/s) delta /
  (1 - g (1 - 1/s))``.
* an angle ``m theta`` is off by ``m theta`` times that, plus the rounding of the product; cos and
  sin move by no more than the angle, and add their own rounding: per element at most
  ``attention * (m theta (r + eps32) + 3 eps32)``.
"""

import importlib
import inspect
import json
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed: transformers' RoPE code cannot run")
transformers = pytest.importorskip("transformers", reason="transformers is not installed")
if int(transformers.__version__.split(".")[0]) < 5:
    pytest.skip(
        f"transformers {transformers.__version__} is older than 5: these tests call the 5.x rope functions",
        allow_module_level=True,
    )
rope_utils = pytest.importorskip("transformers.modeling_rope_utils")

import numrope  # noqa: E402
from numrope.models import hf  # noqa: E402
from numrope.variants import Llama3, YaRN  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "configs"
EPS32 = float(np.finfo(np.float32).eps)
# ChatGLM's modeling code is not part of transformers (it loads with trust_remote_code).
IN_TRANSFORMERS = sorted(
    p.name for p in FIXTURES.glob("*.json") if json.loads(p.read_text()).get("model_type") != "chatglm"
)


def cases():
    for name in IN_TRANSFORMERS:
        for layer_type in hf.layer_types(FIXTURES / name) or (None,):
            yield name, layer_type


CASES = list(cases())
CASE_IDS = [f"{n}-{lt}" if lt else n for n, lt in CASES]


def text_config(name):
    """transformers' config object for the fixture (the language model's, for multimodal ones)."""
    raw = json.loads((FIXTURES / name).read_text())
    config = transformers.AutoConfig.for_model(**raw)
    return config.get_text_config()


def rotary_module(config):
    model_type = config.model_type.removesuffix("_text")
    module = importlib.import_module(f"transformers.models.{model_type}.modeling_{model_type}")
    (cls,) = [c for n, c in vars(module).items() if n.endswith("RotaryEmbedding") and inspect.isclass(c)]
    return cls(config)


def yarn_weight_rel_bound(cfg):
    """Per pair: the relative error YaRN's float32 ramp weight brings (see the module docstring)."""
    yarn = cfg.scaling
    lo, hi = yarn.correction_range(cfg.rotary_dim, cfg.base)
    width = hi - lo if hi != lo else 0.001
    i = np.arange(cfg.n_pairs, dtype=np.float64)
    g = yarn.ramp(cfg.rotary_dim, cfg.base)
    delta = EPS32 * ((i + abs(lo)) + g * (abs(hi) + abs(lo))) / (2 * width) + EPS32
    raw = (i - lo) / width
    delta = np.where((raw <= -delta) | (raw >= 1 + delta), 0.0, delta)  # the clamp gives exactly 0 or 1
    shrink = 1 - 1 / yarn.factor
    return shrink * delta / (1 - g * shrink)


def theta_rel_bound(cfg):
    """Per pair: the relative error of transformers' float32 frequencies (see the module docstring)."""
    theta = cfg.inv_freq()
    unscaled = numrope.RopeConfig(head_dim=cfg.head_dim, base=cfg.base, rotary_dim=cfg.rotary_dim).inv_freq()
    bound = (np.abs(np.log(unscaled)) + 8) * EPS32
    if isinstance(cfg.scaling, Llama3):
        s = cfg.scaling
        bound = bound * (1 + s.factor * s.high_freq_factor / (s.high_freq_factor - s.low_freq_factor))
    if isinstance(cfg.scaling, YaRN):
        bound = bound + yarn_weight_rel_bound(cfg)
    return theta, bound


def assert_inv_freq_close(theirs, cfg, seq_len=None):
    theirs = np.asarray(theirs, dtype=np.float64)
    theta, bound = theta_rel_bound(cfg)
    if seq_len is not None:
        theta = cfg.inv_freq(seq_len)
    rel = np.abs(theirs - theta) / theta
    assert theirs.shape == theta.shape
    assert (rel <= bound).all(), f"pair {np.argmax(rel / bound)}: relative error {rel.max():.3g} over the bound"


def assert_table_close(theirs, ours, cfg, positions, seq_len):
    theta = cfg.inv_freq(seq_len)
    _, rel = theta_rel_bound(cfg)
    angle = np.abs(positions)[:, None] * theta
    bound = cfg.attention_scaling * (angle * (rel + EPS32) + 3 * EPS32)
    err = np.abs(np.asarray(theirs, dtype=np.float64) - ours)
    worst = np.unravel_index(np.argmax(err / bound), err.shape)
    assert (err <= bound).all(), f"error {err[worst]:.3g} > bound {bound[worst]:.3g} at (position, pair) {worst}"


@pytest.mark.parametrize(("name", "layer_type"), CASES, ids=CASE_IDS)
def test_frequencies_and_attention_factor_match_rope_init_functions(name, layer_type):
    config = text_config(name)
    cfg = numrope.RopeConfig.from_hf(FIXTURES / name, layer_type=layer_type)
    if cfg.scaling is None:  # "default" is computed by each model's rotary class
        init = type(rotary_module(config)).compute_default_rope_parameters
    else:
        init = rope_utils.ROPE_INIT_FUNCTIONS[cfg.scaling.rope_type]
    kwargs = {"layer_type": layer_type} if layer_type else {}
    inv_freq, attention = init(config, device=None, **kwargs)
    assert_inv_freq_close(inv_freq, cfg)
    assert attention == pytest.approx(cfg.attention_scaling, rel=1e-15)  # both Python float64


def test_longrope_short_and_long_factors_match():
    name = "phi-3.5-mini-instruct.json"
    config = text_config(name)
    cfg = numrope.RopeConfig.from_hf(FIXTURES / name)
    init = rope_utils.ROPE_INIT_FUNCTIONS["longrope"]
    for seq_len in (1, 4096, 4097, 131072):
        inv_freq, _ = init(config, None, seq_len=seq_len)
        assert_inv_freq_close(inv_freq, cfg, seq_len)
    # the two sets really differ, so the comparison above tells them apart
    assert not np.allclose(cfg.inv_freq(4096), cfg.inv_freq(4097), rtol=1e-3)


@pytest.mark.parametrize(("name", "layer_type"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("length", [16, 6000])
def test_cos_sin_match_the_rotary_embedding_module(name, layer_type, length):
    """The whole table of transformers' RotaryEmbedding.forward, attention factor included.

    transformers picks the LongRoPE factor set (and a dynamic NTK base) from max(position_ids) + 1,
    numrope's default too: 6000 crosses Phi-3.5's 4096.
    """
    config = text_config(name)
    cfg = numrope.RopeConfig.from_hf(FIXTURES / name, layer_type=layer_type)
    rotary = rotary_module(config)
    position_ids = torch.arange(length)[None]
    x = torch.zeros(1, length, cfg.head_dim)
    with torch.no_grad():
        out = rotary(x, position_ids, layer_type) if layer_type else rotary(x, position_ids)
    if isinstance(out, torch.Tensor):  # DeepSeek-V2: exp(i m theta) as complex numbers
        cos, sin = out.real[0], out.imag[0]
    else:
        cos, sin = out[0][0], out[1][0]
    n = cfg.n_pairs
    assert cos.shape[-1] in (n, 2 * n)
    positions = np.arange(length, dtype=np.float64)
    our_cos, our_sin = numrope.rope_cache(cfg, positions, dtype=np.float64)
    for theirs, ours in ((cos, our_cos), (sin, our_sin)):
        theirs = theirs.double().numpy()
        assert_table_close(theirs[:, :n], ours, cfg, positions, length)
        if theirs.shape[-1] == 2 * n:  # rotate_half tables repeat the angles
            assert (theirs[:, n:] == theirs[:, :n]).all()


def dynamic_config(max_positions=2048, factor=2.0):
    return transformers.LlamaConfig(
        hidden_size=512,
        num_attention_heads=8,
        max_position_embeddings=max_positions,
        rope_theta=10000.0,
        rope_scaling={"rope_type": "dynamic", "factor": factor},
    )


@pytest.mark.parametrize("seq_len", [None, 100, 2048, 2049, 5000, 10**6])
def test_dynamic_ntk_matches_init_function(seq_len):
    config = dynamic_config()
    cfg = numrope.RopeConfig.from_hf(config.to_dict())
    assert cfg.scaling.max_position_embeddings == 2048
    inv_freq, _ = rope_utils.ROPE_INIT_FUNCTIONS["dynamic"](config, None, seq_len=seq_len)
    assert_inv_freq_close(inv_freq, cfg, seq_len)


def test_transformers_dynamic_ntk_remembers_the_longest_sequence():
    """transformers grows the base with the longest sequence seen and resets only below L0.

    numrope takes the length to use as ``seq_len``: a 3000-token pass after a 5000-token one
    matches ``seq_len=5000``, not the default 3000.
    """
    config = dynamic_config()
    cfg = numrope.RopeConfig.from_hf(config.to_dict())
    rotary = rotary_module(config)

    def forward(length):
        with torch.no_grad():
            cos, _ = rotary(torch.zeros(1, length, 64), torch.arange(length)[None])
        return cos[0, :, : cfg.n_pairs].double().numpy()

    for length, numrope_seq_len in ((1000, 1000), (5000, 5000), (3000, 5000), (1000, 1000)):
        positions = np.arange(length, dtype=np.float64)
        ours, _ = numrope.rope_cache(cfg, positions, dtype=np.float64, seq_len=numrope_seq_len)
        assert_table_close(forward(length), ours, cfg, positions, numrope_seq_len)
    default, _ = numrope.rope_cache(cfg, np.arange(3000), dtype=np.float64)
    remembered, _ = numrope.rope_cache(cfg, np.arange(3000), dtype=np.float64, seq_len=5000)
    assert np.abs(default - remembered).max() > 0.1  # the policies really differ


def hf_tables(cfg, positions, repeat_interleave=False):
    """numrope's float64 table as transformers holds it, shape (1, seq, 2 * n_pairs).

    ``cat(freqs, freqs)`` for most models; Cohere repeats each angle in place instead.
    """
    cos, sin = numrope.rope_cache(cfg, positions, dtype=np.float64)
    if repeat_interleave:
        wide = [np.repeat(t, 2, axis=-1) for t in (cos, sin)]
    else:
        wide = [np.concatenate([t, t], axis=-1) for t in (cos, sin)]
    return torch.from_numpy(wide[0])[None], torch.from_numpy(wide[1])[None]


@pytest.mark.parametrize(
    ("model_type", "config_kwargs", "layout", "rotary_dim"),
    [
        ("llama", {"hidden_size": 256, "num_attention_heads": 4}, "half", 64),
        ("gpt_neox", {"hidden_size": 384, "num_attention_heads": 4, "rotary_pct": 0.25}, "half", 24),
        ("glm", {"hidden_size": 512, "num_attention_heads": 4, "head_dim": 128}, "interleaved", 64),
        ("cohere", {"hidden_size": 256, "num_attention_heads": 4}, "interleaved", 64),
    ],
)
def test_layouts_match_apply_rotary_pos_emb(model_type, config_kwargs, layout, rotary_dim, rng):
    """Which features pair up, and which pass through, as each model's apply_rotary_pos_emb says.

    The cos/sin tables given to transformers are numrope's own (float64), so any difference is
    the pairing, not precision.
    """
    config = transformers.AutoConfig.for_model(model_type, **config_kwargs)
    cfg = numrope.RopeConfig.from_hf(config.to_dict())
    assert (cfg.layout, cfg.rotary_dim) == (layout, rotary_dim)
    module = importlib.import_module(f"transformers.models.{model_type}.modeling_{model_type}")
    positions = np.arange(37, dtype=np.float64) * 3
    # (batch, seq, heads, head_dim); values exact in float32, since Cohere's code casts q and k to it
    q = rng.standard_normal((2, 37, 4, cfg.head_dim)).astype(np.float32).astype(np.float64)
    k = rng.standard_normal((2, 37, 1, cfg.head_dim)).astype(np.float32).astype(np.float64)
    cos, sin = hf_tables(cfg, positions, repeat_interleave=model_type == "cohere")
    if model_type == "gpt_neox":  # NeoX passes the rotary part only
        cos, sin = cos[..., : cfg.rotary_dim], sin[..., : cfg.rotary_dim]
    q_t, k_t = (torch.from_numpy(a) for a in (q, k))
    q_hf, k_hf = module.apply_rotary_pos_emb(q_t, k_t, cos, sin, unsqueeze_dim=2)
    q_ours, k_ours = numrope.apply_rope_qk(q, k, cfg, positions)
    bound = 8 * np.finfo(np.float64).eps * max(np.abs(q).max(), np.abs(k).max())
    assert np.abs(q_hf.numpy() - q_ours).max() <= bound
    assert np.abs(k_hf.numpy() - k_ours).max() <= bound


def test_deepseek_v3_reads_pairs_interleaved_and_writes_them_de_interleaved(rng):
    """DeepSeek-V3's heads are [nope 128 | rope 64]: apply_rotary_pos_emb_interleave rotates the pairs
    (2i, 2i+1) of the rope part and writes them back as (i, i + 32), the layout interleaved_in_half_out."""
    from transformers.models.deepseek_v3 import modeling_deepseek_v3 as ds

    cfg = numrope.RopeConfig.from_hf(FIXTURES / "deepseek-v3.json")
    assert (cfg.layout, cfg.head_dim, cfg.rotary_dim, cfg.rotary_offset) == ("interleaved_in_half_out", 192, 64, 128)
    positions = np.arange(50, dtype=np.float64) * 101
    q = rng.standard_normal((1, 50, 3, 192))
    k = rng.standard_normal((1, 50, 1, 192))
    cos, sin = hf_tables(cfg, positions)
    q_pe, k_pe = ds.apply_rotary_pos_emb_interleave(
        torch.from_numpy(q[..., 128:]), torch.from_numpy(k[..., 128:]), cos, sin, unsqueeze_dim=2
    )
    q_ours, k_ours = numrope.apply_rope_qk(q, k, cfg, positions)
    bound = 8 * np.finfo(np.float64).eps * max(np.abs(q).max(), np.abs(k).max())
    assert np.abs(np.concatenate([q[..., :128], q_pe.numpy()], -1) - q_ours).max() <= bound
    assert np.abs(np.concatenate([k[..., :128], k_pe.numpy()], -1) - k_ours).max() <= bound
    # the inverse takes the de-interleaved output back to the input
    q_back, k_back = numrope.apply_rope_qk(q_ours, k_ours, cfg, positions, inverse=True)
    assert np.abs(q_back - q).max() <= bound and np.abs(k_back - k).max() <= bound
    # with rope_interleave false the same model uses the half layout
    raw = json.loads((FIXTURES / "deepseek-v3.json").read_text()) | {"rope_interleave": False}
    assert numrope.RopeConfig.from_hf(raw).layout == "half"


def test_llama4_scaling_with_equal_low_and_high_factors():
    """Llama 4 sets low_freq_factor == high_freq_factor: transformers' _compute_llama3_parameters keeps or
    divides each frequency (no smoothed band), as numrope does."""
    config = transformers.Llama4TextConfig(
        rope_parameters={
            "rope_type": "llama3",
            "rope_theta": 500000.0,
            "factor": 16.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 1.0,
            "original_max_position_embeddings": 8192,
        }
    )
    cfg = numrope.RopeConfig.from_hf(config.to_dict())
    assert (cfg.layout, cfg.scaling.low_freq_factor, cfg.scaling.high_freq_factor) == ("interleaved", 1.0, 1.0)
    inv_freq, attention = rope_utils.ROPE_INIT_FUNCTIONS["llama3"](config, None)
    assert attention == cfg.attention_scaling == 1.0
    rel = np.abs(inv_freq.double().numpy() - cfg.inv_freq()) / cfg.inv_freq()
    theta = cfg.inv_freq()
    bound = (np.abs(np.log(theta)) + 8) * EPS32
    assert (rel <= bound).all()
    # layer 3 is one of Llama 4's NoPE layers (no_rope_layers[3] == 0): from_hf answers None
    assert numrope.RopeConfig.from_hf(config.to_dict(), layer=3) is None
    assert numrope.RopeConfig.from_hf(config.to_dict(), layer=2) == cfg


def test_proportional_matches_transformers(rng):
    """Gemma 4's full-attention layers: rope_type 'proportional' over global_head_dim 512."""
    config = transformers.Gemma4TextConfig()
    cfg = numrope.RopeConfig.from_hf(config.to_dict(), layer_type="full_attention")
    assert (cfg.head_dim, cfg.rotary_dim, cfg.scaling.rope_type) == (512, 512, "proportional")
    from transformers.models.gemma4 import modeling_gemma4

    inv_freq = modeling_gemma4.Gemma4TextRotaryEmbedding(config).full_attention_inv_freq
    assert inv_freq.shape == cfg.inv_freq().shape
    theta = cfg.inv_freq()
    assert (inv_freq.numpy()[theta == 0] == 0).all()
    rel = np.abs(inv_freq.double().numpy()[theta > 0] - theta[theta > 0]) / theta[theta > 0]
    assert (rel <= (np.abs(np.log(theta[theta > 0])) + 8) * EPS32).all()


def test_yarn_attention_factor_formula_values():
    """The published figures, through transformers: Qwen2.5 YaRN x4 and DeepSeek-V3."""
    for name, expected in (("qwen2.5-7b-instruct-yarn.json", 1.13863), ("deepseek-v3.json", 1.0)):
        _, attention = rope_utils.ROPE_INIT_FUNCTIONS["yarn"](text_config(name), None)
        assert round(attention, 5) == expected
        assert round(numrope.RopeConfig.from_hf(FIXTURES / name).attention_scaling, 5) == expected
    assert math.isclose(0.1 * math.log(4) + 1, 1.13863, abs_tol=5e-6)


def test_modernbert_legacy_thetas_as_transformers_converts_them():
    """A transformers 4.x ModernBERT config.json: global_rope_theta and local_rope_theta, read as transformers
    5.24's ModernBertConfig converts them into rope_parameters per layer type."""
    legacy = {"hidden_size": 256, "num_attention_heads": 4, "global_rope_theta": 80000.0, "local_rope_theta": 5000.0}
    converted = transformers.ModernBertConfig(**legacy).to_dict()
    for layer_type in ("full_attention", "sliding_attention"):
        ours = numrope.RopeConfig.from_hf({"model_type": "modernbert", **legacy}, layer_type=layer_type)
        assert ours == numrope.RopeConfig.from_hf(converted, layer_type=layer_type)
    assert numrope.RopeConfig.from_hf(converted, layer_type="full_attention").base == 80000.0
