"""Point estimates by gradient descent (optax L-BFGS): a global search from the data alone,
or a descent from a given start."""

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from .._physics._solver import AbstractSolver
from .._physics._system_file import SystemSpec
from ._data import Dataset
from ._descent import Space, chain_of, descend_stage, split_args, split_rows, to_hz
from ._model import Priors, check_chain_data
from ._modes import Mode, laplace_modes
from ._search import search


@dataclasses.dataclass(frozen=True)
class FitResult:
    """A point estimate.

    **Fields:** `offsets_hz`, `j_hz` (the estimate, in Hz), `loss` (the final
    least-squares misfit $\\frac12\\sum r^2$), `seconds` (wall time: of the whole search,
    compilation included; of the descent alone, after compilation, for a fit from
    `init`), `sigma` (the noise estimated from the residuals), `names` (the free
    parameters), `covariance` and `stderr` (the Laplace approximation over the free
    parameters, in the order of `names`), and `modes`: every competing solution found
    (this one first) with its Laplace posterior probability (see `Mode`).

    A fit from `init` also has `loss_history` (the misfit per step of the winning
    start), `path` (its free parameters after each step), `n_steps` and `start` (which
    start won); a global search has `n_starts` descents.
    """

    offsets_hz: np.ndarray
    j_hz: np.ndarray
    loss: float
    seconds: float
    sigma: float
    names: list
    covariance: np.ndarray | None = None
    modes: tuple[Mode, ...] = ()
    n_steps: int = 0
    start: int = 0
    loss_history: np.ndarray | None = None
    path: np.ndarray | None = None
    n_starts: int = 0

    @property
    def stderr(self) -> np.ndarray | None:
        return None if self.covariance is None else np.sqrt(np.diag(self.covariance))

    def describe(self) -> str:
        """The competing solutions, one line each, most probable first."""
        lines = []
        for k, m in enumerate(self.modes):
            j = couplings_text(m.j_hz, 3)
            lines.append(
                f"mode {k}: p = {m.probability:.3g}, misfit {m.loss:.6g}, offsets "
                f"{np.round(m.offsets_hz, 3).tolist()} Hz, J {j} Hz"
            )
        return "\n".join(lines)


def couplings_text(j_hz, decimals: int):
    """Couplings for printing, rounded: a chain's as a list, a network's matrix as its
    coupled pairs `{"1-2": J}` (spins counted from 1)."""
    j = np.round(np.atleast_1d(np.asarray(j_hz, float)), decimals)
    if j.ndim == 2:
        return {f"{a + 1}-{b + 1}": float(j[a, b]) for a, b in np.argwhere(np.triu(j))}
    return j.tolist()


def fit(
    data: Dataset,
    priors: Priors | None = None,
    *,
    solver: AbstractSolver | None = None,
    init: dict | None = None,
    n_starts: int | None = None,
    steps: int = 25,
    broadening: tuple[float, ...] = (0.03, 0.1),
    seed: int = 0,
    laplace: bool = True,
    progress_bar: bool | None = None,
) -> FitResult:
    """Least-squares point estimate of the free parameters, by optax L-BFGS.

    The misfit of an FID oscillates in the parameters, with a false minimum every
    ~$1/T$ Hz, and the order of the spins along the chain is not known from the data,
    so one descent from a poor start stops in the wrong place.

    **Without `init`** (the default), `fit` searches globally from the data alone:
    candidate offsets from multiplet analysis of the spectrum, in every order along the
    chain that the prior boxes allow, and random starts on the spectrum's lines, are
    screened on the line-broadened misfit; the best `n_starts` are descended, first on
    broadened residuals (weights $e^{-t/\\tau}$ for each $\\tau$ in `broadening`), then
    on the data; the best solutions are reordered and descended again until the misfit
    stops improving (see docs/inference.md for the design and its measured success).

    **With `init`** (a dict of `offsets_hz` and/or `j_hz`), `fit` descends from it and
    from `n_starts - 1` random points of the boxes (8 starts by default). With
    `n_starts=1` and `broadening=()` it is a plain L-BFGS descent (the paper's
    experiment).

    **Arguments:**

    - `data`: the `Dataset`.
    - `priors`: the boxes to search (default `Priors.from_data(data)`: every offset
      anywhere in the spectral window, J in [0, 25] Hz). A `SystemSpec` (from
      `bn.load_spin_system`) fits any network of couplings: its free shifts and
      couplings (those with a box; tied ones share a parameter), by a global search
      from the data alone (the file's values are one candidate among many drawn from
      the spectrum's lines; 8 descents by default), or from `init` (a vector of the free
      parameters, in the order of `names`) and `n_starts - 1` random points of the
      boxes; with Laplace errors and every distinct optimum in `modes`.
    - `solver`: the forward model (the exact solver by default).
    - `n_starts`: descents (default 16 + 8 N for the global search).
    - `steps`: L-BFGS steps per stage; `broadening`: the stages' $\\tau$ in seconds.
    - `laplace`: compute the Laplace covariance and the modes' probabilities.
    - `progress_bar`: a bar over the search's stages (default: on a terminal only).

    The noise $\\sigma$ is not fitted; it is estimated from the residuals. When the FID
    alone is observed and the boxes are mirror-symmetric, a chain and its mirror image
    fit equally well; the search reports the one with $\\nu_1 \\le \\nu_N$.

    **Returns:** a `FitResult`, with every competing solution in `modes`.
    """
    if isinstance(priors, SystemSpec):  # any network of couplings, from a file
        from ._network import fit_network

        return fit_network(
            data, priors, solver=solver, init=init, n_starts=n_starts, steps=steps,
            broadening=tuple(broadening), seed=seed, laplace=laplace,
            progress_bar=progress_bar,
        )  # fmt: skip
    if priors is None:
        priors = Priors.from_data(data)
    check_chain_data(data, priors)
    if n_starts is None:
        n_starts = 8 if init is not None else 16 + 8 * priors.n_spins
    for name, value in (("n_starts", n_starts), ("steps", steps)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"Argument `{name}` must be a positive int, got {value!r}.")
    if any(not (np.isfinite(t) and t > 0) for t in broadening):
        raise ValueError(f"Argument `broadening` takes positive times in s, got {broadening}.")
    priors = priors.for_solver(solver)
    space = Space(priors)
    if not space.names:
        raise ValueError("Nothing to fit: every parameter is fixed in `priors.fixed`.")
    if init is None:
        t0 = time.perf_counter()
        xs, losses, n_descended = search(
            data,
            space,
            solver,
            n_starts=int(n_starts),
            steps=steps,
            broadening=tuple(broadening),
            seed=seed,
            progress_bar=progress_bar,
        )
        extra = {"n_starts": n_descended}
    else:
        xs, losses, t0, extra = _from_init(
            data, priors, space, solver, init, n_starts, steps, broadening, seed
        )
    seconds = time.perf_counter() - t0
    n_obs = data.grid.n * (2 if data.iz1 is None else 3)
    modes = tuple(laplace_modes(data, space, solver, xs, losses)) if laplace else ()
    chain = chain_of(space.plan(data, 1), space.consts(data), jnp.asarray(xs[0]))
    return FitResult(
        offsets_hz=np.asarray(chain.offsets_hz),
        j_hz=np.asarray(chain.j_hz),
        loss=float(losses[0]),
        seconds=seconds,
        sigma=float(np.sqrt(2 * float(losses[0]) / n_obs)),
        names=space.names,
        covariance=modes[0].covariance if modes else None,
        modes=modes,
        **extra,
    )


def _from_init(data, priors, space, solver, init, n_starts, steps, broadening, seed):
    """A descent from `init` and `n_starts - 1` random starts; the best one."""
    first = _first_start(priors, init)
    rng = np.random.default_rng(seed)
    randoms = rng.uniform(space.lo, space.hi, (n_starts - 1, len(space.names)))
    u0 = jnp.asarray(np.vstack([space.to_u(first)[None], space.to_u(randoms)])[:n_starts])
    plan = space.plan(data, steps)
    consts = space.consts(data)
    # Every stage (tau, then the data: tau = inf) is one call of one compiled program,
    # compiled first, so that `seconds` is the fit alone.
    taus = [jnp.asarray(t) for t in (*broadening, np.inf)]
    descend_stage.lower(*split_args((plan, consts, solver, taus[0], u0))[0]).compile()
    t0 = time.perf_counter()
    u, history, path = u0, [], []
    for tau in taus:
        u, final, hist, steps_u = split_rows(descend_stage, plan, consts, solver, tau, u)
        history.append(hist)
        path.append(steps_u)
    history, path = jnp.concatenate(history, axis=1), jnp.concatenate(path, axis=1)
    best = int(jnp.argmin(final))  # `final`: the last stage's, on the data
    x = np.asarray(to_hz(consts, u[best]))
    extra = {
        "loss_history": np.asarray(history[best]),
        "path": np.asarray(jax.vmap(lambda v: to_hz(consts, v))(path[best])),
        "n_steps": len(taus) * steps,
        "start": best,
    }
    return x[None], np.asarray(final[best])[None], t0, extra


def _first_start(priors: Priors, init: dict) -> np.ndarray:
    parts = []
    for key in ("offsets_hz", "j_hz"):
        if key in priors.fixed:
            continue
        if key == "j_hz" and key not in init:
            parts.append(priors.j_hz.reshape(-1, 2).mean(1))  # the box centre
            continue
        if key not in init:
            raise ValueError(
                f"Argument `init` needs `{key}` (it is free in the priors), got keys "
                f"{sorted(init)}."
            )
        parts.append(np.atleast_1d(np.asarray(init[key], np.float64)))
    return np.concatenate(parts)
