"""Inference from the data alone: the global fit, its modes, and NUTS started from it."""

import numpy as np
import pytest

import bayesnmr as bn

from reference import grid_posterior_moments

GRID = bn.TimeGrid(n=300, dt=1e-3)

pytestmark = pytest.mark.usefixtures("allow_rank_promotion")


@pytest.fixture(scope="module")
def unsorted4():
    # Offsets not in ascending order along the chain: the peaks' order is not the chain's.
    chain = bn.SpinChain([25.0, -60.0, 70.0, -15.0], 9.5)
    return chain, bn.synthesize(chain, GRID, sigma=0.02, seed=3)


@pytest.fixture(scope="module")
def fit4(unsorted4):
    return bn.fit(unsorted4[1])  # no priors, no guesses


def test_priors_from_data_span_the_spectral_window(unsorted4):
    p = bn.Priors.from_data(unsorted4[1])
    np.testing.assert_allclose(p.offsets_hz, np.tile([-500.0, 500.0], (4, 1)))
    np.testing.assert_allclose(p.j_hz, [0.0, 25.0])


def test_fit_recovers_an_unsorted_chain_from_no_guesses(unsorted4, fit4):
    chain, _ = unsorted4
    truth = np.r_[chain.offsets_hz, chain.j_hz]
    # iz1 tells a chain from its mirror only faintly here: both must be found, and one of
    # the two best modes is the truth to well within the 0.5 Hz criterion.
    found = [np.r_[m.offsets_hz, m.j_hz] for m in fit4.modes[:2]]
    assert min(np.abs(f - truth).max() for f in found) < 0.05
    assert fit4.sigma == pytest.approx(0.02, rel=0.1)


def test_mirror_images_reported_as_two_modes(fit4):
    # The two orders fit almost equally well: two modes of comparable probability, the
    # second the mirror image of the first, not one of them silently.
    assert len(fit4.modes) >= 2
    a, b = fit4.modes[:2]
    np.testing.assert_allclose(a.offsets_hz, b.offsets_hz[::-1], atol=0.05)
    assert 0.2 < a.probability < 0.8 and 0.2 < b.probability < 0.8
    assert sum(m.probability for m in fit4.modes) == pytest.approx(1.0)
    assert "mode 1" in fit4.describe()


def test_fid_only_reports_one_of_the_mirror_pair(unsorted4):
    # Without iz1 the mirror is exact; the convention nu_1 <= nu_N picks one.
    chain, _ = unsorted4
    data = bn.synthesize(chain, GRID, sigma=0.02, seed=3, observe_iz1=False)
    res = bn.fit(data)
    assert res.offsets_hz[0] <= res.offsets_hz[-1]
    mirrored = np.asarray(chain.offsets_hz)[::-1]
    np.testing.assert_allclose(res.offsets_hz, mirrored, atol=0.05)
    assert all(m.offsets_hz[0] <= m.offsets_hz[-1] for m in res.modes)


def test_plain_sample_posterior_matches_grid_posterior_n2():
    # The README's plain call, no `init`, boxes of +-12 Hz around each offset, sigma known:
    # NUTS must land in the right mode and agree with a brute-force grid posterior over
    # (nu_1, nu_2, J) to 0.1 posterior sd (random starts in these boxes gave R-hat 2.8).
    chain = bn.SpinChain([-20.0, 15.0], 8.0)
    grid = bn.TimeGrid(100, 2e-3)
    sigma = 0.3
    d = bn.synthesize(chain, grid, sigma=sigma, seed=4)
    priors = bn.Priors.around(chain.offsets_hz, 12.0, fixed={"sigma": sigma})
    dt = bn.sample_posterior(
        d,
        priors,
        sampler=bn.NUTS(chains=4, warmup=500, draws=1500),
        progress_bar=False,
    )
    summary, problems = bn.diagnose(dt, warn=False)
    assert not problems, problems
    assert float(dt["modes"]["probability"][0]) > 0.99
    post = np.column_stack(
        [
            np.asarray(dt.posterior["offsets_hz"]).reshape(-1, 2),
            np.asarray(dt.posterior["j_hz"]).ravel(),
        ]
    )
    centre, sd = post.mean(0), post.std(0)
    means, sds = grid_posterior_moments(d, sigma, centre, sd)
    np.testing.assert_array_less(np.abs(centre - means), 0.1 * sds)
    np.testing.assert_array_less(np.abs(sd - sds), 0.1 * sds)
    # The truth is where the posterior says (a wrong mode would be hundreds of sds off).
    assert np.all(np.abs(centre - np.r_[-20.0, 15.0, 8.0]) < 4 * sd)


def test_sample_posterior_reports_modes_apart(unsorted4, fit4):
    _, data = unsorted4
    dt = bn.sample_posterior(
        data, init=fit4, sampler=bn.NUTS(chains=2, warmup=150, draws=150), progress_bar=False
    )
    modes = dt["modes"].to_dataset()
    assert modes.sizes["mode"] >= 2 and bool(modes["sampled"][1])
    # Each mode's chains sit at that mode, not averaged across both.
    for k, group in ((0, "posterior"), (1, "posterior_mode1")):
        mean = np.asarray(dt[group]["offsets_hz"]).reshape(-1, 4).mean(0)
        np.testing.assert_allclose(mean, modes["offsets_hz"][k], atol=0.05)
    _, problems = bn.diagnose(dt, warn=False)
    assert any("modes: mode 0 p =" in p for p in problems)
    with pytest.warns(bn.MultimodalWarning, match="posterior has 2 modes"):
        bn.diagnose(dt, rhat_max=np.inf, ess_min=0)


def test_sampler_compiles_once_per_structure(caplog):
    # A second posterior of the same structure (other data, other boxes) compiles nothing.
    import logging

    import jax

    grid = bn.TimeGrid(60, 2e-3)
    kwargs = dict(
        sampler=bn.NUTS(chains=2, warmup=30, draws=30),
        progress_bar=False,
    )

    def run(offsets, seed):
        chain = bn.SpinChain(offsets, 9.0)
        data = bn.synthesize(chain, grid, sigma=0.02, seed=seed)
        priors = bn.Priors.around(offsets, 5.0)
        return bn.sample_posterior(
            data, priors, init={"offsets_hz": offsets, "j_hz": 9.0}, **kwargs
        )

    run([-30.0, 25.0], 1)
    with jax.log_compiles(True), caplog.at_level(logging.WARNING):
        caplog.clear()
        run([-10.0, 40.0], 2)
    compiled = [r.getMessage() for r in caplog.records if "Compiling" in r.getMessage()]
    assert not any("advance" in m or "start" in m for m in compiled), compiled


def test_chains_in_different_modes_are_split():
    # Four chains: two near 0 Hz, two near 10 Hz (sd 0.01): two groups, not one average.
    from bayesnmr._inference._chains import chain_clusters

    rng = np.random.default_rng(0)
    centre = np.array([0.0, 0.0, 10.0, 10.0])[:, None, None]
    draws = {
        "offsets_hz": centre + 0.01 * rng.normal(size=(4, 200, 2)),
        "j_hz": rng.normal(size=(4, 200)),
    }
    assert chain_clusters(draws) == [[0, 1], [2, 3]]
    one = {"offsets_hz": 0.01 * rng.normal(size=(4, 200, 2)), "j_hz": rng.normal(size=(4, 200))}
    assert chain_clusters(one) == [[0, 1, 2, 3]]
