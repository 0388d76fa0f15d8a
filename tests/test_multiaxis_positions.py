"""numrope.models.vision: the (t, h, w) positions of mixed text/image/video sequences and the vision
towers' patch coordinates, equal to transformers' own get_rope_index and position helpers."""

import functools
import importlib
import types

import numpy as np
import pytest

from numrope.models import vision

torch = pytest.importorskip("torch", reason="torch is not installed: transformers' code cannot run")
transformers = pytest.importorskip("transformers", reason="transformers is not installed")
if int(transformers.__version__.split(".")[0]) < 5:
    pytest.skip(f"transformers {transformers.__version__}: these tests call the 5.x code", allow_module_level=True)

IMG, VID = 1, 2


def model_class(name, cls):
    return getattr(importlib.import_module(f"transformers.models.{name}.modeling_{name}"), cls)


def config_class(name, cls):
    return getattr(importlib.import_module(f"transformers.models.{name}.configuration_{name}"), cls)


def get_rope_index(name, cls, config, *args, **kwargs):
    """The model's own get_rope_index on a stand-in self (its config and helpers), no weights built."""
    model = model_class(name, cls)
    ns = types.SimpleNamespace(config=config)
    for helper in ("get_vision_position_ids", "get_llm_pos_ids_for_vision"):
        if hasattr(model, helper):
            setattr(ns, helper, functools.partial(getattr(model, helper), ns))
    pos, deltas = model.get_rope_index(ns, *args, **kwargs)
    return pos.numpy(), deltas.numpy()


def padded_batch(rng, m=2):
    """Three sequences with random text runs, images and one or two videos, left padding."""
    seqs, images, videos = [], [], []
    for b in range(3):
        tt = [0] * int(rng.integers(1, 6))
        for item in range(int(rng.integers(1, 4))):
            kind = IMG if (item + b) % 3 else VID
            grid = (
                1 if kind == IMG else int(rng.integers(2, 5)),
                2 * int(rng.integers(1, 5)),
                2 * int(rng.integers(1, 6)),
            )
            (images if kind == IMG else videos).append(grid)
            tt += [kind] * (grid[0] * (grid[1] // m) * (grid[2] // m)) + [0] * int(rng.integers(1, 6))
        seqs.append(tt)
    s = max(len(t) for t in seqs)
    tt = np.array([[0] * (s - len(t)) + t for t in seqs])
    mask = np.array([[0] * (s - len(t)) + [1] * len(t) for t in seqs])
    return tt, mask, np.array(images), np.array(videos)


@pytest.mark.parametrize("seed", range(4))
def test_qwen2_vl(seed):
    rng = np.random.default_rng(seed)
    tt, mask, ig, vg = padded_batch(rng)
    config = config_class("qwen2_vl", "Qwen2VLConfig")()
    t = torch.from_numpy
    want = get_rope_index("qwen2_vl", "Qwen2VLModel", config, t(tt), t(tt), t(ig), t(vg), t(mask))
    got = vision.rope_index(tt, ig, vg, mask, family="qwen2_vl")
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("seed", range(4))
def test_qwen2_5_vl_video_time_spacing_in_float32(seed):
    rng = np.random.default_rng(seed)
    tt, mask, ig, vg = padded_batch(rng)
    spg = rng.choice([0.5, 1.0, 1.3, 2 / 3, 0.1], len(vg)).astype(np.float32)
    config = config_class("qwen2_5_vl", "Qwen2_5_VLConfig")(vision_config={"tokens_per_second": 2})
    t = torch.from_numpy
    want = get_rope_index(
        "qwen2_5_vl",
        "Qwen2_5_VLModel",
        config,
        t(tt),
        t(tt),
        t(ig),
        t(vg),
        second_per_grid_ts=t(spg),
        attention_mask=t(mask),
    )
    got = vision.rope_index(tt, ig, vg, mask, family="qwen2_5_vl", tokens_per_second=2, second_per_grid_ts=spg)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def test_qwen2_5_vl_time_steps_are_truncated_from_float32_products():
    """5 * (2 * 0.7) is 6.99999988 exactly but 7.0 in float32: transformers' truncation gives 7."""
    tt = np.array([[0] * 3 + [VID] * 24 + [0] * 2])
    vg, spg = np.array([[6, 4, 4]]), np.array([0.7], np.float32)
    config = config_class("qwen2_5_vl", "Qwen2_5_VLConfig")(vision_config={"tokens_per_second": 2})
    t = torch.from_numpy
    want, _ = get_rope_index(
        "qwen2_5_vl", "Qwen2_5_VLModel", config, t(tt), t(tt), None, t(vg), second_per_grid_ts=t(spg)
    )
    got, _ = vision.rope_index(tt, None, vg, family="qwen2_5_vl", tokens_per_second=2, second_per_grid_ts=spg)
    assert np.unique(want[0, 0, 3:27]).tolist() == [3, 4, 5, 7, 8, 10]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    ("name", "cls", "model"), [("qwen3_vl", "Qwen3VLConfig", "Qwen3VLModel"), ("glm4v", "Glm4vConfig", "Glm4vModel")]
)
def test_qwen3_vl_and_glm4v_one_grid_per_frame(name, cls, model):
    """Each frame is its own run (timestamps between); the video grid (t, h, w) covers t of them."""
    runs = [("text", 4), ("image", (1, 8, 12)), ("text", 5)]
    tt = [0] * 4 + [IMG] * 24 + [0] * 5
    for _ in range(3):
        runs += [("text", 4), ("video", (1, 6, 8)), ("text", 1)]
        tt += [0] * 4 + [VID] * 12 + [0]
    runs.append(("text", 6))
    tt += [0] * 6
    tt = np.array([tt])
    ig, vg = np.array([[1, 8, 12]]), np.array([[3, 6, 8]])
    t = torch.from_numpy
    want = get_rope_index(
        name, model, config_class(name, cls)(), t(tt), t(tt), t(ig), t(vg), torch.ones(1, tt.shape[1])
    )
    got = vision.rope_index(tt, ig, vg, family=name)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(vision.mrope_positions(runs, name), want[0][:, 0])


def test_ernie_merges_video_frames():
    config = config_class("ernie4_5_vl_moe", "Ernie4_5_VLMoeConfig")()
    tt = np.array([[0] * 4 + [IMG] * 24 + [0] * 4 + [VID] * 24 + [0] * 5])
    ig, vg = np.array([[1, 8, 12]]), np.array([[4, 6, 8]])
    t = torch.from_numpy
    want = get_rope_index(
        "ernie4_5_vl_moe", "Ernie4_5_VLMoeModel", config, t(tt), t(tt), t(ig), t(vg), torch.ones(1, tt.shape[1])
    )
    got = vision.rope_index(
        tt, ig, vg, family="ernie4_5_vl", temporal_merge_size=config.vision_config.temporal_merge_size
    )
    np.testing.assert_array_equal(got[0], want[0])
    runs = [("text", 4), ("image", (1, 8, 12)), ("text", 4), ("video", (4, 6, 8)), ("text", 5)]
    np.testing.assert_array_equal(vision.mrope_positions(runs, "ernie4_5_vl", temporal_merge_size=2), want[0][:, 0])


def test_runs_front_end_matches_get_rope_index_for_qwen2_5_vl():
    runs = [
        ("text", 5),
        ("image", (1, 8, 12)),
        ("text", 5),
        ("video", (4, 6, 8), 1.3),
        ("text", 7),
        ("image", (1, 4, 4)),
        ("text", 3),
    ]
    tt = np.array([[0] * 5 + [IMG] * 24 + [0] * 5 + [VID] * 48 + [0] * 7 + [IMG] * 4 + [0] * 3])
    config = config_class("qwen2_5_vl", "Qwen2_5_VLConfig")(vision_config={"tokens_per_second": 2})
    t = torch.from_numpy
    want, _ = get_rope_index(
        "qwen2_5_vl",
        "Qwen2_5_VLModel",
        config,
        t(tt),
        t(tt),
        t(np.array([[1, 8, 12], [1, 4, 4]])),
        t(np.array([[4, 6, 8]])),
        second_per_grid_ts=torch.tensor([1.3]),
    )
    np.testing.assert_array_equal(vision.mrope_positions(runs, "qwen2_5_vl", tokens_per_second=2), want[:, 0])


def test_decoding_continues_from_the_deltas():
    tt = np.array([[0, 0, IMG, IMG, IMG, IMG, 0]])
    pos, deltas = vision.rope_index(tt, [[1, 4, 4]])
    assert pos.max() + 1 == 5 and deltas.tolist() == [[5 - 7]]
    np.testing.assert_array_equal(vision.decode_positions(deltas, 7, 2), [[[5, 6]]] * 3)


def test_vision_tower_positions_match_get_vision_position_ids():
    from transformers.vision_utils import get_vision_position_ids

    grid = np.array([[1, 8, 12], [3, 6, 8], [2, 4, 2]])
    want = get_vision_position_ids(torch.from_numpy(grid), 2).numpy().T
    np.testing.assert_array_equal(vision.vision_positions(grid, 2), want)


def test_llama4_positions_match_its_rotary_angles():
    M = importlib.import_module("transformers.models.llama4.modeling_llama4")
    config = config_class("llama4", "Llama4VisionConfig")(
        hidden_size=64, num_attention_heads=2, image_size=56, patch_size=14
    )
    angles = np.angle(M.Llama4VisionRotaryEmbedding(config)(torch.zeros(1)).numpy()[:, 0, :])  # (17, 16)
    pos = vision.llama4_vision_positions(56, 14)
    g = 1e4 ** (-np.arange(0, 16, 2) / 16)  # the axial frequencies of a head of 32
    expected = np.concatenate([pos[0][:, None] * g, pos[1][:, None] * g], axis=1)
    np.testing.assert_allclose(np.cos(angles), np.cos(expected), atol=1e-5)
    np.testing.assert_allclose(np.sin(angles), np.sin(expected), atol=1e-5)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: vision.rope_index([[0, 1, 1, 0]], [[1, 2, 4]], family="qwen9"), "family must be one of"),
        (lambda: vision.rope_index([[0, 1, 1, 0]]), "more image runs than image_grid_thw"),
        (lambda: vision.rope_index([[0, 1, 1, 0]], [[1, 2, 4], [1, 2, 2]]), "more grids than"),
        (lambda: vision.rope_index([[0, 1, 1, 1, 0]], [[1, 2, 4]]), "does not match its grid"),
        (lambda: vision.rope_index([[0, 3, 0]]), "0 \\(text\\), 1 \\(image\\) or 2"),
        (lambda: vision.rope_index([0, 1]), "batch, seq"),
        (lambda: vision.rope_index([[0, 2, 0]], video_grid_thw=[[1, 2, 2]], family="qwen2_5_vl"), "tokens_per_second"),
        (lambda: vision.rope_index([[0, 2, 0]], video_grid_thw=[[2, 2, 2]], family="ernie4_5_vl"), "temporal_merge"),
        (lambda: vision.rope_index([[0, 1]], [[1, 2]]), "\\(n, 3\\)"),
        (lambda: vision.rope_index([[0, 1]], [[1, 2, 2]], None, [[1, 1, 1]]), "attention_mask must have the shape"),
        (lambda: vision.mrope_positions([("audio", 3)]), "each run must be"),
        (lambda: vision.vision_positions([[1, 3, 4]]), "multiples of spatial_merge_size"),
    ],
)
def test_bad_inputs_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()
