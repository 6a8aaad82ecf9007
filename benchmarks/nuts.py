"""NUTS on the default 4-spin problem: the shipped surrogate against the exact solver.

Method: the embedded default chain (offsets -40, -10, 20, 45 Hz, J = 12.5 Hz,
TimeGrid(300, 1e-3)), noise sigma = 0.02 (seed 1), observed mx, my and iz1. Priors:
boxes of +-15 Hz around the spectrum's peaks, J in [0, 20] Hz; sigma integrated out.
Chains start at the `fit` estimate. For each forward model, `sample_posterior` with
4 chains x (1000 warmup + 1000 draws), one chain per CPU device (`bn.use_cpu_cores()`,
then `chain_method="auto"`, which picks "parallel"), timed from the call
to the returned DataTree (compilation included, as a user waits for it), then ArviZ
diagnostics: max R-hat, min bulk and tail ESS, divergences. Targets (surrogate): <= 60 s
on 2 CPU cores, R-hat <= 1.01, bulk ESS >= 400, no divergences.

Writes `nuts.json` into `--out`.

    uv run python benchmarks/nuts.py            # the full run (a few minutes)
    uv run python benchmarks/nuts.py --quick    # 2 chains x (50 + 50), short fits: a smoke test
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, write_json  # noqa: E402


def main(args) -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)
    import bayesnmr as bn

    bn.use_cpu_cores()  # before JAX computes anything

    chain = bn.SpinChain([-40.0, -10.0, 20.0, 45.0], 12.5)
    grid = bn.TimeGrid(300, 1e-3)
    data = bn.synthesize(chain, grid, sigma=0.02, seed=1)
    priors = bn.Priors.around(bn.peak_offsets(data, 4), 15.0, j_hz=(0.0, 20.0))
    chains, warmup, draws = (2, 50, 50) if args.quick else (4, 1000, 1000)
    results = {
        "benchmark": "nuts",
        "method": __doc__,
        "quick": args.quick,
        "machine": machine(),
        "jax_devices": jax.local_device_count(),
        "runs": {},
    }
    for name, solver in (("surrogate", bn.load_surrogate("chain4")), ("exact", None)):
        quick = {"n_starts": 2, "steps": 10, "broadening": ()} if args.quick else {}
        start = bn.fit(data, priors, solver=solver, laplace=False, **quick)
        t0 = time.perf_counter()
        dt = bn.sample_posterior(
            data,
            priors,
            solver=solver,
            chains=chains,
            warmup=warmup,
            draws=draws,
            progress_bar=False,
            init={"offsets_hz": start.offsets_hz, "j_hz": start.j_hz},
        )
        seconds = time.perf_counter() - t0
        summary, problems = bn.diagnose(dt, warn=False)
        results["runs"][name] = {
            "seconds": seconds,
            "chains": chains,
            "warmup": warmup,
            "draws": draws,
            "max_r_hat": float(summary["r_hat"].max()),
            "min_ess_bulk": float(summary["ess_bulk"].min()),
            "min_ess_tail": float(summary["ess_tail"].min()),
            "divergences": int(np.asarray(dt.sample_stats["diverging"]).sum()),
            "problems": problems,
            "mean": {k: summary.loc[k, "mean"] for k in summary.index},
            "sd": {k: summary.loc[k, "sd"] for k in summary.index},
        }
        print(name, {k: v for k, v in results["runs"][name].items() if k not in ("mean", "sd")})
    surrogate, exact = results["runs"]["surrogate"], results["runs"]["exact"]
    results["exact_over_surrogate_seconds"] = exact["seconds"] / surrogate["seconds"]
    # How far the surrogate's posterior is from the exact one, in exact posterior sds.
    results["surrogate_shift_in_sd"] = {
        k: abs(surrogate["mean"][k] - exact["mean"][k]) / exact["sd"][k] for k in exact["mean"]
    }
    write_json(Path(args.out) / "nuts.json", results)
    print(f"Wrote {Path(args.out) / 'nuts.json'}")
    return results


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="2 chains x (50 + 50): a smoke test")
    p.add_argument("--out", default="benchmarks/results")
    return p.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
