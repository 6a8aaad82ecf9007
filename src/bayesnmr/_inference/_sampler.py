"""One compiled NUTS sampler per model structure, shared by `sample_posterior` and
`calibrate`.

NumPyro's `MCMC.run` compiles its initialisation anew on every call (new closures each
time), and compiled code is never freed: a process that sampled a few hundred posteriors
ran out of memory maps. Here the model's potential takes the data, the prior boxes, the
fixed values and the solver's arrays as arguments, so one compilation per structure
(grid, which parameters are free, the solver's type, the chain settings) serves every
data set and every box; the compiled functions are kept in a small cache.
"""

import dataclasses
import math
import os
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from numpyro.handlers import seed
from numpyro.infer.hmc import hmc
from numpyro.infer.util import _get_model_transforms, get_potential_fn
from tqdm.auto import tqdm

from .._parallel import thread_pool
from .._physics._grid import TimeGrid
from ._model import Priors, chain_model

_SEGMENTS = 20  # a progress-bar tick per segment of the run


@dataclasses.dataclass(frozen=True)
class NUTS:
    """The NUTS sampler and its settings, passed to `sample_posterior` and `calibrate` as
    `sampler=` (the way a forward model is passed as `solver=`).

    **Arguments:**

    - `chains`, `warmup`, `draws`: chains, and warm-up and kept iterations per chain.
    - `target_accept`: the step-size adaptation's target acceptance probability.
    - `chain_method`: `"sequential"`, `"vectorized"`, `"parallel"` (one chain per JAX
      device), `"threads"` (one chain per thread, on a CPU: the chains run side by side
      on the cores, each at its own pace), or `"auto"`: `"parallel"` when there are at
      least `chains` devices, else `"threads"` on a CPU and `"vectorized"` on a GPU.
      Vectorized chains move in step: every NUTS iteration costs what the chain with the
      longest trajectory needs, so on a CPU they are slower than threads (4 chains x
      (500 + 500) of the default 4-spin posterior: 3.7 s vectorized, 1.4 s in threads,
      1.5 s parallel on four host devices; 2 cores, 2026-12-01).
      (`calibrate` runs its chains in threads on a CPU, vectorized on a GPU.)

    The sampler is compiled once per structure (grid, free parameters, solver type and
    these settings) and reused by later calls, whatever the data and boxes.
    """

    chains: int = 4
    warmup: int = 1000
    draws: int = 1000
    target_accept: float = 0.9
    chain_method: str = "auto"

    def __post_init__(self):
        for name in ("chains", "warmup", "draws"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"NUTS: `{name}` must be a positive int, got {value!r}.")
        if not (isinstance(self.target_accept, int | float) and 0 < self.target_accept < 1):
            raise ValueError(
                f"NUTS: `target_accept` must be between 0 and 1, got {self.target_accept!r}."
            )
        if self.chain_method not in _METHODS:
            raise ValueError(
                "NUTS: `chain_method` must be 'auto', 'sequential', 'vectorized', 'parallel' "
                f"or 'threads', got {self.chain_method!r}."
            )

    def resolved_chain_method(self) -> str:
        """`chain_method` with `"auto"` decided, checked against the devices JAX has."""
        method = self.chain_method
        if method == "auto":
            method = "parallel" if jax.local_device_count() >= self.chains > 1 else _one_device()
        if method == "parallel" and jax.local_device_count() < self.chains:
            raise ValueError(
                f"chain_method='parallel' needs {self.chains} devices, JAX has "
                f"{jax.local_device_count()}; call `bn.use_cpu_cores()` first or use "
                "'vectorized'."
            )
        return method


_METHODS = ("auto", "sequential", "vectorized", "parallel", "threads")


def _one_device() -> str:
    """How chains share one device: threads on a CPU, vectorized elsewhere."""
    return "threads" if jax.default_backend() == "cpu" else "vectorized"


def one_device_method(sampler: "NUTS") -> str:
    """`sampler.chain_method` for chains on one device (`calibrate`): "auto" resolved."""
    return _one_device() if sampler.chain_method == "auto" else sampler.chain_method


def check_sampler(sampler) -> "NUTS":
    if not isinstance(sampler, NUTS):
        raise ValueError(
            f"Argument `sampler` must be a `bn.NUTS(...)`, got {sampler!r}. Give the chain "
            "settings there: `sampler=bn.NUTS(chains=4, warmup=1000, draws=1000)`."
        )
    return sampler


class _Boxes(NamedTuple):
    """`Priors` as arrays (what the model reads), so that boxes are traced, not baked in."""

    offsets_hz: jax.Array
    j_hz: jax.Array
    sigma_scale: jax.Array
    fixed: dict
    per_bond: bool


@dataclasses.dataclass(frozen=True)
class Structure:
    """What a compiled sampler depends on (hashable)."""

    grid: TimeGrid
    n_spins: int
    per_bond: bool
    fixed: tuple
    observe_iz1: bool
    marginal_sigma: bool
    model_error: bool
    solver: object  # the solver's static part (treedef and non-array leaves)
    chains: int
    warmup: int
    draws: int
    chain_method: str
    target_accept: float


class Sampler:
    """The jitted pieces of one structure's NUTS: start, advance a segment, constrain."""

    def __init__(self, s: Structure, solver_static, example: tuple, model=None):
        """`model`: any NumPyro model of the arguments `example` (the chain's by
        default); `s` needs the chain settings (`chains`, `warmup`, `draws`,
        `chain_method`, `target_accept`) and is the cache's key."""
        self.s = s
        self._compiled = False

        def chain(mx, my, iz1, boxes, solver_arrays, model_error):
            priors = _Boxes(**boxes, per_bond=s.per_bond)
            chain_model(
                s.grid,
                priors,
                eqx.combine(solver_arrays, solver_static),
                mx,
                my,
                iz1,
                observe_iz1=s.observe_iz1,
                marginal_sigma=s.marginal_sigma,
                model_error=model_error,
            )

        model = chain if model is None else model

        # What `numpyro.infer.util.initialize_model` does, without its search for valid
        # initial values (a compilation of the potential's gradient that we never use:
        # the chains start at the fit).
        seeded = seed(model, jax.random.PRNGKey(0))
        transforms, replay, _, _ = _get_model_transforms(seeded, example, {})
        potential_gen, postprocess_gen = get_potential_fn(
            model, transforms, replay_model=replay, dynamic_args=True, model_args=example
        )
        init_kernel, sample_kernel = hmc(potential_fn_gen=potential_gen, algo="NUTS")
        total = s.warmup + s.draws
        self.segment = math.ceil(total / min(_SEGMENTS, total))
        self.n_segments = math.ceil(total / self.segment)

        def start(key, args, z0, inverse_mass):
            return init_kernel(
                z0,
                num_warmup=s.warmup,
                inverse_mass_matrix=inverse_mass,
                dense_mass=True,
                regularize_mass_matrix=False,
                target_accept_prob=s.target_accept,
                model_args=args,
                rng_key=key,
            )

        def advance(state, args):
            def step(state, _):
                state = sample_kernel(state, model_args=args)
                stats = {
                    "diverging": state.diverging,
                    "acceptance_rate": state.accept_prob,
                    "n_steps": state.num_steps,
                    "lp": -state.potential_energy,
                    "energy": state.energy,
                    "step_size": state.adapt_state.step_size,
                }
                return state, (state.z, stats)

            return jax.lax.scan(step, state, None, length=self.segment)

        def constrain(args, zs):
            # The model runs again for every draw (for `rss`): in batches, not one `vmap`
            # over all draws, whose traces and tables would not fit in memory for a large
            # forward model.
            return jax.lax.map(postprocess_gen(*args), zs, batch_size=16)

        if s.chain_method == "parallel":
            self.start = jax.pmap(start, in_axes=(0, None, 0, None))
            self.advance = jax.pmap(advance, in_axes=(0, None))
            self.constrain = jax.pmap(constrain, in_axes=(None, 0))
        elif s.chain_method == "sequential":
            self.start = jax.jit(
                lambda k, a, z, m: jax.lax.map(lambda kz: start(kz[0], a, kz[1], m), (k, z))
            )
            self.advance = jax.jit(lambda st, a: jax.lax.map(lambda x: advance(x, a), st))
            self.constrain = jax.jit(jax.vmap(constrain, in_axes=(None, 0)))
        else:
            self.start = jax.jit(jax.vmap(start, in_axes=(0, None, 0, None)))
            self.advance = jax.jit(jax.vmap(advance, in_axes=(0, None)))
            self.constrain = jax.jit(jax.vmap(constrain, in_axes=(None, 0)))

    def run(self, key, args, z0, inverse_mass, *, progress_bar: bool = False, desc: str = "NUTS"):
        """Draws `(chains, draws)` of every site (constrained), and the sampler's stats."""
        chains = len(jax.tree.leaves(z0)[0])
        keys = jax.random.split(key, chains)
        total = self.n_segments * self.segment * chains
        with tqdm(total=total, disable=not progress_bar, desc=desc) as bar:
            if self.s.chain_method != "threads":
                tick = lambda: bar.update(chains * self.segment)  # noqa: E731
                return self._run(keys, args, z0, inverse_mass, tick)
            # One chain per thread, each compiled for one chain (here, before the threads
            # start, not in each of them at once): JAX lets go of Python while a compiled
            # function runs, so the chains share the cores, each at its own pace.
            one = [jax.tree.map(lambda v, i=i: v[i : i + 1], z0) for i in range(chains)]
            self._compile(keys[:1], args, one[0], inverse_mass)
            outs = thread_pool().map(
                lambda i: self._run(
                    keys[i : i + 1], args, one[i], inverse_mass, lambda: bar.update(self.segment)
                ),
                range(chains),
            )
            draws, stats = zip(*outs, strict=True)
        return tuple(jax.tree.map(lambda *a: np.concatenate(a), *part) for part in (draws, stats))

    def _compile(self, keys, args, z0, inverse_mass):
        """Compile start, advance and constrain (once: one structure, one chain's shapes)."""
        if self._compiled:
            return
        start = self.start.lower(keys, args, z0, inverse_mass)
        start.compile()
        self.advance.lower(start.out_info, args).compile()
        draws = jax.tree.map(
            lambda v: jax.ShapeDtypeStruct((v.shape[0], self.s.draws, *v.shape[1:]), v.dtype), z0
        )
        self.constrain.lower(args, draws).compile()
        self._compiled = True

    def _run(self, keys, args, z0, inverse_mass, tick):
        s = self.s
        state = self.start(keys, args, z0, inverse_mass)
        zs, stats = [], []
        for _ in range(self.n_segments):
            state, (z, st) = self.advance(state, args)
            # JAX dispatches asynchronously: wait, or the bar runs ahead of the work.
            jax.block_until_ready(st)
            zs.append(z)
            stats.append(st)
            tick()
        cut = slice(s.warmup, s.warmup + s.draws)
        z = jax.tree.map(lambda *a: jnp.concatenate(a, axis=1)[:, cut], *zs)
        stats = jax.tree.map(lambda *a: np.concatenate(a, axis=1)[:, cut], *stats)
        draws = self.constrain(args, z)
        return {k: np.asarray(v) for k, v in draws.items()}, stats


_CACHE: dict = {}
_CACHE_SIZE = 8


def sampler_for(s, solver_static, example: tuple, model=None) -> Sampler:
    """The cached `Sampler` of structure `s` (built and compiled on first use, traced
    with the model arguments `example`: any of the structure's, with values the solver
    accepts; a surrogate checks the values it sees outside `jit`). `model`: another
    model than the chain's, with `s` a hashable key that says all it depends on."""
    if s.chain_method == "threads":  # compiled for one chain, whatever their number
        s = dataclasses.replace(s, chains=1)
    if s not in _CACHE:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[s] = Sampler(s, solver_static, example, model)
    return _CACHE[s]


def prepare(
    grid: TimeGrid,
    priors: Priors,
    solver,
    data_arrays: tuple,
    *,
    marginal_sigma: bool,
    model_error,
    chains: int,
    warmup: int,
    draws: int,
    chain_method: str,
    target_accept: float,
):
    """The sampler for this problem's structure, and the arguments of its model."""
    arrays, static = eqx.partition(solver, eqx.is_array)
    leaves, treedef = jax.tree.flatten(static)
    fixed = {k: jnp.asarray(v, float) for k, v in priors.fixed.items()}
    s = Structure(
        grid=grid,
        n_spins=priors.n_spins,
        per_bond=priors.per_bond,
        fixed=tuple(sorted((k, tuple(v.shape)) for k, v in fixed.items())),
        observe_iz1=data_arrays[2] is not None,
        marginal_sigma=marginal_sigma,
        model_error=model_error is not None,
        solver=(treedef, tuple(leaves)),
        chains=chains,
        warmup=warmup,
        draws=draws,
        chain_method=chain_method,
        target_accept=float(target_accept),
    )
    boxes = {
        "offsets_hz": jnp.asarray(priors.offsets_hz),
        "j_hz": jnp.asarray(priors.j_hz),
        "sigma_scale": jnp.asarray(priors.sigma_scale, float),
        "fixed": fixed,
    }
    args = (*data_arrays, boxes, arrays, model_error)
    return sampler_for(s, static, args), args


_LOGISTIC_VAR = math.pi**2 / 3  # variance of a uniform box's prior in z (logistic)
_EDGE = 1e-4  # how close (a fraction of the box) a start may come to a box's edge


def laplace_z(x, cov, lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """A Laplace approximation in Hz (mode `x`, covariance `cov`, boxes `[lo, hi]`, all in
    one parameter order) carried to NUTS's unconstrained coordinates
    $z = \\operatorname{logit}((x - lo) / (hi - lo))$: the centre and covariance in $z$.

    The map is linearised at the mode, which fails near an edge: a mode on the edge has an
    infinite $dz/dx$, and a box narrower than the Laplace sd gets a covariance in $z$ far
    wider than the posterior's (a 2e-4 Hz box under a 0.13 Hz sd: a variance of 5e17 in
    $z$, and NUTS's first few hundred warmup steps at its largest trees). So the centre
    stays at least 1e-4 of the box inside it, and every variance in $z$ is capped at the
    uniform prior's own there ($\\pi^2/3$, the logistic's), with the correlations kept.
    """
    x, lo, hi = (np.asarray(a, float) for a in (x, lo, hi))
    u = np.clip((x - lo) / (hi - lo), _EDGE, 1 - _EDGE)
    centre = np.log(u) - np.log1p(-u)
    jac = 1.0 / (u * (1 - u) * (hi - lo))
    cov_z = np.asarray(cov, float) * np.outer(jac, jac)
    shrink = np.minimum(1.0, np.sqrt(_LOGISTIC_VAR / np.maximum(np.diag(cov_z), 1e-300)))
    return centre, cov_z * np.outer(shrink, shrink)


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
