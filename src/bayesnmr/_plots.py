"""Figures of traces: FID, spectrum and local polarisation."""

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
