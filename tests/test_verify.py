"""``numrope verify``: the table of checks, its exit codes, and that it fails when something is wrong."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import numrope
from numrope.checks import precision
from numrope.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "configs"
SMALL = ["verify", "--head-dim", "16", "--max-position", "512"]
CATEGORIES = ("identity", "matrix form", "group property", "orthogonality", "decay", "precision", "counter-example")
#: The standard configurations: 4 layouts and rotary parts, one per scaling variant.
N_STANDARD = 4 + len(numrope.variants.VARIANTS)


def _run(capsys, argv):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_verify_standard_configurations(capsys):
    pytest.importorskip("mpmath")
    code, out, _ = _run(capsys, SMALL)
    assert code == 0, out
    assert f"{N_STANDARD} configuration(s)" in out
    lines = out.splitlines()
    for category in CATEGORIES:
        assert any(line.startswith(category) for line in lines), category
    assert out.count("rejected, as it must be") == 3
    assert "FAILS" not in out and "all" in lines[-1] and "hold" in lines[-1]


def test_verify_the_absolute_encoding_fails(capsys):
    code, out, _ = _run(capsys, [*SMALL, "--encoding", "absolute", "--no-precision"])
    assert code == 1
    identity_rows = [line for line in out.splitlines() if line.startswith("identity")]
    assert len(identity_rows) == 3 and all(line.endswith("FAILS") for line in identity_rows)


def test_verify_fails_when_apply_rope_is_not_relative(capsys, monkeypatch):
    real = numrope.apply_rope

    def skewed(x, cfg, positions=None, **kw):  # a position-dependent stretch: not relative
        return real(x, cfg, None if positions is None else positions * 1.0001, **kw)

    monkeypatch.setattr(numrope, "apply_rope", skewed)
    code, out, _ = _run(capsys, [*SMALL, "--no-precision"])
    assert code == 1
    failing = {line.split("  ")[0] for line in out.splitlines() if line.endswith("FAILS")}
    assert failing == {"identity", "matrix form"}


def test_verify_fails_when_the_table_rounds_the_angle(capsys, monkeypatch):
    pytest.importorskip("mpmath")

    def rounded_angle(cfg, positions, dtype=np.float32, *, seq_len=None):
        cos, sin = precision.float64_angle_cos_sin(cfg, positions, seq_len=seq_len)
        return cos.astype(dtype), sin.astype(dtype)

    monkeypatch.setattr(numrope, "rope_cache", rounded_angle)
    code, out, _ = _run(capsys, SMALL)
    assert code == 1
    assert any(line.startswith("precision") and line.endswith("FAILS") for line in out.splitlines())


@pytest.mark.parametrize(
    ("name", "rope_type"),
    [("llama-3.1-8b.json", "llama3"), ("phi-3.5-mini-instruct.json", "longrope"), ("gpt-neox-20b.json", None)],
)
def test_verify_a_hugging_face_config(capsys, name, rope_type):
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"fixture {name} not present")
    cfg = numrope.RopeConfig.from_hf(path)
    assert (cfg.scaling.rope_type if cfg.scaling else None) == rope_type
    code, out, _ = _run(capsys, ["verify", "--config", str(path), "--no-precision", "--max-position", "4096"])
    assert code == 0, out
    assert "1 configuration(s)" in out


def test_verify_a_dynamic_ntk_config_at_a_fixed_length(capsys, tmp_path):
    config = {
        "head_dim": 32,
        "rope_theta": 10000.0,
        "max_position_embeddings": 2048,
        "rope_scaling": {"rope_type": "dynamic", "factor": 2.0},
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    code, out, _ = _run(capsys, ["verify", "--config", str(tmp_path), "--seq-len", "8192", "--no-precision", "-v"])
    assert code == 0, out
    assert "dynamic @8192" in out
    assert "seq_len=8192" in out  # the verbose reports name the fixed length


def test_verify_unreadable_config_is_a_usage_error(capsys, tmp_path):
    code, _, err = _run(capsys, ["verify", "--config", str(tmp_path / "missing.json")])
    assert code == 2
    assert "--config" in err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"head_dim": 32, "rope_scaling": {"rope_type": "warp", "factor": 2}}))
    code, _, err = _run(capsys, ["verify", "--config", str(bad)])
    assert code == 2 and "warp" in err


def test_verify_without_mpmath_says_how_to_install_it(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "mpmath", None)
    code, _, err = _run(capsys, SMALL)
    assert code == 2
    assert "pip install mpmath" in err and "--no-precision" in err
    code, out, _ = _run(capsys, [*SMALL, "--no-precision"])
    assert code == 0
    assert not any(line.startswith("precision") for line in out.splitlines())


def test_verify_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["verify", "--help"])
    assert exc.value.code == 0
    assert "--config" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--head-dim", "7"], "argument --head-dim: must be even"),
        (["--head-dim", "0"], "argument --head-dim: must be a positive integer, got 0"),
        (["--head-dim", "-2"], "argument --head-dim: must be a positive integer, got -2"),
        (["--head-dim", "8"], "argument --head-dim: must be at least 16"),
        (["--head-dim", "1e3"], "argument --head-dim: must be an integer, got '1e3'"),
        (["--base", "nan"], "argument --base: must be a positive finite number, got nan"),
        (["--base", "0"], "argument --base: must be a positive finite number, got 0"),
        (["--base", "inf"], "argument --base: must be a positive finite number, got inf"),
        (["--base", "1"], "argument --base: must be above 1"),
        (["--max-position", "0"], "argument --max-position: must be a positive integer, got 0"),
        (["--max-position", "-5"], "argument --max-position: must be a positive integer, got -5"),
        (["--max-position", "1"], "argument --max-position: must be at least 2"),
        (["--max-position", str(2**63 - 1)], f"argument --max-position: must be at most {2**32}"),
        (["--seq-len", "-3"], "argument --seq-len: must be a positive integer, got -3"),
        (["--seq-len", str(2**40)], f"argument --seq-len: must be at most {2**32}"),
        (["--seed", "-1"], "argument --seed: must be a non-negative integer, got -1"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        main(["verify", *argv])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1, captured.err
    assert captured.err.startswith("numrope verify: error: ") and message in captured.err
    assert "Traceback" not in captured.err


def _table(out):
    """The summary table's data rows (between the header line and the blank line before the verdict)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("check "))
    end = lines.index("", start)
    return lines[start + 1 : end]


@pytest.mark.parametrize("config", [None, "llama-3.1-8b.json"])
def test_the_counts_in_the_text_match_the_table(capsys, config):
    argv = [*SMALL, "--no-precision"] + ([] if config is None else ["--config", str(FIXTURES / config)])
    if config is not None and not (FIXTURES / config).exists():
        pytest.skip(f"fixture {config} not present")
    code, out, _ = _run(capsys, argv)
    assert code == 0, out
    rows = _table(out)
    n_configs = N_STANDARD if config is None else 1
    # per configuration: identity (3 comparisons) in float64 and float32, rotation (5), decay (3);
    # then the counter-example's 3
    n_comparisons = n_configs * (3 * 2 + 5 + 3) + 3
    assert f"{n_configs} configuration(s), {n_comparisons} comparisons" in out
    assert f"Shown: {len(rows)} rows" in out
    assert out.splitlines()[-1].startswith(f"all {n_comparisons} comparisons hold")


def test_progress_goes_to_stderr_only_when_asked_or_on_a_terminal(capsys, monkeypatch):
    code, out, err = _run(capsys, [*SMALL, "--no-precision", "--progress"])
    assert code == 0
    steps = [s for s in err.split("\r") if s.strip()]
    assert steps[0].startswith("[") and f"1/{N_STANDARD + 1} half" in steps[0]
    assert f"{N_STANDARD + 1}/{N_STANDARD + 1} counter-example" in steps[-1]
    assert "\r" not in out
    code, out, err = _run(capsys, [*SMALL, "--no-precision"])  # pytest's stderr is not a terminal
    assert code == 0 and err == ""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, out, err = _run(capsys, [*SMALL, "--no-precision"])
    assert code == 0 and f"{N_STANDARD + 1}/{N_STANDARD + 1}" in err


def test_help_shows_no_markup(capsys):
    with pytest.raises(SystemExit):
        main(["verify", "--help"])
    text = capsys.readouterr().out
    assert "``" not in text and "numrope verify: prove numerically" in text
    assert "exit status: 0" in text
