"""Problem-local surrogates for networks: `sample_posterior(data, spec, solver="local")`
against exact NUTS on the same data.

Method: two problems, TimeGrid(300, 1e-3), sigma = 0.01 (integrated out), mx, my and
the polarisation of the file's `iz_spin` observed:

- `ring`: the benzene ring of `examples/systems/ortho_disubstituted_benzene.toml` (nine
  free parameters), data simulated at the file's values (seed 3);
- `network6`: six spins (seed 6: offsets U[-150, 150] Hz, every pair coupled, the five
  neighbours' J U[5, 15] Hz and the rest U[-2, 3] Hz); free: the six offsets (+-5 Hz
  boxes around the truth), the five neighbours' couplings ([0, 20] Hz) and the three
  couplings of spin 1 to spins 3, 4 and 5 ([-3, 4] Hz); the other seven fixed at their
  values: fourteen free parameters.

For each, in one process, compilation included, as a user waits: `bn.fit(data, spec)`
(the global search, `fit_seconds`), then from that fit exact NUTS (`exact_seconds`)
and the local workflow (`local_seconds`: the exact line lists and training, NUTS on the
local surrogate, the exact correction of 1,000 draws and the predictive), each 4 chains
x (1000 + 1000). Reported: the correction's Pareto k-hat and effective draws, ArviZ max
R-hat and min bulk ESS of both posteriors, and the local posterior's means (in exact
sds) and sds (relative) against exact NUTS's.

Writes `network_local.json` into `--out`.

    uv run python benchmarks/network_local.py            # both problems (~10 min)
    uv run python benchmarks/network_local.py --quick    # three spins, short chains
"""

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, stamp, write_json  # noqa: E402


def network6():
    """The six-spin problem's `SystemSpec`."""
    import bayesnmr as bn

    rng = np.random.default_rng(6)
    n = 6
    offsets = rng.uniform(-150, 150, n)
    j = np.zeros((n, n))
    for a in range(n):
        for b in range(a + 1, n):
            j[a, b] = j[b, a] = rng.uniform(5, 15) if b == a + 1 else rng.uniform(-2, 3)
    system = bn.SpinSystem(offsets, j)
    spec = bn.system_spec(system, offset_boxes=[(o - 5, o + 5) for o in offsets])
    free = {(a, a + 1): (0.0, 20.0) for a in range(n - 1)} | {
        (0, b): (-3.0, 4.0) for b in (2, 3, 4)
    }
    couplings = tuple(dataclasses.replace(c, box=free.get(c.pair)) for c in spec.couplings)
    return dataclasses.replace(spec, couplings=couplings)


def quick3():
    import bayesnmr as bn

    system = bn.SpinSystem([-35.0, 5.0, 40.0], [[0, 9.0, 2.0], [9.0, 0, 7.0], [2.0, 7.0, 0]])
    boxes = [(-45.0, -25.0), None, (30.0, 50.0)]
    return bn.system_spec(system, offset_boxes=boxes, coupling_boxes={(0, 1): (4.0, 14.0)})


def draws(group) -> np.ndarray:
    return np.hstack([np.asarray(group[k]).reshape(-1, np.shape(group[k])[-1])
                      for k in ("offsets_hz", "j_hz") if k in group])  # fmt: skip


def run(name: str, spec, quick: bool) -> dict:
    import jax

    import bayesnmr as bn

    data = bn.synthesize(spec.system, bn.TimeGrid(300, 1e-3), sigma=0.01, seed=3)
    # Quick: 2 x (150 + 150). The correction needs 100 effective draws, counted with the
    # chains' autocorrelation (r_eff): of 2 x 100 draws that passed by a hair or not
    # (89-182 over 4 seeds; 158-300 with 150 each).
    chains, warmup, n_draws = (2, 150, 150) if quick else (4, 1000, 1000)
    settings = {"sampler": bn.NUTS(chains=chains, warmup=warmup, draws=n_draws),
                "progress_bar": False}  # fmt: skip
    with jax.numpy_rank_promotion("allow"):
        t0 = time.perf_counter()
        fit = bn.fit(data, spec, progress_bar=False)
        t1 = time.perf_counter()
        exact = bn.sample_posterior(data, spec, init=fit, **settings)
        t2 = time.perf_counter()
        local = bn.sample_posterior(data, spec, init=fit, solver="local", **settings)
        t3 = time.perf_counter()
    e, lo = draws(exact.posterior), draws(local.posterior)
    c = local["correction"].attrs
    training = json.loads(c["local_surrogate"])["training"]
    out = {"problem": name, "free_parameters": len(fit.names), "n_spins": spec.n_spins,
           "fit_seconds": t1 - t0, "exact_seconds": t2 - t1, "local_seconds": t3 - t2,
           "exact_over_local": (t2 - t1) / (t3 - t2), "pareto_k": c["pareto_k"],
           "effective_draws": c["ess"], "corrected": int(local.attrs["corrected"]),
           "fallback": local.attrs.get("fallback", ""),
           "training_seconds": training["seconds"], "training_points": training["points"],
           "correction_seconds": c["seconds"],
           "max_shift_in_exact_sd": float(np.max(np.abs(lo.mean(0) - e.mean(0)) / e.std(0))),
           "sd_ratio_range": [float(np.min(lo.std(0) / e.std(0))),
                              float(np.max(lo.std(0) / e.std(0)))]}  # fmt: skip
    for label, dt in (("exact", exact), ("local", local)):
        summary, _ = bn.diagnose(dt, warn=False)
        out[f"{label}_max_r_hat"] = float(summary["r_hat"].max())
        out[f"{label}_min_ess_bulk"] = float(summary["ess_bulk"].min())
    return out | stamp()


def main(args) -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)
    import bayesnmr as bn

    if args.quick:
        problems = [("quick3", quick3())]
    else:
        ring = bn.load_spin_system(ROOT / "examples/systems/ortho_disubstituted_benzene.toml")
        problems = [("ring", ring), ("network6", network6())]
    rows = []
    for name, spec in problems:
        rows.append(run(name, spec, args.quick))
        print({k: v for k, v in rows[-1].items() if k not in ("commit", "date")}, flush=True)
        results = {"benchmark": "network_local", "method": __doc__, "quick": args.quick,
                   "machine": machine(), "rows": rows}  # fmt: skip
        write_json(Path(args.out) / "network_local.json", results)
    return results


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="three spins, 2 x (150 + 150)")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    return p.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
