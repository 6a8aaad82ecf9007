"""NUTS over a network's free shifts and couplings: the NumPyro model, the sampler and the
posterior DataTree of `sample_posterior(data, spec)`."""

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from .._physics._simulate import simulate
from ._network import fit_network
from ._network_space import NetworkSpace, check_network_data
from ._sampler import Sampler, laplace_z, sampler_for


def network_model(space: NetworkSpace, grid, solver, sigma, mx, my, iz1=None):
    r"""Uniform boxes on the free shifts and couplings; a Gaussian likelihood of known
    `sigma`, or (`sigma=None`) $\sigma$ integrated out under the Jeffreys prior (the
    likelihood $\mathrm{RSS}^{-n/2}$, with `rss` recorded), as `chain_model` does. The
    observations are arguments, so one compiled sampler serves any data."""
    from ._network_local import LocalNet

    obs = [mx, my] + ([] if iz1 is None else [iz1])
    k = space.n_offsets
    local = isinstance(solver, LocalNet)
    lo, hi = (solver.lower, solver.upper) if local else (space.lo, space.hi)
    parts = []
    if k:
        parts.append(numpyro.sample("offsets_hz", dist.Uniform(lo[:k], hi[:k]).to_event(1)))
    if space.lo.size > k:
        parts.append(numpyro.sample("j_hz", dist.Uniform(lo[k:], hi[k:]).to_event(1)))
    x = jnp.concatenate(parts)
    if local:  # the problem-local surrogate: the traces straight from the free parameters
        out = solver.net(x)
        sims = [out[0], out[1]] + ([] if iz1 is None else [out[2]])
    else:
        tr = simulate(space.system(x), grid, solver)
        sims = [tr.mx, tr.my] + ([] if iz1 is None else [tr.iz1])
    rss = sum(jnp.sum((a - b) ** 2) for a, b in zip(sims, obs, strict=True))
    if sigma is None:
        numpyro.deterministic("rss", rss)
        numpyro.factor("likelihood", -0.5 * len(obs) * grid.n * jnp.log(rss))
    else:
        numpyro.factor("likelihood", -0.5 * rss / sigma**2)


def network_sampler(space: NetworkSpace, grid, solver, sigma, sampler, observe_iz1: bool, method):
    """The compiled NUTS (`_sampler.Sampler`) of a network's posterior, with `sampler`'s
    settings run by `method` (a resolved chain method), its observations as arguments:
    cached per structure for the default exact solver (`solver=None`), built anew for
    any other (a local surrogate's weights are constants of its program)."""

    def model(mx, my, iz1=None):
        network_model(space, grid, solver, sigma, mx, my, iz1)

    t2 = space.spec.system.t2_s
    key = _NetworkKey(
        tuple(space.names), tuple(space.lo), tuple(space.hi), tuple(space.base_offsets),
        tuple(map(tuple, space.fixed_j)), tuple(np.asarray(space.masks, float).ravel()),
        None if t2 is None else float(t2), space.spec.system.iz_spin, grid, sigma,
        observe_iz1, sampler.chains, sampler.warmup,
        sampler.draws, method, float(sampler.target_accept),
    )  # fmt: skip
    example = (jnp.zeros(grid.n), jnp.zeros(grid.n)) + ((jnp.zeros(grid.n),) if observe_iz1 else ())
    if solver is None:
        return sampler_for(key, None, example, model=model)
    return Sampler(key, None, example, model)


def network_starts(space: NetworkSpace, x, cov, lo, hi, chains: int, rng):
    """Chain starts around `x` (Hz) spread by the covariance `cov`, and `cov` as the
    inverse mass matrix, both in NUTS's unconstrained coordinates of the boxes
    `[lo, hi]` (sites in sorted order: j_hz, then offsets_hz)."""
    k = space.n_offsets
    perm = np.r_[np.arange(k, space.lo.size), np.arange(k)]  # sorted sites: j_hz first
    centre, cov_z = laplace_z(x, cov, lo, hi)
    cov_z = cov_z[np.ix_(perm, perm)]
    starts = centre[perm][None] + rng.multivariate_normal(np.zeros(perm.size), cov_z, chains)
    z0 = {}
    if k < space.lo.size:
        z0["j_hz"] = jnp.asarray(starts[:, : space.lo.size - k])
    if k:
        z0["offsets_hz"] = jnp.asarray(starts[:, space.lo.size - k :])
    return z0, jnp.asarray(cov_z)


@dataclasses.dataclass(frozen=True)
class _NetworkKey:
    """What a network's compiled sampler depends on (the cache's key)."""

    names: tuple
    lo: tuple
    hi: tuple
    base_offsets: tuple
    fixed_j: tuple
    masks: tuple  # which couplings each free one sets (tied couplings share one)
    t2_s: float | None
    iz_spin: int
    grid: object
    sigma: float | None
    observe_iz1: bool
    chains: int
    warmup: int
    draws: int
    chain_method: str
    target_accept: float


def _observed(data):
    return (jnp.asarray(data.mx), jnp.asarray(data.my)) + (
        () if data.iz1 is None else (jnp.asarray(data.iz1),)
    )


def _predictive(space, data, solver, samples, n_draws, rng):
    """Posterior-predictive traces: the forward model at thinned draws, plus noise."""
    import xarray as xr

    parts = [
        samples[k].reshape(-1, samples[k].shape[-1]) for k in ("offsets_hz", "j_hz") if k in samples
    ]
    x = np.concatenate(parts, axis=1)
    keep = np.linspace(0, len(x) - 1, min(n_draws, len(x))).astype(int)
    sigma = samples["sigma"].reshape(-1)[keep]
    tr = jax.jit(jax.vmap(lambda v: simulate(space.system(v), data.grid, solver)))(
        jnp.asarray(x[keep])
    )
    names = ("mx", "my") + (("iz1",) if data.iz1 is not None else ())
    out = {}
    for name in names:
        noisy = np.asarray(getattr(tr, name)) + sigma[:, None] * rng.normal(
            size=(keep.size, data.grid.n)
        )
        out[name] = (("chain", "draw", "time"), noisy[None])
    return xr.Dataset(out, coords={"time": data.grid.times})


def sample_network(data, spec, *, solver, sampler, seed, progress_bar, init,
                   min_mode_probability=0.01, predictive_draws=200, correction_draws=1000,
                   min_ess=100.0, fallback=True):  # fmt: skip
    """NUTS over the free parameters of `spec`, from the global fit's modes (or `init`: a
    `FitResult` of `fit(data, spec)`): every mode with a Laplace probability of at least
    `min_mode_probability` is sampled with its own chains, started at the mode spread by
    its Laplace sds, and reported apart (`posterior`: the most probable; `posterior_mode1`,
    ...); $\\sigma$ is drawn afterwards from its exact conditional. The `modes` group lists
    every mode found, with `sampled`.

    `solver="local"`: around each mode a problem-local surrogate (`local_net`); its draws
    (at most `correction_draws` per mode) solved exactly and reweighed (PSIS); where that
    fails (`fallback`), the mode is sampled again with the exact solver."""
    import warnings

    import arviz as az
    import xarray as xr

    from ._correct import dataset as correction_dataset
    from ._correct import resample, thinned
    from ._diagnose import ConvergenceWarning
    from ._network_local import correct_network, local_net

    local = isinstance(solver, str)
    exact = None if local else solver
    if local and spec.system.t2_s is not None:
        raise ValueError(
            "The problem-local surrogate has no relaxation, and this spin system has `t2_s`: "
            "sample it with the exact solver (leave `solver` at its default)."
        )
    space = NetworkSpace(spec)
    check_network_data(data, space, exact)
    if init is None:
        fit = fit_network(data, spec, solver=exact, seed=seed, progress_bar=progress_bar)
    else:
        fit = init
    modes = list(fit.modes) or [_mode_of(fit)]
    sampled = [m for m in modes if m.probability >= min_mode_probability] or modes[:1]
    rng = np.random.default_rng(seed)
    n_obs = data.grid.n * (2 if data.iz1 is None else 3)
    dt, seconds, first, problems, fell_back = None, 0.0, None, [], []

    def run(k, mode, run_solver):
        lo, hi = (space.lo, space.hi) if run_solver is exact else (
            np.asarray(run_solver.lower), np.asarray(run_solver.upper))  # fmt: skip
        x0 = np.clip(space.free(mode.offsets_hz, mode.j_hz), lo, hi)
        cov = mode.covariance
        if cov is None:
            cov = np.diag((0.01 * (hi - lo)) ** 2)
        # The shared compiled NUTS (`_sampler`), started at the mode spread by its Laplace
        # covariance, which is also the first mass matrix.
        compiled = network_sampler(
            space, data.grid, run_solver, None, sampler, data.iz1 is not None,
            sampler.resolved_chain_method(),
        )  # fmt: skip
        z0, inverse_mass = network_starts(space, x0, cov, lo, hi, sampler.chains, rng)
        t0 = time.perf_counter()
        samples, stats = compiled.run(
            jax.random.PRNGKey(seed + 7919 * k), _observed(data), z0, inverse_mass,
            progress_bar=progress_bar, desc=f"NUTS mode {k}" if len(sampled) > 1 else "NUTS",
        )  # fmt: skip
        return samples, stats, time.perf_counter() - t0

    def with_sigma(samples):
        out = {n: v for n, v in samples.items() if n != "rss"}
        rss = samples["rss"]
        out["sigma"] = np.sqrt(rss / (2 * rng.gamma(n_obs / 2, size=rss.shape)))
        return out

    dims = {"offsets_hz": ["spin"], "j_hz": ["coupling"]}
    coords = {"spin": space.offset_names, "coupling": space.coupling_names}
    corrected = []
    for k, mode in enumerate(sampled):
        groups, extra_groups = {}, {}
        if local:
            net = local_net(space, mode, data.grid, seed=seed, progress_bar=progress_bar)
            samples, stats, dt_s = run(k, mode, net)
            kept = thinned(samples, correction_draws)
            c = correct_network(data, space, net, kept, min_ess=min_ess, rng=rng)
            extra_groups["correction"] = correction_dataset(c, "ExactSolver")
            extra_groups["correction"].attrs["local_surrogate"] = net.info
            if c.ok:
                groups["posterior"] = resample(kept, c, True, n_obs, rng)
                del groups["posterior"]["rss"]  # the surrogate's; sigma is from the exact one
                groups["posterior_surrogate"] = with_sigma(samples)
                corrected.append(True)
            else:
                problems.append(f"mode {k}: {c.problem()}" if len(sampled) > 1 else c.problem())
                if fallback:
                    fell_back.append(k)
                    samples, stats, more = run(k, mode, exact)
                    dt_s += more
                    groups["posterior"] = with_sigma(samples)
                else:
                    groups["posterior"] = with_sigma(samples)
                    groups["posterior_surrogate"] = with_sigma(samples)
                corrected.append(False)
        else:
            samples, stats, dt_s = run(k, mode, exact)
            groups["posterior"] = with_sigma(samples)
        seconds += dt_s
        groups["sample_stats"] = stats
        tree = az.from_dict(
            groups,
            dims={n: v for n, v in dims.items() if n in groups["posterior"]},
            coords={n: v for n, v in coords.items() if v},
        )
        for name, group in extra_groups.items():
            tree[name] = group
        if dt is None:
            dt, first = tree, groups["posterior"]
        else:
            for name in tree.children:
                dt[f"{name}_mode{k}"] = tree[name]
    dt["posterior_predictive"] = _predictive(space, data, exact, first, predictive_draws, rng)
    observed = {"mx": data.mx, "my": data.my} | ({} if data.iz1 is None else {"iz1": data.iz1})
    dt["observed_data"] = xr.Dataset(
        {name: ("time", np.asarray(v)) for name, v in observed.items()},
        coords={"time": data.grid.times},
    )
    dt["modes"] = _modes_dataset(space, modes, len(sampled))
    dt.attrs.update(
        {
            "model": "network",
            "names": list(spec.names),
            "sampling_seconds": seconds,
            "fit_offsets_hz": np.asarray(fit.offsets_hz).tolist(),
            "solver": "local" if local else type(exact).__name__ if exact else "ExactSolver",
        }
    )
    if local:
        dt.attrs["corrected"] = int(all(corrected))
        dt.attrs["correction_problem"] = "; ".join(problems)
        if fell_back:
            dt.attrs["fallback"] = "exact"
        if problems:
            what = (
                "sampled again with the exact solver"
                if fell_back
                else "these draws are the local surrogate's, not the exact posterior"
            )
            warnings.warn(
                f"The exact correction of the local surrogate's posterior failed "
                f"({'; '.join(problems)}): {what}.",
                ConvergenceWarning,
                stacklevel=3,
            )
    return dt


def _mode_of(fit):
    """A fit without `modes` (`laplace=False`) as one mode."""
    from ._modes import Mode

    return Mode(fit.offsets_hz, fit.j_hz, fit.loss, 0.0, 1.0, fit.names, fit.covariance)


def _modes_dataset(space: NetworkSpace, modes, n_sampled: int):
    """Every mode: probability, log evidence, misfit, whether sampled, and its free
    parameters (`offsets_hz` over `spin`, `j_hz` over `coupling`)."""
    import xarray as xr

    x = np.array([space.free(m.offsets_hz, m.j_hz) for m in modes])
    k = space.n_offsets
    out = {
        "probability": ("mode", [m.probability for m in modes]),
        "log_evidence": ("mode", [m.log_evidence for m in modes]),
        "loss": ("mode", [m.loss for m in modes]),
        "sampled": ("mode", [i < n_sampled for i in range(len(modes))]),
    }
    coords = {"mode": np.arange(len(modes))}
    if k:
        out["offsets_hz"] = (("mode", "spin"), x[:, :k])
        coords["spin"] = space.offset_names
    if x.shape[1] > k:
        out["j_hz"] = (("mode", "coupling"), x[:, k:])
        coords["coupling"] = space.coupling_names
    return xr.Dataset(out, coords=coords)
