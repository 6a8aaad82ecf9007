"""The figures quoted in README.md and docs/ are the figures in the benchmark JSONs.

Each entry renders a sentence of the docs from its JSON; the rendered text must appear
in the document as written. A re-run benchmark that changes a number therefore fails
here until the docs quote the new one. Add an entry for every figure you quote.
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def _json(name: str) -> dict:
    return json.loads((RESULTS / name).read_text())


def _runs(method: str, **where) -> list[dict]:
    return [
        r
        for r in _json("scaling.json")["runs"]
        if r.get("method") == method and all(r.get(k) == v for k, v in where.items())
    ]


def _one(method: str, **where) -> dict:
    (row,) = _runs(method, **where)
    return row


def _sci(x: float) -> str:
    """1.6e-7 as the docs write it: 1.6 × 10⁻⁷."""
    mantissa, exponent = f"{x:.1e}".split("e")
    sup = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
    return f"{mantissa} × 10{str(int(exponent)).translate(sup)}"


def _batch() -> dict:
    return _one("exact_batch", n=8)


def _f32_errors(ns) -> list[float]:
    return [r["max_error_vs_exact"] for r in _runs("exact_f32") if r["n"] in ns]


def _qutip_worst() -> dict:
    return max(
        (r for r in _runs("qutip") if "max_error_vs_exact" in r),
        key=lambda r: r["max_error_vs_exact"],
    )


def _fit(n: str) -> dict:
    return _json("fit_success.json")["summary"][n]


def _fit_row(n: str, problems: str, rate_suffix: str) -> str:
    """The start of a fit_success table row: problems, outcome counts, success rate."""
    f = _fit(n)
    c, p = f["counts"], f["problems"]
    return (
        f"| {n} | {problems.format(p=p)} | {c['truth']} | {c['identifiability']} "
        f"| {c['search failure']} | {100 * f['success_rate']:.0f} %{rate_suffix.format(p=p)} "
    )


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _local(n: int) -> dict:
    (row,) = [r for r in _json("local_surrogate.json")["rows"] if r["n_spins"] == n]
    return row


def _surrogate_row(name: str, label: str, n: int) -> str:
    m = _json("surrogate.json")["models"][name]

    def pct(key):
        return f"{100 * m[key]['median']:.2f} % / {100 * m[key]['p95']:.1f} %"

    stab = ", ".join(f"{m['stability'][k]:.2f}" for k in ("mx", "my", "iz1"))
    sp, ex = m["speed"], m["speed_exact"]
    return (
        f"| {label} | {n} | {pct('mx')} | {pct('my')} | {pct('iz1')} | {pct('iz1_minus_1')} "
        f"| {stab} | {1e6 * sp['single_seconds']:.0f} µs | {sp['trajectories_per_second']:,.0f} /s "
        f"| {1e6 * ex['single_seconds']:.0f} µs / {ex['trajectories_per_second']:,.0f} /s |"
    )


def _coverage(name: str, level: str) -> str:
    d = json.loads((ROOT / "docs" / "figures" / f"sbc_{name}.json").read_text())
    return ", ".join(f"{100 * d['coverage'][level][k]:.1f}" for k in d["names"])


def _p_values(name: str) -> str:
    d = json.loads((ROOT / "docs" / "figures" / f"sbc_{name}.json").read_text())
    return ", ".join(f"{d['p_values'][k]:.2f}" for k in d["names"])


FIGURES = [
    (
        "README.md",
        lambda: "(N = 10: {:.0f} min on 2 cores, about {:.0f}× faster than exact NUTS".format(
            _local(10)["total_seconds"] / 60, _local(10)["speedup_estimate"]
        ),
    ),
    (
        "docs/calibration.md",
        lambda: "| exact, 4 spins | {} (J) | {} | {} |".format(
            _coverage("exact4", "90"), _coverage("exact4", "50"), _p_values("exact4")
        ),
    ),
    (
        "docs/calibration.md",
        lambda: "| surrogate `chain4` | **{}** | {} |".format(
            _coverage("chain4", "90"), _coverage("chain4", "50")
        ),
    ),
    (
        "docs/calibration.md",
        lambda: "| `chain4` + model error | **{}** | {} |".format(
            _coverage("chain4err", "90"), _coverage("chain4err", "50")
        ),
    ),
    ("docs/surrogates.md", lambda: _surrogate_row("chain4", "eigen `chain4`", 4)),
    ("docs/surrogates.md", lambda: _surrogate_row("chain8", "eigen `chain8`", 8)),
    ("docs/surrogates.md", lambda: _surrogate_row("mlp4", "MLP baseline", 4)),
    (
        "README.md",
        lambda: "for {:.2f}x the batch throughput".format(
            _batch()["float32_trajectories_per_second"] / _batch()["trajectories_per_second"]
        ),
    ),
    (
        "README.md",
        lambda: "(N = 16: {:.0f} min, {:.1f} GiB on 2 cores)".format(
            _one("exact", n=16)["seconds"] / 60, _one("exact", n=16)["peak_rss_mib"] / 1024
        ),
    ),
    (
        "docs/solvers.md",
        lambda: (
            "(N = 8: {:.2f}× the float64 `simulate_batch` throughput, {:.0f} against\n"
            "{:.0f} trajectories/s)".format(
                _batch()["float32_trajectories_per_second"] / _batch()["trajectories_per_second"],
                _batch()["float32_trajectories_per_second"],
                _batch()["trajectories_per_second"],
            )
        ),
    ),
    (
        "docs/solvers.md",
        lambda: "(N = 12: {:.0f} %, {:.3f} against {:.3f} s)".format(
            100 * (1 - _one("exact_f32", n=12)["seconds"] / _one("exact", n=12)["seconds"]),
            _one("exact_f32", n=12)["seconds"],
            _one("exact", n=12)["seconds"],
        ),
    ),
    (
        "docs/solvers.md",
        lambda: "the float64 solver by {}–{} at N = 8–13 and {} at N = 14".format(
            _sci(min(_f32_errors(range(8, 14)))).split(" ×")[0],
            _sci(max(_f32_errors(range(8, 14)))),
            _sci(_f32_errors([14])[0]),
        ),
    ),
    (
        "docs/benchmarks.md",
        lambda: "(at most {}, at N = {})".format(
            _sci(_qutip_worst()["max_error_vs_exact"]), _qutip_worst()["n"]
        ),
    ),
    ("docs/benchmarks.md", lambda: _fit_row("4", "{p}", "")),
    (
        "docs/benchmarks.md",
        lambda: _fit_row("6", "{p}", f" (≥ 90 %: {_verdict(_fit('6')['success_rate'] >= 0.9)})"),
    ),
    (
        "docs/benchmarks.md",
        lambda: "| {:.1f} s over all {} (≤ 3 min: met) | {:.0f} s |".format(
            _fit("6")["median_seconds"], _fit("6")["problems"], _fit("6")["p90_seconds"]
        ),
    ),
    (
        "docs/benchmarks.md",
        lambda: "| {:.1f} s (≤ 30 s: met) | {:.1f} s |".format(
            _fit("4")["median_seconds"], _fit("4")["p90_seconds"]
        ),
    ),
    (
        "docs/benchmarks.md",
        lambda: (
            "| `plain`: `sample_posterior(data)` | {:.1f} s, its compilation included "
            "({:.1f} s with the fit) | {:.1f} s".format(
                (r := _json("nuts.json")["runs"]["plain"])["seconds"] - r["fit_seconds"],
                r["seconds"],
                r["fit_seconds"],
            )
        ),
    ),
    (
        "docs/benchmarks.md",
        lambda: "resident memory went from {:,.1f} MiB after the first call to {:,.1f} MiB".format(
            _json("nuts.json")["memory"]["rss_mib"][0], _json("nuts.json")["memory"]["rss_mib"][-1]
        ),
    ),
    ("docs/benchmarks.md", lambda: _local_row(8, "")),
    ("docs/benchmarks.md", lambda: _local_row(10, " (≤ 10 min: {})")),
    ("docs/benchmarks.md", lambda: _local_row(12, " (≤ 30 min: {})", 1800)),
    (
        "docs/benchmarks.md",
        lambda: (
            "included) {:.0f} s and the correction's 1,000 exact solves {:.0f} s, against {:.0f} s "
            "of\ntraining".format(
                _local(12)["fit_seconds"],
                _local(12)["correction_seconds"],
                _local(12)["training_seconds"],
            )
        ),
    ),
    (
        "docs/benchmarks.md",
        lambda: (
            "one exact gradient took {:.2f} s,\nso exact NUTS would have taken about\n{:.0f} "
            "h (4 × 2000 iterations × {:.1f} leapfrog steps, one core): the local workflow was\n"
            "**{:.0f}× faster**".format(
                _local(12)["exact_gradient_seconds"],
                _local(12)["exact_nuts_estimate_seconds"] / 3600,
                _local(12)["mean_leapfrog_steps"],
                _local(12)["speedup_estimate"],
            )
        ),
    ),
    (
        "README.md",
        lambda: "N = 12: {:.0f} min, about {:.0f}× faster".format(
            _local(12)["total_seconds"] / 60, _local(12)["speedup_estimate"]
        ),
    ),
    (
        "docs/surrogates.md",
        lambda: "N = 12: {:.0f} min against an estimated {:.0f} h".format(
            _local(12)["total_seconds"] / 60, _local(12)["exact_nuts_estimate_seconds"] / 3600
        ),
    ),
    (
        "docs/surrogates.md",
        lambda: "N = 10 and {:.0f}× at N = 12".format(_local(12)["speedup_estimate"]),
    ),
    (
        "docs/benchmarks.md",
        lambda: (
            "took {:.1f} ms against {:.1f} ms\nfor the direct sum over a table of phases at "
            "N = 8 ({:.0f}×), and {:.1f} ms against {:.1f} ms\nat N = 10 ({:.0f}×); the two "
            "agree to {} in the traces".format(
                *_line_sums(8),
                *_line_sums(10),
                _sci(max(_local(n)["line_sum_max_difference"] for n in (8, 10))),
            )
        ),
    ),
    (
        "docs/benchmarks.md",
        lambda: (
            "exact gradient (N = 8: {:.1f} ms, N = 10: {:.0f} ms) × the leapfrog steps × 4 × 2000"
            "\niterations: the local workflow is about **{:.1f}× faster at N = 8 and {:.1f}× at "
            "N = 10**".format(
                1e3 * _local(8)["exact_gradient_seconds"],
                1e3 * _local(10)["exact_gradient_seconds"],
                _local(8)["speedup_estimate"],
                _local(10)["speedup_estimate"],
            )
        ),
    ),
]


FIGURES.append(
    (
        "docs/benchmarks.md",
        lambda: (
            "{:.0f} s of fit and {:.0f} s of NUTS, {:.0f} s in\nall, against the local "
            "workflow's {:.0f} s: {:.1f}× measured".format(
                (r := _json("nuts.json")["runs"]["exact_n8"])["fit_seconds"],
                r["seconds"],
                r["fit_seconds"] + r["seconds"],
                _local(8)["total_seconds"],
                (r["fit_seconds"] + r["seconds"]) / _local(8)["total_seconds"],
            )
        ),
    )
)


FIGURES += [
    (
        "docs/surrogates.md",
        lambda: (
            "N = 8: {:.0f} min against an estimated {:.0f} min for exact NUTS; N = 10: {:.0f} min "
            "against {:.0f} min, and the same posterior as exact NUTS to {:.2f} sd".format(
                _local(8)["total_seconds"] / 60,
                _local(8)["exact_nuts_estimate_seconds"] / 60,
                _local(10)["total_seconds"] / 60,
                _local(10)["exact_nuts_estimate_seconds"] / 60,
                max(abs(x) for x in _local(10)["vs_exact_mean_in_sds"]),
            )
        ),
    ),
    (
        "docs/surrogates.md",
        lambda: "at N = 8 it is already {:.1f}× faster than exact\nNUTS would be".format(
            _local(8)["speedup_estimate"]
        ),
    ),
]


def _local_row(n: int, target: str, limit: float = 600) -> str:
    """A row of the local-surrogate table (`target`: the suffix after the total time,
    `limit`: the target in seconds)."""
    r = _local(n)
    return (
        "| {} | **{:,.0f} s = {:.0f} min**{} | {:.0f} s | {:.0f} s ({}) | {:,} → {:,} | {:.0f} s "
        "| {:.2f} | {:.0f} of 1,000 | {:.3f} | {:.0f} / {:.0f} | {:.1f} |".format(
            n,
            r["total_seconds"],
            r["total_seconds"] / 60,
            target.format(_verdict(r["total_seconds"] <= limit)),
            r["fit_seconds"],
            r["training_seconds"],
            r["training_points"],
            r["lines"][0],
            r["line_groups"][0],
            r["correction_seconds"],
            r["pareto_k"],
            r["ess_after_correction"],
            r["max_r_hat"],
            r["min_ess_bulk"],
            r["min_ess_tail"],
            r["mean_leapfrog_steps"],
        ).replace("-", "−")
    )


def _line_sums(n: int) -> tuple[float, float, float]:
    t = _local(n)["line_sum_seconds"]
    return 1e3 * t["nufft"], 1e3 * t["direct"], t["direct"] / t["nufft"]


FIGURES += [
    (
        "docs/inference.md",
        lambda: (
            "the truth (or\nits mirror image) in {} and, in the other {}, a solution that fits "
            "the data better than\nthe truth: no search failure; median {:.1f} s per problem"
        ).format(
            (f := _fit("4"))["counts"]["truth"],
            f["counts"]["identifiability"],
            f["median_seconds"],
        ),
    ),
    (
        "docs/inference.md",
        lambda: (
            "2 cores): {:.1f} s for\nNUTS with the exact solver including its compilation, "
            "started from the global fit\n(which took {:.1f} s cold); {:.1f} s once compiled; "
            "R-hat ≤ {:.3f}".format(
                (r := _json("nuts.json")["runs"]["plain"])["seconds"] - r["fit_seconds"],
                r["fit_seconds"],
                _json("nuts.json")["runs"]["exact"]["seconds"],
                max(_json("nuts.json")["runs"][k]["max_r_hat"] for k in ("plain", "exact")),
            )
        ),
    ),
    (
        "docs/inference.md",
        lambda: "100 posteriors in one process: +{:.1f} MiB in all".format(
            _json("nuts.json")["memory"]["growth_after_first_mib"]
        ),
    ),
]


def _chain_methods() -> str:
    m = _json("nuts.json")["chain_methods"]
    return (
        "chains × (1000 + 1000) of the default 4-spin posterior took {:.1f} s vectorized, "
        "{:.1f} s in\nthreads and {:.1f} s on four host devices, once compiled (compilation "
        "included:\n{:.1f} s vectorized, {:.1f} s in threads; `chain_methods` in "
        "`benchmarks/results/nuts.json`,\n2 cores; the same keys and starts give the same "
        "draws, means within {:.0e} sds)"
    ).format(
        m["vectorized"]["seconds"],
        m["threads"]["seconds"],
        m["parallel"]["seconds"],
        m["vectorized"]["first_seconds"],
        m["threads"]["first_seconds"],
        max(m[k]["max_mean_shift_in_sd"] for k in ("threads", "parallel")),
    )


FIGURES.append(("docs/inference.md", _chain_methods))


def _nuts_row(name: str, times: str) -> str:
    r = _json("nuts.json")["runs"][name]
    return (
        f"{times.format(r=r)} | {r['max_r_hat']:.3f} | {r['min_ess_bulk']:,.0f} / "
        f"{r['min_ess_tail']:,.0f} | {r['divergences']} | {r['mean_tree_steps']:.1f} |"
    )


FIGURES += [
    (
        "docs/benchmarks.md",
        lambda: _nuts_row(
            "plain",
            "({r[seconds]:.1f} s with the fit) | {r[fit_seconds]:.1f} s (cold: compiles"
            " the search)",
        ),
    ),
    (
        "docs/benchmarks.md",
        lambda: _nuts_row(
            "exact",
            "| {r[seconds]:.1f} s (the sampler already compiled by `plain`: same "
            "structure) | {r[fit_seconds]:.1f} s",
        ),
    ),
    (
        "docs/benchmarks.md",
        lambda: _nuts_row(
            "surrogate",
            "| {r[seconds]:.1f} s (its own sampler, the correction and its fallback: below) | "
            "{r[fit_seconds]:.1f} s",
        ),
    ),
]


def _shift_sentence() -> str:
    shift = _json("nuts.json")["surrogate_shift_in_sd"]
    offsets = [v for k, v in shift.items() if k.startswith("offsets_hz")]
    return (
        "sit {:.2f}–{:.2f} exact-posterior sds away for the offsets ({:.2f} sd for J, {:.2f} "
        "for σ)".format(min(offsets), max(offsets), shift["j_hz"], shift["sigma"])
    )


def _surrogate_correction() -> str:
    r = _json("nuts.json")["runs"]["surrogate"]
    first = re.search(r"Pareto k-hat ([\d.]+) > [\d.]+; only (\d+) effective", r["fallback"])
    return (
        f"correction fails (Pareto $\\hat k$ {float(first[1]):.2f}, {first[2]} effective draws)"
        f" and it falls back to a problem-local surrogate, whose correction passes\n($\\hat k$ "
        f"{r['pareto_k']:.2f})"
    )


FIGURES.append(("docs/benchmarks.md", _shift_sentence))
FIGURES.append(("docs/benchmarks.md", _surrogate_correction))
FIGURES.append(
    (
        "docs/surrogates.md",
        lambda: "Only the MLP is faster ({:.1f}× single, {:.1f}× batched)".format(
            _sur("chain4")["speed"]["single_seconds"] / _sur("mlp4")["speed"]["single_seconds"],
            _sur("mlp4")["speed"]["trajectories_per_second"]
            / _sur("chain4")["speed"]["trajectories_per_second"],
        ),
    )
)
FIGURES.append(
    (
        "docs/benchmarks.md",
        lambda: f"(N = 20: {_one('typicality', n=20)['seconds']:.0f} s in this run;",
    )
)
FIGURES += [
    (
        "docs/benchmarks.md",
        lambda n=n, fmt=fmt: fmt.format(
            _one("typicality", n=n)["seconds"], _one("typicality", n=n)["peak_rss_mib"] / 1024
        ),
    )
    for n, fmt in (
        (16, "| typicality, N = 16 (R = 2 vectors), one cold call | {:.1f} s (15.0 s"),
        (18, "| typicality, N = 18 (R = 1) | {:.1f} s |"),
        (20, "| typicality, N = 20 (R = 1) | {:.0f} s, peak RSS {:.1f} GiB |"),
    )
]
FIGURES.append(
    (
        "docs/solvers.md",
        lambda: "(peak RSS {:.1f} GiB at $N = 20$".format(
            _one("typicality", n=20)["peak_rss_mib"] / 1024
        ),
    )
)


def _coverage_range(*names: str) -> str:
    """The smallest and largest 90 % coverage over the named SBC results, in %."""
    values = [
        100 * v
        for name in names
        for v in json.loads((ROOT / "docs" / "figures" / f"sbc_{name}.json").read_text())[
            "coverage"
        ]["90"].values()
    ]
    return f"{min(values):g}–{max(values):g} %"


FIGURES += [
    (
        "docs/benchmarks.md",
        lambda: "90 % intervals cover {} of the truths, the exact solver's {} (see".format(
            _coverage_range("chain4"), _coverage_range("exact2", "exact4")
        ),
    ),
    ("docs/calibration.md", lambda: f"90 % interval covers {_coverage_range('exact2', 'exact4')}"),
    ("docs/calibration.md", lambda: f"  {_coverage_range('chain4')} of the truths"),
    ("docs/calibration.md", lambda: f"coverage rises to {_coverage_range('chain4err')} (target"),
]


def _jacobi(model: str, start: str, sweeps: int, stat: str) -> float:
    """A Jacobi-ablation error in %: mx's `stat` (median or p95) over the chains."""
    (row,) = [
        r
        for r in _json("jacobi_ablation.json")["rows"]
        if (r["model"], r["start"], r["sweeps"]) == (model, start, sweeps)
    ]
    return 100 * row["mx"][stat]


FIGURES += [
    (
        "docs/surrogates.md",
        lambda: (
            "(N = 4, 500 chains: mx median\n{:.4f} %, p95 {:.2f} %; N = 8, 150 chains: median "
            "{:.2f} %, p95 {:.1f} %; two sweeps: p95 {:.1f} %)".format(
                _jacobi("chain4", "network", 1, "median"),
                _jacobi("chain4", "network", 1, "p95"),
                _jacobi("chain8", "network", 1, "median"),
                _jacobi("chain8", "network", 1, "p95"),
                _jacobi("chain8", "network", 2, "p95"),
            )
        ),
    ),
    (
        "docs/surrogates.md",
        lambda: (
            "(N = 4: three sweeps, p95 {:.2f} %; N = 8: one sweep alone already beats the "
            "network,\nmedian {:.1f} % against {:.1f} %)".format(
                _jacobi("chain4", "identity", 3, "p95"),
                _jacobi("chain8", "identity", 1, "median"),
                _jacobi("chain8", "network", 0, "median"),
            )
        ),
    ),
]


def _sur(name: str) -> dict:
    return _json("surrogate.json")["models"][name]


def _pct(name: str, stat: str, fmts=(".2f", ".2f", ".2f")) -> list[str]:
    return [
        format(100 * _sur(name)[k][stat], f) for k, f in zip(("mx", "my", "iz1"), fmts, strict=True)
    ]


FIGURES += [
    (
        "docs/surrogates.md",
        lambda: "| N = 4: median ≤ 1 % | {} % (mx), {} % (my), {} % (iz1) |".format(
            *_pct("chain4", "median")
        ),
    ),
    (
        "docs/surrogates.md",
        lambda: "| N = 4: 95th percentile ≤ 3 % | {} %, {} %, {} % |".format(
            *_pct("chain4", "p95", (".1f",) * 3)
        ),
    ),
    (
        "docs/surrogates.md",
        lambda: "| N = 8: median ≤ 3 % | {} %, {} %, {} % |".format(
            *_pct("chain8", "median", (".1f", ".1f", ".2f"))
        ),
    ),
    (
        "docs/surrogates.md",
        lambda: "| late / early ≤ 2 for every observable | N = 4: {}; N = 8: {} |".format(
            *(
                ", ".join(f"{_sur(m)['stability'][k]:.2f}" for k in ("mx", "my", "iz1"))
                for m in ("chain4", "chain8")
            )
        ),
    ),
    (
        "docs/surrogates.md",
        lambda: (
            "| one trajectory ≤ 50 µs (jit, warm) | eigen {:.0f} µs (N = 4); "
            "MLP {:.0f} µs |".format(
                1e6 * _sur("chain4")["speed"]["single_seconds"],
                1e6 * _sur("mlp4")["speed"]["single_seconds"],
            )
        ),
    ),
    (
        "docs/surrogates.md",
        lambda: "| batched ≥ 10⁵ trajectories/s | eigen {:,.0f}/s; MLP {:,.0f}/s |".format(
            round(_sur("chain4")["speed"]["trajectories_per_second"], -2),
            round(_sur("mlp4")["speed"]["trajectories_per_second"], -3),
        ),
    ),
]


def _against_exact() -> str:
    r, (ref,) = _local(10), _json("local_surrogate_reference.json")["rows"]
    shift = max(abs(x) for x in r["vs_exact_mean_in_sds"])
    ratio = r["vs_exact_sd_ratio"]
    return (
        "local posterior's means lie within {:.3f} exact-posterior sds of the exact ones (target\n"
        "0.1: {}) and its sds within {:.1f} % ({:.2f}–{:.2f}×; target 10 %: {}), for every "
        "offset and\nJ. The reference took {:,.0f} s = {:.0f} min, with max R-hat {:.3f} and min "
        "bulk ESS {:.0f}".format(
            shift,
            _verdict(shift <= 0.1),
            100 * max(abs(x - 1) for x in ratio),
            min(ratio),
            max(ratio),
            _verdict(max(abs(x - 1) for x in ratio) <= 0.1),
            ref["seconds"],
            ref["seconds"] / 60,
            ref["max_r_hat"],
            ref["min_ess_bulk"],
        )
    )


FIGURES.append(("docs/benchmarks.md", _against_exact))


def _scaling_rows() -> list[str]:
    """The rows of the scaling table in docs/benchmarks.md, from scaling.json."""
    e12, e14, e15, e16 = (_one("exact", n=n) for n in (12, 14, 15, 16))
    b, q8 = _batch(), _one("qutip", n=8)
    qutip_ok = [r["n"] for r in _runs("qutip") if r.get("seconds", 1e9) <= 60]
    q_next = _one("qutip", n=max(qutip_ok) + 1)
    return [
        "| N = 12, one trajectory, warm | {:.3f} s (repeats {} s); compile {:.1f} s | compile "
        "< 30 s: {} |".format(
            e12["seconds"],
            ", ".join(f"{t:.3f}" for t in e12["times"]),
            e12["compile_seconds"],
            _verdict(e12["compile_seconds"] < 30),
        ),
        "| the NumPy sector-block reference, N = 12, same process | {:.3f} s: the exact solver "
        "takes **{:.2f}×** its time | ≤ 0.6×: {} |".format(
            e12["numpy_sectors_seconds"],
            e12["ratio_to_numpy_sectors"],
            _verdict(e12["ratio_to_numpy_sectors"] <= 0.6),
        ),
        "| the blocks' `eigh` alone, N = 12 | {:.3f} s ({:.0f} % of the reference's time); the "
        "exact solver takes {:.2f}× that | within 1.2×: {} |".format(
            e12["eigh_seconds"],
            100 * e12["numpy_sectors_eigh_share"],
            e12["ratio_to_eigh"],
            _verdict(e12["ratio_to_eigh"] <= 1.2),
        ),
        "| N = 14 | {:.1f} s, peak RSS {:.2f} GiB (sector by sector); the reference {:.1f} s "
        "({:.2f}×), `eigh` alone {:.1f} s | ≤ 6 s: {} |".format(
            e14["seconds"],
            e14["peak_rss_mib"] / 1024,
            e14["numpy_sectors_seconds"],
            e14["ratio_to_numpy_sectors"],
            e14["eigh_seconds"],
            _verdict(e14["seconds"] <= 6),
        ),
        "| N = 15 | {:.0f} s, {:.1f} GiB (measured {}) | — |".format(
            e15["seconds"], e15["peak_rss_mib"] / 1024, e15["date"][:10]
        ),
        "| N = 16 | {:.0f} s ({:.1f} min), peak RSS {:.1f} GiB (measured {}) | ≤ 4 min within "
        "8 GiB: memory {}, time {} |".format(
            e16["seconds"],
            e16["seconds"] / 60,
            e16["peak_rss_mib"] / 1024,
            e16["date"][:10],
            _verdict(e16["peak_rss_mib"] <= 8 * 1024),
            _verdict(e16["seconds"] <= 240),
        ),
        "| batched N = 8, `simulate_batch` | {:,.0f} trajectories/s | ≥ 500/s: {} |".format(
            b["trajectories_per_second"], _verdict(b["trajectories_per_second"] >= 500)
        ),
        "| batched N = 8, one `jax.vmap` of 256 | {:,.0f}/s | |".format(
            b["vmap_trajectories_per_second"]
        ),
        "| batched N = 8, float32 time evaluation | {:,.0f}/s, largest deviation {} | |".format(
            b["float32_trajectories_per_second"], _sci(b["float32_max_error"])
        ),
        "| QuTiP at N = 8 | {:.1f} s, against {:.1f} ms exact: {:,.0f}× | ≥ 500×: {} |".format(
            q8["seconds"],
            1e3 * _one("exact", n=8)["seconds"],
            q8["seconds"] / _one("exact", n=8)["seconds"],
            _verdict(q8["seconds"] / _one("exact", n=8)["seconds"] >= 500),
        ),
        "| largest N where QuTiP stays under 60 s | N = {} (N = {}: {}) | reported |".format(
            max(qutip_ok), q_next["n"], q_next.get("error", f"{q_next.get('seconds', 0):.0f} s")
        ),
    ]


def _scaling_prose() -> list[str]:
    """The sentences after the scaling table, from scaling.json."""
    d12, e12, f12, e14 = (_one(m, n=n) for m, n in (("dense", 12), ("exact", 12),
                                                    ("exact_f32", 12), ("exact", 14)))  # fmt: skip
    ratios = {r["n"]: r["ratio_to_numpy_sectors"] for r in _runs("exact") if r["n"] <= 14}
    small = [ratios[n] for n in range(2, 8)]
    mid = [ratios[n] for n in range(8, 13)]
    f32 = _f32_errors(range(8, 14))
    mlp, eig8, eig10 = (
        _one("surrogate_mlp", n=12),
        _one("surrogate_eigen", n=8),
        _one("surrogate_eigen", n=10),
    )
    return [
        "The dense solver took {:.0f} s at N = 12 ({:.0f}× the exact solver; {:.1f} GiB) and "
        "agrees with the\nexact solver to {} or better at every N = 2–12".format(
            d12["seconds"],
            d12["seconds"] / e12["seconds"],
            d12["peak_rss_mib"] / 1024,
            _sci(max(r["max_error_vs_exact"] for r in _runs("dense"))),
        ),
        "Diffrax stops at N = 7 ({:.1f} s). float32 time evaluation deviates from float64 by\n"
        "{}–{} at N = 8–13 and {} at N = 14 (the streamed path), and gains little for one\n"
        "trajectory (N = 12: {:.3f} against {:.3f} s)".format(
            _one("diffrax", n=7)["seconds"],
            _sci(min(f32)).split(" ×")[0],
            _sci(max(f32)),
            _sci(_f32_errors([14])[0]),
            f12["seconds"],
            e12["seconds"],
        ),
        f"the exact\nsolver takes {min(small):.1f}–{max(small):.1f}× its time up to N = 7, "
        f"{min(mid):.2f}–{max(mid):.2f}× at N = 8–12 "
        f"and {ratios[14]:.2f}× at N = 14",
        "At N = 14 the blocks' `eigh` is {:.0f} % of the exact solver's time".format(
            100 * e14["eigh_seconds"] / e14["seconds"]
        ),
        "The MLP baseline sized for N = 12 takes {:.0f} µs per call: {:,.0f}× the exact solver's "
        "time\nat N = 12".format(1e6 * mlp["seconds"], e12["seconds"] / mlp["seconds"]),
        "The eigen surrogate costs what the exact solver costs (N = 8:\n{:.1f} ms against {:.1f}; "
        "N = 10: {:.0f} ms against {:.0f})".format(
            1e3 * eig8["seconds"],
            1e3 * _one("exact", n=8)["seconds"],
            1e3 * eig10["seconds"],
            1e3 * _one("exact", n=10)["seconds"],
        ),
    ]


# The scaling table's rows and the sentences after it, through the same check as the rest.
FIGURES += [("docs/benchmarks.md", lambda i=i: _scaling_rows()[i]) for i in range(11)]
FIGURES += [("docs/benchmarks.md", lambda i=i: _scaling_prose()[i]) for i in range(6)]


def _threads_sentence() -> str:
    """The exact solver with one LAPACK thread per call against OpenBLAS's own threads."""
    e12, o12 = _one("exact", n=12), _one("exact_openblas", n=12)
    e10, o10 = _one("exact", n=10), _one("exact_openblas", n=10)
    return (
        "N = 12 solve {:.3f} s against {:.3f} s, its gradient {:.2f} against {:.2f} s;\n"
        "N = 10 {:.1f} against {:.1f} ms, gradient {:.0f} against {:.0f} ms".format(
            e12["seconds"], o12["seconds"], e12["gradient_seconds"], o12["gradient_seconds"],
            1e3 * e10["seconds"], 1e3 * o10["seconds"],
            1e3 * e10["gradient_seconds"], 1e3 * o10["gradient_seconds"],
        )
    )  # fmt: skip


FIGURES.append(("docs/solvers.md", _threads_sentence))


def _gradient_row() -> str:
    """One exact gradient of a misfit against one forward solve, N = 8-12."""
    rows = {r["n"]: r for r in _runs("exact") if 8 <= r["n"] <= 12}
    ratios = [rows[n]["gradient_ratio"] for n in sorted(rows)]
    return (
        "| one exact gradient of a least-squares misfit (N + 1 parameters), N = 8–12 | "
        "{:.1f}–{:.1f}× one forward solve ({}); N = 12: {:.2f} s | 2.0–3.0×: {} |".format(
            min(ratios), max(ratios), ", ".join(f"{x:.1f}" for x in ratios),
            rows[12]["gradient_seconds"], _verdict(max(ratios) <= 3.0),
        )
    )  # fmt: skip


FIGURES.append(("docs/benchmarks.md", _gradient_row))
FIGURES.append(
    (
        "docs/solvers.md",
        lambda: "took\n{:.1f} s, against 21.4 min before".format(
            _json("nuts.json")["runs"]["exact_n8"]["seconds"]
        ),
    )
)


def _ring() -> dict:
    return json.loads((ROOT / "docs" / "figures" / "ring_uncertainty.json").read_text())


def _ring_rows() -> list[str]:
    rows = _ring()["rows"]
    sd = {(r["acquisition_s"], r["sigma"]): r["sd"]["j_hz[H3-H6]"] for r in rows}
    times, sigmas = sorted({k[0] for k in sd}), sorted({k[1] for k in sd})
    out = ["| T (s) | " + " | ".join(f"σ = {s:g}" for s in sigmas) + " |"]
    out += [f"| {t:g} | " + " | ".join(f"{sd[t, s]:.4f}" for s in sigmas) + " |" for t in times]
    ratio = sd[0.3, 0.01] / sd[0.6, 0.01]
    out.append(
        f"uncertain to {sd[0.3, 0.01]:.3f} Hz at $\\sigma = 0.01$;\n"
        f"doubling it to 0.6 s shrinks that {ratio:.1f}-fold"
    )
    return out


FIGURES += [("docs/spin-systems.md", lambda i=i: _ring_rows()[i]) for i in range(7)]


def _network_rows() -> list[str]:
    rows = _json("network.json")["rows"]
    lines = {r["n"]: r for r in rows if r["method"] == "lines"}
    out = []
    for e in (r for r in rows if r["method"] == "exact"):
        n, ln = e["n"], lines.get(e["n"])
        tail = (
            f"{1e3 * ln['line_list_seconds']:.1f} ms | {1e3 * ln['nmrsim_seconds']:,.1f} ms | "
            f"{ln['speedup']:.0f}×"
            if ln
            else "— | — | —"
        )
        out.append(
            f"| {n} | {e['pairs']} | {1e3 * e['network_seconds']:.1f} ms | "
            f"{1e3 * e['chain_seconds']:.1f} ms | {e['ratio']:.2f} | {tail} |"
        )
    return out


FIGURES += [("docs/spin-systems.md", lambda i=i: _network_rows()[i]) for i in range(9)]


def _ring_posterior() -> list[str]:
    d = json.loads((ROOT / "docs" / "figures" / "ring_posterior.json").read_text())
    rows = {r["name"]: r for r in d["rows"]}
    out = [
        f"| `{r['name']}` | {r['truth']:.3f} | {r['mean']:.3f} ± {r['sd']:.3f} | "
        f"{r['truth_in_sds']:+.2f} | {r['laplace_sd']:.3f} |"
        for r in d["rows"]
    ]
    out.append(
        f"{d['seconds']:.0f} s in all, max R-hat {d['max_r_hat']:.3f}, min bulk ESS "
        f"{d['min_ess_bulk']:.0f}"
    )
    worst = max(abs(r["truth_in_sds"]) for r in d["rows"])
    laplace = max(abs(r["sd"] / r["laplace_sd"] - 1) for r in d["rows"])
    meta = max(rows["j_hz[H3-H5]"]["sd"], rows["j_hz[H4-H6]"]["sd"])
    out.append(
        f"Every truth lies within {worst:.2f} posterior sds, and NUTS's sds are the Laplace "
        f"ones to\nwithin {100 * laplace:.0f} %. The meta couplings (1.4 Hz) are pinned to "
        f"±{meta:.3f} Hz; the para\ncoupling (0.5 Hz) is the widest, "
        f"±{rows['j_hz[H3-H6]']['sd']:.3f} Hz"
    )
    return out


FIGURES += [("docs/spin-systems.md", lambda i=i: _ring_posterior()[i]) for i in range(12)]


def _sbc(name: str) -> dict:
    return json.loads((ROOT / "docs" / "figures" / f"sbc_{name}.json").read_text())


def _cov(d: dict, level: str, rows=None) -> str:
    import numpy as np

    c = np.array(d[f"covered{level}"])
    c = c if rows is None else c[rows]
    return ", ".join(f"{100 * x:.1f}" for x in c.mean(0))


def _pv(d: dict) -> str:
    return ", ".join(f"{d['p_values'][k]:.2g}" for k in d["names"])


def _sbc_rows() -> list[str]:
    """The rows of the corrected-surrogate / local-workflow SBC table in calibration.md."""
    import numpy as np

    nf, fb, loc, ex = _sbc("chain4corr"), _sbc("chain4fb"), _sbc("local4"), _sbc("exact4")
    f = np.array(fb["fallback"])
    n_loc, n_ex = int((f == "local").sum()), int((f == "exact").sum())
    n_loc4 = int((np.array(loc["fallback"]) == "exact").sum())
    minutes = [round(d["provenance"]["seconds"] / 60) for d in (nf, fb, loc)]
    ok = np.array(nf["corrected"])
    return [
        f"| `chain4` + correction, `--no-fallback` | 200 | {int(ok.sum())} | "
        f"**{_cov(nf, '90')}** | {_cov(nf, '50')} | **{_pv(nf)}** | {minutes[0]} min |",
        f"| `chain4` + correction + fallback (the default) | 200 | "
        f"{int(np.sum(fb['corrected']))} (+ {n_loc} local, {n_ex} exact) | {_cov(fb, '90')} | "
        f"{_cov(fb, '50')} | {_pv(fb)} | {minutes[1]} min |",
        f"| local workflow (`--model local`) | 100 | {int(np.sum(loc['corrected']))} "
        f"(+ {n_loc4} exact) | {_cov(loc, '90')} | {_cov(loc, '50')} | {_pv(loc)} | "
        f"{minutes[2]} min |",
        f"| exact, the same 100 data sets (the 4-spin study above) | 100 | – | "
        f"{_cov(ex, '90', slice(0, 100))} | {_cov(ex, '50', slice(0, 100))} | – | – |",
        f"among the {int(ok.sum())} data sets whose correction held, the 90 % intervals cover "
        f"{_cov(nf, '90', ok)} %; among the {int((~ok).sum())} where it failed, "
        f"{_cov(nf, '90', ~ok)} %",
    ]


def _local_vs_exact() -> str:
    import numpy as np

    loc, ex = _sbc("local4"), _sbc("exact4")
    me, se = np.array(ex["means"])[:100], np.array(ex["sds"])[:100]
    shift = np.abs(np.array(loc["means"]) - me) / se
    ratio = np.median(np.array(loc["sds"]) / se, 0)
    return (
        f"median {np.median(shift, 0).max():.2f} exact sds (95th percentile at most "
        f"{np.quantile(shift, 0.95, 0).max():.2f}), and the median sd ratio is "
        f"{ratio.min():.2f}–{ratio.max():.2f}"
    )


def _ring_sbc() -> list[str]:
    d = _sbc("ring")
    c90 = [100 * d["coverage"]["90"][n] for n in d["names"]]
    return [
        f"| `{n}` | {100 * d['coverage']['90'][n]:.1f} | {100 * d['coverage']['50'][n]:.1f} | "
        f"{d['p_values'][n]:.2g} |"
        for n in d["names"]
    ] + [f"every 90 % interval covers {min(c90):.1f}–{max(c90):.1f} % of the"]


FIGURES += [("docs/calibration.md", lambda i=i: _sbc_rows()[i]) for i in range(5)]
FIGURES.append(("docs/calibration.md", _local_vs_exact))
FIGURES += [("docs/spin-systems.md", lambda i=i: _ring_sbc()[i]) for i in range(10)]


def _demo_rows() -> list[str]:
    runs = _json("demo.json")["runs"]
    stages = ["simulate", "recover_j", "global_fit", "nuts_exact", "surrogate_corrected"]
    out = []
    for name, key in (("cold (a fresh machine)", "cold"), ("warm (the second run)", "warm")):
        r = runs[key]
        st = " | ".join(f"{r['stage_seconds'][k]:.0f} s" for k in stages)
        out.append(f"| {name} | **{r['seconds']:.1f} s** ({_verdict(r['seconds'] <= 60)}) | {st} |")
    return out


FIGURES += [("docs/benchmarks.md", lambda i=i: _demo_rows()[i]) for i in range(2)]


def _nuts_long_rows() -> list[str]:
    runs = _json("nuts.json")["runs"]
    out = []
    for n, limit in ((6, 180), (8, 720)):
        r = runs.get(f"exact_n{n}")
        if r is None:
            continue
        out.append(
            f"| {n} | **{r['seconds']:.1f} s** (≤ {limit // 60} min: "
            f"{_verdict(r['seconds'] <= limit)}) | {r['fit_seconds']:.1f} s | "
            f"{r['max_r_hat']:.3f} | {r['min_ess_bulk']:,.0f} / {r['min_ess_tail']:,.0f} | "
            f"{r['divergences']} |"
        )
    return out


FIGURES += [("docs/benchmarks.md", lambda i=i: _nuts_long_rows()[i]) for i in range(2)]
FIGURES.append(
    (
        "docs/benchmarks.md",
        lambda: "same run takes {:.1f} min, {:.2f}× the estimate that".format(
            _json("nuts.json")["runs"]["exact_n8"]["seconds"] / 60,
            _json("nuts.json")["runs"]["exact_n8"]["seconds"]
            / _local(8)["exact_nuts_estimate_seconds"],
        ),
    )
)


def _network_fit_rows() -> list[str]:
    d = _json("network_fit.json")
    out = []
    for width, row in d["summary"].items():
        cells = []
        for name in ("global", "file_starts"):
            c = row[name]["counts"]
            cells.append(
                f"{c['truth']} / {c['identifiability']} / {c['search failure']} | "
                f"{row[name]['median_seconds']:.1f} s"
            )
        out.append(f"| ±{float(width):g} Hz | {row['problems']} | " + " | ".join(cells) + " |")
    return out


def _network_local_rows() -> list[str]:
    out = []
    for r in _json("network_local.json")["rows"]:
        lo, hi = r["sd_ratio_range"]
        out.append(
            f"| {r['problem']} | {r['n_spins']} | {r['free_parameters']} | "
            f"{r['exact_seconds']:.0f} s | {r['local_seconds']:.0f} s | "
            f"{r['exact_over_local']:.1f}× | {r['pareto_k']:.2f} | {r['effective_draws']:.0f} | "
            f"{r['max_shift_in_exact_sd']:.2f} | {lo:.2f}–{hi:.2f} |"
        )
    return out


FIGURES += [("docs/spin-systems.md", lambda i=i: _network_fit_rows()[i]) for i in range(2)]
FIGURES += [("docs/spin-systems.md", lambda i=i: _network_local_rows()[i]) for i in range(2)]


@pytest.mark.parametrize(
    "doc, render", FIGURES, ids=[f"{d}:{i}" for i, (d, _) in enumerate(FIGURES)]
)
def test_quoted_figure_is_the_json_figure(doc, render):
    text = (ROOT / doc).read_text()
    want = render()
    assert want in text, f"{doc} should quote, from its JSON: {want!r}"


def test_every_public_name_is_in_the_api_reference():
    import bayesnmr as bn

    api = (ROOT / "docs" / "api.md").read_text()
    public = [k for k in dir(bn) if not k.startswith("_")]
    missing = [k for k in public if f"::: bayesnmr.{k}\n" not in api]
    assert not missing, f"docs/api.md lacks {missing}"
