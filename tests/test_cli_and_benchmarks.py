"""The command line and the benchmark's quick mode."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bayesnmr._cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_simulate_then_fit(tmp_path, capsys):
    data = tmp_path / "d.nc"
    assert (
        main(["simulate", "--offsets=-30,25", "--j", "9", "--sigma", "0.01", "--out", str(data)])
        == 0
    )
    assert data.is_file()
    assert main(["fit", str(data), "--starts", "2", "--steps", "15"]) == 0
    out = capsys.readouterr().out
    assert "j_hz" in out and "Laplace" in out


@pytest.mark.usefixtures("allow_rank_promotion")
def test_sample_needs_no_guesses(tmp_path, capsys):
    # `bayesnmr sample data.nc --spins N`: no offsets, no boxes; the posterior lands on the
    # truth (the file's n_spins attribute is overridden by --spins, here the same).
    data = tmp_path / "d.nc"
    main(["simulate", "--offsets=35,-30,10", "--j", "7", "--sigma", "0.02", "--out", str(data)])
    out_dir = tmp_path / "post"
    argv = ["sample", str(data), "--spins", "3", "--chains", "2", "--warmup", "60"]
    assert main([*argv, "--draws", "60", "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert (out_dir / "posterior.nc").is_file()
    import bayesnmr as bn

    post = bn.load_posterior(out_dir / "posterior.nc")
    mean = np.asarray(post.posterior["offsets_hz"]).reshape(-1, 3).mean(0)
    truth = np.array([35.0, -30.0, 10.0])
    assert min(np.abs(mean - truth).max(), np.abs(mean - truth[::-1]).max()) < 0.1, out


@pytest.mark.usefixtures("allow_rank_promotion")
def test_sample_with_a_local_surrogate(tmp_path, capsys):
    # `--solver local`: a surrogate trained for these data, NUTS on it, the exact
    # correction, its diagnostics printed; the posterior is at the truth.
    data = tmp_path / "d.nc"
    main(["simulate", "--offsets=35,-30,10", "--j", "7", "--sigma", "0.02", "--out", str(data)])
    out_dir = tmp_path / "post"
    argv = ["sample", str(data), "--offsets=35,-30,10", "--width", "3", "--solver", "local"]
    argv += ["--chains", "2", "--warmup", "100", "--draws", "100", "--out", str(out_dir)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "exact correction (mode 0): Pareto k-hat" in out and ": ok" in out, out
    import bayesnmr as bn

    post = bn.load_posterior(out_dir / "posterior.nc")
    assert post.attrs["corrected"] == 1 and "posterior_surrogate" in post.children
    mean = np.asarray(post.posterior["offsets_hz"]).reshape(-1, 3).mean(0)
    np.testing.assert_allclose(mean, [35.0, -30.0, 10.0], atol=0.1)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["fit", "missing.nc"], "No data file"),
        (["simulate", "--offsets", "1,x"], "`--offsets` takes comma-separated numbers"),
        (["simulate", "--sigma", "-1"], "`sigma` must be finite and >= 0"),
        (["simulate", "--offsets", "1,2,3", "--j", "1,2,3"], "`j_hz` must be a scalar or an array"),
    ],
)
def test_cli_errors_are_one_clear_line(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_fit_with_wrong_number_of_offsets(tmp_path, capsys):
    data = tmp_path / "d.nc"
    main(["simulate", "--offsets=-30,25", "--j", "9", "--out", str(data)])
    assert main(["fit", str(data), "--offsets", "1,2,3"]) == 2
    assert "gives 3 values but the data are for 2 spins" in capsys.readouterr().err


def run_quick(script: str, out: Path, *extra: str) -> None:
    """Run a benchmark's --quick mode in a fresh process, writing into `out`."""
    argv = [sys.executable, str(ROOT / "benchmarks" / script), "--quick", "--out", str(out)]
    done = subprocess.run([*argv, *extra], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr


def test_scaling_benchmark_quick(tmp_path):
    run_quick("scaling.py", tmp_path)
    results = json.loads((tmp_path / "scaling.json").read_text())
    methods = {r["method"] for r in results["runs"]}
    assert {"dense", "qutip", "diffrax", "exact", "surrogate_eigen", "surrogate_mlp"} <= methods
    (batch,) = [r for r in results["runs"] if r["method"] == "exact_batch"]
    assert 0 < batch["float32_max_error"] < 1e-6
    f32 = [r for r in results["runs"] if r["method"] == "exact_f32"]
    assert f32 and all(0 < r["max_error_vs_exact"] < 1e-6 for r in f32)
    # The plain NumPy sector reference is an independent solution: it must agree.
    exact = [r for r in results["runs"] if r["method"] == "exact"]
    assert exact and all(r["numpy_sectors_max_error"] < 1e-12 for r in exact)
    assert all({"ratio_to_numpy_sectors", "ratio_to_eigh"} <= r.keys() for r in exact)
    assert (tmp_path / "scaling.png").stat().st_size > 10_000


def test_generate_train_evaluate(tmp_path, capsys):
    data, model = tmp_path / "data", tmp_path / "m.bnsur"
    common = ["--spins", "3", "--n", "40", "--dt", "0.002", "--shard-size", "20"]
    assert main(["generate", *common, "--samples", "40", "--out", str(data)]) == 0
    assert "2 shard(s) of 2 complete" in capsys.readouterr().out
    argv = ["train", str(data), "--out", str(model), "--width", "16", "--depth", "2"]
    assert main([*argv, "--frame-steps", "60", "--eval-every", "30"]) == 0
    out = capsys.readouterr().out
    assert "Relative L2 error" in out and model.is_file()
    assert (tmp_path / "m.bnsur.ckpt").is_file()
    import bayesnmr as bn

    assert bn.load_surrogate(model).metadata["command"].startswith(f"bayesnmr train {data}")
    report, fig = tmp_path / "eval.json", tmp_path / "stability.png"
    argv = ["evaluate", str(model), "--data", str(data), "--json", str(report), "--plot", str(fig)]
    assert main(argv) == 0
    assert json.loads(report.read_text())["n"] == 40
    assert fig.stat().st_size > 10_000


@pytest.mark.parametrize(
    "argv, message",
    [
        (["evaluate", "chain5"], "No surrogate named 'chain5'"),
        (["generate", "--out", "d", "--spins", "1"], "`n_spins` must be an integer >= 2"),
        (["generate", "--out", "d", "--j-range", "5"], "`--j-range` takes two"),
        (["train", "nowhere", "--out", "m.bnsur"], "no generated data"),
    ],
)
def test_surrogate_cli_errors(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())


def test_surrogate_benchmark_quick(tmp_path):
    run_quick("surrogate.py", tmp_path, "--work", str(tmp_path / "work"))
    results = json.loads((tmp_path / "surrogate.json").read_text())
    assert set(results["models"]) == {"chain4", "mlp4"}
    # The shipped chain4 on 60 held-out chains (measured on 1,000: 0.24 % median in mx).
    chain4 = results["models"]["chain4"]
    assert chain4["mx"]["median"] < 0.01 and chain4["iz1_minus_1"]["median"] < 0.05
    assert (tmp_path / "surrogate_stability.png").stat().st_size > 10_000


def test_nuts_benchmark_quick(tmp_path):
    # Longer chains first, then the default runs: each merges into the file the other
    # wrote, nothing lost.
    run_quick("nuts.py", tmp_path, "--spins", "2")
    run_quick("nuts.py", tmp_path)
    results = json.loads((tmp_path / "nuts.json").read_text())
    assert set(results["runs"]) == {"plain", "surrogate", "exact", "exact_n2"}
    assert "longer_chains_method" in results
    # Even 2 chains x (50 + 50) from the global fit land on the truth (posterior sd ~0.01 Hz).
    mean = results["runs"]["plain"]["mean"]
    truth = [-40.0, -10.0, 20.0, 45.0]
    assert all(abs(mean[f"offsets_hz[{i}]"] - truth[i]) < 0.1 for i in range(4))
    assert results["memory"]["calls"] == 5 and len(results["memory"]["rss_mib"]) == 5
    # Every chain method samples the same chains (same keys and starts): the same draws,
    # up to the rounding of a batched program against an unbatched one.
    methods = results["chain_methods"]
    assert {"vectorized", "threads", "parallel"} <= set(methods)
    assert all(methods[m]["max_mean_shift_in_sd"] < 1e-3 for m in ("threads", "parallel"))
    run = results["runs"]["exact_n2"]
    truth = np.random.default_rng(2).uniform(-100, 100, 2)  # the benchmark's chain for N = 2
    assert run["n_spins"] == 2
    assert all(abs(run["mean"][f"offsets_hz[{i}]"] - truth[i]) < 0.1 for i in range(2))


def test_jacobi_ablation_quick(tmp_path):
    run_quick("jacobi_ablation.py", tmp_path)
    rows = json.loads((tmp_path / "jacobi_ablation.json").read_text())["rows"]
    assert len(rows) == 3
    net = {(r["model"], r["start"], r["sweeps"]): r["mx"]["median"] for r in rows}
    # A Jacobi sweep on the network's basis can only help (ties allowed at the ulp level).
    assert net[("chain4", "network", 1)] <= net[("chain4", "network", 0)]


def test_fit_success_quick(tmp_path):
    run_quick("fit_success.py", tmp_path)
    results = json.loads((tmp_path / "fit_success.json").read_text())
    rows = results["rows"]
    assert [r["problem"] for r in rows] == [0, 1] and results["summary"]["3"]["problems"] == 2
    for row in rows:
        assert (row["outcome"] == "truth") == (row["max_error_hz"] < 0.5)
        assert row["commit"] and row["date"][:2] == "20"


def test_network_fit_benchmark_quick(tmp_path):
    # In this process (nothing in it needs a fresh one): both fits of one ring problem.
    import importlib.util

    spec = importlib.util.spec_from_file_location("nf", ROOT / "benchmarks" / "network_fit.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(bench.parse_args(["--quick", "--out", str(tmp_path)]))
    results = json.loads((tmp_path / "network_fit.json").read_text())
    (row,) = results["rows"]
    assert row["commit"] and row["box_half_width_hz"] == 16.0
    for name in ("global", "file_starts"):
        fit = row[name]
        assert fit["outcome"] in ("truth", "identifiability", "search failure")
        assert (fit["outcome"] == "truth") == (fit["max_error_hz"] < 0.5)
        worse = fit["loss"] > row["loss_at_truth"] + 1e-9
        assert (fit["outcome"] == "search failure") == (fit["max_error_hz"] >= 0.5 and worse)
    assert results["summary"]["16.0"]["problems"] == 1


def test_network_local_benchmark_quick(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("nl", ROOT / "benchmarks" / "network_local.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(bench.parse_args(["--quick", "--out", str(tmp_path)]))
    (row,) = json.loads((tmp_path / "network_local.json").read_text())["rows"]
    assert row["problem"] == "quick3" and row["free_parameters"] == 3 and row["commit"]
    # Even 2 x 150 draws: the corrected local posterior sits on the exact one.
    assert row["corrected"] == 1 and row["pareto_k"] < 0.5
    assert row["max_shift_in_exact_sd"] < 0.5
    assert row["exact_over_local"] == pytest.approx(row["exact_seconds"] / row["local_seconds"])


def test_local_surrogate_benchmark_quick(tmp_path):
    run_quick("local_surrogate.py", tmp_path)
    rows = json.loads((tmp_path / "local_surrogate.json").read_text())["rows"]
    assert rows[0]["corrected"] == 1 and rows[0]["pareto_k"] < 0.7
    # The non-uniform FFT and the direct sum over the same lines give the same traces.
    assert rows[0]["line_sum_max_difference"] < 1e-8  # of traces that start at 1
    assert set(rows[0]["line_sum_seconds"]) == {"nufft", "direct"}


def test_network_benchmark_quick(tmp_path):
    run_quick("network.py", tmp_path)
    rows = json.loads((tmp_path / "network.json").read_text())["rows"]
    exact = [r for r in rows if r["method"] == "exact"]
    assert [r["n"] for r in exact] == [3, 4] and all(r["network_seconds"] > 0 for r in exact)
    lines = [r for r in rows if r["method"] == "lines"]
    assert [r["n"] for r in lines] == [3, 4] and all(r["lines"] > 0 for r in lines)
    assert all(r["commit"] and r["date"][:2] == "20" for r in rows)


def test_cli_compilation_cache_location(monkeypatch, tmp_path):
    from bayesnmr._cli import compilation_cache_dir

    monkeypatch.delenv("BAYESNMR_JAX_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compilation_cache_dir() == tmp_path / "bayesnmr" / "jax"
    monkeypatch.setenv("BAYESNMR_JAX_CACHE", str(tmp_path / "elsewhere"))
    assert compilation_cache_dir() == tmp_path / "elsewhere"
    monkeypatch.setenv("BAYESNMR_JAX_CACHE", "off")
    assert compilation_cache_dir() is None


def test_demo_runs_the_whole_story(tmp_path):
    # The README's main command, with shorter chains in step 4, through the demo
    # benchmark's quick mode (in this process, to share the compiled functions of the
    # other tests; in a fresh process this test took 187 s against 65 s on one core).
    import importlib.util

    import jax

    spec = importlib.util.spec_from_file_location("demo_bench", ROOT / "benchmarks" / "demo.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    with jax.numpy_rank_promotion("allow"):
        argv = ["--quick", "--out", str(tmp_path), "--demo-out", str(tmp_path / "files")]
        bench.main(bench.parse_args(argv))
    run = json.loads((tmp_path / "demo.json").read_text())["runs"]["quick"]
    text = run["output"]
    assert "Done in" in text
    assert set(run["stage_seconds"]) == {
        "simulate", "recover_j", "global_fit", "nuts_exact", "surrogate_corrected"
    }  # fmt: skip
    # The demo's own clock (whole seconds, rounded) runs inside the benchmark's.
    assert run["demo_seconds"] <= run["seconds"] + 0.5
    # Step 3 recovers every offset (printed with its Laplace sd) from the data alone.
    fitted = [float(v) for v in re.findall(r"offsets_hz\[\d\] =\s+(-?[\d.]+) \+-", text)]
    np.testing.assert_allclose(fitted, [-40.0, -10.0, 20.0, 45.0], atol=0.1)
    # Step 5 ends with a corrected posterior that agrees with exact NUTS.
    assert ": ok" in text and "corrected: posterior means within" in text
    out = tmp_path / "files" / "quick"
    for name in ("demo_data.nc", "demo_posterior.nc", "demo_marginals.png", "demo_traces.png"):
        assert (out / name).is_file()
