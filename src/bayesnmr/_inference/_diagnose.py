"""Diagnostics of a posterior DataTree: the ArviZ summary, convergence checks, modes."""

import warnings

import numpy as np


class ConvergenceWarning(UserWarning):
    """A sampler diagnostic failed its threshold (R-hat, ESS or divergences)."""


class MultimodalWarning(UserWarning):
    """The posterior has more than one mode of non-negligible probability."""


def diagnose(dt, *, rhat_max: float = 1.01, ess_min: float = 400, warn: bool = True):
    """The ArviZ summary table, and the list of failed checks.

    Checks, for the posterior and for every further mode's group (`posterior_mode1`, ...):
    R-hat $\\le$ `rhat_max`, bulk and tail ESS $\\ge$ `ess_min` for every parameter, no
    divergent transitions, and, for a surrogate's posterior corrected to the exact one,
    that the correction succeeded (Pareto $\\hat k$ and the effective draws after it;
    `correction_report` prints them). A posterior with several modes (`dt["modes"]`) is reported
    with their probabilities: `posterior` then holds only the most probable one. Each
    failure is also raised as a `ConvergenceWarning` (a `MultimodalWarning` for modes)
    when `warn`.

    **Returns:** `(summary, problems)`: a pandas DataFrame of unrounded numbers for
    `posterior` (`format_summary` prints it) and a list of strings.
    """
    import xarray as xr

    problems, kinds = [], []
    groups = ["posterior"] + sorted(g for g in dt.children if g.startswith("posterior_mode"))
    summary = None
    for group in groups:
        suffix = group.removeprefix("posterior")
        sub = xr.DataTree.from_dict(
            {
                "posterior": dt[group].to_dataset(),
                "sample_stats": dt[f"sample_stats{suffix}"].to_dataset(),
            }
        )
        table, found = _checks(sub, rhat_max, ess_min)
        if f"correction{suffix}" in dt.children:
            c = dt[f"correction{suffix}"].attrs
            if not c.get("ok", 1):
                found.append(
                    f"the exact correction of the surrogate posterior failed ({c['problem']}): "
                    "these draws are not the exact posterior; sample with solver='local' or "
                    "the exact solver"
                )
        summary = table if summary is None else summary
        label = "" if group == "posterior" else f"{suffix.removeprefix('_')}: "
        problems += [label + p for p in found]
        kinds += [ConvergenceWarning] * len(found)
    if "modes" in dt.children and dt["modes"].sizes.get("mode", 1) > 1:
        modes = dt["modes"].to_dataset()
        parts = []
        for k in range(modes.sizes["mode"]):
            where = (
                "`posterior`"
                if k == 0
                else (f"`posterior_mode{k}`" if bool(modes["sampled"][k]) else "not sampled")
            )
            parts.append(f"mode {k} p = {float(modes['probability'][k]):.3g} ({where})")
        problems.append(
            f"the posterior has {modes.sizes['mode']} modes: "
            + "; ".join(parts)
            + ". Summaries of `posterior` describe mode 0 only."
        )
        kinds.append(MultimodalWarning)
    if warn:
        for p, kind in zip(problems, kinds, strict=True):
            warnings.warn(p, kind, stacklevel=2)
    return summary, problems


def _checks(dt, rhat_max, ess_min):
    import arviz as az

    summary = az.summary(dt, var_names=list(dt.posterior.data_vars), round_to="none")
    problems = []
    for col, bad, what in (
        ("r_hat", summary["r_hat"] > rhat_max, f"R-hat > {rhat_max}"),
        ("ess_bulk", summary["ess_bulk"] < ess_min, f"bulk ESS < {ess_min:g}"),
        ("ess_tail", summary["ess_tail"] < ess_min, f"tail ESS < {ess_min:g}"),
    ):
        if bool(np.any(bad)):
            rows = ", ".join(f"{i} ({summary.loc[i, col]:.3g})" for i in summary.index[bad])
            problems.append(f"{what} for {rows}")
    divergences = int(np.asarray(dt.sample_stats["diverging"]).sum())
    if divergences:
        problems.append(
            f"{divergences} divergent transitions; raise target_accept or reparametrise"
        )
    return summary, problems


def format_summary(summary) -> str:
    """The summary table as text: 6 significant digits for the statistics, whole ESS,
    R-hat to 3 decimals, 2 significant digits for Monte Carlo errors."""

    def fmt(col):
        if col.startswith("ess"):
            return lambda v: f"{v:.0f}"
        if col == "r_hat":
            return lambda v: f"{v:.3f}"
        if col.startswith("mcse"):
            return lambda v: f"{v:.2g}"
        return lambda v: f"{v:.6g}"

    return summary.to_string(formatters={c: fmt(c) for c in summary.columns})


def correction_report(dt) -> list[str]:
    """One line per corrected group: Pareto k-hat, effective draws, and whether it held."""
    lines = []
    for name in sorted(g for g in dt.children if g.startswith("correction")):
        c = dt[name].attrs
        label = name.removeprefix("correction").removeprefix("_") or "mode 0"
        verdict = "ok" if c["ok"] else f"FAILED: {c['problem']}"
        lines.append(
            f"exact correction ({label}): Pareto k-hat {c['pareto_k']:.2f} "
            f"(threshold {c['khat_threshold']:.2f}), {c['ess']:.0f} effective draws of "
            f"{dt[name].sizes['chain'] * dt[name].sizes['draw']}: {verdict}"
        )
    if dt.attrs.get("fallback"):
        lines.append(f"fallback: {dt.attrs['fallback']}")
    return lines
