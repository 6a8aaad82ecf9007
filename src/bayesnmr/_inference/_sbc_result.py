"""The outcome of a simulation-based calibration: ranks, coverage, comparison, files."""

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from .._io import atomic_path


@dataclasses.dataclass(frozen=True)
class SBCResult:
    """The outcome of `calibrate`.

    **Fields:** `names` (the scalar parameters), `ranks` (`(datasets, parameters)`:
    how many of the `rank_draws` thinned posterior draws fall below the true value),
    `rank_draws`, `truths` and `means` (`(datasets, parameters)`), `covered50`, `covered90`
    (`(datasets, parameters)` booleans: the truth inside the central 50 % / 90 %
    posterior interval), `p_values` (a chi-square test of uniform ranks in `bins` bins,
    per parameter), `sds` (`(datasets, parameters)`: posterior standard deviations),
    and for a surrogate's posterior corrected to the exact one, `pareto_k` and
    `corrected` (`(datasets,)`: the correction's k-hat, and whether it succeeded).
    """

    names: list
    ranks: np.ndarray
    rank_draws: int
    truths: np.ndarray
    means: np.ndarray
    covered50: np.ndarray
    covered90: np.ndarray
    bins: int
    sds: np.ndarray | None = None
    pareto_k: np.ndarray | None = None
    corrected: np.ndarray | None = None

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

        edges = np.linspace(0, self.rank_draws + 1, self.bins + 1)
        out = {}
        for i, name in enumerate(self.names):
            counts, _ = np.histogram(self.ranks[:, i], bins=edges)
            out[name] = float(chisquare(counts).pvalue)
        return out

    def compare(self, reference: "SBCResult") -> dict:
        """This posterior against `reference`'s on the same data sets (the same seed and
        priors): per parameter, the shift of the mean in reference sds,
        $(m - m_\\mathrm{ref}) / s_\\mathrm{ref}$, and the ratio of sds $s / s_\\mathrm{ref}$,
        as median and 5 / 95 % quantiles over data sets (`abs_shift`: of $|$shift$|$), and
        the share of data sets whose mean moved by more than 2 reference sds."""
        if (
            self.truths.shape != reference.truths.shape
            or not np.allclose(self.truths, reference.truths)
            or self.names != reference.names
        ):
            raise ValueError(
                "compare: the two calibrations saw different data sets; run both with the "
                "same `seed`, `priors`, `grid` and number of `datasets`."
            )
        if self.sds is None or reference.sds is None:
            raise ValueError("compare: both results need posterior sds (`sds`).")
        shift = (self.means - reference.means) / reference.sds
        ratio = self.sds / reference.sds

        def stats(x):
            q = np.quantile(x, [0.05, 0.5, 0.95], axis=0)
            return {
                n: {"p05": float(q[0, i]), "median": float(q[1, i]), "p95": float(q[2, i])}
                for i, n in enumerate(self.names)
            }

        far = (np.abs(shift) > 2).mean(0)
        return {
            "shift": stats(shift),
            "abs_shift": stats(np.abs(shift)),
            "sd_ratio": stats(ratio),
            "beyond_2sd": dict(zip(self.names, far.tolist(), strict=True)),
        }

    def to_dict(self) -> dict:
        return {
            "names": self.names,
            "rank_draws": self.rank_draws,
            "bins": self.bins,
            "datasets": int(self.ranks.shape[0]),
            "coverage": self.coverage,
            "p_values": self.p_values,
            "ranks": self.ranks.tolist(),
            "truths": self.truths.tolist(),
            "means": self.means.tolist(),
            "sds": None if self.sds is None else self.sds.tolist(),
            "covered50": self.covered50.tolist(),
            "covered90": self.covered90.tolist(),
            "pareto_k": None if self.pareto_k is None else self.pareto_k.tolist(),
            "corrected": None if self.corrected is None else self.corrected.tolist(),
        }

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SBCResult":
        """Read a result written by `save`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"No SBC result at {str(path)!r}.")
        try:
            d = json.loads(path.read_text())
            ranks, truths = np.array(d["ranks"]), np.array(d["truths"])
            means = np.array(d["means"])
            sds = None if d.get("sds") is None else np.array(d["sds"])
            rank_draws = int(d["rank_draws"] if "rank_draws" in d else d["n_draws"])  # older files
            bins, names = int(d["bins"]), list(d["names"])
            c50, c90 = np.array(d["covered50"], bool), np.array(d["covered90"], bool)
            khat = None if d.get("pareto_k") is None else np.array(d["pareto_k"], float)
            ok = None if d.get("corrected") is None else np.array(d["corrected"], bool)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"Cannot read {str(path)!r} as an SBC result: {err}") from None
        return cls(names, ranks, rank_draws, truths, means, c50, c90, bins, sds, khat, ok)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the result as JSON, atomically."""
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=1))
        return Path(path)

    def plot(self, title: str | None = None):
        """Rank histograms with the 99 % band of a uniform histogram; returns the figure."""
        import matplotlib.pyplot as plt
        from scipy.stats import binom

        n, k = self.ranks.shape
        fig, axes = plt.subplots(1, k, figsize=(3.2 * k, 2.8), squeeze=False)
        edges = np.linspace(0, self.rank_draws + 1, self.bins + 1)
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
        head = f"SBC: {n} data sets, {self.rank_draws} draws each"
        fig.suptitle(head if title is None else f"{title}: {head}", fontsize=10)
        fig.tight_layout()
        return fig
