"""NUTS posteriors as ArviZ DataTrees: started at the global fit, one mode at a time."""

import dataclasses
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from .._physics._exact import ExactSolver
from .._physics._solver import AbstractSolver
from .._physics._system_file import SystemSpec
from ._chains import chain_clusters, chain_starts, mode_at, start_modes, take
from ._correct import correct as correct_draws
from ._correct import dataset as correction_dataset
from ._correct import resample, thinned
from ._data import Dataset
from ._diagnose import ConvergenceWarning
from ._local import local_model, region_edge
from ._model import Priors, check_chain_data, check_model_error
from ._modes import Mode, modes_dataset, renormalised
from ._predictive import predictive as _predictive
from ._sampler import NUTS, check_sampler, prepare


@dataclasses.dataclass
class _Run:
    """One group of chains that agree: its mode, draws, and the model they sampled."""

    mode: Mode
    samples: dict
    stats: dict
    solver: AbstractSolver | None
    priors: Priors


def sample_posterior(
    data: Dataset,
    priors: Priors | None = None,
    *,
    solver: AbstractSolver | None = None,
    sampler: NUTS = NUTS(),  # noqa: B008 (frozen, so a shared default is safe)
    seed: int = 0,
    progress_bar: bool = True,
    init: dict | None = None,
    predictive_draws: int = 200,
    marginal_sigma: bool = True,
    model_error=None,
    min_mode_probability: float = 0.01,
    correct: bool | None = None,
    min_ess: float = 100.0,
    correction_draws: int = 1000,
    fallback: bool = True,
    scheduler: str | None = None,
):
    """Sample the posterior of a chain's parameters with NUTS.

    The FID's posterior has many narrow local modes (a false one every ~$1/T$ Hz), and
    chains started at random points of the prior stay in them. So, unless `init` is
    given, the chains start at the global optimum found by `bn.fit` (the same search,
    from the data alone), spread by one Laplace standard deviation, with the Laplace
    covariance as the first mass matrix. When the fit finds competing solutions (two
    orders of the spins along the chain that fit almost equally well, say), every mode
    with a Laplace probability of at least `min_mode_probability` is sampled with its own
    `chains` chains, and the modes are reported apart, not averaged.

    **Arguments:**

    - `data`: the `Dataset`; `priors`: the `Priors` (default `Priors.from_data(data)`:
      offsets anywhere in the spectral window, J in [0, 25] Hz), or a `SystemSpec` (from
      `bn.load_spin_system`) for any network of couplings: NUTS over its free shifts and
      couplings (uniform on their boxes; tied couplings share a parameter), from the
      modes of the global `fit(data, spec)` (or of `init`, such a `FitResult`), each
      sampled and reported apart as for a chain, chains spread by the mode's Laplace
      sds, $\\sigma$ integrated out and drawn afterwards; the exact solver or
      `solver="local"` (a problem-local surrogate per mode, corrected as for a chain;
      where the correction fails, or the posterior reaches the edge of the surrogate's
      region, the mode is sampled again exactly). Its `posterior` has `offsets_hz` over
      the free spins (`spin`) and `j_hz` over the free couplings (`coupling`, named
      `"H1-H2"`).
    - `solver`: the forward model: exact by default; a surrogate (`bn.load_surrogate`,
      `bn.train_local_surrogate`); or `"local"`: a problem-local surrogate trained for
      these data, around each mode found by the (exact) fit, on a box of 10 Laplace sds
      (see below).
    - `correct`: correct a surrogate's posterior to the exact one (default: whenever the
      forward model is approximate, `solver.approximate`). Every draw is solved again
      with `bn.ExactSolver()` and weighed by the exact-to-surrogate likelihood ratio,
      Pareto-smoothed (PSIS); the corrected posterior is the draws resampled by those
      weights. `min_ess`: the fewest effective draws after correction that count as a
      success (with Pareto $\\hat k$ below $\\min(1 - 1/\\log_{10} S, 0.7)$).
      `correction_draws`: at most this many draws of each mode (evenly thinned in every
      chain) are solved exactly and make the corrected posterior (default 1000: one
      exact solve each, about 90 s at N = 10 on 2 cores; NUTS's draws are correlated,
      so thinning loses little). `scheduler`: solve those draws on a Dask cluster
      (`"local"`: one worker process per core; or a scheduler's address; the optional
      `bayesnmr[dask]` extra) instead of in this process.
    - `fallback`: when a correction fails (the surrogate's posterior does not overlap
      the exact one), sample again with a problem-local surrogate (when the failed one
      was not), or with the exact solver (at N <= 8, where that takes minutes); when
      nothing is left to fall back on, or with `fallback=False`, the result comes with a
      `ConvergenceWarning` that says what failed and what to do.
    - `sampler`: `bn.NUTS(chains=4, warmup=1000, draws=1000, target_accept=0.9,
      chain_method="auto")`, the default; `seed`: the random seed.
    - `init`: where to start instead of a new global fit: a `FitResult` (its modes), or a
      dict of `offsets_hz` and `j_hz` (one mode, started there).
    - `predictive_draws`: posterior draws used for the posterior predictive.
    - `marginal_sigma`: integrate the noise $\\sigma$ out analytically (Jeffreys prior,
      see `chain_model`) and draw it afterwards from its exact conditional
      $\\mathrm{InvGamma}(n/2, \\mathrm{RSS}/2)$, one per draw. `False` samples it under
      the half-normal prior of `priors`.
    - `model_error`: the forward model's error as a noise level, shape `(3, T)`, from
      `bn.surrogate_error` (see `chain_model`); then $\\sigma$ is sampled.

    The sampler is compiled once per structure (grid, free parameters, solver type,
    sampler settings) and reused by later calls, whatever the data and boxes.

    With a surrogate and the correction (the default), `posterior` holds the corrected
    (exact-model) draws, `posterior_surrogate` the surrogate's own, and `correction` the
    log likelihood ratios, the smoothed log weights and the diagnostics in its attributes
    (`pareto_k`, `ess`, `ok`); `dt.attrs["corrected"]` says whether every sampled mode
    was corrected successfully, and `dt.attrs["fallback"]` what was done instead, if
    anything. `bn.diagnose` reports them. The posterior predictive then uses the exact
    solver.

    **Returns:** an ArviZ `DataTree` with groups `posterior` (the most probable mode),
    `sample_stats`, `observed_data`, `posterior_predictive`, `modes` (every mode found:
    `probability`, `log_evidence`, `loss`, its `offsets_hz` and `j_hz`, whether it was
    `sampled`), and `posterior_mode1`, `sample_stats_mode1`, ... for further sampled modes.
    """
    sampler = check_sampler(sampler)
    if isinstance(priors, SystemSpec):  # any network of couplings, from a file
        from ._network_nuts import sample_network

        if (isinstance(solver, str) and solver != "local") or getattr(solver, "approximate", False):
            raise ValueError(
                "A network of couplings is sampled with an exact forward model or "
                "`solver='local'` (a problem-local surrogate, corrected to the exact "
                "posterior): the trained surrogates are for chains."
            )
        if correct is False and solver == "local":
            raise ValueError(
                "A network's local-surrogate posterior is always corrected to the exact one: "
                "leave `correct` at its default (or sample with the exact solver)."
            )
        if model_error is not None or not marginal_sigma:
            raise ValueError(
                "For a network of couplings, sigma is integrated out (`marginal_sigma=True`, "
                "no `model_error`)."
            )
        return sample_network(
            data, priors, solver=solver, sampler=sampler, seed=seed,
            progress_bar=progress_bar, init=init, predictive_draws=predictive_draws,
            min_mode_probability=min_mode_probability, correction_draws=correction_draws,
            min_ess=min_ess, fallback=fallback,
        )  # fmt: skip
    priors = Priors.from_data(data) if priors is None else priors
    if isinstance(solver, str) and solver != "local":
        raise ValueError(f"Argument `solver` must be a solver object or 'local', got {solver!r}.")
    if (
        isinstance(correction_draws, bool)
        or not isinstance(correction_draws, int)
        or (correction_draws < 1)
    ):
        raise ValueError(
            f"Argument `correction_draws` must be a positive int, got {correction_draws!r}."
        )
    if scheduler is not None and not isinstance(scheduler, str):
        raise ValueError(
            f"Argument `scheduler` must be None, 'local' or a Dask scheduler's address, got "
            f"{scheduler!r}."
        )
    if not isinstance(min_ess, int | float) or not min_ess > 0:
        raise ValueError(f"Argument `min_ess` must be a positive number, got {min_ess!r}.")
    local = solver == "local"
    if local and priors.per_bond:
        raise ValueError(
            "solver='local' takes one coupling J for every bond; the priors have per-bond "
            "couplings. Use one `j_hz` box, or `bn.ExactSolver()`."
        )
    approximate = local or bool(getattr(solver, "approximate", False))
    correct = approximate if correct is None else bool(correct)
    settings = dict(
        sampler=sampler,
        seed=seed,
        progress_bar=progress_bar,
        predictive_draws=predictive_draws,
        marginal_sigma=marginal_sigma,
        model_error=model_error,
        min_mode_probability=min_mode_probability,
        min_ess=min_ess,
        correction_draws=correction_draws,
        scheduler=scheduler,
    )
    dt, modes = _sample(
        data, priors, solver, init=init, correct=correct and approximate, **settings
    )
    if not (correct and approximate) or dt.attrs["corrected"]:
        return dt
    failed = dt.attrs["correction_problem"]
    exact_ok = data.n_spins <= ExactSolver().max_spins
    if fallback and not local and exact_ok:
        plan, retry, how = "a problem-local surrogate", "local", "local surrogate"
    elif fallback and data.n_spins <= 8:
        plan, retry, how = "exact NUTS", ExactSolver(), "exact"
    else:
        warnings.warn(
            f"The exact correction of the surrogate posterior failed ({failed}): the "
            "surrogate's posterior does not overlap the exact one, and the returned draws "
            "are not the exact posterior. Use `solver='local'` (a surrogate trained for "
            "these data), more draws, or `bn.ExactSolver()`.",
            ConvergenceWarning,
            stacklevel=2,
        )
        return dt
    warnings.warn(
        f"The exact correction of the surrogate posterior failed ({failed}); sampling "
        f"again with {plan}.",
        UserWarning,
        stacklevel=2,
    )
    out = sample_posterior(
        data, priors, solver=retry, init=modes, correct=None, fallback=False, **settings
    )
    out.attrs["fallback"] = f"{how}: the first correction failed ({failed})"
    return out


def _sample(
    data,
    priors,
    solver,
    *,
    sampler,
    seed,
    progress_bar,
    init,
    predictive_draws,
    marginal_sigma,
    model_error,
    min_mode_probability,
    correct,
    min_ess,
    correction_draws,
    scheduler,
):
    import arviz as az
    import xarray as xr

    priors = Priors.from_data(data) if priors is None else priors
    check_chain_data(data, priors)
    priors = priors.for_solver(solver)
    model_error = check_model_error(model_error, data.grid)
    chain_method = sampler.resolved_chain_method()
    chains = sampler.chains
    marginal = marginal_sigma and "sigma" not in priors.fixed and model_error is None
    local = isinstance(solver, str)
    fit_solver = None if local else solver  # the local workflow fits with the exact solver
    modes = start_modes(data, priors, fit_solver, init, seed, None if progress_bar else False)
    sampled = [m for m in modes if m.probability >= min_mode_probability] or modes[:1]
    arrays = tuple(None if a is None else jnp.asarray(a) for a in (data.mx, data.my, data.iz1))
    rng = np.random.default_rng(seed)
    n_obs = data.grid.n * (2 if data.iz1 is None else 3)
    runs: list[_Run] = []
    for k, mode in enumerate(sampled):
        run_solver, run_priors = solver, priors
        if local:
            run_solver, run_priors = local_model(
                mode, priors, data.grid, seed=seed, progress_bar=progress_bar
            )
        compiled, args = prepare(
            data.grid,
            run_priors,
            run_solver,
            arrays,
            marginal_sigma=marginal,
            model_error=model_error,
            chains=chains,
            warmup=sampler.warmup,
            draws=sampler.draws,
            chain_method=chain_method,
            target_accept=sampler.target_accept,
        )
        z0, inverse_mass = chain_starts(run_priors, mode, chains, marginal, rng)
        samples, stats = compiled.run(
            jax.random.PRNGKey(seed + 7919 * k),
            args,
            z0,
            inverse_mass,
            progress_bar=progress_bar,
            desc=f"NUTS mode {k}" if len(sampled) > 1 else "NUTS",
        )
        if marginal:
            rss = samples.pop("rss")
            samples["sigma"] = np.sqrt(rss / (2 * rng.gamma(n_obs / 2, 1.0, size=rss.shape)))
        clusters = chain_clusters(samples)
        for i, group in enumerate(clusters):
            found = mode if i == 0 else mode_at(data, priors, fit_solver, samples, group)
            runs.append(
                _Run(found, take(samples, group), take(stats, group), run_solver, run_priors)
            )
    # Modes of the fit that no chains sampled (before the correction re-weighs the others).
    unsampled = [m for m in modes if all(m is not r.mode for r in runs)]
    corrections, kept = [], []  # kept: the thinned draws that each correction solved
    if correct:
        exact = ExactSolver()
        for run in runs:
            kept.append(thinned(run.samples, correction_draws))
            c = correct_draws(
                data,
                run.priors,
                kept[-1],
                run.solver,
                exact,
                marginal=marginal,
                model_error=model_error,
                min_ess=min_ess,
                rng=rng,
                scheduler=scheduler,
            )
            if local:  # a truncation by the local region, which PSIS cannot see
                c = dataclasses.replace(c, edge=region_edge(kept[-1], run.priors, priors))
            corrections.append(c)
            if not local:  # the surrogate's evidence, made exact (local modes: already exact)
                run.mode = dataclasses.replace(
                    run.mode, log_evidence=run.mode.log_evidence + c.log_evidence_ratio
                )
    # Chains that left their start for another mode are a mode of their own: weigh every
    # mode (sampled or not) by its Laplace evidence again.
    weighted = renormalised([r.mode for r in runs] + unsampled)
    for run, m in zip(runs, weighted, strict=False):
        run.mode = m
    order = sorted(range(len(runs)), key=lambda i: -runs[i].mode.probability)
    runs = [runs[i] for i in order]
    corrections = [corrections[i] for i in order] if corrections else []
    kept = [kept[i] for i in order] if kept else []
    modes = [r.mode for r in runs] + sorted(weighted[len(runs) :], key=lambda m: -m.probability)
    dt = None
    for k, run in enumerate(runs):
        groups = {"posterior": run.samples, "sample_stats": run.stats}
        if corrections:
            groups["posterior"] = resample(kept[k], corrections[k], marginal, n_obs, rng)
            groups["posterior_surrogate"] = run.samples
        tree = az.from_dict(groups)
        suffix = "" if k == 0 else f"_mode{k}"
        if corrections:
            tree["correction"] = correction_dataset(corrections[k], "ExactSolver")
            if local:
                tree["correction"].attrs["local_surrogate"] = run.solver.info
        if dt is None:
            dt, first = tree, groups["posterior"]
        else:
            for name in tree.children:
                dt[name + suffix] = tree[name]
    dt["posterior_predictive"] = _predictive(
        data,
        priors,
        ExactSolver() if corrections else runs[0].solver,
        first,
        predictive_draws,
        None if corrections else model_error,
        rng,
    )
    observed = {"mx": data.mx, "my": data.my} | ({} if data.iz1 is None else {"iz1": data.iz1})
    dt["observed_data"] = xr.Dataset(
        {k: ("time", np.asarray(v)) for k, v in observed.items()},
        coords={"time": data.grid.times},
    )
    dt["modes"] = modes_dataset(modes, len(runs))
    dt.attrs["n_spins"] = int(data.n_spins)
    dt.attrs["chain_method"] = chain_method
    dt.attrs["solver"] = "local" if local else type(runs[0].solver or ExactSolver()).__name__
    dt.attrs["corrected"] = int(bool(corrections) and all(c.ok for c in corrections))
    dt.attrs["correction_problem"] = "; ".join(
        f"mode {k}: {c.problem()}" if len(corrections) > 1 else c.problem()
        for k, c in enumerate(corrections)
        if not c.ok
    )
    if data.truth:
        dt.attrs["true_offsets_hz"] = np.asarray(data.truth["offsets_hz"], float)
        dt.attrs["true_j_hz"] = np.atleast_1d(np.asarray(data.truth["j_hz"], float))
        dt.attrs["true_sigma"] = float(data.truth["sigma"])
    return dt, modes
