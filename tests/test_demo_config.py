"""`numrope demo --config config.json`: the demo runs with the RoPE of a real model's config.

Expected configurations are written out by hand from the numbers in each config.json (see the
comments), not read back through numrope.
"""

import json
import math
from pathlib import Path

import pytest

import numrope
from numrope.cli import build_parser, demo, main
from numrope.variants import DynamicNTK, Linear, Llama3

FIXTURES = Path(__file__).parent / "fixtures" / "configs"


def parse(*argv):
    return build_parser().parse_args(["demo", *argv])


def test_config_sets_head_dim_base_layout_and_scaling():
    # Llama 3.1 8B: 4096 / 32 heads = 128, rope_theta 500000, llama3 scaling 8 / 1 / 4 / 8192
    cfg = demo.config_from_args(parse("--config", str(FIXTURES / "llama-3.1-8b.json")))
    assert cfg == numrope.RopeConfig(
        head_dim=128,
        base=500000.0,
        scaling=Llama3(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0, original_max_position_embeddings=8192),
    )
    # ChatGLM3: kv_channels 128, half of it rotated, adjacent pairs, base 10000
    cfg = demo.config_from_args(parse("--config", str(FIXTURES / "chatglm3-6b.json")))
    assert cfg == numrope.RopeConfig(head_dim=128, base=10000.0, rotary_dim=64, layout="interleaved")
    # Gemma 3 (text_config, Gemma3TextConfig defaults): global layers, linear 8 on base 1e6
    gemma = str(FIXTURES / "gemma-3-4b-it.json")
    cfg = demo.config_from_args(parse("--config", gemma, "--layer-type", "full_attention"))
    assert cfg == numrope.RopeConfig(head_dim=256, base=1e6, scaling=Linear(8.0))


def test_without_config_the_defaults_and_options_apply():
    assert demo.config_from_args(parse()) == numrope.RopeConfig(head_dim=128, base=10000.0)
    assert demo.config_from_args(parse("--head-dim", "64", "--base", "500000")) == numrope.RopeConfig(
        head_dim=64, base=500000.0
    )


def test_demo_runs_with_phi3_longrope(capsys):
    # Phi-3.5-mini: 3072 / 32 = 96; attention factor sqrt(1 + ln 32 / ln 4096) = sqrt(17/12)
    assert main(["demo", "--config", str(FIXTURES / "phi-3.5-mini-instruct.json"), "--max-position", "64"]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert "phi-3.5-mini-instruct.json" in first
    assert "head_dim=96, base=10000, layout=half, rotary_dim=96, scaling=longrope" in first
    assert f"attention_scaling={math.sqrt(17 / 12):.6g}" in first and "1.19024" in first
    assert "seq_len=64" in first  # LongRoPE depends on the length: the demo fixes it to the table's
    assert "cache: 64 positions x 48 pairs" in out
    assert "all 4 checks passed" in out


def test_demo_runs_with_a_per_layer_type_config(capsys):
    path = str(FIXTURES / "gemma-3-4b-it.transformers5.json")
    assert main(["demo", "--config", path, "--layer-type", "sliding_attention", "--max-position", "32"]) == 0
    out = capsys.readouterr().out
    assert "sliding_attention): head_dim=256, base=10000, layout=half, rotary_dim=256\n" in out
    assert "all 4 checks passed" in out


def test_dynamic_ntk_past_the_trained_length_stays_relative(tmp_path, capsys):
    # The frequencies change with the sequence length; the demo must use one length for all its
    # calls, or <f(q, m), f(k, m - 37)> would vary with m.
    raw = {
        "hidden_size": 256,
        "num_attention_heads": 4,
        "max_position_embeddings": 32,
        "rope_theta": 10000.0,
        "rope_scaling": {"rope_type": "dynamic", "factor": 4.0},
    }
    (tmp_path / "config.json").write_text(json.dumps(raw))
    cfg = demo.config_from_args(parse("--config", str(tmp_path)))
    assert cfg.scaling == DynamicNTK(factor=4.0, max_position_embeddings=32)
    assert main(["demo", "--config", str(tmp_path), "--max-position", "256"]) == 0
    out = capsys.readouterr().out
    assert "scaling=dynamic" in out and "seq_len=256" in out
    assert "all 4 checks passed" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--config", "CONFIG", "--head-dim", "64"], "--head-dim cannot be combined with --config"),
        (["--config", "CONFIG", "--base", "1e6", "--head-dim", "64"], "--head-dim and --base cannot be combined"),
        (["--layer-type", "full_attention"], "--layer-type needs --config"),
        (["--config", "GEMMA"], "one RoPE per layer type"),
        (["--config", "GEMMA", "--layer-type", "chunked"], "layer_type 'chunked' is not one of"),
        (["--config", "MISSING"], "No such file or directory"),
    ],
)
def test_bad_options_exit_2_with_a_message(argv, message, tmp_path, capsys):
    paths = {
        "CONFIG": str(FIXTURES / "llama-2-7b-hf.json"),
        "GEMMA": str(FIXTURES / "gemma-3-4b-it.json"),
        "MISSING": str(tmp_path / "missing.json"),
    }
    argv = [paths.get(a, a) for a in argv]
    assert main(["demo", *argv, "--max-position", "16"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("numrope demo: ") and message in captured.err
    assert len(captured.err.splitlines()) == 1


def test_bad_config_values_are_reported(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps({"head_dim": 64, "rope_scaling": {"rope_type": "xpos"}}))
    assert main(["demo", "--config", str(tmp_path / "config.json")]) == 2
    assert "unknown rope_type 'xpos'" in capsys.readouterr().err
