"""NUTS over a network's free shifts and couplings: the NumPyro model, the sampler and the
posterior DataTree of `sample_posterior(data, spec)`."""

import time

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from .._physics._simulate import simulate
from ._network import fit_network
from ._network_space import NetworkSpace, check_network_data


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


def _network_mcmc(space, grid, solver, sigma, sampler, progress_bar):
    """NumPyro's NUTS on `network_model` (dense mass matrix)."""
    import functools

    from numpyro.infer import MCMC
    from numpyro.infer import NUTS as NumpyroNUTS

    model = functools.partial(network_model, space, grid, solver, sigma)
    kernel = NumpyroNUTS(model, dense_mass=True, target_accept_prob=sampler.target_accept)
    return MCMC(
        kernel,
        num_warmup=sampler.warmup,
        num_samples=sampler.draws,
        num_chains=sampler.chains,
        # NumPyro's MCMC has no threads: its chains on one device run vectorized.
        chain_method=sampler.resolved_chain_method().replace("threads", "vectorized"),
        progress_bar=progress_bar,
    )


def _init_params(space, starts, lo=None, hi=None):
    """Chain starts `(chains, P)` in Hz as NumPyro's unconstrained init_params, for the
    boxes `[lo, hi]` (default: the spec's)."""
    from numpyro.distributions.transforms import biject_to

    lo = space.lo if lo is None else np.asarray(lo)
    hi = space.hi if hi is None else np.asarray(hi)
    k = space.n_offsets
    out = {}
    if k:
        t = biject_to(dist.constraints.interval(lo[:k], hi[:k]))
        out["offsets_hz"] = t.inv(jnp.asarray(starts[:, :k]))
    if space.lo.size > k:
        t = biject_to(dist.constraints.interval(lo[k:], hi[k:]))
        out["j_hz"] = t.inv(jnp.asarray(starts[:, k:]))
    if len(starts) == 1:  # NumPyro wants one chain's start without the chain axis
        out = {name: v[0] for name, v in out.items()}
    return out


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
        sd = np.sqrt(np.diag(mode.covariance)) if mode.covariance is not None else None
        sd = 0.01 * (hi - lo) if sd is None else sd
        eps = 1e-6 * (hi - lo)
        starts = np.clip(x0 + rng.normal(size=(sampler.chains, x0.size)) * sd, lo + eps, hi - eps)
        # A new MCMC per mode: NumPyro's MCMC refuses a second `run` with new init_params.
        mcmc = _network_mcmc(space, data.grid, run_solver, None, sampler, progress_bar)
        t0 = time.perf_counter()
        mcmc.run(
            jax.random.PRNGKey(seed + 7919 * k),
            *_observed(data),
            init_params=_init_params(space, starts, lo, hi),
            extra_fields=("diverging", "num_steps", "accept_prob", "energy"),
        )
        samples = {n: np.asarray(v) for n, v in mcmc.get_samples(group_by_chain=True).items()}
        extra = {n: np.asarray(v) for n, v in mcmc.get_extra_fields(group_by_chain=True).items()}
        stats = {
            "diverging": extra["diverging"],
            "n_steps": extra["num_steps"],
            "acceptance_rate": extra["accept_prob"],
            "energy": extra["energy"],
        }
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
