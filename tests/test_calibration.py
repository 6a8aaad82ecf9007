"""Calibration tools: SBC bookkeeping, determinism, Dask, the surrogate-error term, CLI."""

import numpy as np
import pytest

import bayesnmr as bn
from bayesnmr._cli import main
from bayesnmr._inference._model import model_kwargs

GRID = bn.TimeGrid(50, 2e-3)
PRIORS = bn.Priors([[-30.0, -10.0], [10.0, 30.0]], [2.0, 15.0], fixed={"sigma": 0.05})
TINY = {
    "n_datasets": 2,
    "sampler": bn.NUTS(chains=1, warmup=30, draws=30),
    "rank_draws": 19,
    "progress_bar": False,
}


pytestmark = pytest.mark.usefixtures("allow_rank_promotion")


@pytest.fixture(scope="module")
def tiny_result():
    return bn.calibrate(GRID, PRIORS, batch=2, seed=3, **TINY)


def test_data_sets_do_not_depend_on_batching(tiny_result):
    # Data set k is drawn from the seed (seed, k): batches of one see the same data and
    # the same sampler keys, so the whole result is identical.
    again = bn.calibrate(GRID, PRIORS, batch=1, seed=3, **TINY)
    np.testing.assert_array_equal(again.truths, tiny_result.truths)
    np.testing.assert_array_equal(again.ranks, tiny_result.ranks)
    np.testing.assert_allclose(again.means, tiny_result.means, rtol=1e-10)
    other = bn.calibrate(GRID, PRIORS, batch=2, seed=4, **TINY)
    assert not np.allclose(other.truths, tiny_result.truths)


def test_result_round_trip_and_compare(tiny_result, tmp_path):
    path = tiny_result.save(tmp_path / "sbc.json")
    back = bn.SBCResult.load(path)
    np.testing.assert_array_equal(back.ranks, tiny_result.ranks)
    np.testing.assert_array_equal(back.covered90, tiny_result.covered90)
    assert back.coverage == tiny_result.coverage
    # Where, when and how it ran travels with the result.
    made = back.provenance
    assert made == tiny_result.provenance
    assert made["settings"]["seed"] == 3 and made["settings"]["n_datasets"] == 2
    assert made["resumed"] == 0 and made["versions"]["bayesnmr"] == bn.__version__
    same = back.compare(tiny_result)
    assert same["shift"]["j_hz"]["median"] == 0.0
    assert same["sd_ratio"]["j_hz"]["median"] == pytest.approx(1.0)
    # The sds are posterior sds of the right size: well inside the prior box.
    assert np.all(tiny_result.sds > 0) and np.all(tiny_result.sds < 1.0)
    # A result with its means moved by one sd shifts by exactly one.
    import dataclasses

    moved = dataclasses.replace(tiny_result, means=tiny_result.means + tiny_result.sds)
    assert moved.compare(tiny_result)["shift"]["j_hz"]["median"] == pytest.approx(1.0)
    other = bn.calibrate(GRID, PRIORS, batch=2, seed=4, **TINY)
    with pytest.raises(ValueError, match="different data sets"):
        other.compare(tiny_result)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="Cannot read"):
        bn.SBCResult.load(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError):
        bn.SBCResult.load(tmp_path / "missing.json")


def test_calibrate_on_a_local_dask_cluster(tiny_result):
    pytest.importorskip("dask.distributed")
    res = bn.calibrate(GRID, PRIORS, batch=1, seed=3, scheduler="local", **TINY)
    np.testing.assert_array_equal(res.truths, tiny_result.truths)
    np.testing.assert_array_equal(res.ranks, tiny_result.ranks)


def test_model_error_widens_the_likelihood_as_stated():
    # log p(data | theta) with model_error e is that of N(model, sqrt(sigma^2 + e^2)).
    from numpyro.infer.util import log_density
    from scipy.stats import norm

    chain = bn.SpinChain([-20.0, 20.0], 8.0)
    data = bn.synthesize(chain, GRID, sigma=0.05, seed=0)
    priors = bn.Priors.around([-20.0, 20.0], 5.0, j_hz=(2.0, 15.0), fixed={"sigma": 0.05})
    err = np.abs(np.random.default_rng(0).normal(0.0, 0.03, (3, GRID.n)))
    kwargs = model_kwargs(data, priors, None, err)
    params = {"offsets_hz": np.array([-20.0, 20.0]), "j_hz": 8.0}
    got, _ = log_density(bn.chain_model, (), kwargs, params)
    tr = bn.simulate(chain, GRID)
    sd = np.sqrt(0.05**2 + err**2)
    want = sum(
        norm.logpdf(np.asarray(getattr(data, k)), np.asarray(getattr(tr, k)), sd[i]).sum()
        for i, k in enumerate(("mx", "my", "iz1"))
    )
    prior = -np.log(10.0) * 2 - np.log(13.0)
    assert float(got) == pytest.approx(want + prior, rel=1e-9)
    with pytest.raises(ValueError, match="`model_error` must be finite, non-negative"):
        model_kwargs(data, priors, None, err[:, :10])
    with pytest.raises(ValueError, match="`model_error` must be finite, non-negative"):
        model_kwargs(data, priors, None, -err)


def test_surrogate_error_is_the_rms_against_exact():
    sur = bn.load_surrogate("chain4")
    priors = bn.Priors.around([-40.0, -10.0, 20.0, 45.0], 5.0, j_hz=(10.0, 15.0))
    err = bn.surrogate_error(sur, priors, n_samples=8, seed=1)
    assert err.shape == (3, sur.grid.n)
    # The first sample by hand: its squared error is at most 8x the mean square.
    rng = np.random.default_rng([1, 999_979])
    lower, upper = priors.box()
    theta = lower + (upper - lower) * rng.random((8, 5))
    chain = bn.SpinChain(theta[0, :4], theta[0, 4])
    diff = np.stack(
        [
            np.asarray(getattr(bn.simulate(chain, sur.grid, sur), k))
            - np.asarray(getattr(bn.simulate(chain, sur.grid), k))
            for k in ("mx", "my", "iz1")
        ]
    )
    assert np.all(diff**2 <= 8 * err**2 + 1e-6)
    assert np.mean(err) > 1e-5  # a surrogate is not exact
    wide = bn.Priors.around([-40.0, -10.0, 20.0, 95.0], 10.0)
    with pytest.raises(ValueError, match="reaches outside"):
        bn.surrogate_error(sur, wide)


def test_cli_sbc(tmp_path, capsys):
    common = ["sbc", "--offsets=-20,20", "--j-range", "2,15", "--sigma", "0.05", "--n", "50"]
    common += ["--dt", "0.002", "--warmup", "20", "--draws", "20"]
    assert main([*common, "--datasets", "2", "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "cover90" in out and (tmp_path / "a" / "sbc.json").is_file()
    assert (tmp_path / "a" / "sbc.png").stat().st_size > 1000
    argv = [*common, "--datasets", "2", "--compare", str(tmp_path / "a" / "sbc.json")]
    assert main([*argv, "--out", str(tmp_path / "b")]) == 0
    assert "mean shift +0.00" in capsys.readouterr().out
    assert main([*common, "--model-error", "--out", str(tmp_path / "c")]) == 2
    assert "`--model-error` estimates a surrogate's error" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_calibrate_resumes_from_its_checkpoint(tiny_result, tmp_path, monkeypatch):
    # The same calibration, stopped after one data set and run again: the second run
    # computes only the missing one, and the result is the uninterrupted one.
    from bayesnmr._inference import _sbc

    path = tmp_path / "sbc.ckpt.json"
    bn.calibrate(GRID, PRIORS, batch=2, seed=3, checkpoint=path, **(TINY | {"n_datasets": 1}))
    computed = []
    original = _sbc._run_task

    def counting(job, ks, done=None):
        computed.extend(ks)
        return original(job, ks, done)

    monkeypatch.setattr(_sbc, "_run_task", counting)
    res = bn.calibrate(GRID, PRIORS, batch=2, seed=3, checkpoint=path, **TINY)
    assert computed == [1]
    np.testing.assert_array_equal(res.ranks, tiny_result.ranks)
    np.testing.assert_allclose(res.means, tiny_result.means, rtol=1e-10)
    with pytest.raises(ValueError, match="different calibration"):
        bn.calibrate(GRID, PRIORS, batch=2, seed=4, checkpoint=path, **TINY)


def test_calibrate_corrects_a_surrogate_by_default():
    from test_correction import Shifted

    # 100 draws, not TINY's 30: the correction's k-hat threshold is 1 - 1/log10(S), 0.32 at
    # S = 30, within the noise of k-hat from 30 draws of one 30-step-warmup chain (at 30 + 30
    # draws, 6 of 8 data sets (seeds 3-6) passed before the Gauss-Newton Hessian, 4 of 8
    # after, the failures changing with the start; at 100 + 100, 12 of 12, seeds 3-8).
    small = TINY | {"sampler": bn.NUTS(chains=1, warmup=100, draws=100)}
    res = bn.calibrate(GRID, PRIORS, solver=Shifted(0.01), batch=2, seed=3, **small)
    assert res.pareto_k is not None and res.pareto_k.shape == (2,)
    assert res.corrected.all() and np.all(res.pareto_k < 0.5)
    raw = bn.calibrate(GRID, PRIORS, solver=Shifted(0.01), correct=False, batch=2, seed=3, **small)
    assert raw.pareto_k is None
    assert res.fallback.tolist() == ["", ""]  # nothing to fall back from


def test_calibrate_falls_back_where_the_correction_fails(tmp_path):
    # A surrogate 3 Hz off (tens of posterior sds): every correction fails, and each data
    # set is sampled again, as sample_posterior would: with a local surrogate (corrected),
    # else exact NUTS. What is ranked is then the right posterior, and the file says how.
    from test_correction import Shifted

    res = bn.calibrate(GRID, PRIORS, solver=Shifted(3.0), batch=2, seed=3, **TINY)
    assert not res.corrected.any()
    assert set(res.fallback.tolist()) <= {"local", "exact"}
    exact = bn.calibrate(GRID, PRIORS, batch=2, seed=3, **TINY)
    shift = np.abs(res.means - exact.means) / exact.sds
    assert np.all(shift < 1.0), shift  # the fallback's posterior, not the biased one
    again = bn.SBCResult.load(res.save(tmp_path / "sbc.json"))
    assert again.fallback.tolist() == res.fallback.tolist()
    kept = bn.calibrate(GRID, PRIORS, solver=Shifted(3.0), fallback=False, batch=2, seed=3, **TINY)
    off = np.abs(kept.means - exact.means) / exact.sds
    assert kept.fallback is None and np.all(off[:, 0] > 3), off  # the shifted offset, wrong


def test_cli_sbc_local_and_resume(tmp_path, capsys):
    # `--model local`: the correction's tally is printed (with 30 draws k-hat is noisy and
    # its threshold strict, so not every data set need pass); a rerun of the same command
    # finds every data set done and reports the same.
    import re

    argv = ["sbc", "--offsets=-20,20", "--j-range", "2,15", "--sigma", "0.05", "--n", "50"]
    argv += ["--dt", "0.002", "--warmup", "30", "--draws", "30", "--datasets", "2"]
    argv += ["--model", "local", "--out", str(tmp_path)]
    assert main(argv) == 0
    first = re.search(r"exact correction: \d of 2 data sets corrected.*", capsys.readouterr().out)
    assert first, "no correction tally"
    assert (tmp_path / "sbc.checkpoint.json").is_file()
    assert main(argv) == 0
    assert first.group(0) in capsys.readouterr().out


def test_calibrate_refuses_chains_across_devices():
    # calibrate runs a data set's chains on one device: threads (what "auto" picks on a
    # CPU) or vectorized; any other method is refused by name, before any work.
    for method in ("parallel", "sequential"):
        with pytest.raises(
            ValueError, match=f"calibrate runs its chains on one device.*'{method}'"
        ):
            bn.calibrate(
                GRID, PRIORS, **(TINY | {"sampler": bn.NUTS(chains=2, chain_method=method)})
            )
