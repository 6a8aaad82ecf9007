r"""Exact correction of a surrogate posterior: Pareto-smoothed importance sampling.

NUTS on a surrogate samples $p_s(\theta \mid y) \propto p(\theta)\,L_s(\theta)$. Every
draw is solved again with the exact solver, and weighed by $L(\theta) / L_s(\theta)$;
the weights' upper tail is smoothed by a generalised Pareto fit (ArviZ's `psislw`),
whose shape $\hat k$ says whether the estimate can be trusted (Vehtari et al., "Pareto
smoothed importance sampling", JMLR 2024: reliable below $\min(1 - 1/\log_{10} S,
0.7)$ for $S$ draws). The corrected posterior is the draws resampled by their weights
(systematic resampling, in the draws' order, so the chains keep their structure). The
mean of the raw ratio estimates the ratio of the exact to the surrogate evidence, which
re-weighs the modes.
"""

import dataclasses

import jax.numpy as jnp
import numpy as np

from .._physics._simulate import simulate_batch


@dataclasses.dataclass(frozen=True)
class Correction:
    """The importance weights of one group of chains and what they say.

    `log_ratio` and `log_weight` (PSIS-smoothed, normalised) have the shape of the draws
    `(chains, draws)`; `index` (same shape) the flat index of the draw that each corrected
    draw repeats; `pareto_k` the tail shape; `ess` the effective number of draws of the
    weighted sample ($r_\\text{eff} / \\sum w^2$); `log_evidence_ratio` the log of the mean
    raw ratio; `rss` the exact residual sum of squares of every draw (marginal sigma).
    """

    log_ratio: np.ndarray
    log_weight: np.ndarray
    index: np.ndarray
    pareto_k: float
    ess: float
    khat_threshold: float
    min_ess: float
    log_evidence_ratio: float
    rss: np.ndarray | None
    seconds: float = 0.0
    edge: str = ""

    @property
    def ok(self) -> bool:
        return bool(
            self.pareto_k <= self.khat_threshold and self.ess >= self.min_ess and not self.edge
        )

    def problem(self) -> str:
        """Why the correction cannot be trusted (empty when it can)."""
        out = []
        if not self.pareto_k <= self.khat_threshold:
            out.append(f"Pareto k-hat {self.pareto_k:.2f} > {self.khat_threshold:.2f}")
        if not self.ess >= self.min_ess:
            out.append(f"only {self.ess:.0f} effective draws after correction (< {self.min_ess:g})")
        if self.edge:
            out.append(self.edge)
        return "; ".join(out)


def edge_problem(x, region_lo, region_hi, prior_lo, prior_hi, names, share: float = 0.01) -> str:
    """Why a local surrogate's region truncates its posterior (empty if it does not):
    more than `share` of the draws `x` `(S, P)` of some parameter within 2 % of the
    region's width of one of its bounds, where that bound lies inside the prior box.
    PSIS cannot see this: it weighs draws inside the region only."""
    lo, hi = np.asarray(region_lo, float), np.asarray(region_hi, float)
    margin = 0.02 * (hi - lo)
    inner_lo = lo > np.asarray(prior_lo, float) + 1e-9
    inner_hi = hi < np.asarray(prior_hi, float) - 1e-9
    x = np.asarray(x, float)
    near = ((x < lo + margin) & inner_lo) | ((x > hi - margin) & inner_hi)
    bad = [name for name, f in zip(names, near.mean(0), strict=True) if f > share]
    if not bad:
        return ""
    return f"the posterior reaches the edge of the local surrogate's region in {', '.join(bad)}"


def parameters(samples: dict, priors) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Offsets `(S, N)`, couplings `(S,)` or `(S, N - 1)`, and sigma `(S,)` (or None) of
    every draw, flattened over chains, with the fixed values filled in."""
    flat = {k: np.asarray(v).reshape(-1, *np.shape(v)[2:]) for k, v in samples.items()}
    total = next(iter(flat.values())).shape[0]
    f = priors.fixed
    offsets = flat.get("offsets_hz")
    if offsets is None:
        offsets = np.tile(np.asarray(f["offsets_hz"], float), (total, 1))
    j = flat.get("j_hz")
    if j is None:
        jf = np.asarray(f["j_hz"], float)
        j = np.broadcast_to(jf, (total, *jf.shape))
    sigma = flat.get("sigma")
    if sigma is None and "sigma" in f:
        sigma = np.full(total, float(f["sigma"]))
    return offsets, j, sigma


def log_likelihood(traces, data, sigma, model_error=None, marginal: bool = False):
    """The log likelihood of every draw (up to a constant common to all models), and the
    residual sum of squares. `traces` has arrays of shape `(S, T)`."""
    pairs = [(traces.mx, data.mx), (traces.my, data.my)]
    if data.iz1 is not None:
        pairs.append((traces.iz1, data.iz1))
    sq = [(np.asarray(m) - np.asarray(o)[None]) ** 2 for m, o in pairs]
    rss = sum(s.sum(1) for s in sq)
    if marginal:
        return -0.5 * len(pairs) * data.grid.n * np.log(rss), rss
    ll = 0.0
    for i, s in enumerate(sq):
        var = np.asarray(sigma)[:, None] ** 2
        if model_error is not None:
            var = var + np.asarray(model_error[i])[None] ** 2
        ll = ll + (-0.5 * s / var - 0.5 * np.log(var)).sum(1)
    return ll, rss


def correct(
    data,
    priors,
    samples: dict,
    surrogate,
    exact,
    *,
    marginal: bool,
    model_error=None,
    min_ess: float = 100.0,
    rng: np.random.Generator,
    scheduler: str | None = None,
) -> Correction:
    """Weigh the draws `samples` (dict of `(chains, draws, ...)` arrays) of the surrogate
    posterior by the exact likelihood. `scheduler`: solve the draws exactly on a Dask
    cluster (`"local"` or an address) instead of here."""
    import time

    t0 = time.perf_counter()
    offsets, j, sigma = parameters(samples, priors)
    shape = np.shape(next(iter(samples.values())))[:2]
    grid = data.grid
    ex = exact_traces(offsets, j, grid, exact, scheduler)
    su = simulate_batch(jnp.asarray(offsets), jnp.asarray(j), grid, surrogate)
    ll_exact, rss = log_likelihood(ex, data, sigma, None, marginal)
    ll_sur, _ = log_likelihood(su, data, sigma, model_error, marginal)
    return weigh(ll_exact - ll_sur, shape, rss if marginal else None, min_ess, rng, t0)


def weigh(log_ratio, shape, rss, min_ess: float, rng, t0: float) -> Correction:
    """PSIS on the log ratios (exact over surrogate likelihood) of draws of `shape`
    `(chains, draws)`, and the systematic resampling index; `rss` kept for sigma."""
    import time

    import arviz  # noqa: F401  (registers the `.azstats` accessor of arviz_stats)
    import xarray as xr

    log_ratio = np.asarray(log_ratio, np.float64).reshape(-1)
    if not np.all(np.isfinite(log_ratio)):
        raise FloatingPointError("The exact or surrogate likelihood is not finite at some draw.")
    lr = xr.DataArray(log_ratio.reshape(shape), dims=("chain", "draw"))
    ratio = np.exp(log_ratio - log_ratio.max()).reshape(shape)
    r_eff = _relative_efficiency(ratio)
    # arviz_stats' `psislw` takes a log likelihood, as for leave-one-out, and smooths the
    # ratios exp(-input): hand it minus the log ratio.
    try:
        log_weight, khat = (-lr).azstats.psislw(dim=["chain", "draw"], r_eff=r_eff)
        lw, khat = np.asarray(log_weight).reshape(-1), float(khat)
    except ValueError:
        # The tail of the ratios cannot be fitted (arviz_stats: "All tail values are the
        # same": the draws stuck in one place, as where the surrogate's posterior lies far
        # from the exact one): a failed correction, with the raw weights.
        lw, khat = log_ratio - log_ratio.max(), float("inf")
    w = np.exp(lw - lw.max())
    w /= w.sum()
    total = w.size
    positions = (rng.uniform() + np.arange(total)) / total
    index = np.minimum(np.searchsorted(np.cumsum(w), positions), total - 1)
    m = log_ratio.max()
    return Correction(
        log_ratio=log_ratio.reshape(shape),
        log_weight=lw.reshape(shape),
        index=index.reshape(shape),
        pareto_k=khat,
        ess=float(r_eff / np.sum(w**2)),
        khat_threshold=float(min(1 - 1 / np.log10(total), 0.7)),
        min_ess=float(min_ess),
        log_evidence_ratio=float(m + np.log(np.mean(np.exp(log_ratio - m)))),
        rss=rss,
        seconds=time.perf_counter() - t0,
    )


def exact_traces(offsets, j, grid, exact, scheduler: str | None = None, per_task: int = 64):
    """`simulate_batch` of the draws with `exact`: here, or in tasks of `per_task` draws
    spread over the workers of a Dask cluster (`scheduler`: `"local"` for one worker
    process per core, or a scheduler's address), each in the caller's JAX precision."""
    if scheduler is None:
        return simulate_batch(jnp.asarray(offsets), jnp.asarray(j), grid, exact)
    from .._parallel import dask_client, with_precision
    from .._physics._traces import Traces

    offsets, j = np.asarray(offsets), np.asarray(j)
    chunks = [
        np.arange(i, min(i + per_task, len(offsets))) for i in range(0, len(offsets), per_task)
    ]
    with dask_client(scheduler, workers=None, processes=True) as client:
        task = with_precision(_solve_chunk)
        futures = [client.submit(task, offsets[c], j[c], grid, exact, pure=False) for c in chunks]
        parts = client.gather(futures)
    mx, my, iz1 = (np.concatenate([p[i] for p in parts]) for i in range(3))
    return Traces(mx=jnp.asarray(mx), my=jnp.asarray(my), iz1=jnp.asarray(iz1), grid=grid)


def _solve_chunk(offsets, j, grid, exact) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tr = simulate_batch(jnp.asarray(offsets), jnp.asarray(j), grid, exact)
    return np.asarray(tr.mx), np.asarray(tr.my), np.asarray(tr.iz1)


def resample(samples: dict, c: Correction, marginal: bool, n_obs: int, rng) -> dict:
    """The corrected draws: every site at `c.index`, and sigma from its exact conditional."""
    shape = c.index.shape
    out = {}
    for k, v in samples.items():
        flat = np.asarray(v).reshape(-1, *np.shape(v)[2:])
        out[k] = flat[c.index.reshape(-1)].reshape(*shape, *np.shape(v)[2:])
    if marginal:
        rss = c.rss[c.index.reshape(-1)]
        out["sigma"] = np.sqrt(rss / (2 * rng.gamma(n_obs / 2, 1.0, size=rss.shape))).reshape(shape)
    return out


def _relative_efficiency(ratio: np.ndarray) -> float:
    """MCMC's ESS of the ratio over the number of draws, in [0.05, 1] (as loo does)."""
    import arviz  # noqa: F401
    import xarray as xr

    if ratio.shape[1] < 4 or np.ptp(ratio) == 0:
        return 1.0
    ess = float(xr.DataArray(ratio, dims=("chain", "draw")).azstats.ess())
    return float(np.clip(ess / ratio.size, 0.05, 1.0))


def dataset(c: Correction, exact_name: str):
    """The correction as an xarray Dataset (a group of the posterior's DataTree)."""
    import xarray as xr

    return xr.Dataset(
        {
            "log_likelihood_ratio": (("chain", "draw"), c.log_ratio),
            "log_weight": (("chain", "draw"), c.log_weight),
            "resampled_index": (("chain", "draw"), c.index),
        },
        attrs={
            "method": "PSIS (arviz_stats psislw), systematic resampling",
            "exact_solver": exact_name,
            "pareto_k": c.pareto_k,
            "khat_threshold": c.khat_threshold,
            "ess": c.ess,
            "min_ess": c.min_ess,
            "log_evidence_ratio": c.log_evidence_ratio,
            "ok": int(c.ok),
            "problem": c.problem(),
            "seconds": c.seconds,
        },
    )


def thinned(samples: dict, at_most: int) -> dict:
    """Every chain's draws evenly thinned, to at most `at_most` draws in all."""
    chains, draws = np.shape(next(iter(samples.values())))[:2]
    per_chain = max(1, min(draws, at_most // chains))
    keep = np.linspace(0, draws - 1, per_chain).round().astype(int)
    return {k: np.asarray(v)[:, keep] for k, v in samples.items()}
