"""Surrogate posteriors made exact: PSIS correction, fallbacks, problem-local surrogates."""

from typing import ClassVar

import equinox as eqx
import numpy as np
import pytest

import bayesnmr as bn

from reference import grid_posterior_moments

pytestmark = pytest.mark.usefixtures("allow_rank_promotion")

CHAIN = bn.SpinChain([-20.0, 15.0], 8.0)
GRID = bn.TimeGrid(100, 2e-3)
SIGMA = 0.3


class Shifted(bn.AbstractSolver):
    """A deliberately biased "surrogate": the exact solver with offset 1 moved by `shift`."""

    shift: float = eqx.field(static=True)
    approximate: ClassVar[bool] = True

    def observables(self, chain, grid):
        moved = bn.SpinChain(chain.offsets_hz.at[0].add(self.shift), chain.j_hz)
        return bn.ExactSolver().observables(moved, grid)


@pytest.fixture(scope="module")
def problem():
    data = bn.synthesize(CHAIN, GRID, sigma=SIGMA, seed=4)
    priors = bn.Priors.around(CHAIN.offsets_hz, 12.0, fixed={"sigma": SIGMA})
    fit = bn.fit(data, priors)
    means, sds = grid_posterior_moments(data, SIGMA, np.r_[fit.offsets_hz, fit.j_hz], fit.stderr)
    return data, priors, fit, means, sds


def test_laplace_error_bars_are_the_grid_posterior_sds(problem):
    # fit.stderr comes from the Gauss-Newton Hessian A^T A; on this 2-spin posterior
    # (sigma known, flat boxes) it must match the brute-force grid posterior's sds. The
    # noise here is high (sigma = 0.3), where the dropped term sum r grad^2 r shows:
    # measured 0.136, 0.136, 0.157 Hz against the grid's 0.130, 0.147, 0.154 (7.4 % at
    # most); the full Hessian gave 0.130, 0.146, 0.152 (within 1 %).
    _, _, fit, _, sds = problem
    np.testing.assert_allclose(fit.stderr, sds, rtol=0.1)


def _draws(dt, group="posterior"):
    post = dt[group]
    return np.column_stack(
        [np.asarray(post["offsets_hz"]).reshape(-1, 2), np.asarray(post["j_hz"]).ravel()]
    )


def test_biased_surrogate_is_corrected_to_the_grid_posterior(problem):
    data, priors, fit, means, sds = problem
    solver = Shifted(float(0.5 * sds[0]))  # half a posterior sd
    dt = bn.sample_posterior(
        data,
        priors,
        solver=solver,
        init=fit,
        sampler=bn.NUTS(chains=4, warmup=400, draws=1500),
        correction_draws=6000,
        progress_bar=False,
    )
    assert dt.attrs["corrected"] == 1
    c = dt["correction"].attrs
    assert c["pareto_k"] < 0.7 and c["ess"] > 1000
    raw, corrected = _draws(dt, "posterior_surrogate"), _draws(dt)
    # The surrogate's own posterior is off by about half an sd in nu_1 ...
    assert abs(raw[:, 0].mean() - means[0]) > 0.3 * sds[0]
    # ... the corrected one is the exact posterior, to 0.1 sd in every mean and sd.
    np.testing.assert_array_less(np.abs(corrected.mean(0) - means), 0.1 * sds)
    np.testing.assert_array_less(np.abs(corrected.std(0) - sds), 0.1 * sds)
    _, problems = bn.diagnose(dt, warn=False)
    assert not any("correction" in p for p in problems)
    # The predictive comes from the exact solver, and the weights are kept.
    assert dt["correction"]["log_weight"].shape == (4, 1500)


def test_badly_biased_surrogate_is_detected_not_returned(problem):
    data, priors, fit, _, sds = problem
    solver = Shifted(float(50 * sds[0]))
    with pytest.warns(bn.ConvergenceWarning, match="exact correction .* failed"):
        dt = bn.sample_posterior(
            data,
            priors,
            solver=solver,
            init=fit,
            sampler=bn.NUTS(chains=2, warmup=200, draws=300),
            progress_bar=False,
            fallback=False,
        )
    assert dt.attrs["corrected"] == 0 and dt["correction"].attrs["ok"] == 0
    _, problems = bn.diagnose(dt, warn=False)
    assert any("exact correction" in p for p in problems)


def test_failed_correction_falls_back_to_a_local_surrogate(problem):
    data, priors, fit, means, sds = problem
    with pytest.warns(UserWarning, match="problem-local surrogate"):
        dt = bn.sample_posterior(
            data,
            priors,
            solver=Shifted(float(50 * sds[0])),
            init=fit,
            sampler=bn.NUTS(chains=2, warmup=300, draws=600),
            progress_bar=False,
        )
    assert dt.attrs["corrected"] == 1 and "local surrogate" in dt.attrs["fallback"]
    post = _draws(dt)
    np.testing.assert_array_less(np.abs(post.mean(0) - means), 0.2 * sds)


def test_local_surrogate_trains_in_seconds_and_matches_exact(tmp_path):
    chain = bn.SpinChain([-30.0, 5.0, 40.0], 9.0)
    centre = np.r_[chain.offsets_hz, chain.j_hz]
    region = bn.Domain(3, np.stack([centre[:3] - 0.3, centre[:3] + 0.3], -1), (8.7, 9.3))
    grid = bn.TimeGrid(300, 1e-3)
    sur = bn.train_local_surrogate(region, grid, progress_bar=False)
    assert sur.architecture == "lines" and sur.approximate
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.uniform(region.lower, region.upper)
        c = bn.SpinChain(x[:3], x[3])
        a, b = bn.simulate(c, grid, solver=sur), bn.simulate(c, grid)
        for k in ("mx", "my", "iz1"):
            np.testing.assert_allclose(getattr(a, k), getattr(b, k), atol=1e-4)
    # A point just outside the region is refused, not extrapolated.
    with pytest.raises(ValueError, match="outside"):
        bn.simulate(bn.SpinChain(centre[:3] + [0.5, 0, 0], 9.0), grid, solver=sur)
    # The same .bnsur format: saved and loaded with its region as its domain.
    back = bn.load_surrogate(bn.save_surrogate(tmp_path / "local.bnsur", sur))
    np.testing.assert_allclose(back.domain.lower, region.lower)
    np.testing.assert_allclose(
        bn.simulate(chain, grid, solver=back).mx, bn.simulate(chain, grid, solver=sur).mx
    )


def test_local_workflow_gives_the_exact_posterior(problem):
    data, priors, fit, means, sds = problem
    dt = bn.sample_posterior(
        data,
        priors,
        solver="local",
        sampler=bn.NUTS(chains=2, warmup=300, draws=800),
        progress_bar=False,
    )
    assert dt.attrs["solver"] == "local" and dt.attrs["corrected"] == 1
    assert dt["correction"].attrs["pareto_k"] < 0.5
    post = _draws(dt)
    np.testing.assert_array_less(np.abs(post.mean(0) - means), 0.15 * sds)
    np.testing.assert_array_less(np.abs(post.std(0) - sds), 0.15 * sds)


def test_correction_solves_spread_over_dask_are_the_local_ones():
    from bayesnmr._inference._correct import exact_traces

    rng = np.random.default_rng(0)
    offsets = CHAIN.offsets_hz + rng.normal(0, 0.5, (10, 2))
    j = 8.0 + rng.normal(0, 0.2, 10)
    here = exact_traces(offsets, j, GRID, bn.ExactSolver())
    spread = exact_traces(offsets, j, GRID, bn.ExactSolver(), "local", per_task=4)  # 3 tasks
    for k in ("mx", "my", "iz1"):
        np.testing.assert_allclose(getattr(spread, k), getattr(here, k), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="`scheduler` must be None, 'local'"):
        bn.sample_posterior(bn.synthesize(CHAIN, GRID, sigma=SIGMA), scheduler=2)


def test_local_surrogate_bad_input():
    grid = bn.TimeGrid(50, 1e-3)
    with pytest.raises(ValueError, match="`region` must be a `bn.Domain`"):
        bn.train_local_surrogate((0, 1), grid)
    with pytest.raises(ValueError, match=r"shape \(3, 2\)"):
        bn.Domain(3, np.zeros((2, 2)))
    region = bn.Domain(2, [[0.0, 1.0], [5.0, 6.0]], (1.0, 2.0))
    with pytest.raises(ValueError, match="`tol`"):
        bn.train_local_surrogate(region, grid, tol=2.0)
    data = bn.synthesize(CHAIN, GRID, sigma=SIGMA, seed=4)
    with pytest.raises(ValueError, match="'local'"):
        bn.sample_posterior(data, solver="nonsense")


def test_a_posterior_truncated_by_the_local_region_is_flagged():
    # PSIS weighs draws inside the region only; draws piled against a bound of the region
    # that lies inside the prior box mean the region cut the posterior off.
    import dataclasses

    from bayesnmr._inference._correct import Correction, edge_problem
    from bayesnmr._inference._local import region_edge as _region_edge

    rng = np.random.default_rng(0)
    inside = rng.uniform(-0.5, 0.5, (1000, 2))
    lo, hi, plo, phi = [-1, -1], [1, 1], [-10, -10], [10, 10]
    assert edge_problem(inside, lo, hi, plo, phi, ["a", "b"]) == ""
    piled = inside.copy()
    piled[:50, 1] = 0.99  # 5 % of b's draws at its upper bound
    assert "edge of the local surrogate's region in b" in edge_problem(piled, lo, hi, plo, phi,
                                                                        ["a", "b"])  # fmt: skip
    # The same bound on the prior box's edge is the prior's, not a truncation.
    assert edge_problem(piled, lo, hi, plo, [10, 1], ["a", "b"]) == ""
    c = Correction(np.zeros((1, 4)), np.zeros((1, 4)), np.zeros((1, 4), int), 0.1, 500.0,
                   0.7, 100.0, 0.0, None)  # fmt: skip
    assert c.ok and not dataclasses.replace(c, edge="cut").ok
    assert dataclasses.replace(c, edge="cut").problem() == "cut"
    # A chain's draws, region and priors as the local workflow has them.
    priors = bn.Priors.around([-40.0, 40.0], 10.0, j_hz=(0.0, 20.0))
    region = bn.Priors.around([-40.0, 40.0], 0.5, j_hz=(7.0, 8.0))
    samples = {"offsets_hz": np.array([-40.0, 40.0]) + rng.normal(0, 0.05, (2, 100, 2)),
               "j_hz": rng.uniform(7.2, 7.8, (2, 100))}  # fmt: skip
    assert _region_edge(samples, region, priors) == ""
    samples["j_hz"][:, :10] = 7.999
    assert _region_edge(samples, region, priors).endswith("in j_hz")
