"""Inference: data files, the model, point fits, NUTS against a grid posterior."""

import numpy as np
import pytest

import bayesnmr as bn

GRID = bn.TimeGrid(n=300, dt=1e-3)
CHAIN = bn.SpinChain([-40.0, -10.0, 20.0, 45.0], 12.5)


pytestmark = pytest.mark.usefixtures("allow_rank_promotion")


@pytest.fixture(scope="module")
def data():
    return bn.synthesize(CHAIN, GRID, sigma=0.02, seed=1)


def test_dataset_round_trip(tmp_path, data):
    path = bn.save_dataset(data, tmp_path / "d.nc")
    back = bn.load_dataset(path)
    np.testing.assert_array_equal(back.mx, data.mx)
    np.testing.assert_array_equal(back.iz1, data.iz1)
    assert back.grid == data.grid and back.n_spins == 4
    assert back.truth["j_hz"] == pytest.approx(12.5)
    fid_only = bn.synthesize(CHAIN, GRID, sigma=0.02, observe_iz1=False)
    assert bn.load_dataset(bn.save_dataset(fid_only, tmp_path / "f.nc")).iz1 is None


def test_bad_data_files(tmp_path, data):
    with pytest.raises(FileNotFoundError, match="No data file"):
        bn.load_dataset(tmp_path / "missing.nc")
    (tmp_path / "corrupt.nc").write_bytes(b"not a netcdf file at all")
    with pytest.raises(ValueError, match="Cannot read"):
        bn.load_dataset(tmp_path / "corrupt.nc")
    # A truncated file (a copy cut in half) is refused too.
    good = bn.save_dataset(data, tmp_path / "good.nc").read_bytes()
    (tmp_path / "cut.nc").write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="Cannot read"):
        bn.load_dataset(tmp_path / "cut.nc")


def test_bad_data_values(data):
    with pytest.raises(ValueError, match=r"Data `mx` must have one value per time point"):
        bn.Dataset(GRID, data.mx[:10], data.my, None, 4)
    mx = data.mx.copy()
    mx[3] = np.nan
    with pytest.raises(
        ValueError, match=r"Data `mx` has non-finite values \(first at indices \[3\]"
    ):
        bn.Dataset(GRID, mx, data.my, None, 4)


def test_save_is_atomic(tmp_path, data, monkeypatch):
    path = bn.save_dataset(data, tmp_path / "d.nc")
    before = path.read_bytes()
    import xarray as xr

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", boom)
    with pytest.raises(RuntimeError):
        bn.save_dataset(data, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["d.nc"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"offsets_hz": [1.0, 2.0]}, r"shape \(N, 2\)"),
        ({"offsets_hz": [[1.0, 0.0]]}, "lo < hi"),
        ({"offsets_hz": [[0.0, 1.0], [2.0, 3.0]], "j_hz": [[0, 1], [0, 1]]}, "`j_hz` must be"),
        ({"offsets_hz": [[0.0, 1.0]], "fixed": {"t1": 1.0}}, "cannot fix"),
    ],
)
def test_bad_priors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bn.Priors(**kwargs)


@pytest.mark.parametrize("forward", ["exact", "surrogate"])
def test_paper_experiment_recovers_j(data, forward):
    # N = 4, offsets known, J from 5.0 Hz: within 0.05 Hz of 12.5 Hz in <= 20 steps,
    # with the exact solver and with the shipped surrogate (its box: J in [0, 20] Hz).
    solver = bn.load_surrogate("chain4") if forward == "surrogate" else None
    priors = bn.Priors.around(
        CHAIN.offsets_hz, 10.0, j_hz=(0.0, 20.0), fixed={"offsets_hz": CHAIN.offsets_hz}
    )
    res = bn.fit(
        data, priors, solver=solver, init={"j_hz": 5.0}, n_starts=1, broadening=(), steps=20
    )
    assert res.n_steps <= 20
    assert abs(float(res.j_hz) - 12.5) < 0.05
    # The Laplace error bar covers the truth and is of the right size.
    assert 0.003 < res.stderr[0] < 0.03


def test_joint_fit_from_spectrum_peaks(data):
    priors = bn.Priors.around(bn.peak_offsets(data, 4), 15.0)
    res = bn.fit(data, priors, n_starts=4, steps=15, broadening=(0.05,))
    np.testing.assert_allclose(res.offsets_hz, CHAIN.offsets_hz, atol=0.05)
    assert abs(float(res.j_hz) - 12.5) < 0.05
    assert res.sigma == pytest.approx(0.02, rel=0.1)


def test_lbfgs_returns_the_best_point_it_visited():
    # A quadratic with rounding-sized ripples: once converged, the line search fails on the
    # ripples and optax steps anyway; the point returned must still be the best visited.
    import jax
    import jax.numpy as jnp

    from bayesnmr._inference._descent import lbfgs_batch

    def loss(u):
        return jnp.sum((u - 1.0) ** 2) + 1e-12 * jnp.sum(jnp.sin(1e10 * u))

    u0 = jnp.array([[5.0, -3.0], [0.5, 2.0], [-40.0, 7.0]])
    best, best_values, (values, _) = lbfgs_batch(loss, 60)(u0)
    final = jax.vmap(loss)(best)
    assert np.all(np.asarray(final) <= np.asarray(values).min(axis=1) + 1e-15)
    np.testing.assert_allclose(best_values, final, rtol=1e-12)  # the misfit of that point
    np.testing.assert_allclose(best, 1.0, atol=1e-2)  # the ripples' gradient is 1e-2


def test_fit_keeps_a_converged_two_spin_fit():
    # Seen in the noise study: this fit converged, then a failed line search threw it to
    # the edge of its box (J = 0) and the last point was returned.
    chain = bn.SpinChain([-20.0, 20.0], 10.0)
    grid = bn.TimeGrid(50, 1e-3)
    data = bn.synthesize(chain, grid, sigma=0.02, seed=100)
    priors = bn.Priors.around(chain.offsets_hz, 10.0, j_hz=(0.0, 20.0))
    fit = bn.fit(data, priors, init={"offsets_hz": chain.offsets_hz, "j_hz": 10.0}, n_starts=1)
    np.testing.assert_allclose(fit.offsets_hz, [-20.0, 20.0], atol=0.2)
    assert fit.j_hz == pytest.approx(10.0, abs=0.3)


def test_fit_refuses_mismatched_priors(data):
    with pytest.raises(ValueError, match="priors are for 3 spins but the data for 4"):
        bn.fit(data, bn.Priors.around([0.0, 1.0, 2.0]))


def test_chain_starts_stay_sane_at_a_box_edge():
    # A fit on a box's edge (a 2e-4 Hz box under a 0.13 Hz Laplace sd, as in the test
    # below) once gave NUTS an inverse mass of 5e17 in z and starts at z ~ 1e9: warmup spent
    # its first few hundred steps at the largest trees (24 s instead of 1.3 s at N = 2).
    from bayesnmr._inference._sampler import laplace_z

    lo, hi = np.array([-20.0001, 13.0, 6.0]), np.array([-19.9999, 17.0, 10.0])
    cov = np.array(
        [[0.0168, -0.0015, -0.0023], [-0.0015, 0.0213, 0.0033], [-0.0023, 0.0033, 0.0231]]
    )
    centre, cov_z = laplace_z([-20.0001, 15.0, 8.2], cov, lo, hi)
    assert np.all(np.isfinite(centre)) and np.isclose(centre[0], np.log(1e-4 / (1 - 1e-4)))
    assert np.all(np.diag(cov_z) <= np.pi**2 / 3 + 1e-12) and np.all(np.linalg.eigvalsh(cov_z) > 0)
    # Away from the edges the linearised map is kept exactly (here a 0.15 Hz sd in a 4 Hz box).
    jac = 1 / (np.array([2.0, 2.2]) * np.array([2.0, 1.8]) / 4.0)
    np.testing.assert_allclose(centre[1:], np.log([2.0 / 2.0, 2.2 / 1.8]))
    np.testing.assert_allclose(cov_z[1:, 1:], cov[1:, 1:] * np.outer(jac, jac))
    # Correlations survive the cap.
    corr = lambda c: c[0, 1] / np.sqrt(c[0, 0] * c[1, 1])  # noqa: E731
    assert np.isclose(corr(cov_z), corr(cov))


def test_nuts_matches_grid_posterior_n2():
    # N = 2, J and nu_2 free (nu_1 known, sigma known): a 2-D posterior small enough to
    # integrate on a grid. NUTS means and sds agree with it to 0.1 posterior sd.
    import jax
    import jax.numpy as jnp

    chain = bn.SpinChain([-20.0, 15.0], 8.0)
    grid = bn.TimeGrid(100, 2e-3)
    sigma = 0.3
    d = bn.synthesize(chain, grid, sigma=sigma, seed=4)
    # nu_1 is pinned by a box 2e-4 Hz wide: only nu_2 and J really vary.
    priors = bn.Priors([[-20.0001, -19.9999], [13.0, 17.0]], [6.0, 10.0], fixed={"sigma": sigma})
    dt = bn.sample_posterior(
        d,
        priors,
        sampler=bn.NUTS(chains=4, warmup=500, draws=1500),
        seed=2,
        progress_bar=False,
    )
    post_nu = np.asarray(dt.posterior["offsets_hz"])[..., 1].ravel()
    post_j = np.asarray(dt.posterior["j_hz"]).ravel()

    nus = np.linspace(13.0, 17.0, 161)
    js = np.linspace(6.0, 10.0, 161)

    def loglik(nu2, j):
        tr = bn.simulate(bn.SpinChain(jnp.stack([-20.0, nu2]), j), grid)
        r = [tr.mx - d.mx, tr.my - d.my, tr.iz1 - d.iz1]
        return -0.5 * sum(jnp.sum(x**2) for x in r) / sigma**2

    ll = jax.jit(jax.vmap(jax.vmap(loglik, (None, 0)), (0, None)))(nus, js)
    w = np.exp(np.asarray(ll) - np.max(ll))
    w /= w.sum()
    for samples, axis_vals, marg in ((post_nu, nus, w.sum(1)), (post_j, js, w.sum(0))):
        mean = np.sum(axis_vals * marg)
        sd = np.sqrt(np.sum((axis_vals - mean) ** 2 * marg))
        assert abs(samples.mean() - mean) < 0.1 * sd
        assert abs(samples.std() - sd) < 0.1 * sd


def test_marginal_sigma_matches_grid_posterior_n2():
    # sigma unknown and integrated out (Jeffreys prior): the (nu_2, J) posterior is
    # RSS^(-n/2) on a grid, and sigma | theta ~ InvGamma(n/2, RSS/2), so its posterior
    # mean is the grid average of sqrt(RSS/2) Gamma(n/2 - 1/2) / Gamma(n/2).
    import math

    import jax
    import jax.numpy as jnp

    chain = bn.SpinChain([-20.0, 15.0], 8.0)
    grid = bn.TimeGrid(100, 2e-3)
    d = bn.synthesize(chain, grid, sigma=0.3, seed=4)
    priors = bn.Priors([[-20.0001, -19.9999], [13.0, 17.0]], [6.0, 10.0])
    dt = bn.sample_posterior(
        d,
        priors,
        sampler=bn.NUTS(chains=4, warmup=500, draws=1500),
        seed=3,
        progress_bar=False,
    )
    assert "rss" not in dt.posterior and dt.posterior["sigma"].shape == (4, 1500)
    nus, js = np.linspace(13.0, 17.0, 161), np.linspace(6.0, 10.0, 161)

    def rss(nu2, j):
        tr = bn.simulate(bn.SpinChain(jnp.stack([-20.0, nu2]), j), grid)
        return sum(jnp.sum(x**2) for x in (tr.mx - d.mx, tr.my - d.my, tr.iz1 - d.iz1))

    r = np.asarray(jax.jit(jax.vmap(jax.vmap(rss, (None, 0)), (0, None)))(nus, js))
    n = 3 * grid.n
    logw = -0.5 * n * np.log(r)
    w = np.exp(logw - logw.max())
    w /= w.sum()
    sigma_given = np.sqrt(r / 2) * math.exp(math.lgamma(n / 2 - 0.5) - math.lgamma(n / 2))
    checks = (
        (np.asarray(dt.posterior["offsets_hz"])[..., 1].ravel(), nus[:, None] + 0 * w),
        (np.asarray(dt.posterior["j_hz"]).ravel(), js[None, :] + 0 * w),
    )
    for samples, values in checks:
        mean = np.sum(values * w)
        sd = np.sqrt(np.sum((values - mean) ** 2 * w))
        assert abs(samples.mean() - mean) < 0.1 * sd
        assert abs(samples.std() - sd) < 0.1 * sd
    sig = np.asarray(dt.posterior["sigma"]).ravel()
    assert abs(sig.mean() - np.sum(sigma_given * w)) < 0.1 * sig.std()
    summary, _ = bn.diagnose(dt, warn=False)
    assert summary.loc["sigma", "ess_bulk"] > 2000


def test_diagnose_and_files(tmp_path):
    # Two spins compile fastest; tiny chains make the diagnostics fail on purpose.
    chain = bn.SpinChain([-30.0, 25.0], 9.0)
    data = bn.synthesize(chain, GRID, sigma=0.02, seed=2)
    priors = bn.Priors.around(chain.offsets_hz, 5.0)
    dt = bn.sample_posterior(
        data,
        priors,
        sampler=bn.NUTS(chains=2, warmup=40, draws=40),
        progress_bar=False,
        init={"offsets_hz": chain.offsets_hz, "j_hz": 9.0},
    )
    assert {"posterior", "sample_stats", "observed_data", "posterior_predictive"} <= set(
        dt.children
    )
    with pytest.warns(bn.ConvergenceWarning):
        summary, problems = bn.diagnose(dt)
    assert "r_hat" in summary.columns and problems
    path = bn.save_posterior(dt, tmp_path / "post.nc")
    back = bn.load_posterior(path)
    np.testing.assert_allclose(back.posterior["j_hz"], dt.posterior["j_hz"])
    paths = bn.plot_posterior(dt, tmp_path, truth=data.truth)
    assert all(p.stat().st_size > 1000 for p in paths)
    fig = bn.plot_predictive(dt, data)
    assert len(fig.axes) == 3
    with pytest.raises(ValueError, match="Cannot read"):
        (tmp_path / "bad.nc").write_text("garbage")
        bn.load_posterior(tmp_path / "bad.nc")


def test_sample_refuses_bad_arguments(data):
    priors = bn.Priors.around(CHAIN.offsets_hz, 5.0)
    with pytest.raises(ValueError, match="`chain_method` must be"):
        bn.sample_posterior(data, priors, sampler=bn.NUTS(chain_method="processes"))
    with pytest.raises(ValueError, match="`chains` must be a positive int"):
        bn.sample_posterior(data, priors, sampler=bn.NUTS(chains=0))
    with pytest.raises(ValueError, match="`sampler` must be a `bn.NUTS"):
        bn.sample_posterior(data, priors, sampler={"chains": 2})


PARALLEL_SCRIPT = """
import bayesnmr as bn
import jax
bn.use_cpu_cores(2)
jax.config.update("jax_enable_x64", True)
assert jax.local_device_count() == 2, jax.devices()
chain = bn.SpinChain([-30.0, 25.0], 9.0)
grid = bn.TimeGrid(60, 2e-3)
data = bn.synthesize(chain, grid, sigma=0.02, seed=2)
priors = bn.Priors.around(chain.offsets_hz, 5.0)
with jax.numpy_rank_promotion("allow"):
    nuts = bn.NUTS(chains=2, warmup=20, draws=10)
    dt = bn.sample_posterior(data, priors, sampler=nuts, progress_bar=False)
post = dt.posterior
print("chains", post.sizes["chain"], "draws", post.sizes["draw"], dt.attrs["chain_method"])
"""


def test_chains_run_in_parallel_on_cpu_cores():
    # A fresh process: the device count is fixed when JAX starts.
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", PARALLEL_SCRIPT], capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "chains 2 draws 10 parallel" in out.stdout


def test_calibrate_needs_known_noise_and_free_parameters():
    grid = bn.TimeGrid(50, 2e-3)
    with pytest.raises(ValueError, match="fix the noise"):
        bn.calibrate(grid, bn.Priors([[-30.0, -10.0], [10.0, 30.0]]), n_datasets=1)
    fixed = {"sigma": 0.05, "offsets_hz": [-20.0, 20.0], "j_hz": 8.0}
    with pytest.raises(ValueError, match="nothing to calibrate"):
        bn.calibrate(grid, bn.Priors([[-30.0, -10.0], [10.0, 30.0]], fixed=fixed), n_datasets=1)


def test_sbc_ranks_and_coverage_on_a_known_posterior():
    # The library's rank and coverage bookkeeping on a posterior we know: draws from
    # N(0, 1), truths far below, at and far above it.
    from bayesnmr._inference._sbc_result import rank_record

    draws = np.random.default_rng(0).normal(size=(4000, 1))
    keep = np.linspace(0, 3999, 99).astype(int)
    recs = [rank_record(draws, np.array([t]), keep) for t in (-5.0, 0.0, 5.0)]
    assert [int(r["rank"][0]) for r in recs] == [0, int((draws[keep] < 0).sum()), 99]
    assert 35 <= recs[1]["rank"][0] <= 64  # ~Binomial(99, 1/2)
    assert [bool(r["c50"][0]) for r in recs] == [False, True, False]
    assert [bool(r["c90"][0]) for r in recs] == [False, True, False]
    np.testing.assert_allclose(recs[1]["sd"], 1.0, atol=0.05)
    res = bn.SBCResult(
        names=["x"],
        ranks=np.array([r["rank"] for r in recs]),
        rank_draws=99,
        truths=np.array([r["truth"] for r in recs]),
        means=np.array([r["mean"] for r in recs]),
        covered50=np.array([r["c50"] for r in recs]),
        covered90=np.array([r["c90"] for r in recs]),
        bins=3,
    )
    assert res.coverage["90"]["x"] == pytest.approx(1 / 3)
    # Uniform ranks pass the chi-square test; ranks piled in one bin fail it.
    rng = np.random.default_rng(1)
    uniform = bn.SBCResult(
        ["x"],
        rng.integers(0, 100, (300, 1)),
        99,
        np.zeros((300, 1)),
        np.zeros((300, 1)),
        np.ones((300, 1), bool),
        np.ones((300, 1), bool),
        5,
    )
    piled = bn.SBCResult(
        ["x"],
        np.full((300, 1), 99),
        99,
        np.zeros((300, 1)),
        np.zeros((300, 1)),
        np.ones((300, 1), bool),
        np.ones((300, 1), bool),
        5,
    )
    assert uniform.p_values["x"] > 0.01 and piled.p_values["x"] < 1e-6


def test_chains_in_threads_are_the_vectorized_chains():
    # On a CPU "auto" runs the chains on one device in threads, one chain per thread:
    # the same keys and starts as the vectorized chains, so the same draws (up to the
    # rounding of a batched against an unbatched program).
    d = bn.synthesize(bn.SpinChain([-20.0, 15.0], 8.0), bn.TimeGrid(100, 2e-3), sigma=0.3, seed=4)
    priors = bn.Priors([[-25.0, -15.0], [10.0, 20.0]], [4.0, 12.0])
    runs = {}
    for method in ("auto", "vectorized"):
        runs[method] = bn.sample_posterior(
            d,
            priors,
            init={"offsets_hz": [-20.0, 15.0], "j_hz": 8.0},
            sampler=bn.NUTS(chains=3, warmup=100, draws=100, chain_method=method),
            progress_bar=False,
        )
    assert runs["auto"].attrs["chain_method"] == "threads"
    for site in ("offsets_hz", "j_hz", "sigma"):
        a, b = (np.asarray(runs[m].posterior[site]) for m in ("auto", "vectorized"))
        assert a.shape[:2] == (3, 100)
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
