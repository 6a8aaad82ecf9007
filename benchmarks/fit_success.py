"""How often does `fit` find the right answer? Its success rate over random problems.

Method: `--problems` random 4-spin chains (seed 0: offsets U[-100, 100] Hz sorted
along the chain, J U[2, 20] Hz), TimeGrid(300, 1e-3), noise sigma = 0.02, mx, my and iz1
observed. For each, what a user does: priors from the data (boxes of +-15 Hz around
`peak_offsets`, the i-th peak from the left for spin i, J in [0, 20] Hz) and `bn.fit`
with its defaults (8 starts in one vmapped batch, line broadening 30 ms then 100 ms then
none, 25 L-BFGS steps each), exact solver. A fit
succeeds when every offset and J are within 0.5 Hz of the truth (the posterior sd is
~0.01 Hz, so this separates the right minimum from a wrong one). Each failure is
classified:

- `truth outside the priors`: a true offset lies outside its box (the peaks misled);
- `local minimum`: the truth is inside, but the fit's misfit is above the misfit at the
  truth (the optimiser stopped in a false minimum);
- `other`: neither (a better minimum than the truth elsewhere: an ambiguity).

The offsets are sorted so that the peaks' order is the spins' order along the chain:
which peak belongs to which position is a separate question (for unsorted chains the
boxes from sorted peaks miss the truth in almost every problem: 5 of the first 5).

Writes `fit_success.json` into `--out`.

    uv run python benchmarks/fit_success.py            # 40 problems (~6 min on 2 cores)
    uv run python benchmarks/fit_success.py --quick    # 3 problems, short fits
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
    from bayesnmr._inference._fit import _loss_hz, _Space

    grid = bn.TimeGrid(300, 1e-3)
    rng = np.random.default_rng(0)
    count = 3 if args.quick else args.problems
    rows = []
    t_all = time.perf_counter()
    for k in range(count):
        offsets = np.sort(rng.uniform(-100, 100, 4))
        j = float(rng.uniform(2, 20))
        data = bn.synthesize(bn.SpinChain(offsets, j), grid, sigma=0.02, seed=k)
        priors = bn.Priors.around(bn.peak_offsets(data, 4), 15.0, j_hz=(0.0, 20.0))
        quick = {"n_starts": 2, "steps": 5} if args.quick else {}
        res = bn.fit(data, priors, laplace=False, **quick)
        err = np.abs(np.r_[res.offsets_hz - offsets, float(res.j_hz) - j])
        inside = bool(
            np.all((offsets >= priors.offsets_hz[:, 0]) & (offsets <= priors.offsets_hz[:, 1]))
        )
        # The misfit at the truth, with the same function the fit minimises.
        space = _Space(priors)
        plan, consts = space.plan(data, 1, (None,)), space.consts(data)
        loss_truth = float(_loss_hz(plan, consts, None, None, np.r_[offsets, j]))
        ok = bool(np.all(err < 0.5))
        reason = None
        if not ok:
            if not inside:
                reason = "truth outside the priors"
            elif res.loss > loss_truth + 1e-9:
                reason = "local minimum"
            else:
                reason = "other"
        rows.append(
            {
                "offsets_hz": offsets.tolist(),
                "j_hz": j,
                "fit_offsets_hz": res.offsets_hz.tolist(),
                "fit_j_hz": float(res.j_hz),
                "max_error_hz": float(err.max()),
                "success": ok,
                "failure": reason,
                "loss": res.loss,
                "loss_at_truth": loss_truth,
                "seconds": res.seconds,
            }
        )
        print(f"{k:3d} J={j:5.2f} max error {err.max():8.4f} Hz  {'ok' if ok else reason}")
    failures = {}
    for r in rows:
        if r["failure"]:
            failures[r["failure"]] = failures.get(r["failure"], 0) + 1
    results = {
        "benchmark": "fit_success",
        "method": __doc__,
        "quick": args.quick,
        "machine": machine(),
        "problems": count,
        "success_rate": float(np.mean([r["success"] for r in rows])),
        "failures": failures,
        "median_fit_seconds": float(np.median([r["seconds"] for r in rows])),
        "total_seconds": time.perf_counter() - t_all,
        "rows": rows,
    }
    print(f"success {results['success_rate']:.0%} of {count}; failures {failures}")
    write_json(Path(args.out) / "fit_success.json", results)
    return results


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="3 problems: a smoke test")
    p.add_argument("--problems", type=int, default=40)
    p.add_argument("--out", default="benchmarks/results")
    return p.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
