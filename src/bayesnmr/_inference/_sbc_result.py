"""SBC results: rank statistics, coverage, comparison, the result file and the checkpoint."""

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
    `corrected` (`(datasets,)`: the first correction's k-hat, and whether it succeeded)
    and `fallback` (`(datasets,)`: `""` where it did, else what sampled the posterior
    that was ranked instead: `"local"` (a problem-local surrogate, corrected),
    `"exact"` (exact NUTS), or `"none"` (nothing left: the failed draws were ranked)).
    `provenance`: where and when it ran (date, commit, machine, versions), its settings,
    `seconds` (the wall time of the call that finished it) and `resumed` (data sets
    taken from a checkpoint); None in files written before it existed.
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
    provenance: dict | None = None
    fallback: np.ndarray | None = None

    @classmethod
    def from_records(
        cls, names, rows: list[dict], rank_draws: int, bins: int, provenance: dict,
        *, correct: bool = False, fallback: bool = False,
    ) -> "SBCResult":  # fmt: skip
        """The result of per-data-set records (`rank_record`, with `pareto_k`,
        `corrected` and `fallback` where the posterior was corrected)."""

        def stack(key):
            return np.array([r[key] for r in rows])

        return cls(
            names=list(names),
            ranks=stack("rank"),
            rank_draws=rank_draws,
            truths=stack("truth"),
            means=stack("mean"),
            covered50=stack("c50"),
            covered90=stack("c90"),
            bins=bins,
            sds=stack("sd"),
            pareto_k=stack("pareto_k") if correct else None,
            corrected=stack("corrected").astype(bool) if correct else None,
            fallback=stack("fallback").astype(str) if fallback else None,
            provenance=provenance,
        )

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
            "fallback": None if self.fallback is None else self.fallback.tolist(),
            "provenance": self.provenance,
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
            made = d.get("provenance")
            fallback = None if d.get("fallback") is None else np.array(d["fallback"], str)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"Cannot read {str(path)!r} as an SBC result: {err}") from None
        return cls(
            names, ranks, rank_draws, truths, means, c50, c90, bins, sds, khat, ok, made, fallback
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write the result as JSON, atomically."""
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=1))
        return Path(path)

    def plot(self, title: str | None = None):
        """Rank histograms with the 99 % band of a uniform histogram; returns the figure."""
        from .._plots import plot_sbc

        return plot_sbc(self, title)


def rank_record(post: np.ndarray, truth: np.ndarray, keep: np.ndarray) -> dict:
    """One data set's SBC record: the rank of the truth among the posterior draws
    `post[keep]` (draws `(S, P)`, truth `(P,)`), the posterior mean and sd, and whether
    the central 50 % and 90 % intervals of all draws cover the truth."""
    q = np.quantile(post, [0.05, 0.25, 0.75, 0.95], axis=0)
    return {
        "rank": np.sum(post[keep] < truth[None], axis=0),
        "truth": truth,
        "mean": post.mean(0),
        "sd": post.std(0, ddof=1),
        "c50": (q[1] <= truth) & (truth <= q[2]),
        "c90": (q[0] <= truth) & (truth <= q[3]),
    }


class Checkpoint:
    """Finished data sets in a JSON file, rewritten atomically after each."""

    def __init__(self, path, fingerprint: dict):
        self.path, self.fingerprint = Path(path), fingerprint

    def load(self) -> dict[int, dict]:
        if not self.path.is_file():
            return {}
        try:
            d = json.loads(self.path.read_text())
            same = d["fingerprint"] == json.loads(json.dumps(self.fingerprint))
            records = {
                int(k): {n: np.asarray(v) for n, v in r.items()} for k, r in d["records"].items()
            }
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(
                f"Argument `checkpoint`: {str(self.path)!r} is not a calibration checkpoint "
                f"({err}); pass another path."
            ) from None
        if not same:
            raise ValueError(
                f"Argument `checkpoint`: {str(self.path)!r} holds a different calibration "
                "(other priors, grid, solver, settings or seed); pass another path, or "
                "delete it to start again."
            )
        return records

    def save(self, records: dict[int, dict]) -> None:
        payload = {
            "fingerprint": self.fingerprint,
            "records": {
                str(k): {n: np.asarray(v).tolist() for n, v in r.items()}
                for k, r in sorted(records.items())
            },
        }
        with atomic_path(self.path) as tmp:
            tmp.write_text(json.dumps(payload))
