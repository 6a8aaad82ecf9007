"""NUTS on the default 4-spin problem: time, diagnostics, surrogate against exact, and
memory over many calls.

Method: the embedded default chain (offsets -40, -10, 20, 45 Hz, J = 12.5 Hz,
TimeGrid(300, 1e-3)), noise sigma = 0.02 (seed 1), observed mx, my and iz1; sigma
integrated out. One chain per CPU device (`bn.use_cpu_cores()`, then
`chain_method="auto"`, which picks "parallel"); 4 chains x (1000 warmup + 1000 draws).
Every time is wall time in one fresh process, compilation included, as a user waits.

- `plain`: `bn.sample_posterior(data)`, no priors and no start: the global fit from the
  data alone, then NUTS from its modes. `fit_seconds` is the fit's share.
- `exact` and `surrogate`: priors of +-15 Hz around the spectrum's peaks (inside the
  shipped `chain4` surrogate's domain), J in [0, 20] Hz; `bn.fit` with that forward
  model, then `sample_posterior(data, priors, init=fit)` timed alone (`seconds`: NUTS,
  its compilation and the posterior predictive). Target (exact): <= 30 s on 2 cores.
- `--spins 6 8` (runs `exact_n6`, `exact_n8`, merged into an existing `nuts.json`):
  longer chains, one random chain per N (offsets U[-100, 100] Hz, J U[2, 20] Hz, seed N,
  sigma = 0.02), priors +-5 Hz around the true offsets, `bn.fit` from offsets 0.5 Hz
  off the truth, then `sample_posterior(data, priors, init=fit)` timed alone, 4 chains x
  (1000 + 1000), compilation included. Targets (issue 17): N = 6 <= 3 min, N = 8
  <= 12 min on 2 cores.
- `chain_methods`: the `exact` run's posterior (same priors, fit, keys and starts) with
  each `chain_method`: "vectorized" (the chains in step on one device), "threads" (one
  chain per thread on one device, the default on a CPU without a device per chain) and
  "parallel" (one chain per host device). `first_seconds` is a first call (compilation
  included; "parallel" is the structure of `exact`, already compiled), `seconds` a
  second one (compiled); `max_mean_shift_in_sd`: the largest
  difference of a posterior mean from the vectorized run's, in its sds.
- `memory`: `--calls` posteriors in one process (2 spins, new data each call, 2 chains x
  (100 + 100), started at the truth), resident memory after each: the sampler is
  compiled once, so memory must stay flat.

ArviZ diagnostics for each run: max R-hat, min bulk and tail ESS, divergences; the
surrogate's posterior mean against the exact one in exact posterior sds.

Writes `nuts.json` into `--out`.

    uv run python benchmarks/nuts.py            # the full run (a few minutes)
    uv run python benchmarks/nuts.py --spins 6 8   # exact NUTS on longer chains (~15 min)
    uv run python benchmarks/nuts.py --quick    # 2 chains x (50 + 50), 5 calls: a smoke test
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, stamp, write_json  # noqa: E402


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def describe(dt, seconds: float, **extra) -> dict:
    import bayesnmr as bn

    summary, problems = bn.diagnose(dt, warn=False)
    return {
        "seconds": seconds,
        **extra,
        "chains": int(dt.posterior.sizes["chain"]),
        "draws": int(dt.posterior.sizes["draw"]),
        "modes": int(dt["modes"].sizes["mode"]),
        "max_r_hat": float(summary["r_hat"].max()),
        "min_ess_bulk": float(summary["ess_bulk"].min()),
        "min_ess_tail": float(summary["ess_tail"].min()),
        "divergences": int(np.asarray(dt.sample_stats["diverging"]).sum()),
        "mean_tree_steps": float(np.asarray(dt.sample_stats["n_steps"]).mean()),
        "problems": problems,
        # A surrogate's posterior is corrected to the exact one by default: how it went.
        "corrected": bool(dt.attrs.get("corrected", 0)),
        "fallback": str(dt.attrs.get("fallback", "")),
        "pareto_k": (
            float(dt["correction"].attrs["pareto_k"]) if "correction" in dt.children else None
        ),
        "mean": {k: summary.loc[k, "mean"] for k in summary.index},
        "sd": {k: summary.loc[k, "sd"] for k in summary.index},
    }


def main(args) -> dict:
    import jax

    import bayesnmr as bn

    bn.use_cpu_cores()  # before JAX computes anything
    jax.config.update("jax_enable_x64", True)

    if args.spins:
        return longer_chains(args)
    chain = bn.SpinChain([-40.0, -10.0, 20.0, 45.0], 12.5)
    grid = bn.TimeGrid(300, 1e-3)
    data = bn.synthesize(chain, grid, sigma=0.02, seed=1)
    priors = bn.Priors.around(bn.peak_offsets(data, 4), 15.0, j_hz=(0.0, 20.0))
    chains, warmup, draws = (2, 50, 50) if args.quick else (4, 1000, 1000)
    settings = {
        "sampler": bn.NUTS(chains=chains, warmup=warmup, draws=draws),
        "progress_bar": False,
    }
    results = {
        "benchmark": "nuts",
        "method": __doc__,
        "quick": args.quick,
        "machine": machine(),
        "jax_devices": jax.local_device_count(),
        "runs": {},
    }
    quick_fit = {"n_starts": 4, "steps": 8} if args.quick else {}
    with jax.numpy_rank_promotion("allow"):
        t0 = time.perf_counter()
        start = bn.fit(data, **quick_fit)
        fit_seconds = time.perf_counter() - t0
        dt = bn.sample_posterior(data, init=start, **settings)
        total = time.perf_counter() - t0
        results["runs"]["plain"] = describe(dt, total, fit_seconds=fit_seconds) | stamp()
        print("plain", {k: v for k, v in results["runs"]["plain"].items() if k[:2] != "me"})
        for name, solver in (("exact", None), ("surrogate", bn.load_surrogate("chain4"))):
            t0 = time.perf_counter()
            start = bn.fit(data, priors, solver=solver, **quick_fit)
            fit_seconds = time.perf_counter() - t0
            t0 = time.perf_counter()
            dt = bn.sample_posterior(data, priors, solver=solver, init=start, **settings)
            seconds = time.perf_counter() - t0
            results["runs"][name] = describe(dt, seconds, fit_seconds=fit_seconds) | stamp()
            print(name, {k: v for k, v in results["runs"][name].items() if k[:2] != "me"})
            if name == "exact":
                results["chain_methods"] = chain_methods(data, priors, start, settings)
                print("chain_methods", results["chain_methods"])
        surrogate, exact = results["runs"]["surrogate"], results["runs"]["exact"]
        results["exact_over_surrogate_seconds"] = exact["seconds"] / surrogate["seconds"]
        results["surrogate_shift_in_sd"] = {
            k: abs(surrogate["mean"][k] - exact["mean"][k]) / exact["sd"][k] for k in exact["mean"]
        }
        results["memory"] = memory_over_calls(5 if args.quick else args.calls)
    print("memory", results["memory"])
    path = Path(args.out) / "nuts.json"
    if path.is_file():  # keep the longer chains (`--spins`) of an earlier run
        earlier = json.loads(path.read_text())
        for name, run in earlier.get("runs", {}).items():
            results["runs"].setdefault(name, run)
        if "longer_chains_method" in earlier:
            results["longer_chains_method"] = earlier["longer_chains_method"]
    write_json(path, results)
    print(f"Wrote {path}")
    return results


def longer_chains(args) -> dict:
    """Exact NUTS on one random chain per N in `args.spins`, merged into `nuts.json`."""
    import jax

    import bayesnmr as bn

    path = Path(args.out) / "nuts.json"
    results = json.loads(path.read_text()) if path.is_file() else {"runs": {}}
    chains, warmup, draws = (2, 50, 50) if args.quick else (4, 1000, 1000)
    grid = bn.TimeGrid(300, 1e-3)
    for n in args.spins:
        rng = np.random.default_rng(n)
        chain = bn.SpinChain(rng.uniform(-100, 100, n), float(rng.uniform(2, 20)))
        data = bn.synthesize(chain, grid, sigma=0.02, seed=n)
        priors = bn.Priors.around(np.asarray(chain.offsets_hz), 5.0, j_hz=(0.0, 25.0))
        start = {"offsets_hz": np.asarray(chain.offsets_hz) + 0.5, "j_hz": float(chain.j_hz)}
        with jax.numpy_rank_promotion("allow"):
            t0 = time.perf_counter()
            fit = bn.fit(data, priors, init=start, n_starts=1, progress_bar=False)
            fit_seconds = time.perf_counter() - t0
            t0 = time.perf_counter()
            dt = bn.sample_posterior(
                data, priors, init=fit, progress_bar=False,
                sampler=bn.NUTS(chains=chains, warmup=warmup, draws=draws),
            )  # fmt: skip
            seconds = time.perf_counter() - t0
        run = describe(dt, seconds, fit_seconds=fit_seconds, n_spins=n) | stamp()
        results["runs"][f"exact_n{n}"] = run
        print(n, {k: v for k, v in run.items() if k[:2] != "me"}, flush=True)
    results["longer_chains_method"] = longer_chains.__doc__
    results.setdefault("machine", machine())
    write_json(path, results)
    print(f"Wrote {path}")
    return results


def chain_methods(data, priors, start, settings) -> dict:
    """The same posterior with each `chain_method`, timed on a first and a second call."""
    import bayesnmr as bn

    nuts = settings["sampler"]
    out = {}
    for method in ("vectorized", "threads", "parallel"):
        sampler = bn.NUTS(nuts.chains, nuts.warmup, nuts.draws, chain_method=method)
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            dt = bn.sample_posterior(data, priors, init=start, sampler=sampler, progress_bar=False)
            times.append(time.perf_counter() - t0)
        summary, _ = bn.diagnose(dt, warn=False)
        out[method] = {
            "first_seconds": times[0],
            "seconds": times[1],
            "mean_tree_steps": float(np.asarray(dt.sample_stats["n_steps"]).mean()),
            "mean": summary["mean"],
            "sd": summary["sd"],
        } | stamp()
    for run in out.values():
        shift = (run["mean"] - out["vectorized"]["mean"]).abs() / out["vectorized"]["sd"]
        run["max_mean_shift_in_sd"] = float(shift.max())
    for run in out.values():
        run["mean"], run["sd"] = run["mean"].to_dict(), run["sd"].to_dict()
    out["vectorized_over_threads"] = out["vectorized"]["seconds"] / out["threads"]["seconds"]
    return out


def memory_over_calls(calls: int) -> dict:
    import bayesnmr as bn

    grid = bn.TimeGrid(300, 1e-3)
    rng = np.random.default_rng(0)
    rss, t0 = [], time.perf_counter()
    for k in range(calls):
        offsets = np.sort(rng.uniform(-60, 60, 2))
        data = bn.synthesize(bn.SpinChain(offsets, 8.0), grid, sigma=0.02, seed=k)
        bn.sample_posterior(
            data,
            bn.Priors.around(offsets, 10.0),
            init={"offsets_hz": offsets, "j_hz": 8.0},
            sampler=bn.NUTS(chains=2, warmup=100, draws=100),
            progress_bar=False,
        )
        rss.append(rss_mib())
    return {
        "calls": calls,
        "rss_mib": rss,
        "growth_after_first_mib": rss[-1] - rss[0],
        "growth_second_half_mib": rss[-1] - rss[len(rss) // 2],
        "seconds": time.perf_counter() - t0,
    }


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="2 chains x (50 + 50): a smoke test")
    p.add_argument("--calls", type=int, default=100, help="posteriors in the memory loop")
    p.add_argument("--spins", type=int, nargs="*", default=[], help="exact NUTS at these N only")
    p.add_argument("--out", default="benchmarks/results")
    return p.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
