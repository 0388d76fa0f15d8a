"""``numrope validate``: exit codes 0 / 1 / 2, the JSON object, .npy and .npz inputs, --config."""

import io
import json
import os
import subprocess
import sys
import zipfile

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


def test_float64_angles_by_default_and_float32_angles_on_request(capsys, tmp_path, rng):
    x = rng.standard_normal((1, 64, 2, 64)).astype(np.float32)
    positions = np.arange(64) * 2048
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "p.npy", positions)
    np.save(tmp_path / "hf.npy", emulate.apply_rope(x, CFG, positions))  # float32 angles, as transformers
    args = ("--x", tmp_path / "x.npy", "--actual", tmp_path / "hf.npy", "--positions", tmp_path / "p.npy")
    args += ("--head-dim", 64, "--base", 5e5, "--json")
    for strict in ((), ("--strict",)):  # --strict says the default out loud
        code, out, _ = run(capsys, *args, *strict)
        assert code == 1 and [f["kind"] for f in json.loads(out)["diagnosis"]] == ["precision"]
    code, out, _ = run(capsys, *args, "--float32-angles")
    assert code == 0 and json.loads(out)["notes"][0]["kind"] == "precision"
    with pytest.raises(SystemExit) as exc:
        main(["validate", *map(str, args), "--strict", "--float32-angles"])
    assert exc.value.code == 2


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


# -- every user error: exit 2, one line on stderr ------------------------------------------------


def one_line_error(code, out, err):
    assert code == 2, (out, err)
    assert out == "" and err.count("\n") == 1 and err.startswith("numrope validate: error: "), err
    assert "Traceback" not in err
    return err


def test_npz_member_that_is_not_an_array_exits_2(capsys, files, tmp_path):
    with zipfile.ZipFile(tmp_path / "junk.npz", "w") as z:
        z.writestr("x", b"abc")  # np.load reads such a member back as bytes
    base = ("--actual", files["good"], "--head-dim", 64, "--base", 5e5)
    err = one_line_error(*run(capsys, "--x", tmp_path / "junk.npz", *base))
    assert "holds no .npy arrays" in err and "['x']" in err
    err = one_line_error(*run(capsys, "--x", f"{tmp_path / 'junk.npz'}:x", *base))
    assert "is not a .npy array" in err


def _claiming(path, shape, payload=b"\0" * 100):
    """A .npy file whose header claims ``shape`` (float32) but that holds only ``payload``."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": shape})
    path.write_bytes(buf.getvalue() + payload)
    return path


def test_header_claiming_more_than_the_file_exits_2_before_reading(capsys, files, tmp_path):
    huge = _claiming(tmp_path / "huge.npy", (1000, 1000, 1000, 80))  # 298 GiB
    base = ("--actual", files["good"], "--head-dim", 64)
    err = one_line_error(*run(capsys, "--x", huge, *base))
    assert "(1000, 1000, 1000, 80)" in err and "298 GiB" in err and "100 bytes" in err
    with zipfile.ZipFile(tmp_path / "huge.npz", "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("x.npy", huge.read_bytes())
    err = one_line_error(*run(capsys, "--x", tmp_path / "huge.npz", *base))
    assert "298 GiB" in err
    # one element short is caught too: nothing reads past the end of the data
    short = _claiming(tmp_path / "short.npy", (1, 40, 4, 64), b"\0" * (4 * 40 * 4 * 64 - 4))
    assert "640 KiB" not in one_line_error(*run(capsys, "--x", short, *base))


def test_npy_files_are_memory_mapped(files, monkeypatch):
    """np.load with mmap_mode='r': an array file is read as the comparison needs it, not all up front."""
    from numrope.cli import validate

    seen = []
    real = np.load
    monkeypatch.setattr(np, "load", lambda *a, **k: seen.append(k.get("mmap_mode")) or real(*a, **k))
    assert isinstance(validate.load_array(str(files["x"]), "x"), np.memmap)
    assert seen == ["r"]


def test_empty_arrays_exit_2(capsys, tmp_path):
    empty = tmp_path / "empty.npy"
    np.save(empty, np.zeros((1, 0, 4, 64), np.float32))
    err = one_line_error(*run(capsys, "--x", empty, "--actual", empty, "--head-dim", 64))
    assert "holds no elements" in err and "(1, 0, 4, 64)" in err


@pytest.mark.parametrize("offset", [2**63 - 1, -(2**63) - 1])
def test_offsets_beyond_int64_exit_2(capsys, files, offset):
    err = one_line_error(
        *run(capsys, "--x", files["x"], "--actual", files["good"], "--head-dim", 64, "--offset", offset)
    )
    assert "2**63" in err


LLAMA = {"model_type": "llama", "hidden_size": 256, "num_attention_heads": 4, "max_position_embeddings": 8}
BROKEN_CONFIGS = {
    "400-digit rope_theta": (
        '{"rope_theta": ' + "9" * 400 + ', "hidden_size": 256, "num_attention_heads": 4}',
        "rope_theta",
    ),
    "NTK factor 1e300": (
        json.dumps({**LLAMA, "rope_theta": 10000.0, "rope_scaling": {"rope_type": "dynamic", "factor": 1e300}}),
        "DynamicNTK",
    ),
    "YaRN with rope_theta 1": (
        json.dumps(
            {
                **LLAMA,
                "rope_theta": 1,
                "rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 8},
            }
        ),
        "rope_theta",
    ),
    "deeply nested JSON": ('{"rope_theta": 10000, "a": ' + "[" * 100000 + "]" * 100000 + "}", "nested too deeply"),
}


@pytest.mark.parametrize("name", BROKEN_CONFIGS)
def test_configs_that_break_numbers_exit_2(capsys, files, tmp_path, name):
    text, says = BROKEN_CONFIGS[name]
    (tmp_path / "config.json").write_text(text)
    args = ("--x", files["x"], "--actual", files["good"], "--config", tmp_path / "config.json")
    err = one_line_error(*run(capsys, *args))
    assert "config.json" in err and says in err, err


def test_usage_errors_are_one_line(capsys):
    for argv in (["validate", "--x", "a.npy"], ["validate", "--x", "a", "--actual", "b", "--head-dim", "x"], []):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        out, err = capsys.readouterr()
        assert exc.value.code == 2 and out == "" and err.count("\n") == 1, err


@pytest.mark.parametrize("command", ["validate", "demo"])
def test_a_closed_pipe_stops_quietly_with_141(files, command):
    """numrope demo | head -1: the reader is gone before the output is written; no traceback, status 141."""
    argv = ["demo", "--head-dim", "16"]
    if command == "validate":
        argv = ["validate", "--x", str(files["x"]), "--actual", str(files["good"]), "--head-dim", "64"]
    read, write = os.pipe()
    os.close(read)  # every write to the pipe fails with EPIPE
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "numrope", *argv], stdout=write, stderr=subprocess.PIPE, check=False
        )
    finally:
        os.close(write)
    assert proc.returncode == 141, proc.stderr
    assert proc.stderr == b"", proc.stderr.decode()


# -- queries and keys -------------------------------------------------------------------------------


def test_q_and_k_swapped_is_named_from_the_terminal(capsys, tmp_path, rng):
    q = rng.standard_normal((1, 40, 4, 64)).astype(np.float32)
    k = rng.standard_normal((1, 40, 2, 64)).astype(np.float32)  # grouped-query: fewer key heads
    k4 = rng.standard_normal((1, 40, 4, 64)).astype(np.float32)
    for name, a in {"q": q, "k": k, "k4": k4}.items():
        np.save(tmp_path / f"{name}.npy", a)
        np.save(tmp_path / f"{name}_rot.npy", emulate.apply_rope(a, CFG, angles="float64"))
    p = {n: tmp_path / f"{n}.npy" for n in ("q", "k", "k4", "q_rot", "k_rot", "k4_rot")}
    base = ("--head-dim", 64, "--base", 5e5)
    code, out, err = run(capsys, "--x", p["q"], "--actual", p["q_rot"], "--k", p["k"], "--actual-k", p["k_rot"], *base)
    assert code == 0 and err == "" and "queries: match" in out and "keys: match" in out
    args = ("--x", p["q"], "--actual", p["k4_rot"], "--k", p["k4"], "--actual-k", p["q_rot"], *base)
    code, out, _ = run(capsys, *args)
    assert code == 1 and "- swapped: q and k are swapped" in out, out
    code, out, _ = run(capsys, *args, "--json")
    assert code == 1 and [f["kind"] for f in json.loads(out)["diagnosis"]] == ["swapped"]
    err = one_line_error(*run(capsys, "--x", p["q"], "--actual", p["q_rot"], "--k", p["k"], *base))
    assert "--k and --actual-k together" in err
    err = one_line_error(
        *run(capsys, "--x", p["q"], "--actual", p["q_rot"], "--k", p["k"], "--actual-k", p["q_rot"], *base)
    )
    assert "shapes disagree: --k has shape (1, 40, 2, 64), --actual-k has shape (1, 40, 4, 64)" in err


def test_the_report_names_what_each_number_is(capsys, files):
    code, out, _ = run(capsys, "--x", files["x"], "--actual", files["good"], "--head-dim", 64, "--base", 5e5)
    assert code == 0
    assert "closest to its bound: element (0, " in out and "largest errors over all elements" in out
    assert "atol" not in out and "max abs error" not in out and ",)" not in out
