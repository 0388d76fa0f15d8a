"""numrope conformance: the catalogue, the harness, the adapters of the frameworks installed here, the command.

The frameworks are not dependencies of numrope: each adapter's test is skipped where its framework
is not installed. The harness itself is checked with adapters written here in plain NumPy, one
correct and some broken on purpose, whose mistakes the report must name.
"""

import importlib.util
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import numrope
from numrope import cli, conformance
from numrope.conformance import adapters, catalogue, measure
from numrope.conformance.adapters._base import Adapter, Plumbing, pair_permutation

FAMILIES = {
    "Llama 2",
    "Llama 3.1",
    "Llama 3.2",
    "Llama 4",
    "Mistral",
    "Qwen2.5",
    "Qwen3",
    "Gemma 2",
    "Gemma 3",
    "Phi-2",
    "Phi-3",
    "GPT-NeoX",
    "Pythia",
    "GPT-J",
    "Cohere",
    "DeepSeek-V3",
    "GLM-4",
    "OLMo",
    "Falcon",
}
ROW_KEYS = {"framework", "version", "model", "dtype", "max_position", "max_rel_error", "ok", "diagnosis"}


# --------------------------------------------------------------------------- the catalogue


def test_catalogue_has_twenty_real_models_of_the_families_asked_for():
    entries = catalogue.raw_catalogue()["models"]
    assert len(entries) >= 20
    assert len({e["name"] for e in entries}) == len(entries)
    assert FAMILIES <= {e["family"] for e in entries}
    for e in entries:
        owner, _, repo = e["hf_repo"].partition("/")
        assert owner and repo, e["name"]
        assert e["source"].strip(), e["name"]
        assert "model_type" in e["config"], e["name"]


def test_catalogue_ships_with_the_package():
    """catalogue.json is package data: pyproject.toml names it, so a wheel carries it."""
    from pathlib import Path

    import tomllib

    pyproject = tomllib.loads((Path(numrope.__file__).parent.parent / "pyproject.toml").read_text())
    assert "conformance/*.json" in pyproject["tool"]["setuptools"]["package-data"]["numrope"]


def test_every_model_is_read_by_from_hf_or_refused_by_name():
    models = catalogue.load()
    read = 0
    for model in models:
        try:
            cfg = model.read()
        except (NotImplementedError, ValueError, TypeError) as exc:
            assert str(exc).strip(), f"{model.name}: {type(exc).__name__} without a message"
        else:
            assert isinstance(cfg, numrope.RopeConfig)
            assert model.context >= 2048
            read += 1
    assert read >= 20


def test_layer_types_give_one_model_each():
    names = [m.name for m in catalogue.load() if m.entry == "gemma-3-4b-it"]
    assert names == ["gemma-3-4b-it/sliding_attention", "gemma-3-4b-it/full_attention"]
    full, sliding = (
        catalogue.select(catalogue.load(), [n])[0] for n in ("gemma-3-4b-it/full", "gemma-3-4b-it/sliding")
    )
    assert full.read().base == 1e6 and sliding.read().base == 1e4


def test_refusals_are_reported_with_the_exception_and_never_run(monkeypatch):
    def refuse(self):
        raise NotImplementedError("Llama 4's interleaved layout is not implemented")

    monkeypatch.setattr(catalogue.Model, "read", refuse)
    report = conformance.run(frameworks=[], models="llama-4-scout", quick=True)
    assert report["results"] == []
    (refused,) = report["not_expressible"]
    assert refused["kind"] == "not expressible by numrope"
    assert refused["exception"] == "NotImplementedError"
    assert "interleaved" in refused["message"]


# --------------------------------------------------------------------------- the harness, on adapters written here


def numpy_rope(x, positions, cfg, *, offset=0, layout=None, base=None):
    """Plain float64 NumPy RoPE, independent of numrope's code, with the mistakes the tests make on purpose."""
    layout = layout or cfg.layout
    rd = cfg.rotary_dim
    theta = (base or cfg.base) ** (-np.arange(0, rd, 2) / rd)
    angle = (np.asarray(positions, dtype=np.float64) + offset)[:, None] * theta
    cos, sin = np.cos(angle)[None, :, None, :], np.sin(angle)[None, :, None, :]
    if layout == "half":
        a, b = x[..., : rd // 2], x[..., rd // 2 : rd]
        rot = np.concatenate([a * cos - b * sin, b * cos + a * sin], axis=-1)
    else:
        a, b = x[..., 0:rd:2], x[..., 1:rd:2]
        rot = np.stack([a * cos - b * sin, b * cos + a * sin], axis=-1).reshape(*x.shape[:-1], rd)
    return np.concatenate([rot, x[..., rd:]], axis=-1).astype(np.float32)


class NumpyAdapter(Adapter):
    """Plain RoPE in NumPy, float32 out; ``mistake`` breaks it the way a framework might."""

    label = "NumPy"
    distribution = "numpy"
    modules = ("numpy",)
    dtypes = ("float32",)

    def __init__(self, name="numpy_rope", mistake=None):
        self.name, self.mistake = name, mistake

    def setup(self, model, cfg):
        self.check(cfg)
        return {"cfg": cfg, "notes": []}

    def rotate(self, state, q, k, positions, dtype, offset=None):
        cfg, kw = state["cfg"], {}
        if self.mistake == "offset":
            kw["offset"] = 1
        elif self.mistake == "layout":
            kw["layout"] = "interleaved" if cfg.layout == "half" else "half"
        elif self.mistake == "base":
            kw["base"] = cfg.base * 2
        return numpy_rope(q, positions, cfg, **kw), numpy_rope(k, positions, cfg, **kw)


class MissingAdapter(NumpyAdapter):
    def missing(self):
        return "not here"


@pytest.fixture
def only(monkeypatch):
    """Make the run see only the given adapters."""

    def use(*chosen):
        monkeypatch.setattr(adapters, "ADAPTERS", tuple(chosen))

    return use


def test_numpy_reference_agrees_with_numrope():
    """The test's own RoPE is right, so that what its broken versions show is the mistake alone."""
    cfg = numrope.RopeConfig(head_dim=64, rotary_dim=32, base=500000.0, layout="interleaved")
    x = np.random.default_rng(0).standard_normal((1, 9, 2, 64))
    pos = np.array([0, 1, 5, 100, 4095, 4096, 70000, 131071, 10])
    np.testing.assert_allclose(numpy_rope(x, pos, cfg), numrope.apply_rope(x, cfg, pos), atol=2e-6)


def test_a_correct_framework_conforms(only):
    only(NumpyAdapter())
    report = conformance.run(models=["llama-2-7b", "gpt-neox-20b", "command-r"], quick=True)
    assert [r["ok"] for r in report["results"]] == [True, True, True]
    assert all(r["diagnosis"] == [] for r in report["results"])
    row = report["results"][0]
    assert row["max_position"] == 4095 and 0 < row["max_rel_error"] < 1e-5
    assert row["error_at"]["4k"] is not None and row["decode_rel_error"] is not None


@pytest.mark.parametrize("mistake", ["offset", "layout", "base"])
def test_a_broken_framework_is_caught_and_its_mistake_named(only, mistake):
    only(NumpyAdapter("broken", mistake))
    report = conformance.run(models="llama-2-7b", quick=True)
    (row,) = report["results"]
    assert row["ok"] is False
    assert mistake in row["diagnosis"]
    assert row["messages"]


def test_what_a_framework_cannot_express_is_not_measured(only):
    only(NumpyAdapter())  # plain RoPE only: Llama 3.1's llama3 scaling is refused
    report = conformance.run(models="llama-3.1-8b", quick=True)
    assert report["results"] == []
    (skipped,) = report["not_measured"]
    assert "llama3" in skipped["reason"]


def test_an_exception_in_the_framework_is_a_failing_row(only):
    class Raising(NumpyAdapter):
        def rotate(self, *args, **kwargs):
            raise RuntimeError("kernel exploded")

    only(Raising("raising"))
    (row,) = conformance.run(models="llama-2-7b", quick=True)["results"]
    assert row["ok"] is False and row["diagnosis"] == ["error"]
    assert "kernel exploded" in row["messages"][0]


def test_positions_cover_the_whole_context_and_a_decoding_step():
    segs = measure.segments(131072)
    assert [s.length for s in segs] == [4096, 32768, 131072, 131072]
    assert segs[-1].offset == 131071 and segs[-1].positions.tolist() == [131071]
    for s in segs[:-1]:
        assert s.positions[0] == 0 and s.positions[-1] == s.length - 1
        assert np.all(np.diff(s.positions) > 0)
        assert s.positions.size == segs[0].positions.size  # one shape per run: JAX compiles once
    assert [s.length for s in measure.segments(2048, quick=True)] == [2048, 2048]


def test_inputs_are_seeded_and_exact_in_the_precision():
    a = measure.inputs(0, "m", 1, 5, 8, "bfloat16")
    b = measure.inputs(0, "m", 1, 5, 8, "bfloat16")
    c = measure.inputs(1, "m", 1, 5, 8, "bfloat16")
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])
    bits = a[0].astype(np.float32).view(np.uint32)
    assert np.all(bits & 0xFFFF == 0)  # bfloat16 values: the low half of the float32 pattern is zero
    assert a[0].shape == (1, 5, 2, 8) and a[1].shape == (1, 5, 1, 8)


@pytest.mark.parametrize("rotary_dim", [8, 4])
@pytest.mark.parametrize(("layout", "native"), [("half", "interleaved"), ("interleaved", "half")])
@pytest.mark.parametrize("partial", ["slice", "native"])
def test_plumbing_is_exact(layout, native, rotary_dim, partial):
    """A framework that pairs features its own way, given the permuted head, returns the model's rotation."""
    cfg = numrope.RopeConfig(head_dim=8, rotary_dim=rotary_dim, layout=layout)
    theirs = numrope.RopeConfig(head_dim=8 if partial == "native" else rotary_dim, rotary_dim=rotary_dim, layout=native)
    x = np.random.default_rng(1).standard_normal((1, 6, 2, 8)).astype(np.float32)
    pos = np.arange(6) * 7
    plumbing = Plumbing(cfg, native, partial)
    y = plumbing.out(numpy_rope(plumbing.into(x), pos, theirs), x)
    np.testing.assert_allclose(y, numpy_rope(x, pos, cfg), atol=1e-6)


def test_pair_permutation_is_a_permutation_that_maps_pairs():
    p = pair_permutation("interleaved", "half", 8)
    assert sorted(p.tolist()) == list(range(8))
    # half pair (i, i + 4) of the permuted head holds the interleaved pair (2i, 2i + 1)
    assert [(p[i], p[i + 4]) for i in range(4)] == [(0, 1), (2, 3), (4, 5), (6, 7)]
    assert pair_permutation("half", "half", 8) is None


def test_unknown_choices_are_value_errors():
    with pytest.raises(ValueError, match="unknown framework 'nope'"):
        conformance.plan(frameworks="nope")
    with pytest.raises(ValueError, match="no model"):
        conformance.plan(models="no-such-model")
    with pytest.raises(ValueError, match="unknown dtype"):
        conformance.plan(dtypes="float64")
    with pytest.raises(ValueError, match="seed"):
        conformance.run(frameworks=[], seed=-1)


def test_importing_the_package_imports_no_framework():
    code = (
        "import sys, numrope.conformance, numrope.cli.conformance; "
        "print(sorted(m for m in ('torch', 'jax', 'mlx', 'transformers', 'keras', 'ggml') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --------------------------------------------------------------------------- the frameworks installed here

#: Rows that do not conform, and why, for the reasons the conformance page documents.
KNOWN = {
    # numrope reads Llama 4 as pairing i with i + d/2; transformers and mlx-lm rotate adjacent pairs
    ("transformers", "llama-4-maverick"),
    ("mlx_lm", "llama-4-maverick"),
    # mlx-lm's SuScaledRoPE applies the long factors at every length, also below the original context
    ("mlx_lm", "phi-3.5-mini-instruct"),
    # mlx-lm's YaRN always rounds the correction range (gpt-oss says truncate: false)
    ("mlx_lm", "gpt-oss-20b"),
}
FRAMEWORK_MODULES = {a.name: a.modules for a in adapters.ADAPTERS}


def installed(name):
    return all(importlib.util.find_spec(m.split(".")[0]) is not None for m in FRAMEWORK_MODULES[name])


@pytest.mark.parametrize("name", sorted(FRAMEWORK_MODULES))
def test_framework_reproduces_numrope_within_tolerance(name):
    """Every float32 row of an installed framework conforms, except the documented deviations (which must show)."""
    if not installed(name):
        pytest.skip(f"{name} is not installed")
    models = None if name == "transformers" else list(conformance.QUICK_MODELS)
    report = conformance.run(frameworks=name, models=models, dtypes="float32", quick=True)
    assert report["results"], f"{name} measured nothing"
    for row in report["results"]:
        if (name, row["model"]) not in KNOWN:
            assert row["ok"], f"{row['model']}: {row['diagnosis']} {row['messages'][:1]}"
        elif not row["ok"]:
            assert row["diagnosis"], row


@pytest.mark.skipif(not installed("transformers"), reason="transformers is not installed")
def test_transformers_rows_in_low_precision_conform():
    report = conformance.run(frameworks="transformers", models=["llama-3.1-8b", "deepseek-v3", "phi-2"], quick=True)
    assert {r["dtype"] for r in report["results"]} == {"float32", "bfloat16"}
    assert all(r["ok"] for r in report["results"]), [r["diagnosis"] for r in report["results"]]
    assert {r["judged_as"][0] for r in report["results"] if r["dtype"] == "bfloat16"} == {"bfloat16"}


@pytest.mark.skipif(not installed("mlx_lm"), reason="mlx-lm is not installed")
def test_mlx_lm_longrope_uses_the_long_factors_below_the_original_context():
    (row,) = conformance.run(frameworks="mlx_lm", models="phi-3.5", dtypes="float32", quick=True)["results"]
    assert not row["ok"]
    assert row["error_at"]["4k"] > 0.1  # the 4k context: LongRoPE's short factors apply
    assert row["decode_rel_error"] < 1e-2  # at the end of the 128k context the long factors are right


@pytest.mark.skipif(not installed("rotary_embedding_torch"), reason="rotary-embedding-torch is not installed")
def test_rotary_embedding_torch_decodes_at_positions_rounded_to_bfloat16():
    (row,) = conformance.run(frameworks="rotary_embedding_torch", models="command-r", dtypes="bfloat16", quick=True)[
        "results"
    ]
    assert not row["ok"] and {"offset", "position_precision"} & set(row["diagnosis"])
    assert row["error_at"]["4k"] < 0.05  # positions passed as float32 are right; only the decoding path rounds them


# --------------------------------------------------------------------------- the command


def run_cli(argv, capsys):
    try:
        code = cli.main(["conformance", *argv])
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_exit_0_and_the_json_shape(only, capsys):
    only(NumpyAdapter())
    code, out, err = run_cli(["--quick", "--model", "llama-2-7b", "--model", "phi-2", "--json", "--seed", "3"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert report["seed"] == 3
    assert {"results", "machine", "versions", "not_measured", "not_expressible", "frameworks"} <= set(report)
    assert [r["model"] for r in report["results"]] == ["llama-2-7b", "phi-2"]
    for row in report["results"]:
        assert ROW_KEYS <= set(row)
        assert row["framework"] == "numpy_rope" and row["version"] == np.__version__
        assert isinstance(row["max_rel_error"], float) and math.isfinite(row["max_rel_error"])
        assert isinstance(row["diagnosis"], list)
    assert report["versions"] == {"numpy": np.__version__}  # by distribution
    assert report["machine"]["cpus"] >= 1


def test_cli_exit_1_when_a_row_does_not_conform(only, capsys):
    only(NumpyAdapter(), NumpyAdapter("broken", "offset"))
    code, out, _ = run_cli(["--quick", "--model", "llama-2-7b"], capsys)
    assert code == 1
    assert "broken / llama-2-7b / float32: offset" in out
    assert "numpy_rope" in out and "ok" in out


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--framework", "nope"], "unknown framework 'nope'"),
        (["--model", "no-such-model"], "no model of the catalogue matches"),
        (["--dtype", "float64"], "invalid choice"),
        (["--seed", "-1"], "non-negative"),
        (["--framework", "missing"], "missing cannot run: not here"),
    ],
)
def test_cli_usage_errors_exit_2_with_one_line(only, capsys, argv, says):
    only(NumpyAdapter(), MissingAdapter("missing"))
    code, out, err = run_cli(argv, capsys)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and says in err
    assert "Traceback" not in err


def test_cli_baseline_expects_the_failures_it_lists(only, capsys, tmp_path):
    only(NumpyAdapter(), NumpyAdapter("broken", "offset"))
    code, out, _ = run_cli(["--quick", "--model", "llama-2-7b", "--json"], capsys)
    assert code == 1
    baseline = tmp_path / "baseline.json"
    baseline.write_text(out)
    code, out, err = run_cli(["--quick", "--model", "llama-2-7b", "--json", "--baseline", str(baseline)], capsys)
    assert code == 0, err
    assert json.loads(out)["baseline"]["expected_failures"] == 1
    report = json.loads(baseline.read_text())
    report["results"] = [r for r in report["results"] if r["framework"] != "broken"]
    baseline.write_text(json.dumps(report))
    code, out, err = run_cli(["--quick", "--model", "llama-2-7b", "--baseline", str(baseline)], capsys)
    assert code == 1
    assert "1 new: broken / llama-2-7b / float32" in err
    baseline.write_text("{")
    code, out, err = run_cli(["--quick", "--baseline", str(baseline)], capsys)
    assert code == 2 and "not JSON" in err and len(err.strip().splitlines()) == 1
    code, out, err = run_cli(["--quick", "--baseline", str(tmp_path / "none.json")], capsys)
    assert code == 2 and "none.json" in err


def test_cli_plot_without_matplotlib_stops_before_running(only, capsys, monkeypatch):
    only(NumpyAdapter())
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setattr(conformance, "run", lambda *a, **k: pytest.fail("the run started"))
    code, _, err = run_cli(["--quick", "--plot", "x.png"], capsys)
    assert code == 2
    assert 'pip install "numrope[bench]"' in err and len(err.strip().splitlines()) == 1


def test_cli_plot_is_drawn(only, capsys, tmp_path):
    pytest.importorskip("matplotlib")
    only(NumpyAdapter())
    path = tmp_path / "conformance.png"
    code, _, err = run_cli(["--quick", "--model", "llama-2-7b", "--plot", str(path)], capsys)
    assert code == 0, err
    assert path.stat().st_size > 1000


def test_cli_list_and_progress(only, capsys):
    only(NumpyAdapter(), MissingAdapter("missing"))
    code, out, _ = run_cli(["--list", "--quick"], capsys)
    assert code == 0
    assert "numpy_rope" in out and "not installed (not here)" in out and "llama-3.1-8b" in out
    code, _, err = run_cli(["--quick", "--model", "llama-2-7b", "--progress"], capsys)
    assert code == 0 and "[" in err and "1/1" in err


def test_what_frameworks_print_does_not_reach_the_json(only, capsys):
    class Chatty(NumpyAdapter):
        def setup(self, model, cfg):
            print("To run this model install something")  # as mlx-lm's olmo module does
            return super().setup(model, cfg)

    only(Chatty("chatty"))
    code, out, err = run_cli(["--quick", "--model", "llama-2-7b", "--json"], capsys)
    assert code == 0
    assert json.loads(out)["results"][0]["ok"]
    assert "install something" in err


def test_stdout_to_stderr_moves_c_level_output_too(capfd):
    from numrope.cli.conformance import _stdout_to_stderr

    with _stdout_to_stderr():
        print("python print", flush=True)
        os.write(1, b"C printf\n")
    print("the report")
    out, err = capfd.readouterr()
    assert out == "the report\n"
    assert "python print" in err and "C printf" in err


def test_a_framework_that_exits_is_a_failing_row_not_the_end(only):
    class Exiting(NumpyAdapter):
        def setup(self, model, cfg):
            sys.exit(1)

    only(Exiting("exiting"), NumpyAdapter())
    rows = conformance.run(models="llama-2-7b", quick=True)["results"]
    assert [(r["framework"], r["ok"]) for r in rows] == [("exiting", False), ("numpy_rope", True)]
    assert rows[0]["diagnosis"] == ["error"] and "SystemExit" in rows[0]["messages"][0]


def test_stored_report_has_the_shape_the_docs_read():
    """docs/conformance_results/conformance.json is a report of this command."""
    from pathlib import Path

    path = Path(numrope.__file__).parent.parent / "docs" / "conformance_results" / "conformance.json"
    if not path.exists():
        pytest.skip("no stored report in this checkout")
    report = json.loads(path.read_text())
    assert report["results"] and all(ROW_KEYS <= set(r) for r in report["results"])
    names = {r["framework"] for r in report["results"]}
    assert "transformers" in names


def test_base_rescale_factors_are_ntk_aware_not_vllm_ntk():
    """rotary-embedding-torch's and x-transformers' base rescale factor is the NTK-aware base change
    (numrope.variants.NTKAware); vLLM's fixed "ntk" is another formula they do not have: refused, not run."""
    from numrope.conformance.adapters._base import Unsupported
    from numrope.conformance.adapters.torch_libs import RotaryEmbeddingTorch, XTransformers

    aware = numrope.RopeConfig(head_dim=64, scaling=numrope.variants.NTKAware(alpha=4.0))
    vllm = numrope.RopeConfig(head_dim=64, scaling=numrope.variants.NTK(factor=4.0))
    for adapter in (RotaryEmbeddingTorch(), XTransformers()):
        assert adapter.variant(aware) == "ntk_aware"
        adapter.check(aware)
        with pytest.raises(Unsupported, match="no 'ntk' scaling"):
            adapter.check(vllm)
        if adapter.missing() is None:  # the library's own frequencies for the factor numrope passes it
            rope = adapter.build(None, aware, adapter.check(aware))["rope"]
            freqs = getattr(rope, "freqs", None)
            freqs = (rope.inv_freq if freqs is None else freqs).detach().double().numpy()
            np.testing.assert_allclose(freqs, aware.inv_freq(), rtol=2**-22)
            assert np.abs(freqs / vllm.inv_freq() - 1).max() > 0.04  # pair 0: 4.4%, 44 rad at position 1000
