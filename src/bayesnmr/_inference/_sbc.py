"""Simulation-based calibration (Talts et al. 2018) of the NUTS posterior."""

import dataclasses
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from .._io import provenance
from .._physics._exact import ExactSolver
from .._physics._grid import TimeGrid
from .._physics._solver import AbstractSolver
from .._physics._system import SpinChain
from .._physics._system_file import SystemSpec
from ._data import synthesize
from ._model import Priors, check_model_error
from ._sampler import NUTS, check_sampler
from ._sbc_result import Checkpoint, SBCResult, rank_record


def calibrate(
    grid: TimeGrid,
    priors: Priors,
    *,
    solver: AbstractSolver | None = None,
    sampler: NUTS = NUTS(chains=1, warmup=300, draws=300),  # noqa: B008 (frozen)
    n_datasets: int = 200,
    rank_draws: int = 99,
    bins: int = 10,
    observe_iz1: bool = True,
    model_error=None,
    seed: int = 0,
    batch: int = 10,
    scheduler: str | None = None,
    progress_bar: bool = True,
    start: str = "fit",
    correct: bool | None = None,
    fallback: bool = True,
    checkpoint: str | os.PathLike | None = None,
    sigma: float | None = None,
) -> SBCResult:
    """Simulation-based calibration of the NUTS posterior (Talts et al. 2018).

    For each of `n_datasets` data sets: draw the parameters from the priors, simulate noisy
    data with the exact solver (so a surrogate is calibrated against the truth it
    approximates), sample the posterior with NUTS using `solver`, and record the rank of
    each true value among `rank_draws` thinned posterior draws, and whether the central
    50 % and 90 % intervals hold it. If the posterior is calibrated, the ranks are uniform
    and the intervals cover 50 % and 90 % of the truths.

    **Arguments:**

    - `grid`, `priors`: the experiment. The noise must be known: `priors.fixed` must
      hold `sigma` (the Jeffreys prior that `sample_posterior` integrates over is
      improper, so there is nothing to draw it from).
    - `solver`: the forward model of the posterior (exact by default, or a surrogate,
      or `"local"`: a problem-local surrogate trained for each data set, as
      `sample_posterior(solver="local")` does); `model_error`: its error as a noise
      level, `(3, T)`, from `bn.surrogate_error`.
    - `correct`: correct a surrogate's posterior to the exact one, as `sample_posterior`
      does (default: whenever the solver is approximate); the result then records each
      data set's Pareto k-hat and whether the correction held (`SBCResult.pareto_k`,
      `SBCResult.corrected`: k-hat within its threshold and at least
      min(100, chains * draws / 4) effective draws).
    - `fallback`: what a failed correction leads to, as in `sample_posterior` (default
      `True`, what a user gets): the data set is sampled again with a problem-local
      surrogate (corrected; when the solver was not already one), and if that fails too,
      with exact NUTS (N <= 8); `SBCResult.fallback` records which. `False` ranks the
      failed correction's draws as they are (`SBCResult.corrected` counts them).
    - `priors` may also be a `SystemSpec` (from `bn.load_spin_system`): any network of
      couplings, its free shifts and couplings drawn from their boxes; give the known
      noise as `sigma`. The chains start at the true values (there is no global search
      for networks), in one process (no `scheduler`), with the exact solver.
    - `checkpoint`: a JSON file that holds every finished data set, written atomically
      as they come; a rerun of the same calibration with the same file continues where
      it stopped (a different calibration is refused).
    - `sampler`: NUTS per data set (default `bn.NUTS(chains=1, warmup=300, draws=300)`;
      the chains run in threads on a CPU, vectorized on a GPU); `rank_draws` of the
      `chains * draws` draws, evenly spaced, are ranked.
    - `seed`: data set `k` draws everything from the seed `(seed, k)`, so a study gives
      the same data sets whatever the batching, the scheduler or the forward model: two
      calibrations with the same seed and priors see the same data (`SBCResult.compare`).
    - `batch`: data sets per task; one compiled sampler serves every task of a process.
    - `scheduler`: `None` to run here; `"local"` for a Dask `LocalCluster` with one
      worker process per core; or a Dask scheduler's address (the optional
      `bayesnmr[dask]` extra, as for `generate_data`).
    - `progress_bar`: a progress bar over data sets.

    - `start`: where the chains start: `"fit"` (the default, as `sample_posterior`
      does: the most probable mode of `bn.fit` with 8 starts in the prior boxes), or
      `"truth"` (asks only whether the posterior is right, not whether it is found).

    One compiled sampler (shared with `sample_posterior`) serves every data set of a
    process.

    **Returns:** an `SBCResult` (coverage, p-values, `plot()`, `save()`, `compare()`).
    """
    if isinstance(priors, SystemSpec):
        from ._network_sbc import calibrate_network

        if solver is not None or model_error is not None or scheduler is not None:
            raise ValueError(
                "calibrate: a network of couplings is calibrated with the exact solver, in "
                "this process: leave `solver`, `model_error` and `scheduler` at None."
            )
        sampler = check_sampler(sampler)
        if not (isinstance(rank_draws, int) and 1 <= rank_draws <= sampler.chains * sampler.draws):
            raise ValueError(
                f"Argument `rank_draws` must be between 1 and chains * draws, got {rank_draws!r}."
            )
        return calibrate_network(
            grid, priors, sigma=sigma, sampler=sampler, n_datasets=n_datasets,
            rank_draws=rank_draws, bins=bins, observe_iz1=observe_iz1, seed=seed,
            progress_bar=progress_bar, checkpoint=checkpoint,
        )  # fmt: skip
    if "sigma" not in priors.fixed:
        raise ValueError(
            "calibrate: fix the noise, e.g. `Priors(..., fixed={'sigma': 0.05})`: data sets "
            "are simulated at a known sigma."
        )
    sampler = check_sampler(sampler)
    if sampler.chain_method not in ("auto", "vectorized", "threads"):
        raise ValueError(
            "calibrate runs its chains on one device: pass `bn.NUTS(chain_method='auto')` "
            "(threads on a CPU, vectorized on a GPU), 'threads' or 'vectorized', not "
            f"{sampler.chain_method!r}."
        )
    chains, draws = sampler.chains, sampler.draws
    for name, value in (("n_datasets", n_datasets), ("batch", batch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"Argument `{name}` must be a positive int, got {value!r}.")
    if not (isinstance(rank_draws, int) and 1 <= rank_draws <= chains * draws):
        raise ValueError(
            f"Argument `rank_draws` must be between 1 and chains * draws = {chains * draws}, "
            f"got {rank_draws!r}."
        )
    local = isinstance(solver, str)
    if local and solver != "local":
        raise ValueError(f"Argument `solver` must be a solver object or 'local', got {solver!r}.")
    if not local:
        priors.check_domain(solver)
    check_model_error(model_error, grid)
    if not _names(priors):
        raise ValueError("calibrate: every parameter is fixed; there is nothing to calibrate.")
    if start not in ("fit", "truth"):
        raise ValueError(f"Argument `start` must be 'fit' or 'truth', got {start!r}.")
    approximate = local or bool(getattr(solver, "approximate", False))
    correct = approximate if correct is None else bool(correct) and approximate
    job = _Job(
        grid, priors, solver, model_error, sampler, rank_draws, observe_iz1, seed, start,
        correct, bool(fallback) and correct,
    )  # fmt: skip
    t0 = time.perf_counter()
    store = Checkpoint(checkpoint, job.fingerprint()) if checkpoint is not None else None
    records: dict[int, dict] = {} if store is None else store.load()
    todo = [k for k in range(n_datasets) if k not in records]
    tasks = [todo[i : i + batch] for i in range(0, len(todo), batch)]

    def keep(k, rec):
        records[k] = rec
        if store is not None:
            store.save(records)

    with tqdm(
        total=n_datasets, initial=n_datasets - len(todo), disable=not progress_bar, desc="SBC",
        unit="data set",
    ) as bar:  # fmt: skip
        if scheduler is None:
            for ks in tasks:  # each data set kept (and checkpointed) as it finishes
                _run_task(job, ks, lambda k, rec: (keep(k, rec), bar.update()))
        else:
            from .._parallel import dask_client, with_precision

            # Processes, not threads: NumPyro's effect handlers are global to a process.
            with dask_client(scheduler, workers=None, processes=True) as client:
                from dask.distributed import as_completed

                # Hold no future once its result is here: Dask would recompute every
                # held one if a worker died.
                task = with_precision(_run_task)
                done = as_completed(client.map(task, [job] * len(tasks), tasks, pure=False))
                for fut in done:
                    for k, rec in fut.result():
                        keep(k, rec)
                        bar.update()
                    fut.release()
    made = provenance() | {
        "seconds": time.perf_counter() - t0,
        "resumed": n_datasets - len(todo),
        "settings": job.fingerprint() | {"n_datasets": n_datasets, "batch": batch},
    }
    rows = [records[k] for k in range(n_datasets)]
    return SBCResult.from_records(
        _names(priors), rows, rank_draws, bins, made, correct=correct, fallback=job.fallback
    )


@dataclasses.dataclass(frozen=True)
class _Job:
    """Everything a calibration task needs (picklable, for Dask)."""

    grid: TimeGrid
    priors: Priors
    solver: AbstractSolver | None
    model_error: object
    sampler: NUTS
    rank_draws: int
    observe_iz1: bool
    seed: int
    start: str
    correct: bool = False
    fallback: bool = False

    def fingerprint(self) -> dict:
        """What makes two calibrations the same (for resuming from a checkpoint)."""
        solver = self.solver
        name = solver if isinstance(solver, str) else type(solver or ExactSolver()).__name__
        return {
            "grid": [self.grid.n, self.grid.dt],
            "offsets_hz": np.asarray(self.priors.offsets_hz).tolist(),
            "j_hz": np.asarray(self.priors.j_hz).tolist(),
            "fixed": {k: np.asarray(v).tolist() for k, v in sorted(self.priors.fixed.items())},
            "solver": name,
            "solver_info": getattr(solver, "info", ""),
            "model_error": self.model_error is not None,
            "settings": [
                self.sampler.chains,
                self.sampler.warmup,
                self.sampler.draws,
                self.rank_draws,
                self.observe_iz1,
            ],
            "target_accept": self.sampler.target_accept,
            "seed": self.seed,
            "start": self.start,
            "correct": self.correct,
            "fallback": self.fallback,
        }


def _names(priors: Priors) -> list[str]:
    jb = priors.j_hz.reshape(-1, 2)
    offsets = (
        [f"offsets_hz[{i}]" for i in range(priors.n_spins)]
        if "offsets_hz" not in priors.fixed
        else []
    )
    js = [f"j_hz[{i}]" for i in range(jb.shape[0])] if priors.per_bond else ["j_hz"]
    return offsets + (js if "j_hz" not in priors.fixed else [])


def _run_task(job: _Job, ks: list[int], done=None) -> list[tuple[int, dict]]:
    """Calibrate data sets `ks` with the calibration's compiled sampler; `done(k, record)`
    is called as each one finishes."""
    from ._descent import Space, loss_hz
    from ._fit import fit
    from ._local import local_model
    from ._modes import laplace_modes

    priors, chains, draws = job.priors, job.sampler.chains, job.sampler.draws
    local = isinstance(job.solver, str)
    free_offsets = "offsets_hz" not in priors.fixed
    free_j = "j_hz" not in priors.fixed
    jb = priors.j_hz.reshape(-1, 2)
    keep = np.linspace(0, chains * draws - 1, job.rank_draws).astype(int)
    model_error = check_model_error(job.model_error, job.grid)
    space = Space(priors)
    out = []
    with jax.numpy_rank_promotion("allow"):  # NumPyro's initialisation broadcasts
        for k in ks:
            rng = np.random.default_rng([job.seed, k])
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
                job.grid,
                float(priors.fixed["sigma"]),
                seed=int(rng.integers(2**31)),
                observe_iz1=job.observe_iz1,
            )
            truth = np.concatenate(
                ([offsets] if free_offsets else []) + ([np.atleast_1d(j)] if free_j else [])
            )
            fit_solver = None if local else job.solver
            if job.start == "fit":
                mode = fit(data, priors, solver=fit_solver, n_starts=8, seed=k).modes[0]
            else:
                x = space.clip(truth)[None]
                plan, consts = space.plan(data, 1), space.consts(data)
                loss = np.array([float(loss_hz(plan, consts, fit_solver, None, x[0]))])
                mode = laplace_modes(data, space, fit_solver, x, loss)[0]
            arrays = tuple(
                None if a is None else jnp.asarray(a) for a in (data.mx, data.my, data.iz1)
            )

            run_solver, run_priors = job.solver, priors
            if local:
                run_solver, run_priors = local_model(
                    mode, priors, job.grid, seed=k, progress_bar=False
                )
            # The same data, start and noise for every posterior of this data set.
            ctx = (job, data, arrays, mode, model_error, rng)
            samples = _posterior(ctx, run_solver, run_priors)
            extra = {}
            if job.correct:
                samples, c = _corrected(ctx, samples, run_solver, run_priors)
                extra = {"pareto_k": c.pareto_k, "corrected": c.ok}
                if job.fallback:
                    extra["fallback"] = ""
                    if not c.ok:  # as sample_posterior: around the exact fit's mode,
                        exact_mode = fit(data, priors, n_starts=8, seed=k).modes[0]
                        ctx = (job, data, arrays, exact_mode, model_error, rng)
                    if not c.ok and not local:  # a problem-local surrogate,
                        loc_solver, loc_priors = local_model(
                            exact_mode, priors, job.grid, seed=k, progress_bar=False
                        )
                        retry = _posterior(ctx, loc_solver, loc_priors)
                        retry, c = _corrected(ctx, retry, loc_solver, loc_priors)
                        if c.ok:
                            samples, extra["fallback"] = retry, "local"
                    if not extra["fallback"] and not c.ok:
                        if priors.n_spins <= 8:  # then exact NUTS, where it takes minutes
                            samples, extra["fallback"] = _posterior(ctx, None, priors), "exact"
                        else:
                            extra["fallback"] = "none"
            cols = []
            if free_offsets:
                cols.append(np.asarray(samples["offsets_hz"]).reshape(-1, priors.n_spins))
            if free_j:
                cols.append(np.asarray(samples["j_hz"]).reshape(chains * draws, -1))
            post = np.concatenate(cols, axis=1)
            out.append((k, rank_record(post, truth, keep) | extra))
            if done is not None:
                done(*out[-1])
    return out


def _posterior(ctx, run_solver, run_priors):
    """NUTS draws of one data set's posterior under `run_solver` and `run_priors`."""
    from ._chains import chain_starts
    from ._sampler import one_device_method, prepare

    job, _, arrays, mode, model_error, rng = ctx
    compiled, args = prepare(  # compiled once per structure and process
        job.grid,
        run_priors,
        run_solver,
        arrays,
        marginal_sigma=False,
        model_error=model_error,
        chains=job.sampler.chains,
        warmup=job.sampler.warmup,
        draws=job.sampler.draws,
        chain_method=one_device_method(job.sampler),
        target_accept=job.sampler.target_accept,
    )
    z0, inverse_mass = chain_starts(run_priors, mode, job.sampler.chains, False, rng)
    key = jax.random.PRNGKey(int(rng.integers(2**31)))
    return compiled.run(key, args, z0, inverse_mass)[0]


def _corrected(ctx, samples, run_solver, run_priors):
    """The draws corrected to the exact posterior (resampled), and the correction."""
    from ._correct import correct as correct_draws
    from ._correct import resample

    job, data, _, _, model_error, rng = ctx
    c = correct_draws(
        data, run_priors, samples, run_solver, ExactSolver(), marginal=False,
        model_error=model_error, rng=rng,
        min_ess=min(100.0, 0.25 * job.sampler.chains * job.sampler.draws),
    )  # fmt: skip
    return resample(samples, c, False, 0, rng), c
