"""Inference for any network of couplings: least squares and NUTS over any subset of the
shifts and couplings of a `SystemSpec` (fixed, free in a box, or tied to another).

`bn.fit(data, spec)` and `bn.sample_posterior(data, spec)` come here when the priors are
a `SystemSpec` (from `bn.load_spin_system`); the chain's machinery (the global search,
modes, surrogates) stays with `Priors`.
"""

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax

from .._physics._simulate import simulate
from .._physics._solver import AbstractSolver
from .._physics._system import SpinSystem
from .._physics._system_file import SystemSpec
from ._data import Dataset


class NetworkSpace:
    """The free parameters of a `SystemSpec` as one vector in Hz: the offsets with a box,
    then one coupling per free coupling (a tied coupling shares its root's parameter),
    in the file's order; `system(x)` is the `SpinSystem` at `x`."""

    def __init__(self, spec: SystemSpec):
        if not isinstance(spec, SystemSpec):
            raise ValueError(
                f"Expected a `SystemSpec` (from `bn.load_spin_system`), got {type(spec).__name__}."
            )
        self.spec = spec
        s = spec.system
        n = s.n_spins
        self.free_offsets = [i for i, b in enumerate(spec.offset_boxes) if b is not None]
        roots = [c for c in spec.couplings if c.tied_to is None and c.box is not None]
        self.coupling_pairs = [
            [c.pair] + [d.pair for d in spec.couplings if d.tied_to == c.pair] for c in roots
        ]
        masks = np.zeros((len(roots), n, n))
        for p, pairs in enumerate(self.coupling_pairs):
            for i, k in pairs:
                masks[p, i, k] = masks[p, k, i] = 1.0
        self.masks = masks
        self.fixed_j = np.asarray(s.j_hz) * (1.0 - masks.sum(0))
        self.base_offsets = np.asarray(s.offsets_hz, np.float64)
        boxes = [spec.offset_boxes[i] for i in self.free_offsets] + [c.box for c in roots]
        self.lo = np.array([b[0] for b in boxes], np.float64)
        self.hi = np.array([b[1] for b in boxes], np.float64)
        names = spec.names
        self.offset_names = [names[i] for i in self.free_offsets]
        self.coupling_names = [f"{names[c.pair[0]]}-{names[c.pair[1]]}" for c in roots]
        self.names = [f"offsets_hz[{x}]" for x in self.offset_names] + [
            f"j_hz[{x}]" for x in self.coupling_names
        ]
        self.start = np.r_[self.base_offsets[self.free_offsets], [c.j_hz for c in roots]]

    @property
    def n_offsets(self) -> int:
        return len(self.free_offsets)

    def system(self, x) -> SpinSystem:
        k = self.n_offsets
        nu = jnp.asarray(self.base_offsets).at[jnp.asarray(self.free_offsets, int)].set(x[:k])
        j = jnp.asarray(self.fixed_j) + jnp.tensordot(x[k:], jnp.asarray(self.masks), 1)
        s = self.spec.system
        return SpinSystem(nu, j, s.t2_s, iz_spin=s.iz_spin, names=s.names)

    def matrix(self, x) -> np.ndarray:
        return np.asarray(self.system(jnp.asarray(x)).j_hz)


def check_network_data(data: Dataset, space: NetworkSpace, solver) -> None:
    s = space.spec.system
    if data.n_spins != s.n_spins:
        raise ValueError(
            f"The spin system has {s.n_spins} spins but the data are for {data.n_spins}."
        )
    if data.iz1 is not None and data.iz_spin != s.iz_spin:
        raise ValueError(
            f"The data's `iz1` is the polarisation of spin {data.iz_spin}, but the spin "
            f"system's `iz_spin` is {s.iz_spin}: set `iz_spin` in the file to the observed "
            "spin."
        )
    if not space.names:
        raise ValueError(
            "Nothing to fit: no shift or coupling of the spin system has a prior box. Give "
            "the free ones `range_hz` (or `range_ppm`) in the file."
        )
    if solver is not None:
        if not isinstance(solver, AbstractSolver):
            raise ValueError(f"Argument `solver` must be a solver object, got {solver!r}.")
        solver.check(s, data.grid)


def _misfit_fn(data: Dataset, space: NetworkSpace, solver):
    """`misfit(x, w)`: half the sum of squared residuals weighted by `w(t)` (ones for the
    data, $e^{-t/\tau}$ for a broadened stage); the weights are an argument, so one
    compilation serves every stage."""
    obs = [jnp.asarray(data.mx), jnp.asarray(data.my)]
    if data.iz1 is not None:
        obs.append(jnp.asarray(data.iz1))

    def misfit(x, w):
        tr = simulate(space.system(x), data.grid, solver)
        sims = [tr.mx, tr.my] + ([tr.iz1] if data.iz1 is not None else [])
        return 0.5 * sum(jnp.sum((w * (a - b)) ** 2) for a, b in zip(sims, obs, strict=True))

    return misfit


def fit_network(data, spec, *, solver=None, init=None, n_starts=None, steps=25,
                broadening=(0.1,), seed=0, laplace=True):  # fmt: skip
    """Multi-start L-BFGS over the free parameters of `spec`, from the file's values (or
    `init`, a vector in the order of the names) and `n_starts - 1` random points of the
    boxes (8 starts by default): each descended on the line-broadened misfit (weights
    $e^{-t/\\tau}$, $\\tau$ in `broadening`), then on the data. Laplace errors from the
    Hessian of the misfit at the best point."""
    from ._fit import FitResult

    space = NetworkSpace(spec)
    check_network_data(data, space, solver)
    n_starts = 8 if n_starts is None else n_starts
    if isinstance(n_starts, bool) or not isinstance(n_starts, int) or n_starts < 1:
        raise ValueError(f"Argument `n_starts` must be a positive int, got {n_starts!r}.")
    first = space.start if init is None else np.asarray(init, np.float64).reshape(-1)
    if first.shape != space.lo.shape:
        raise ValueError(
            f"Argument `init` needs {len(space.names)} values ({space.names}), got {first.shape}."
        )
    lo, hi = jnp.asarray(space.lo), jnp.asarray(space.hi)
    rng = np.random.default_rng(seed)
    starts = np.vstack([first[None], rng.uniform(space.lo, space.hi, (n_starts - 1, lo.size))])
    p = np.clip((starts - space.lo) / (space.hi - space.lo), 1e-6, 1 - 1e-6)
    u0 = jnp.asarray(np.log(p) - np.log1p(-p))

    def to_hz(u):
        return lo + (hi - lo) * jax.nn.sigmoid(u)

    def descend(u, w, misfit):
        f = lambda v: misfit(to_hz(v), w)  # noqa: E731
        opt = optax.lbfgs()
        value_and_grad = optax.value_and_grad_from_state(f)

        def step(carry, _):
            v, state = carry
            value, grad = value_and_grad(v, state=state)
            updates, state = opt.update(grad, state, v, value=value, grad=grad, value_fn=f)
            return (optax.apply_updates(v, updates), state), value

        return jax.lax.scan(step, (u, opt.init(u)), length=steps)[0][0]

    t0 = time.perf_counter()
    misfit = _misfit_fn(data, space, solver)
    times = jnp.asarray(data.grid.times)
    ones = jnp.ones_like(times)
    stages = jax.jit(jax.vmap(lambda u, w: descend(u, w, misfit), in_axes=(0, None)))
    for tau in (*broadening, None):
        u0 = stages(u0, ones if tau is None else jnp.exp(-times / tau))
    xs = jax.vmap(to_hz)(u0)

    def plain(x):
        return misfit(x, ones)

    losses = np.asarray(jax.jit(jax.vmap(plain))(xs))
    best = int(np.argmin(losses))
    x = np.asarray(xs[best])
    seconds = time.perf_counter() - t0
    n_obs = data.grid.n * (2 if data.iz1 is None else 3)
    sigma2 = 2 * float(losses[best]) / n_obs
    cov = None
    if laplace:
        h = np.asarray(jax.jit(jax.hessian(plain))(jnp.asarray(x)))
        cov = sigma2 * np.linalg.pinv(0.5 * (h + h.T))
    system = space.system(jnp.asarray(x))
    return FitResult(
        offsets_hz=np.asarray(system.offsets_hz),
        j_hz=np.asarray(system.j_hz),
        loss=float(losses[best]),
        seconds=seconds,
        sigma=float(np.sqrt(sigma2)),
        names=space.names,
        covariance=cov,
        start=best,
        n_starts=n_starts,
    )


def network_model(space: NetworkSpace, grid, solver, sigma, mx, my, iz1=None):
    r"""Uniform boxes on the free shifts and couplings; a Gaussian likelihood of known
    `sigma`, or (`sigma=None`) $\sigma$ integrated out under the Jeffreys prior (the
    likelihood $\mathrm{RSS}^{-n/2}$, with `rss` recorded), as `chain_model` does. The
    observations are arguments, so one compiled sampler serves any data."""
    obs = [mx, my] + ([] if iz1 is None else [iz1])
    k = space.n_offsets
    parts = []
    if k:
        parts.append(
            numpyro.sample("offsets_hz", dist.Uniform(space.lo[:k], space.hi[:k]).to_event(1))
        )
    if space.lo.size > k:
        parts.append(numpyro.sample("j_hz", dist.Uniform(space.lo[k:], space.hi[k:]).to_event(1)))
    tr = simulate(space.system(jnp.concatenate(parts)), grid, solver)
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
        chain_method=sampler.resolved_chain_method(),
        progress_bar=progress_bar,
    )


def _init_params(space, starts):
    """Chain starts `(chains, P)` in Hz as NumPyro's unconstrained init_params."""
    from numpyro.distributions.transforms import biject_to

    k = space.n_offsets
    out = {}
    if k:
        t = biject_to(dist.constraints.interval(space.lo[:k], space.hi[:k]))
        out["offsets_hz"] = t.inv(jnp.asarray(starts[:, :k]))
    if space.lo.size > k:
        t = biject_to(dist.constraints.interval(space.lo[k:], space.hi[k:]))
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


def sample_network(data, spec, *, solver, sampler, seed, progress_bar, init, predictive_draws=200):
    """NUTS over the free parameters of `spec`, every chain started at the fit (or
    `init`: a `FitResult` of `fit(data, spec)`) spread by its Laplace sds, with $\\sigma$
    drawn afterwards from its exact conditional."""
    import arviz as az
    import xarray as xr

    space = NetworkSpace(spec)
    check_network_data(data, space, solver)
    fit = fit_network(data, spec, solver=solver, seed=seed) if init is None else init
    x0 = np.r_[fit.offsets_hz[space.free_offsets], [fit.j_hz[c[0]] for c in space.coupling_pairs]]
    sd = fit.stderr if fit.stderr is not None else 0.01 * (space.hi - space.lo)
    rng = np.random.default_rng(seed)
    eps = 1e-6 * (space.hi - space.lo)
    starts = np.clip(
        x0 + rng.normal(size=(sampler.chains, x0.size)) * sd, space.lo + eps, space.hi - eps
    )
    mcmc = _network_mcmc(space, data.grid, solver, None, sampler, progress_bar)
    t0 = time.perf_counter()
    mcmc.run(
        jax.random.PRNGKey(seed),
        *_observed(data),
        init_params=_init_params(space, starts),
        extra_fields=("diverging", "num_steps", "accept_prob", "energy"),
    )
    seconds = time.perf_counter() - t0
    samples = {name: np.asarray(v) for name, v in mcmc.get_samples(group_by_chain=True).items()}
    n_obs = data.grid.n * (2 if data.iz1 is None else 3)
    rss = samples.pop("rss")
    samples["sigma"] = np.sqrt(rss / (2 * rng.gamma(n_obs / 2, size=rss.shape)))
    extra = {k: np.asarray(v) for k, v in mcmc.get_extra_fields(group_by_chain=True).items()}
    stats = {
        "diverging": extra["diverging"],
        "n_steps": extra["num_steps"],
        "acceptance_rate": extra["accept_prob"],
        "energy": extra["energy"],
    }
    dims = {"offsets_hz": ["spin"], "j_hz": ["coupling"]}
    coords = {"spin": space.offset_names, "coupling": space.coupling_names}
    dt = az.from_dict(
        {"posterior": samples, "sample_stats": stats},
        dims={k: v for k, v in dims.items() if k in samples},
        coords={k: v for k, v in coords.items() if v},
    )
    dt["posterior_predictive"] = _predictive(space, data, solver, samples, predictive_draws, rng)
    observed = {"mx": data.mx, "my": data.my} | ({} if data.iz1 is None else {"iz1": data.iz1})
    dt["observed_data"] = xr.Dataset(
        {name: ("time", np.asarray(v)) for name, v in observed.items()},
        coords={"time": data.grid.times},
    )
    dt.attrs.update(
        {
            "model": "network",
            "names": list(spec.names),
            "sampling_seconds": seconds,
            "fit_offsets_hz": np.asarray(fit.offsets_hz).tolist(),
        }
    )
    return dt


def calibrate_network(grid, spec, *, sigma, sampler, n_datasets, rank_draws, bins,
                      observe_iz1, seed, progress_bar, checkpoint):  # fmt: skip
    """Simulation-based calibration of the network posterior: for each data set, the
    free parameters drawn from their boxes, data simulated exactly at the known `sigma`,
    NUTS (one compiled sampler for every data set) with the chains started at the true
    values, and the ranks of the truths. It asks whether the posterior is right, not
    whether a fit finds it (there is no global search for networks)."""
    from tqdm.auto import tqdm

    from .._io import provenance
    from ._data import synthesize
    from ._sbc_result import Checkpoint, SBCResult, rank_record

    space = NetworkSpace(spec)
    if not space.names:
        raise ValueError("calibrate: no shift or coupling of the spin system has a box.")
    if sigma is None or not np.isfinite(sigma) or sigma <= 0:
        raise ValueError(
            "calibrate: give the known noise, `sigma=...` (a positive number): data sets "
            f"are simulated at a known sigma; got {sigma!r}."
        )
    chains, draws = sampler.chains, sampler.draws
    keep = np.linspace(0, chains * draws - 1, rank_draws).astype(int)
    fingerprint = {
        "network": spec.names,
        "lo": space.lo.tolist(),
        "hi": space.hi.tolist(),
        "base_offsets": space.base_offsets.tolist(),
        "fixed_j": space.fixed_j.tolist(),
        "grid": [grid.n, grid.dt],
        "sigma": float(sigma),
        "settings": [chains, sampler.warmup, draws, rank_draws, observe_iz1],
        "seed": seed,
    }
    t0 = time.perf_counter()
    store = Checkpoint(checkpoint, fingerprint) if checkpoint is not None else None
    records = {} if store is None else store.load()
    todo = [k for k in range(n_datasets) if k not in records]
    run, laplace = _network_sbc_sampler(space, grid, float(sigma), sampler, observe_iz1)
    eps = 1e-6 * (space.hi - space.lo)
    with (
        jax.numpy_rank_promotion("allow"),
        tqdm(total=n_datasets, initial=n_datasets - len(todo), disable=not progress_bar,
             desc="SBC", unit="data set") as bar,
    ):  # fmt: skip
        for k in todo:
            rng = np.random.default_rng([seed, k])
            truth = rng.uniform(space.lo, space.hi)
            data = synthesize(
                space.system(jnp.asarray(truth)), grid, float(sigma),
                seed=int(rng.integers(2**31)), observe_iz1=observe_iz1,
            )  # fmt: skip
            x = np.clip(truth, space.lo + eps, space.hi - eps)
            z0, inverse_mass = laplace(x, chains, rng)
            samples, _ = run.run(
                jax.random.PRNGKey(int(rng.integers(2**31))), _observed(data), z0, inverse_mass
            )
            post = np.concatenate(
                [np.asarray(samples[n]).reshape(chains * draws, -1) for n in ("offsets_hz", "j_hz")
                 if n in samples], axis=1,
            )  # fmt: skip
            records[k] = rank_record(post, truth, keep)
            if store is not None:
                store.save(records)
            bar.update()
    rows = [records[k] for k in range(n_datasets)]

    def stack(key):
        return np.array([r[key] for r in rows])

    return SBCResult(
        names=space.names,
        ranks=stack("rank"),
        rank_draws=rank_draws,
        truths=stack("truth"),
        means=stack("mean"),
        covered50=stack("c50"),
        covered90=stack("c90"),
        bins=bins,
        sds=stack("sd"),
        provenance=provenance()
        | {
            "seconds": time.perf_counter() - t0,
            "resumed": n_datasets - len(todo),
            "settings": fingerprint | {"n_datasets": n_datasets},
        },
    )


def _network_sbc_sampler(space, grid, sigma, sampler, observe_iz1):
    """The compiled NUTS of a network's posterior at a known `sigma` (one compilation for
    every data set: the observations are its arguments), and `laplace(x, chains, rng)`:
    chain starts around `x` and the inverse mass matrix from the Fisher information
    there (sigma^2 (A^T A)^-1, A the exact Jacobian of the traces, compiled once), both
    in NUTS's unconstrained coordinates (sites in sorted order: j_hz, then offsets_hz)."""
    from ._sampler import sampler_for

    def model(mx, my, iz1=None):
        network_model(space, grid, None, sigma, mx, my, iz1)

    key = _NetworkKey(
        tuple(space.names), tuple(space.lo), tuple(space.hi), tuple(space.base_offsets),
        tuple(map(tuple, space.fixed_j)), space.spec.system.iz_spin, grid, sigma, observe_iz1,
        sampler.chains, sampler.warmup, sampler.draws, "vectorized",
        float(sampler.target_accept),
    )  # fmt: skip
    example = (jnp.zeros(grid.n), jnp.zeros(grid.n)) + ((jnp.zeros(grid.n),) if observe_iz1 else ())
    run = sampler_for(key, None, example, model=model)

    def traces(x):
        tr = simulate(space.system(x), grid)
        return jnp.concatenate([tr.mx, tr.my] + ([tr.iz1] if observe_iz1 else []))

    jacobian = jax.jit(jax.jacfwd(traces))
    k = space.n_offsets
    perm = np.r_[np.arange(k, space.lo.size), np.arange(k)]  # sorted sites: j_hz first

    def laplace(x, chains, rng):
        a = np.asarray(jacobian(jnp.asarray(x)))
        cov = sigma**2 * np.linalg.pinv(a.T @ a)
        d = (space.hi - space.lo) / ((x - space.lo) * (space.hi - x))  # dz/dx of the logit
        cov_z = (cov * np.outer(d, d))[np.ix_(perm, perm)]
        centre = _init_params(space, x[None])
        flat = np.concatenate([np.atleast_1d(np.asarray(centre[n])) for n in sorted(centre)])
        starts = flat[None] + rng.multivariate_normal(np.zeros(flat.size), cov_z, size=chains)
        z0, i = {}, 0
        for n in sorted(centre):
            size = np.atleast_1d(np.asarray(centre[n])).size
            z0[n] = jnp.asarray(starts[:, i : i + size])
            i += size
        return z0, jnp.asarray(cov_z)

    return run, laplace


@dataclasses.dataclass(frozen=True)
class _NetworkKey:
    """What a network's compiled sampler depends on (the cache's key)."""

    names: tuple
    lo: tuple
    hi: tuple
    base_offsets: tuple
    fixed_j: tuple
    iz_spin: int
    grid: object
    sigma: float
    observe_iz1: bool
    chains: int
    warmup: int
    draws: int
    chain_method: str
    target_accept: float
