"""NUTS posteriors as ArviZ DataTrees: started at the global fit, one mode at a time."""

import dataclasses
import os
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .._io import atomic_path
from .._physics._exact import ExactSolver
from .._physics._simulate import simulate_batch
from .._physics._solver import AbstractSolver
from .._surrogate._local import region_box, train_local_surrogate
from ._correct import correct as correct_draws
from ._correct import dataset as correction_dataset
from ._correct import resample
from ._data import Dataset
from ._descent import Space
from ._diagnose import ConvergenceWarning
from ._fit import fit
from ._model import Priors, check_model_error
from ._modes import Mode, laplace_modes
from ._sampler import prepare, to_unconstrained


def sample_posterior(
    data: Dataset,
    priors: Priors | None = None,
    *,
    solver: AbstractSolver | None = None,
    chains: int = 4,
    warmup: int = 1000,
    draws: int = 1000,
    seed: int = 0,
    chain_method: str = "auto",
    progress_bar: bool = True,
    init: dict | None = None,
    predictive_draws: int = 200,
    target_accept: float = 0.9,
    marginal_sigma: bool = True,
    model_error=None,
    min_mode_probability: float = 0.01,
    correct: bool | None = None,
    min_ess: float = 100.0,
    correction_draws: int = 1000,
    fallback: bool = True,
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
      offsets anywhere in the spectral window, J in [0, 25] Hz).
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
      so thinning loses little).
    - `fallback`: when a correction fails (the surrogate's posterior does not overlap
      the exact one), sample again with a problem-local surrogate (when the failed one
      was not), or with the exact solver (at N <= 8, where that takes minutes); when
      nothing is left to fall back on, or with `fallback=False`, the result comes with a
      `ConvergenceWarning` that says what failed and what to do.
    - `chains`, `warmup`, `draws`, `seed`: the usual.
    - `chain_method`: `"sequential"`, `"vectorized"` or `"parallel"` (one chain per JAX
      device), or `"auto"`: `"parallel"` when there are at least `chains` devices, else
      `"vectorized"`. On a CPU, JAX shows one device unless told otherwise: call
      `bn.use_cpu_cores()` at the start of the program, before JAX computes anything.
    - `init`: where to start instead of a new global fit: a `FitResult` (its modes), or a
      dict of `offsets_hz` and `j_hz` (one mode, started there).
    - `predictive_draws`: posterior draws used for the posterior predictive.
    - `marginal_sigma`: integrate the noise $\\sigma$ out analytically (Jeffreys prior,
      see `chain_model`) and draw it afterwards from its exact conditional
      $\\mathrm{InvGamma}(n/2, \\mathrm{RSS}/2)$, one per draw. `False` samples it under
      the half-normal prior of `priors`.
    - `model_error`: the forward model's error as a noise level, shape `(3, T)`, from
      `bn.surrogate_error` (see `chain_model`); then $\\sigma$ is sampled.

    The sampler is compiled once per structure (grid, free parameters, solver type, chain
    settings) and reused by later calls, whatever the data and boxes.

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
        chains=chains,
        warmup=warmup,
        draws=draws,
        seed=seed,
        chain_method=chain_method,
        progress_bar=progress_bar,
        predictive_draws=predictive_draws,
        target_accept=target_accept,
        marginal_sigma=marginal_sigma,
        model_error=model_error,
        min_mode_probability=min_mode_probability,
        min_ess=min_ess,
        correction_draws=correction_draws,
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
    chains,
    warmup,
    draws,
    seed,
    chain_method,
    progress_bar,
    init,
    predictive_draws,
    target_accept,
    marginal_sigma,
    model_error,
    min_mode_probability,
    correct,
    min_ess,
    correction_draws,
):
    import arviz as az
    import xarray as xr

    priors = Priors.from_data(data) if priors is None else priors
    if chain_method not in ("auto", "sequential", "vectorized", "parallel"):
        raise ValueError(
            "Argument `chain_method` must be 'auto', 'sequential', 'vectorized' or "
            f"'parallel', got {chain_method!r}."
        )
    for name, value in (("chains", chains), ("warmup", warmup), ("draws", draws)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"Argument `{name}` must be a positive int, got {value!r}.")
    if priors.n_spins != data.n_spins:
        raise ValueError(
            f"The priors are for {priors.n_spins} spins but the data for {data.n_spins}."
        )
    priors.check_domain(solver)
    model_error = check_model_error(model_error, data.grid)
    if chain_method == "auto":
        chain_method = "parallel" if jax.local_device_count() >= chains > 1 else "vectorized"
    if chain_method == "parallel" and jax.local_device_count() < chains:
        raise ValueError(
            f"chain_method='parallel' needs {chains} devices, JAX has "
            f"{jax.local_device_count()}; call `bn.use_cpu_cores()` first or use 'vectorized'."
        )
    marginal = marginal_sigma and "sigma" not in priors.fixed and model_error is None
    local = isinstance(solver, str)
    fit_solver = None if local else solver  # the local workflow fits with the exact solver
    modes = _start_modes(data, priors, fit_solver, init, seed, None if progress_bar else False)
    sampled = [m for m in modes if m.probability >= min_mode_probability] or modes[:1]
    arrays = tuple(None if a is None else jnp.asarray(a) for a in (data.mx, data.my, data.iz1))
    rng = np.random.default_rng(seed)
    n_obs = data.grid.n * (2 if data.iz1 is None else 3)
    runs = []  # [mode, draws, stats, solver, priors], one per group of chains that agree
    for k, mode in enumerate(sampled):
        run_solver, run_priors = solver, priors
        if local:
            run_solver = train_local_surrogate(
                local_region(mode, priors), data.grid, seed=seed, progress_bar=progress_bar
            )
            run_priors = _restricted(priors, run_solver.domain)
        sampler, args = prepare(
            data.grid,
            run_priors,
            run_solver,
            arrays,
            marginal_sigma=marginal,
            model_error=model_error,
            chains=chains,
            warmup=warmup,
            draws=draws,
            chain_method=chain_method,
            target_accept=target_accept,
        )
        z0, inverse_mass = _chain_starts(run_priors, mode, chains, marginal, rng)
        samples, stats = sampler.run(
            jax.random.PRNGKey(seed + 7919 * k),
            args,
            z0,
            inverse_mass,
            progress=progress_bar,
            desc=f"NUTS mode {k}" if len(sampled) > 1 else "NUTS",
        )
        if marginal:
            rss = samples.pop("rss")
            samples["sigma"] = np.sqrt(rss / (2 * rng.gamma(n_obs / 2, 1.0, size=rss.shape)))
        clusters = chain_clusters(samples)
        for i, group in enumerate(clusters):
            found = mode if i == 0 else _mode_at(data, priors, fit_solver, samples, group)
            runs.append([found, _take(samples, group), _take(stats, group), run_solver, run_priors])
    # Modes of the fit that no chains sampled (before the correction re-weighs the others).
    unsampled = [m for m in modes if all(m is not r[0] for r in runs)]
    corrections = []
    if correct:
        exact = ExactSolver()
        for run in runs:
            run.append(_thinned(run[1], correction_draws))
            c = correct_draws(
                data,
                run[4],
                run[5],
                run[3],
                exact,
                marginal=marginal,
                model_error=model_error,
                min_ess=min_ess,
                rng=rng,
            )
            corrections.append(c)
            if not local:  # the surrogate's evidence, made exact (local modes: already exact)
                run[0] = dataclasses.replace(
                    run[0], log_evidence=run[0].log_evidence + c.log_evidence_ratio
                )
    # Chains that left their start for another mode are a mode of their own: weigh every
    # mode (sampled or not) by its Laplace evidence again.
    weighted = _renormalised([r[0] for r in runs] + unsampled)
    for run, m in zip(runs, weighted, strict=False):
        run[0] = m
    order = sorted(range(len(runs)), key=lambda i: -runs[i][0].probability)
    runs = [runs[i] for i in order]
    corrections = [corrections[i] for i in order] if corrections else []
    modes = [r[0] for r in runs] + sorted(weighted[len(runs) :], key=lambda m: -m.probability)
    dt = None
    for k, (_, samples, stats, *rest) in enumerate(runs):
        groups = {"posterior": samples, "sample_stats": stats}
        if corrections:
            c = corrections[k]
            groups["posterior"] = resample(rest[2], c, marginal, n_obs, rng)
            groups["posterior_surrogate"] = samples
        tree = az.from_dict(groups)
        suffix = "" if k == 0 else f"_mode{k}"
        if corrections:
            tree["correction"] = correction_dataset(corrections[k], "ExactSolver")
            if local:
                tree["correction"].attrs["local_surrogate"] = runs[k][3].info
        if dt is None:
            dt, thinned = tree, groups["posterior"]
        else:
            for name in tree.children:
                dt[name + suffix] = tree[name]
    dt["posterior_predictive"] = _predictive(
        data,
        priors,
        ExactSolver() if corrections else runs[0][3],
        thinned,
        predictive_draws,
        None if corrections else model_error,
        rng,
    )
    observed = {"mx": data.mx, "my": data.my} | ({} if data.iz1 is None else {"iz1": data.iz1})
    dt["observed_data"] = xr.Dataset(
        {k: ("time", np.asarray(v)) for k, v in observed.items()},
        coords={"time": data.grid.times},
    )
    dt["modes"] = _modes_dataset(modes, len(runs))
    dt.attrs["n_spins"] = int(data.n_spins)
    dt.attrs["chain_method"] = chain_method
    dt.attrs["solver"] = "local" if local else type(runs[0][3] or ExactSolver()).__name__
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


def local_region(mode: Mode, priors: Priors, widen: float = 10.0):
    """The region of a problem-local surrogate: `widen` Laplace sds around `mode` in every
    free parameter (inside the prior boxes), the fixed ones at their values."""
    from .._surrogate._domain import Domain

    space = Space(priors)
    n = priors.n_spins
    x = np.r_[
        mode.offsets_hz if space.free_offsets else [],
        np.atleast_1d(mode.j_hz)[:1] if space.free_j else [],
    ]
    lo, hi = region_box(x, mode.stderr[: x.size], widen, (space.lo[: x.size], space.hi[: x.size]))
    if space.free_offsets:
        lo_o, hi_o, lo, hi = lo[:n], hi[:n], lo[n:], hi[n:]
    else:
        off = np.asarray(priors.fixed["offsets_hz"], float)
        lo_o, hi_o = off - 1e-6, off + 1e-6
    if space.free_j:
        box_j = (float(lo[0]), float(hi[0]))
    else:
        j = float(np.asarray(priors.fixed["j_hz"]))
        box_j = (j - 1e-6, j + 1e-6)
    return Domain(n, np.stack([lo_o, hi_o], -1), box_j)


def _restricted(priors: Priors, domain) -> Priors:
    """`priors` with every free box cut down to `domain`."""
    box = domain.offset_boxes
    return dataclasses.replace(priors, offsets_hz=box, j_hz=np.asarray(domain.j_hz, float))


def _thinned(samples: dict, at_most: int) -> dict:
    """Every chain's draws evenly thinned, to at most `at_most` draws in all."""
    chains, draws = np.shape(next(iter(samples.values())))[:2]
    per_chain = max(1, min(draws, at_most // chains))
    keep = np.linspace(0, draws - 1, per_chain).round().astype(int)
    return {k: np.asarray(v)[:, keep] for k, v in samples.items()}


def chain_clusters(samples: dict, threshold: float = 5.0) -> list[list[int]]:
    """Groups of chains that sample the same mode, largest first.

    Two chains agree when every free parameter's mean differs by less than `threshold`
    pooled within-chain sds (chains of one mode differ by ~sd/sqrt(ESS); chains in two
    modes of these posteriors, by hundreds of sds).
    """
    x = np.concatenate(
        [
            np.asarray(samples[k]).reshape(*np.shape(samples[k])[:2], -1)
            for k in ("offsets_hz", "j_hz")
            if k in samples
        ],
        axis=-1,
    )
    means, sds = x.mean(1), x.std(1)
    pooled = np.sqrt(np.mean(sds**2, axis=0)) + 1e-12
    clusters: list[list[int]] = []
    for c in range(x.shape[0]):
        for group in clusters:
            if np.all(np.abs(means[c] - means[group[0]]) < threshold * pooled):
                group.append(c)
                break
        else:
            clusters.append([c])
    return sorted(clusters, key=len, reverse=True)


def _take(tree: dict, chains: list[int]) -> dict:
    return {k: np.asarray(v)[chains] for k, v in tree.items()}


def _mode_at(data, priors, solver, samples, chains) -> Mode:
    """The mode that chains `chains` found: refined from their mean, Laplace there."""
    start = {
        k: np.asarray(samples[k])[chains].mean((0, 1))
        for k in ("offsets_hz", "j_hz")
        if k in samples
    }
    start.setdefault("j_hz", np.asarray(priors.j_hz).reshape(-1, 2).mean(1))
    start.setdefault("offsets_hz", np.zeros(priors.n_spins))
    return fit(data, priors, solver=solver, init=start, n_starts=1, broadening=()).modes[0]


def _renormalised(modes: list[Mode]) -> list[Mode]:
    import dataclasses

    log_z = np.array([m.log_evidence for m in modes])
    p = np.exp(log_z - log_z.max())
    p /= p.sum()
    return [dataclasses.replace(m, probability=float(q)) for m, q in zip(modes, p, strict=True)]


def _start_modes(data, priors, solver, init, seed, progress_bar=False) -> list[Mode]:
    """The modes to start from: the global fit's, or one at `init` (Laplace there)."""
    if init is None:
        return list(fit(data, priors, solver=solver, seed=seed, progress_bar=progress_bar).modes)
    if isinstance(init, list | tuple):  # modes
        return list(init)
    if not isinstance(init, dict):  # a FitResult: its modes
        if init.modes:
            return list(init.modes)
        init = {"offsets_hz": init.offsets_hz, "j_hz": init.j_hz}
    space = Space(priors)
    x = []
    if space.free_offsets:
        x.append(np.asarray(init["offsets_hz"], float).reshape(-1))
    if space.free_j:
        x.append(np.atleast_1d(np.asarray(init["j_hz"], float)).reshape(-1))
    x = space.clip(np.concatenate(x))[None]
    from ._descent import loss_hz

    loss = float(loss_hz(space.plan(data, 1, ()), space.consts(data), solver, None, x[0]))
    return laplace_modes(data, space, solver, x, np.array([loss]))


def _chain_starts(priors, mode: Mode, chains, marginal, rng):
    """Chain starts spread by one Laplace sd, and the Laplace covariance as the inverse
    mass matrix, both in NUTS's unconstrained coordinates (sites in sorted order)."""
    values = {"offsets_hz": mode.offsets_hz, "j_hz": mode.j_hz, "sigma": 0.0}
    centre = to_unconstrained(priors, values, marginal_sigma=True)
    # Jacobian of x -> z for each free parameter, in `names` order (offsets, then J).
    space = Space(priors)
    x = np.r_[
        mode.offsets_hz if space.free_offsets else [],
        np.atleast_1d(mode.j_hz) if space.free_j else [],
    ]
    jac = (space.hi - space.lo) / ((x - space.lo) * (space.hi - x))
    cov_z = mode.covariance * np.outer(jac, jac)
    n_off = priors.n_spins if space.free_offsets else 0
    # NUTS flattens its sites in sorted order: j_hz before offsets_hz.
    perm = np.r_[np.arange(n_off, len(x)), np.arange(n_off)]
    cov_sorted = cov_z[np.ix_(perm, perm)]
    flat = np.concatenate([np.atleast_1d(np.asarray(centre[k])) for k in sorted(centre)])
    jitter = rng.multivariate_normal(np.zeros(len(x)), cov_sorted, size=chains)
    starts = flat[None] + jitter
    z0, i = {}, 0
    for k in sorted(centre):
        size = np.atleast_1d(np.asarray(centre[k])).size
        z0[k] = jnp.asarray(starts[:, i : i + size].reshape((chains, *np.shape(centre[k]))))
        i += size
    inverse_mass = jnp.asarray(cov_sorted)
    if not marginal and "sigma" not in priors.fixed:  # sigma sampled: log-scale, sd ~ 1/sqrt(n)
        z0["sigma"] = jnp.full((chains,), np.log(max(np.sqrt(2 * mode.loss / (2 * len(x))), 1e-6)))
        inverse_mass = None
    return z0, inverse_mass


def _predictive(data, priors, solver, samples, n_draws, model_error, rng):
    """Posterior-predictive traces: the forward model at thinned draws, plus noise."""
    import xarray as xr

    flat = {k: np.asarray(v).reshape(-1, *np.shape(v)[2:]) for k, v in samples.items()}
    total = flat["sigma"].shape[0] if "sigma" in flat else next(iter(flat.values())).shape[0]
    keep = np.linspace(0, total - 1, min(n_draws, total)).astype(int)
    f = priors.fixed
    offsets = (
        flat["offsets_hz"][keep]
        if "offsets_hz" in flat
        else np.tile(f["offsets_hz"], (len(keep), 1))
    )
    if "j_hz" in flat:
        j = flat["j_hz"][keep]
    else:
        j = np.broadcast_to(np.asarray(f["j_hz"], float), (len(keep), *np.shape(f["j_hz"])))
    sigma = flat["sigma"][keep] if "sigma" in flat else np.full(len(keep), float(f["sigma"]))
    tr = simulate_batch(jnp.asarray(offsets, float), jnp.asarray(j, float), data.grid, solver)
    out = {}
    names = ("mx", "my") + (("iz1",) if data.iz1 is not None else ())
    for i, name in enumerate(names):
        sd = (
            sigma[:, None]
            if model_error is None
            else np.sqrt(sigma[:, None] ** 2 + np.asarray(model_error[i]) ** 2)
        )
        noisy = np.asarray(getattr(tr, name)) + sd * rng.normal(size=(len(keep), data.grid.n))
        out[name] = (("chain", "draw", "time"), noisy[None])
    return xr.Dataset(out, coords={"time": data.grid.times})


def _modes_dataset(modes: list[Mode], n_sampled: int):
    import xarray as xr

    j = np.array([np.atleast_1d(m.j_hz) for m in modes])
    return xr.Dataset(
        {
            "probability": ("mode", [m.probability for m in modes]),
            "log_evidence": ("mode", [m.log_evidence for m in modes]),
            "loss": ("mode", [m.loss for m in modes]),
            "sampled": ("mode", [k < n_sampled for k in range(len(modes))]),
            "offsets_hz": (("mode", "spin"), np.array([m.offsets_hz for m in modes])),
            "j_hz": (("mode", "bond"), j),
        },
        coords={"mode": np.arange(len(modes))},
    )


def use_cpu_cores(n: int | None = None) -> int:
    """Let NUTS run chains in parallel on `n` CPU cores (default: every core, at least 4).

    JAX shows a CPU as one device; this asks XLA for `n` host devices, so that
    `sample_posterior(chain_method="auto")` runs one chain per device. Call it at the
    start of a program, before JAX computes anything; afterwards it has no effect
    (the device count is fixed when JAX starts). It does nothing on a GPU.

    **Returns:** `n`.
    """
    import numpyro

    n = max(os.cpu_count() or 1, 4) if n is None else int(n)
    if n < 1:
        raise ValueError(f"Argument `n` must be a positive int, got {n!r}.")
    numpyro.set_host_device_count(n)
    return n


def save_posterior(dt, path: str | os.PathLike) -> Path:
    """Write a posterior DataTree to NetCDF, atomically."""
    with atomic_path(path) as tmp:
        dt.to_netcdf(tmp, engine="h5netcdf")
    return Path(path)


def load_posterior(path: str | os.PathLike):
    """Read a posterior written by `save_posterior`, with a clear error if it cannot."""
    import xarray as xr

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No posterior file at {str(path)!r}.")
    try:
        return xr.open_datatree(path, engine="h5netcdf").load()
    except Exception as err:
        raise ValueError(f"Cannot read {str(path)!r} as a posterior NetCDF: {err}") from None
