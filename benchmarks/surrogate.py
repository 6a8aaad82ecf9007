"""The surrogate benchmark: held-out accuracy, long-time stability and speed, measured.

Method:

- Accuracy: the shipped eigen-structured models (`chain4`, `chain8`) and the paper's
  baseline MLP, on fresh parameters drawn uniformly from the domain (offsets
  U[-100, 100] Hz, J U[0, 20] Hz, a seed no training data used), against the exact
  solver in float64. The error of a trace is its relative L2 norm over the 300 points;
  we report the median, the 95th percentile and the maximum over chains, for mx, my,
  iz1, and iz1 - 1 (iz1 is ~98 % constant, which flatters a relative error).
- Stability: the RMS error over the last third of the trace divided by that over the
  first third, per observable (target <= 2). The figure shows one held-out chain and
  the RMS error against time.
- Baseline: the MLP (5 -> 3 x 512 -> 3 x 300 heads) is trained here, on exact data
  generated here (`--baseline-samples`), for `--baseline-steps` steps; both are cached
  in `--work` so a rerun reuses them.
- Speed: one call of `simulate` under `jax.jit`, warm, median of repeats, each call on
  new parameters; and a `vmap`-ed batch, in trajectories per second. The exact solver
  is timed in the same process, on the same parameters, for the ratio. The networks
  run in float32; the eigen head's spectral sums and the exact solver in float64.
  Batches: 4096 surrogate trajectories at N = 4 (256 at N = 8), 256 exact (64 at
  N = 8), median of 3 batches.

Writes `surrogate.json`, `surrogate_stability.png` (N = 4) and
`surrogate_stability_n8.png` into `--out`.

    uv run python benchmarks/surrogate.py            # the full run (~15 min on 2 cores)
    uv run python benchmarks/surrogate.py --quick    # a smoke test (tiny models, seconds)
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, median_time, stamp, write_json  # noqa: E402


def timing(sur, n_spins: int, repeats: int, batch: int) -> dict:
    """Warm single-call and batched speed of `sur` (a solver) at `n_spins`."""
    import jax

    import bayesnmr as bn

    grid = bn.TimeGrid(300, 1e-3)
    rng = np.random.default_rng(n_spins)
    one = jax.jit(lambda o, j: bn.simulate(bn.SpinChain(o, j), grid, solver=sur).as_array())
    many = jax.jit(jax.vmap(lambda o, j: bn.simulate(bn.SpinChain(o, j), grid, sur).as_array()))
    params = [(rng.uniform(-100, 100, n_spins), rng.uniform(0, 20)) for _ in range(repeats + 1)]
    one(*params[0]).block_until_ready()
    it = iter(params[1:])
    single, _ = median_time(lambda: one(*next(it)).block_until_ready(), repeats)
    ob, jb = rng.uniform(-100, 100, (batch, n_spins)), rng.uniform(0, 20, batch)
    many(ob, jb).block_until_ready()
    secs, _ = median_time(lambda: many(ob, jb).block_until_ready(), 3)
    return {"single_seconds": single, "batch": batch, "trajectories_per_second": batch / secs}


def baseline_mlp(work: Path, samples: int, steps: int, quick: bool):
    import bayesnmr as bn

    data = work / ("data4-quick" if quick else "data4")
    grid = bn.TimeGrid(300, 1e-3)
    spec = bn.DataSpec(bn.Domain(4), grid, samples, min(samples, 2000), seed=101)
    bn.generate_data(data, spec, progress_bar=not quick)
    path = work / ("mlp4-quick.bnsur" if quick else "mlp4.bnsur")
    if path.exists():
        return bn.load_surrogate(path)
    cfg = bn.TrainConfig(
        architecture="mlp",
        width=32 if quick else 512,
        depth=2 if quick else 3,
        trace_steps=steps,
        learning_rate=1e-3,
        eval_every=max(steps // 20, 1),
        patience=1000,
    )
    t0 = time.perf_counter()
    sur = bn.train_surrogate(data, cfg, progress_bar=not quick)
    meta = sur.metadata | {"train_seconds": time.perf_counter() - t0}
    sur = bn.Surrogate(sur.net, "raise", __import__("json").dumps(meta))
    bn.save_surrogate(path, sur)
    return sur


def main(args) -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)
    import bayesnmr as bn
    from bayesnmr._io import save_figure
    from bayesnmr._surrogate._data import exact_traces

    out = Path(args.out)
    work = Path(args.work or tempfile.mkdtemp(prefix="bayesnmr-bench-"))
    n_test = 60 if args.quick else args.samples
    repeats = 5 if args.quick else args.repeats
    results = {
        "benchmark": "surrogate",
        "method": __doc__,
        "quick": args.quick,
        "machine": machine(),
        "models": {},
    }
    models = {"chain4": bn.load_surrogate("chain4"), "chain8": bn.load_surrogate("chain8")}
    models["mlp4"] = baseline_mlp(work, args.baseline_samples, args.baseline_steps, args.quick)
    if args.quick:
        models.pop("chain8")
    tests = {}
    for name, sur in models.items():
        n = sur.n_spins
        if n not in tests:
            rng = np.random.default_rng([2026, n])
            lo, hi = sur.domain.lower, sur.domain.upper
            count = n_test if n == 4 else max(n_test // 3, 20)
            thetas = lo + (hi - lo) * rng.random((count, lo.size))
            tests[n] = (thetas, exact_traces(thetas, sur.grid))
        thetas, traces = tests[n]
        report = bn.evaluate_surrogate(sur, thetas=thetas, traces=traces)
        meta = sur.metadata
        report["trained"] = {
            "architecture": sur.architecture,
            "width": meta.get("width"),
            "depth": meta.get("depth"),
            "config": meta.get("config"),
            "command": meta.get("command"),
            "train_seconds": meta.get("train_seconds"),
        }
        report["speed"] = timing(sur, n, repeats, 256 if args.quick or n > 4 else 4096)
        report["speed_exact"] = timing(bn.ExactSolver(), n, repeats, 64 if n > 4 else 256)
        report["speedup_single"] = (
            report["speed_exact"]["single_seconds"] / report["speed"]["single_seconds"]
        )
        results["models"][name] = report | stamp()
        print(name, {k: report[k] for k in ("mx", "my", "iz1", "stability", "speedup_single")})
        if name in ("chain4", "chain8"):
            fig = bn.plot_stability(sur, thetas[0], thetas, traces)
            suffix = "" if n == 4 else f"_n{n}"
            save_figure(fig, out / f"surrogate_stability{suffix}.png")
    write_json(out / "surrogate.json", results)
    print(f"Wrote {out / 'surrogate.json'}")
    return results


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="a smoke test: tiny data and baseline")
    p.add_argument("--samples", type=int, default=1000, help="held-out chains at N = 4")
    p.add_argument("--repeats", type=int, default=200)
    p.add_argument("--baseline-samples", type=int, default=40000)
    p.add_argument("--baseline-steps", type=int, default=40000)
    p.add_argument("--work", default="", help="cache folder for the baseline's data and model")
    p.add_argument("--out", default="benchmarks/results")
    return p.parse_args(argv)


if __name__ == "__main__":
    a = parse_args()
    if a.quick:
        a.baseline_samples, a.baseline_steps = 200, 50
    main(a)
