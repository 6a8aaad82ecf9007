"""NUTS posteriors as ArviZ DataTrees, and their diagnostics."""

import os
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer import MCMC, NUTS, Predictive, init_to_value

from .._io import atomic_path
from .._physics._solver import AbstractSolver
from ._data import Dataset
from ._model import Priors, chain_model, model_kwargs


class ConvergenceWarning(UserWarning):
    """A sampler diagnostic failed its threshold (R-hat, ESS or divergences)."""


def sample_posterior(
    data: Dataset,
    priors: Priors,
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
):
    """Sample the posterior of a chain's parameters with NUTS.

    **Arguments:**

    - `data`, `priors`: the `Dataset` and the `Priors`.
    - `solver`: the forward model (exact by default, or a surrogate).
    - `chains`, `warmup`, `draws`, `seed`: the usual.
    - `chain_method`: NumPyro's `"sequential"`, `"vectorized"` or `"parallel"` (one
      chain per JAX device), or `"auto"`: `"parallel"` when there are at least `chains`
      devices, else `"vectorized"`. On a CPU, JAX shows one device unless told
      otherwise: call `bn.use_cpu_cores()` (or `numpyro.set_host_device_count`) at the
      start of the program, before JAX computes anything, to run chains on every core
      (measured: 4 chains at N = 4 on 2 cores, 38 s parallel against 57 s vectorized).
    - `init`: starting values (for example a `fit`'s `offsets_hz` and `j_hz`); chains
      start there, spread by NumPyro's jitter during warmup. Without it, chains start
      at random points of the prior.
    - `predictive_draws`: posterior draws used for the posterior predictive.
    - `marginal_sigma`: integrate the noise $\\sigma$ out analytically (Jeffreys prior,
      see `chain_model`), so NUTS explores only the offsets and J, and draw $\\sigma$
      afterwards from its exact conditional $\\mathrm{InvGamma}(n/2, \\mathrm{RSS}/2)$,
      one per draw. Sampled jointly, $\\sigma$ mixes slowly (bulk ESS about 300 of 2000
      draws). `False` samples it under the half-normal prior of `priors`.
    - `model_error`: the forward model's error as a noise level, shape `(3, T)`, from
      `bn.surrogate_error` (see `chain_model`); then $\\sigma$ is sampled, not
      integrated out.

    **Returns:** an ArviZ `DataTree` with groups `posterior`, `sample_stats`,
    `observed_data` and `posterior_predictive`.
    """
    import arviz as az
    import xarray as xr

    if chain_method not in ("auto", "sequential", "vectorized", "parallel"):
        raise ValueError(
            "Argument `chain_method` must be 'auto', 'sequential', 'vectorized' or "
            f"'parallel', got {chain_method!r}."
        )
    for name, value in (("chains", chains), ("warmup", warmup), ("draws", draws)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"Argument `{name}` must be a positive int, got {value!r}.")
    kwargs = model_kwargs(data, priors, solver, model_error)
    if chain_method == "auto":
        chain_method = "parallel" if jax.local_device_count() >= chains > 1 else "vectorized"
    marginal = marginal_sigma and "sigma" not in priors.fixed and model_error is None
    strategy = None
    if init is not None:
        skip = set(priors.fixed) | ({"sigma"} if marginal else set())
        values = {k: jnp.asarray(v) for k, v in init.items() if k not in skip}
        strategy = init_to_value(values=values)
    kernel = NUTS(
        chain_model,
        target_accept_prob=target_accept,
        dense_mass=True,
        **({"init_strategy": strategy} if strategy else {}),
    )
    mcmc = MCMC(
        kernel,
        num_warmup=warmup,
        num_samples=draws,
        num_chains=chains,
        chain_method=chain_method,
        progress_bar=progress_bar,
    )
    mcmc.run(jax.random.PRNGKey(seed), **kwargs, marginal_sigma=marginal)
    dt = az.from_numpyro(mcmc)
    samples = mcmc.get_samples()
    if marginal:
        rss = np.asarray(samples.pop("rss"))
        n_obs = data.grid.n * (2 if data.iz1 is None else 3)
        gamma = np.random.default_rng(seed).gamma(n_obs / 2, 1.0, size=rss.shape)
        samples["sigma"] = jnp.asarray(np.sqrt(rss / (2 * gamma)))
        post = dt["posterior"].to_dataset()
        sigma = samples["sigma"].reshape(post["rss"].shape)
        post = post.drop_vars("rss").assign(sigma=(post["rss"].dims, np.asarray(sigma)))
        dt["posterior"] = post
    total = next(iter(samples.values())).shape[0]
    keep = np.linspace(0, total - 1, min(predictive_draws, total)).astype(int)
    thinned = {k: v[keep] for k, v in samples.items()}
    pred_kwargs = dict(kwargs, mx=None, my=None, iz1=None)
    predictive = Predictive(chain_model, posterior_samples=thinned)(
        jax.random.PRNGKey(seed + 1), **pred_kwargs
    )
    predictive = {k: np.asarray(v)[None] for k, v in predictive.items() if k in ("mx", "my", "iz1")}
    ppc = az.from_dict(
        {"posterior_predictive": predictive},
        dims={k: ["time"] for k in predictive},
        coords={"time": data.grid.times},
    )
    dt["posterior_predictive"] = ppc["posterior_predictive"]
    observed = {"mx": data.mx, "my": data.my} | ({} if data.iz1 is None else {"iz1": data.iz1})
    dt["observed_data"] = xr.Dataset(
        {k: ("time", np.asarray(v)) for k, v in observed.items()},
        coords={"time": data.grid.times},
    )
    if marginal and "log_likelihood" in dt.children:
        # A pointwise log-likelihood is not defined once sigma is integrated out.
        del dt["log_likelihood"]
    dt.attrs["n_spins"] = int(data.n_spins)
    dt.attrs["chain_method"] = chain_method
    if data.truth:
        dt.attrs["true_offsets_hz"] = np.asarray(data.truth["offsets_hz"], float)
        dt.attrs["true_j_hz"] = np.atleast_1d(np.asarray(data.truth["j_hz"], float))
        dt.attrs["true_sigma"] = float(data.truth["sigma"])
    return dt


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


def diagnose(dt, *, rhat_max: float = 1.01, ess_min: float = 400, warn: bool = True):
    """The ArviZ summary table, and the list of failed checks.

    Checks: R-hat $\\le$ `rhat_max`, bulk and tail ESS $\\ge$ `ess_min` for every
    parameter, no divergent transitions. Each failure is also raised as a
    `ConvergenceWarning` when `warn`.

    **Returns:** `(summary, problems)`: a pandas DataFrame of unrounded numbers
    (`format_summary` prints it) and a list of strings.
    """
    import arviz as az

    summary = az.summary(dt, var_names=[v for v in dt.posterior.data_vars], round_to="none")
    problems = []
    for col, bad, what in (
        ("r_hat", summary["r_hat"] > rhat_max, f"R-hat > {rhat_max}"),
        ("ess_bulk", summary["ess_bulk"] < ess_min, f"bulk ESS < {ess_min:g}"),
        ("ess_tail", summary["ess_tail"] < ess_min, f"tail ESS < {ess_min:g}"),
    ):
        if bool(np.any(bad)):
            rows = ", ".join(f"{i} ({summary.loc[i, col]:.3g})" for i in summary.index[bad])
            problems.append(f"{what} for {rows}")
    divergences = int(np.asarray(dt.sample_stats["diverging"]).sum())
    if divergences:
        problems.append(
            f"{divergences} divergent transitions; raise target_accept or reparametrise"
        )
    if warn:
        for p in problems:
            warnings.warn(p, ConvergenceWarning, stacklevel=2)
    return summary, problems


def format_summary(summary) -> str:
    """The summary table as text: 6 significant digits for the statistics, whole ESS,
    R-hat to 3 decimals, 2 significant digits for Monte Carlo errors."""

    def fmt(col):
        if col.startswith("ess"):
            return lambda v: f"{v:.0f}"
        if col == "r_hat":
            return lambda v: f"{v:.3f}"
        if col.startswith("mcse"):
            return lambda v: f"{v:.2g}"
        return lambda v: f"{v:.6g}"

    return summary.to_string(formatters={c: fmt(c) for c in summary.columns})


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
