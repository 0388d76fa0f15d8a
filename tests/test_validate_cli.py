"""``numrope validate``: exit codes 0 / 1 / 2, the JSON object, .npy and .npz inputs, --config."""

import json
import subprocess
import sys

import numpy as np
import pytest

import numrope
from numrope.cli import main
from numrope.validation import emulate

CFG = numrope.RopeConfig(head_dim=64, base=500000.0)


@pytest.fixture
def files(tmp_path, rng):
    x = rng.standard_normal((1, 40, 4, 64)).astype(np.float32)
    paths = {"x": tmp_path / "x.npy", "good": tmp_path / "good.npy", "bad": tmp_path / "bad.npy"}
    np.save(paths["x"], x)
    np.save(paths["good"], numrope.apply_rope(x, CFG))
    np.save(paths["bad"], numrope.apply_rope(x, CFG, positions=1))  # off by one
    return paths


def run(capsys, *args):
    code = main(["validate", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_match_exits_0(capsys, files):
    code, out, err = run(capsys, "--x", files["x"], "--actual", files["good"], "--head-dim", 64, "--base", 500000)
    assert code == 0 and err == ""
    assert out.startswith("RoPE match")


def test_mismatch_exits_1_and_names_the_mistake(capsys, files):
    code, out, _ = run(capsys, "--x", files["x"], "--actual", files["bad"], "--head-dim", 64, "--base", 5e5, "--json")
    assert code == 1
    d = json.loads(out)
    assert d["ok"] is False and d["max_abs_error"] > 0.1
    assert [f["kind"] for f in d["diagnosis"]] == ["offset"] and d["diagnosis"][0]["offset"] == 1
    code, out, _ = run(capsys, "--x", files["x"], "--actual", files["bad"], "--head-dim", 64, "--base", 5e5)
    assert code == 1 and "- offset: positions are off by +1" in out


def test_positions_and_offset(capsys, files, tmp_path):
    np.save(tmp_path / "p.npy", np.arange(1, 41))
    args = ("--x", files["x"], "--actual", files["bad"], "--head-dim", 64, "--base", 5e5)
    assert run(capsys, *args, "--positions", tmp_path / "p.npy")[0] == 0
    assert run(capsys, *args, "--offset", 1)[0] == 0
    code, _, err = run(capsys, *args, "--offset", 1, "--positions", tmp_path / "p.npy")
    assert code == 2 and "not both" in err


def test_npz_archives(capsys, files, tmp_path, rng):
    x = np.load(files["x"])
    np.savez(tmp_path / "run.npz", x=x, actual=np.load(files["good"]), other=np.load(files["bad"]))
    npz = tmp_path / "run.npz"
    base = ("--head-dim", 64, "--base", 5e5)
    assert run(capsys, "--x", npz, "--actual", npz, *base)[0] == 0
    assert run(capsys, "--x", f"{npz}:x", "--actual", f"{npz}:other", *base)[0] == 1
    code, _, err = run(capsys, "--x", f"{npz}:q", "--actual", npz, *base)
    assert code == 2 and "no array named 'q'" in err
    np.savez(tmp_path / "two.npz", a=x, b=x)
    code, _, err = run(capsys, "--x", tmp_path / "two.npz", "--actual", npz, *base)
    assert code == 2 and "pick one of its arrays" in err
    np.savez(tmp_path / "one.npz", whatever=x)  # a single array is taken whatever its name
    assert run(capsys, "--x", tmp_path / "one.npz", "--actual", npz, *base)[0] == 0


@pytest.mark.parametrize("json_flag", [False, True])
def test_missing_unreadable_and_mismatched_files_exit_2(capsys, files, tmp_path, json_flag):
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    np.save(tmp_path / "short.npy", np.zeros((1, 39, 4, 64), np.float32))
    extra = ["--json"] if json_flag else []
    cases = {
        "no such file": ("--x", tmp_path / "missing.npy", "--actual", files["good"]),
        "cannot read": ("--x", files["x"], "--actual", tmp_path / "junk.npy"),
        "shapes disagree": ("--x", files["x"], "--actual", tmp_path / "short.npy"),
        "head_dim=32": ("--x", files["x"], "--actual", files["good"], "--head-dim", 32),
    }
    for message, args in cases.items():
        if "--head-dim" not in args:
            args = (*args, "--head-dim", 64)
        code, out, err = run(capsys, *args, *extra)
        assert code == 2, message
        text = out if json_flag else err
        assert message in text and text.count("\n") == 1, text
        if json_flag:
            assert json.loads(out)["ok"] is False and err == ""


def test_config_json(capsys, files, tmp_path):
    """--config reads a Hugging Face config.json through RopeConfig.from_hf."""
    llama3 = {"model_type": "llama", "hidden_size": 256, "num_attention_heads": 4, "rope_theta": 500000.0}
    (tmp_path / "config.json").write_text(json.dumps(llama3))
    args = ("--x", files["x"], "--actual", files["good"])
    assert run(capsys, *args, "--config", tmp_path / "config.json")[0] == 0
    (tmp_path / "old.json").write_text(json.dumps({**llama3, "rope_theta": 10000.0}))
    code, out, _ = run(capsys, *args, "--config", tmp_path / "old.json", "--json")
    assert code == 1 and json.loads(out)["diagnosis"][0]["kind"] == "base"
    (tmp_path / "partial.json").write_text(json.dumps({**llama3, "partial_rotary_factor": 0.5}))
    code, out, _ = run(capsys, *args, "--config", tmp_path / "partial.json", "--json")
    finding = json.loads(out)["diagnosis"][0]
    assert code == 1 and (finding["kind"], finding["rotary_dim"]) == ("rotary_dim", 64)
    (tmp_path / "broken.json").write_text("{")
    code, _, err = run(capsys, *args, "--config", tmp_path / "broken.json")
    assert code == 2 and "broken.json" in err
    code, _, err = run(capsys, *args, "--config", tmp_path / "absent.json")
    assert code == 2 and "no such file" in err


def test_strict_requires_float64_angles(capsys, tmp_path, rng):
    x = rng.standard_normal((1, 64, 2, 64)).astype(np.float32)
    positions = np.arange(64) * 2048
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "p.npy", positions)
    np.save(tmp_path / "hf.npy", emulate.apply_rope(x, CFG, positions))  # float32 angles, as transformers
    args = ("--x", tmp_path / "x.npy", "--actual", tmp_path / "hf.npy", "--positions", tmp_path / "p.npy")
    args += ("--head-dim", 64, "--base", 5e5, "--json")
    code, out, _ = run(capsys, *args)
    assert code == 0 and json.loads(out)["notes"][0]["kind"] == "precision"
    code, out, _ = run(capsys, *args, "--strict")
    assert code == 1 and [f["kind"] for f in json.loads(out)["diagnosis"]] == ["precision"]


def test_usage_errors_exit_2(capsys, files):
    with pytest.raises(SystemExit) as exc:
        main(["validate", "--x", str(files["x"]), "--actual", str(files["good"])])  # no --config / --head-dim
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["validate", "--x", "a", "--actual", "b", "--head-dim", "64", "--config", "c.json"])
    assert exc.value.code == 2


def test_console_entry_point(files):
    """The installed command, as CI would run it."""
    proc = subprocess.run(
        [sys.executable, "-m", "numrope", "validate", "--x", str(files["x"]), "--actual", str(files["bad"])]
        + ["--head-dim", "64", "--base", "500000", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["diagnosis"][0]["kind"] == "offset"
