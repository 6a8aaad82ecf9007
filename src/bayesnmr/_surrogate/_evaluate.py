"""Held-out accuracy, long-time stability and the stability figure of a surrogate."""

import numpy as np

from .._physics._simulate import simulate
from .._physics._system import SpinChain
from ._data import exact_traces
from ._solver import Surrogate
from ._train import _predict, iz1_deviation_errors, relative_errors

OBSERVABLES = ("mx", "my", "iz1")


def evaluate_surrogate(
    surrogate: Surrogate,
    n_samples: int = 1000,
    seed: int = 0,
    thetas=None,
    traces=None,
    progress_bar: bool = False,
) -> dict:
    """Compare a surrogate with the exact solver on held-out parameters.

    **Arguments:**

    - `surrogate`: the `Surrogate`.
    - `n_samples`, `seed`: draw this many parameter vectors uniformly from its domain
      (a seed the training data do not use) and solve them exactly; or
    - `thetas`, `traces`: evaluate on these instead (from `load_training_data`, say).

    **Returns:** a dict: for each observable the `median`, `p95` and `max` of the relative
    L2 error over the trace; the same for `iz1 - 1` (`iz1` is about 98% constant, which
    flatters a relative error); and `stability`: for each observable the RMS error over
    the last third of the trace divided by that over the first third.
    """
    if not isinstance(surrogate, Surrogate):
        raise ValueError(
            f"Argument `surrogate` must be a Surrogate, got {type(surrogate).__name__}."
        )
    if thetas is None:
        thetas, traces = held_out(surrogate, n_samples, seed, progress_bar)
    thetas = np.asarray(thetas)
    if traces is None:
        traces = exact_traces(thetas, surrogate.grid, progress_bar=progress_bar)
    pred = _predict(surrogate.net, thetas.astype(np.float32))
    return accuracy_report(pred, np.asarray(traces))


def held_out(surrogate: Surrogate, n_samples: int, seed: int, progress_bar: bool = False):
    """`n_samples` parameter vectors drawn uniformly from the surrogate's domain (with a
    seed stream no training data use) and their exact traces."""
    _check_n_samples(n_samples)
    rng = np.random.default_rng([seed, 999_983])
    lo, hi = surrogate.domain.lower, surrogate.domain.upper
    thetas = lo + (hi - lo) * rng.random((n_samples, lo.size))
    return thetas, exact_traces(thetas, surrogate.grid, progress_bar=progress_bar)


def _check_n_samples(n_samples) -> None:
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"Argument `n_samples` must be a positive integer, got {n_samples!r}.")


def accuracy_report(pred: np.ndarray, true: np.ndarray) -> dict:
    """The figures of `evaluate_surrogate` from predicted and exact `(n, 3, T)` traces."""
    err = relative_errors(pred, true)
    out = {"n": int(len(true))}
    for i, name in enumerate(OBSERVABLES):
        out[name] = _stats(err[:, i])
    out["iz1_minus_1"] = _stats(iz1_deviation_errors(pred, true))
    t = true.shape[-1]
    first, last = slice(0, t // 3), slice(t - t // 3, t)
    diff = np.asarray(pred, np.float64) - true
    out["stability"] = {
        name: float(np.sqrt(np.mean(diff[:, i, last] ** 2) / np.mean(diff[:, i, first] ** 2)))
        for i, name in enumerate(OBSERVABLES)
    }
    return out


def _stats(x: np.ndarray) -> dict:
    return {
        "median": float(np.nanmedian(x)),
        "p95": float(np.nanpercentile(x, 95)),
        "max": float(np.nanmax(x)),
    }


def plot_stability(surrogate: Surrogate, theta, thetas=None, traces=None, title: str | None = None):
    """The paper's Figure 2: mx, my, iz1 of one held-out chain over the whole trace,
    exact solid and surrogate dashed; below, the RMS error against time over a test set
    (`thetas`, `traces`; omitted if not given). Returns the matplotlib figure."""
    import matplotlib.pyplot as plt

    n = surrogate.n_spins
    theta = np.asarray(theta, np.float64)
    chain = SpinChain(theta[:n], theta[n])
    exact = simulate(chain, surrogate.grid)
    approx = simulate(chain, surrogate.grid, solver=surrogate)
    t_ms = surrogate.grid.times * 1e3
    rows = 4 if thetas is not None else 3
    fig, axes = plt.subplots(rows, 1, figsize=(8, 2.1 * rows), sharex=True)
    for ax, name in zip(axes, OBSERVABLES, strict=False):
        ax.plot(t_ms, np.asarray(getattr(exact, name)), "k-", lw=1.2, label="exact")
        ax.plot(t_ms, np.asarray(getattr(approx, name)), "C1--", lw=1.2, label="surrogate")
        ax.set_ylabel(name)
    axes[0].legend(loc="upper right", fontsize=8)
    nu = ", ".join(f"{v:.1f}" for v in theta[:n])
    axes[0].set_title(title or f"held-out chain: offsets [{nu}] Hz, J = {theta[n]:.2f} Hz")
    if thetas is not None:
        pred = _predict(surrogate.net, np.asarray(thetas, np.float32))
        rms = np.sqrt(np.mean((pred - np.asarray(traces)) ** 2, axis=0))
        for i, name in enumerate(OBSERVABLES):
            axes[3].semilogy(t_ms, rms[i], label=name)
        axes[3].set_ylabel("RMS error")
        axes[3].legend(fontsize=8, ncol=3)
        axes[3].set_title(f"error against time over {len(thetas)} held-out chains", fontsize=9)
    axes[-1].set_xlabel("t (ms)")
    fig.tight_layout()
    return fig
