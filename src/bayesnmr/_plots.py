"""Figures of traces: FID, spectrum and local polarisation."""

import jax.numpy as jnp
import numpy as np

from ._physics._traces import Traces


def plot_traces(traces: Traces, *, reference: Traces | None = None, title: str | None = None):
    """A three-panel figure: the FID (`mx`, `my`), its spectrum, and `iz1`.

    **Arguments:**

    - `traces`: the `Traces` to draw (solid lines).
    - `reference`: optional second `Traces` drawn dashed on top, for comparisons.
    - `title`: an optional figure title.

    **Returns:** the matplotlib `Figure`.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(8, 8.5), constrained_layout=True)
    t_ms = traces.times * 1e3
    sets = [(traces, "-", "")] + ([(reference, "--", " (reference)")] if reference else [])
    for tr, style, label in sets:
        axes[0].plot(t_ms, np.asarray(tr.mx), style, lw=1, label=f"$m_x${label}")
        axes[0].plot(t_ms, np.asarray(tr.my), style, lw=1, label=f"$m_y${label}")
        spec = np.asarray(tr.spectrum()).real
        axes[1].plot(tr.frequencies_hz, spec, style, lw=1, label=f"Re spectrum{label}")
        axes[2].plot(t_ms, np.asarray(tr.iz1), style, lw=1.2, label=f"$I_{{1z}}${label}")
    spec = np.abs(np.asarray(traces.spectrum()))
    live = traces.frequencies_hz[spec > 0.02 * spec.max()]
    pad = 0.25 * (live.max() - live.min()) + 10.0
    axes[1].set_xlim(live.min() - pad, live.max() + pad)
    axes[0].set(xlabel="time (ms)", ylabel="$M_+$ (normalised)", title="FID")
    axes[1].set(xlabel="frequency (Hz)", ylabel="intensity", title="Spectrum (FFT of the FID)")
    axes[2].set(
        xlabel="time (ms)", ylabel=r"$\langle I_{1z}\rangle$", title="Local polarisation of spin 1"
    )
    for ax in axes:
        ax.legend(loc="upper right", fontsize=8)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def plot_predictive(dt, data, *, title: str | None = None):
    """Posterior-predictive FID, spectrum and iz1 (median and 90% band) over the data.

    **Arguments:** `dt`, a DataTree from `sample_posterior`; `data`, its `Dataset`.

    **Returns:** the matplotlib `Figure`.
    """
    import matplotlib.pyplot as plt

    pp = dt["posterior_predictive"]
    t_ms = data.grid.times * 1e3
    have_iz = data.iz1 is not None and "iz1" in pp
    fig, axes = plt.subplots(3 if have_iz else 2, 1, figsize=(8, 8), constrained_layout=True)

    def draws(name):
        arr = np.asarray(pp[name])
        return arr.reshape(-1, arr.shape[-1])

    mx, my = draws("mx"), draws("my")
    for ax, obs, pred, label in ((axes[0], data.mx, mx, "$m_x$"), (axes[0], data.my, my, "$m_y$")):
        lo, med, hi = np.percentile(pred, [5, 50, 95], axis=0)
        line = ax.plot(t_ms, med, lw=1, label=f"{label} posterior predictive")[0]
        ax.fill_between(t_ms, lo, hi, color=line.get_color(), alpha=0.25, lw=0)
        ax.plot(t_ms, obs, ".", ms=2, color=line.get_color(), alpha=0.6, label=f"{label} data")
    axes[0].set(xlabel="time (ms)", ylabel="$M_+$", title="FID")
    freqs = data.grid.frequencies_hz

    def spectrum(re, im):  # the same FFT convention as Traces.spectrum()
        re, im = jnp.asarray(re), jnp.asarray(im)
        tr = Traces(mx=re, my=im, iz1=jnp.zeros_like(re), grid=data.grid)
        return np.asarray(tr.spectrum()).real

    spec_pred = spectrum(mx, my)
    lo, med, hi = np.percentile(spec_pred, [5, 50, 95], axis=0)
    axes[1].plot(freqs, spectrum(data.mx.copy(), data.my.copy()), "k", lw=0.8, label="data")
    axes[1].plot(freqs, med, "tab:red", lw=1, label="posterior predictive")
    axes[1].fill_between(freqs, lo, hi, color="tab:red", alpha=0.25, lw=0)
    axes[1].set(xlabel="frequency (Hz)", ylabel="Re spectrum", title="Spectrum")
    live = freqs[np.abs(med) > 0.05 * np.abs(med).max()]
    if live.size:
        axes[1].set_xlim(live.min() - 30, live.max() + 30)
    if have_iz:
        pred = draws("iz1")
        lo, med, hi = np.percentile(pred, [5, 50, 95], axis=0)
        axes[2].plot(t_ms, data.iz1, ".", ms=2, color="k", alpha=0.6, label="data")
        axes[2].plot(t_ms, med, "tab:green", lw=1, label="posterior predictive")
        axes[2].fill_between(t_ms, lo, hi, color="tab:green", alpha=0.25, lw=0)
        axes[2].set(
            xlabel="time (ms)", ylabel=r"$\langle I_{1z}\rangle$", title="Local polarisation"
        )
    for ax in axes:
        ax.legend(fontsize=7, loc="upper right")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def plot_posterior(dt, out_dir, *, truth: dict | None = None, prefix: str = "") -> list:
    """The ArviZ figures of a posterior, saved as PNGs in `out_dir`.

    Trace and rank plots, marginals (with the true values when `truth` is given, as
    reference lines) and a pair plot (of at most six parameters, couplings and sigma
    first), all drawn by ArviZ. **Returns** the paths.
    """
    from pathlib import Path

    import arviz as az
    import matplotlib.pyplot as plt

    from ._io import save_figure

    out = Path(out_dir)
    paths = []
    figures = {
        "trace": lambda: az.plot_trace_dist(dt, backend="matplotlib"),
        "rank": lambda: az.plot_rank(dt, backend="matplotlib"),
        # No point-estimate text: ArviZ rounds it to 2 significant figures (a mean of
        # 12.5 Hz with sd 0.01 reads "12.0 mean"); the dot and interval stay.
        "marginals": lambda: az.plot_dist(
            dt, backend="matplotlib", visuals={"point_estimate_text": False}
        ),
        "pair": lambda: az.plot_pair(_pair_subset(dt), backend="matplotlib"),
    }
    for name, make in figures.items():
        pc = make()
        del pc  # ArviZ draws on a new matplotlib figure, which is now the current one
        fig = plt.gcf()
        if name == "marginals":
            _tidy_marginals(fig, truth)
        paths.append(save_figure(fig, out / f"{prefix}{name}.png"))
        plt.close(fig)
    return paths


def _pair_subset(dt, most: int = 6):
    """The posterior, or (past `most` scalar parameters: ArviZ refuses more than 40
    panels, and a 10 x 10 grid is unreadable) its first `most` scalars, couplings and
    sigma first, each as its own variable (`offsets_hz[H3]`)."""
    import xarray as xr

    post = dt.posterior.to_dataset()
    scalars = {}
    for name in sorted(post.data_vars, key=lambda v: (v != "j_hz", v != "sigma", v)):
        da = post[name]
        extra = [d for d in da.dims if d not in ("chain", "draw")]
        if not extra:
            scalars[name] = da
            continue
        stacked = da.stack(_entry=extra)
        for k in range(stacked.sizes["_entry"]):
            label = stacked["_entry"].values[k]
            label = label[0] if isinstance(label, tuple) and len(label) == 1 else label
            scalars[f"{name}[{label}]"] = stacked.isel(_entry=k, drop=True)
    if len(scalars) <= most:
        return dt
    keep = dict(list(scalars.items())[:most])
    return xr.DataTree.from_dict({"posterior": xr.Dataset(keep)})


def _tidy_marginals(fig, truth: dict | None) -> None:
    """True values as reference lines; one-line titles with room between the rows (ArviZ
    titles a vector's panels on two lines, "offsets_hz" over "0", which then overlap
    the tick labels of the panel above)."""
    if truth:
        _mark_truth(fig, truth)
    for ax in fig.axes:
        ax.set_title(_one_line(ax.get_title()), fontsize=10)
    fig.tight_layout()


def _one_line(title: str) -> str:
    """ArviZ's "offsets_hz\n0" as "offsets_hz[0]"."""
    name, _, index = title.partition("\n")
    return f"{name}[{index.strip()}]" if index.strip() else name


def _mark_truth(fig, truth: dict) -> None:
    """Vertical lines at the true values on ArviZ marginal panels, matched by title."""
    values = {}
    for i, v in enumerate(np.atleast_1d(truth.get("offsets_hz", []))):
        values[f"offsets_hz\n{i}"] = v
        values[f"offsets_hz {i}"] = v
    j = np.atleast_1d(truth.get("j_hz", []))
    if j.size == 1:
        values["j_hz"] = float(j[0])
    for i, v in enumerate(j if j.size > 1 else []):
        values[f"j_hz {i}"] = v
    if truth.get("sigma") is not None:
        values["sigma"] = truth["sigma"]
    values.update(truth.get("by_title", {}))  # panels named otherwise (a network's spins)
    for ax in fig.axes:
        title = ax.get_title().replace("[", " ").replace("]", "").strip()
        for key, v in values.items():
            if title == key or title.replace("\n", " ") == key.replace("\n", " "):
                ax.axvline(v, color="k", ls="--", lw=1)


def plot_stability(surrogate, theta, thetas=None, traces=None, title: str | None = None):
    """The paper's Figure 2: mx, my, iz1 of one held-out chain over the whole trace,
    exact solid and surrogate dashed; below, the RMS error against time over a test set
    (`thetas`, `traces`; omitted if not given). Returns the matplotlib figure."""
    import matplotlib.pyplot as plt

    from ._physics._simulate import simulate
    from ._physics._system import SpinChain
    from ._surrogate._metrics import OBSERVABLES
    from ._surrogate._train import _predict

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


def plot_sbc(result, title: str | None = None):
    """An `SBCResult`'s rank histograms with the 99 % band of a uniform histogram."""
    import matplotlib.pyplot as plt
    from scipy.stats import binom

    n, k = result.ranks.shape
    fig, axes = plt.subplots(1, k, figsize=(3.2 * k, 2.8), squeeze=False)
    edges = np.linspace(0, result.rank_draws + 1, result.bins + 1)
    lo, hi = binom.ppf([0.005, 0.995], n, 1 / result.bins)
    pv, cov = result.p_values, result.coverage
    for ax, i in zip(axes[0], range(k), strict=True):
        ax.axhspan(lo, hi, color="0.85", label="99 % band (uniform)")
        ax.hist(result.ranks[:, i], bins=edges, color="C0", edgecolor="white")
        name = result.names[i]
        ax.set_title(f"{name}\np = {pv[name]:.2f}, 90 % cover {cov['90'][name]:.0%}", fontsize=9)
        ax.set_xlabel("rank")
    axes[0][0].legend(fontsize=7)
    head = f"SBC: {n} data sets, {result.rank_draws} draws each"
    fig.suptitle(head if title is None else f"{title}: {head}", fontsize=10)
    fig.tight_layout()
    return fig
