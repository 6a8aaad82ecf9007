"""Every example runs with --quick (numpyro's test_examples style)."""

import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np

import bayesnmr as bn

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fig3_recover_j(tmp_path):
    ex = _load("fig3_recover_j")
    result = ex.main(ex.parse_args(["--quick", "--out", str(tmp_path)]))
    assert abs(result["j_hz"] - 12.5) < 0.05
    assert (tmp_path / "fig3_recover_j.png").is_file()


def test_posterior(tmp_path):
    import jax

    ex = _load("posterior")
    with jax.numpy_rank_promotion("allow"), warnings.catch_warnings():
        # Tiny chains: the diagnostics are expected to fail, and say so.
        warnings.filterwarnings("ignore", category=bn.ConvergenceWarning)
        post = ex.main(ex.parse_args(["--quick", "--out", str(tmp_path)]))
    assert "posterior" in post.children
    assert (tmp_path / "posterior.nc").is_file()


def test_mirror_modes(tmp_path):
    import jax

    ex = _load("mirror_modes")
    with jax.numpy_rank_promotion("allow"):
        result = ex.main(ex.parse_args(["--quick", "--out", str(tmp_path)]))
    # The FID alone cannot tell the modes apart; iz1 rejects the mirror decisively.
    assert abs(result["FID only"]) < 5.0
    assert result["FID + iz1"] > 100.0
    np.testing.assert_allclose(result["ordered_mean"], [-20.0, 5.0, 25.0], atol=0.5)
    assert (tmp_path / "mirror_modes.png").is_file()


def test_sbc(tmp_path):
    import jax

    ex = _load("sbc")
    with jax.numpy_rank_promotion("allow"):
        result = ex.main(ex.parse_args(["--quick", "--out", str(tmp_path)]))
    assert result.ranks.shape == (2, 3)
    # Each posterior sits on its own truth (a broken sampler or bookkeeping would not).
    assert np.all(np.abs(result.means - result.truths) <= 5 * result.sds)
    assert set(result.coverage["90"]) == {"offsets_hz[0]", "offsets_hz[1]", "j_hz"}
    assert (tmp_path / "sbc.png").stat().st_size > 10_000


def test_fig1_scaling(tmp_path):
    ex = _load("fig1_scaling")
    result = ex.main(ex.parse_args(["--quick", "--out", str(tmp_path)]))
    secs = result["seconds"]
    assert sorted(secs["exact"], key=int) == ["2", "3", "4", "5"]
    assert "4" in secs["eigen"]
    assert (tmp_path / "fig1_scaling.png").stat().st_size > 10_000


def test_fig2_stability(tmp_path):
    ex = _load("fig2_stability")
    report = ex.main(ex.parse_args(["--quick", "--out", str(tmp_path)]))
    # The shipped chain4: median error 0.24 % over 1,000 held-out chains; 20 here.
    assert report["mx"]["median"] < 0.02 and report["iz1"]["median"] < 0.02
    assert set(report["stability"]) == {"mx", "my", "iz1"}
    assert (tmp_path / "fig2_stability.png").stat().st_size > 10_000


def test_noise_study(tmp_path):
    import jax

    ex = _load("noise_study")
    with jax.numpy_rank_promotion("allow"):
        result = ex.main(ex.parse_args(["--quick", "--out", str(tmp_path)]))
    rows = result["rows"]
    # More noise, a wider posterior; a longer acquisition, a narrower one.
    assert rows["sigma"][1]["j_sd"] > 2 * rows["sigma"][0]["j_sd"]
    assert rows["n"][1]["j_sd"] < rows["n"][0]["j_sd"]
    assert all(abs(r["j_mean"] - 10.0) < 0.5 for a in rows.values() for r in a)
    assert (tmp_path / "noise_study.png").stat().st_size > 10_000
    saved = json.loads((tmp_path / "noise_study.json").read_text())
    assert saved["provenance"]["versions"]["bayesnmr"] == bn.__version__


def test_surrogate_posterior(tmp_path):
    import jax

    ex = _load("surrogate_posterior")
    with jax.numpy_rank_promotion("allow"), warnings.catch_warnings():
        # Tiny chains: the diagnostics are expected to fail, and chain4's correction too
        # (then the example falls back to a local surrogate, with a warning).
        warnings.filterwarnings("ignore", category=bn.ConvergenceWarning)
        warnings.filterwarnings("ignore", message="The exact correction", category=UserWarning)
        out = ex.main(ex.parse_args(["--quick", "--out", str(tmp_path)]))
    # The corrected posterior (or its fallback's) agrees with exact NUTS.
    assert np.abs(out["chain4"]["posterior"]).max() < 0.5
    assert out["local"]["corrected"] == 1
    assert (tmp_path / "local_posterior.nc").is_file()


def test_ring_spectrum(tmp_path):
    ex = _load("ring_spectrum")
    result = ex.main(ex.parse_args(["--quick", "--out", str(tmp_path)]))
    np.testing.assert_allclose(result["lines"][:, 1].sum(), 4.0, atol=0.01)  # all but < 1e-3
    assert result["para_change"] > 1e-3  # a 0.5 Hz coupling is visible in the FID
    assert (tmp_path / "ring_spectrum.png").is_file()


def test_ring_uncertainty(tmp_path):
    ex = _load("ring_uncertainty")
    result = ex.main(ex.parse_args(["--quick", "--out", str(tmp_path)]))
    rows = {(r["acquisition_s"], r["sigma"]): r["sd"]["j_hz[H3-H6]"] for r in result["rows"]}
    # Laplace sds scale with sigma exactly and shrink with a longer acquisition.
    np.testing.assert_allclose(rows[(0.15, 0.02)] / rows[(0.15, 0.005)], 4.0, rtol=1e-9)
    assert rows[(0.6, 0.02)] < rows[(0.15, 0.02)]
    saved = json.loads((tmp_path / "ring_uncertainty.json").read_text())
    assert saved["provenance"]["commit"] and (tmp_path / "ring_uncertainty.png").is_file()


def test_ring_posterior(tmp_path, allow_rank_promotion):
    ex = _load("ring_posterior")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=bn.ConvergenceWarning)  # tiny chains
        result = ex.main(ex.parse_args(["--quick", "--out", str(tmp_path)]))
    rows = {r["name"]: r for r in result["rows"]}
    assert len(rows) == 10  # four shifts, six couplings: none tied
    assert all(abs(r["truth_in_sds"]) < 5 for r in rows.values())
    assert (tmp_path / "ring_posterior.json").is_file()
