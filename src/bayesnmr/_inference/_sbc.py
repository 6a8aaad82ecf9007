"""Simulation-based calibration (Talts et al. 2018) of the NUTS posterior."""

import dataclasses
import json
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.distributions import constraints
from numpyro.distributions.transforms import biject_to
from numpyro.infer import MCMC, NUTS
from tqdm.auto import tqdm

from .._io import atomic_path
from .._physics._grid import TimeGrid
from .._physics._solver import AbstractSolver
from .._physics._system import SpinChain
from ._data import synthesize
from ._model import Priors, chain_model


@dataclasses.dataclass(frozen=True)
class SBCResult:
    """The outcome of `calibrate`.

    **Fields:** `names` (the scalar parameters), `ranks` (`(datasets, parameters)`:
    how many of the `n_draws` thinned posterior draws fall below the true value),
    `n_draws`, `truths` and `means` (`(datasets, parameters)`), `covered50`, `covered90`
    (`(datasets, parameters)` booleans: the truth inside the central 50 % / 90 %
    posterior interval), `p_values` (a chi-square test of uniform ranks in `bins` bins,
    per parameter).
    """

    names: list
    ranks: np.ndarray
    n_draws: int
    truths: np.ndarray
    means: np.ndarray
    covered50: np.ndarray
    covered90: np.ndarray
    bins: int

    @property
    def coverage(self) -> dict:
        """The share of data sets whose 50 % and 90 % intervals hold the truth."""
        return {
            "50": dict(zip(self.names, self.covered50.mean(0).tolist(), strict=True)),
            "90": dict(zip(self.names, self.covered90.mean(0).tolist(), strict=True)),
        }

    @property
    def p_values(self) -> dict:
        from scipy.stats import chisquare

        edges = np.linspace(0, self.n_draws + 1, self.bins + 1)
        out = {}
        for i, name in enumerate(self.names):
            counts, _ = np.histogram(self.ranks[:, i], bins=edges)
            out[name] = float(chisquare(counts).pvalue)
        return out

    def to_dict(self) -> dict:
        return {
            "names": self.names,
            "n_draws": self.n_draws,
            "bins": self.bins,
            "datasets": int(self.ranks.shape[0]),
            "coverage": self.coverage,
            "p_values": self.p_values,
            "ranks": self.ranks.tolist(),
            "truths": self.truths.tolist(),
            "means": self.means.tolist(),
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the result as JSON, atomically."""
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=1))
        return Path(path)

    def plot(self):
        """Rank histograms with the 99 % band of a uniform histogram; returns the figure."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
        from scipy.stats import binom

        n, k = self.ranks.shape
        fig, axes = plt.subplots(1, k, figsize=(3.2 * k, 2.8), squeeze=False)
        edges = np.linspace(0, self.n_draws + 1, self.bins + 1)
        lo, hi = binom.ppf([0.005, 0.995], n, 1 / self.bins)
        pv, cov = self.p_values, self.coverage
        for ax, i in zip(axes[0], range(k), strict=True):
            ax.axhspan(lo, hi, color="0.85", label="99 % band (uniform)")
            ax.hist(self.ranks[:, i], bins=edges, color="C0", edgecolor="white")
            name = self.names[i]
            ax.set_title(
                f"{name}\np = {pv[name]:.2f}, 90 % cover {cov['90'][name]:.0%}", fontsize=9
            )
            ax.set_xlabel("rank")
        axes[0][0].legend(fontsize=7)
        fig.suptitle(f"SBC: {n} data sets, {self.n_draws} draws each", fontsize=10)
        fig.tight_layout()
        return fig


def calibrate(
    grid: TimeGrid,
    priors: Priors,
    *,
    solver: AbstractSolver | None = None,
    datasets: int = 200,
    chains: int = 2,
    warmup: int = 300,
    draws: int = 300,
    n_draws: int = 99,
    bins: int = 10,
    observe_iz1: bool = True,
    seed: int = 0,
    progress: bool = True,
) -> SBCResult:
    """Simulation-based calibration of the NUTS posterior (Talts et al. 2018).

    For each of `datasets` data sets: draw the parameters from the priors, simulate noisy
    data with the exact solver (so a surrogate is calibrated against the truth it
    approximates), sample the posterior with NUTS using `solver`, and record the rank of
    each true value among `n_draws` thinned posterior draws, and whether the central
    50 % and 90 % intervals hold it. If the posterior is calibrated, the ranks are uniform
    and the intervals cover 50 % and 90 % of the truths.

    The noise must be known: `priors.fixed` must hold `sigma` (the Jeffreys prior that
    `sample_posterior` integrates over is improper, so there is nothing to draw it from).
    Chains start at the true values (calibration asks whether the posterior is right, not
    whether a sampler finds it); one compiled sampler serves every data set.

    **Returns:** an `SBCResult` (coverage, p-values, `plot()`, `save()`).
    """
    if "sigma" not in priors.fixed:
        raise ValueError(
            "calibrate: fix the noise, e.g. `Priors(..., fixed={'sigma': 0.05})`: data sets "
            "are simulated at a known sigma."
        )
    for name, value in (("datasets", datasets), ("chains", chains), ("warmup", warmup)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"Argument `{name}` must be a positive int, got {value!r}.")
    if not (isinstance(n_draws, int) and 1 <= n_draws <= chains * draws):
        raise ValueError(
            f"Argument `n_draws` must be between 1 and chains * draws = {chains * draws}, "
            f"got {n_draws!r}."
        )
    priors.check_domain(solver)
    sigma = float(priors.fixed["sigma"])
    rng = np.random.default_rng(seed)
    free_offsets = "offsets_hz" not in priors.fixed
    free_j = "j_hz" not in priors.fixed
    jb = priors.j_hz.reshape(-1, 2)
    names = ([f"offsets_hz[{i}]" for i in range(priors.n_spins)] if free_offsets else []) + (
        ([f"j_hz[{i}]" for i in range(jb.shape[0])] if priors.per_bond else ["j_hz"])
        if free_j
        else []
    )
    if not names:
        raise ValueError("calibrate: every parameter is fixed; there is nothing to calibrate.")

    def model(mx, my, iz1):
        chain_model(grid, priors, solver, mx, my, iz1, observe_iz1=observe_iz1)

    mcmc = MCMC(
        NUTS(model, dense_mass=True, target_accept_prob=0.9),
        num_warmup=warmup,
        num_samples=draws,
        num_chains=chains,
        chain_method="vectorized",
        progress_bar=False,
        jit_model_args=True,
    )
    ranks, truths, means, c50, c90 = [], [], [], [], []
    keep = np.linspace(0, chains * draws - 1, n_draws).astype(int)
    for k in tqdm(range(datasets), disable=not progress, desc="SBC", unit="data set"):
        offsets = (
            rng.uniform(priors.offsets_hz[:, 0], priors.offsets_hz[:, 1])
            if free_offsets
            else np.asarray(priors.fixed["offsets_hz"], float)
        )
        if free_j:
            j = rng.uniform(jb[:, 0], jb[:, 1])
            j = j if priors.per_bond else float(j[0])
        else:
            j = priors.fixed["j_hz"]
        data = synthesize(
            SpinChain(offsets, j),
            grid,
            sigma,
            seed=int(rng.integers(2**31)),
            observe_iz1=observe_iz1,
        )
        # Every chain starts at the truth, in NUTS's unconstrained coordinates.
        init = {}
        if free_offsets:
            init["offsets_hz"] = _unconstrained(offsets, priors.offsets_hz)
        if free_j:
            init["j_hz"] = _unconstrained(j, priors.j_hz)
        init = {k: jnp.broadcast_to(v, (chains, *v.shape)) for k, v in init.items()}
        mcmc.run(
            jax.random.PRNGKey(int(rng.integers(2**31))),
            jnp.asarray(data.mx),
            jnp.asarray(data.my),
            None if data.iz1 is None else jnp.asarray(data.iz1),
            init_params=init,
        )
        samples = mcmc.get_samples()
        cols = []
        if free_offsets:
            cols.append(np.asarray(samples["offsets_hz"]).reshape(-1, priors.n_spins))
        if free_j:
            cols.append(np.asarray(samples["j_hz"]).reshape(chains * draws, -1))
        post = np.concatenate(cols, axis=1)
        truth = np.concatenate(
            ([offsets] if free_offsets else []) + ([np.atleast_1d(j)] if free_j else [])
        )
        thinned = post[keep]
        ranks.append(np.sum(thinned < truth[None], axis=0))
        truths.append(truth)
        means.append(post.mean(0))
        q = np.quantile(post, [0.05, 0.25, 0.75, 0.95], axis=0)
        c50.append((q[1] <= truth) & (truth <= q[2]))
        c90.append((q[0] <= truth) & (truth <= q[3]))
    return SBCResult(
        names=names,
        ranks=np.array(ranks),
        n_draws=n_draws,
        truths=np.array(truths),
        means=np.array(means),
        covered50=np.array(c50),
        covered90=np.array(c90),
        bins=bins,
    )


def _unconstrained(value, box) -> jax.Array:
    """`value` inside the uniform `box` (`(..., 2)`), mapped to NUTS's coordinates."""
    box = np.asarray(box, float)
    return biject_to(constraints.interval(box[..., 0], box[..., 1])).inv(jnp.asarray(value))
