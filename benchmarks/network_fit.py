"""How often does `bn.fit(data, spec)` find a network's right answer from the data alone?

Method: the benzene ring of `examples/systems/ortho_disubstituted_benzene.toml` (nine free
parameters: four shifts, three ortho couplings in [6, 10] Hz, the tied meta pair in
[0, 3] Hz, the para coupling in [-1, 2] Hz), with each shift's prior box set to the
file's value +- `--boxes` Hz (16 Hz is the file's own +-0.04 ppm at 400 MHz; at 40 Hz the
boxes overlap, so which line belongs to which spin is unknown). The file's values stay
at the box centres. For each width, `--problems` truths drawn uniformly from the boxes
(seed 1), TimeGrid(300, 1e-3), noise sigma = 0.01 on mx, my and H3's polarisation
(data seed = problem). Two fits of each data set, exact solver:

- `global`: the plain call `bn.fit(data, spec)` (the global search: 1,024 candidates
  drawn from the spectrum's lines screened on the broadened misfit, 8 full descents);
- `file_starts`: `bn.fit(data, spec, init=<the file's values>)`, 8 descents from the
  file's values and 7 random points of the boxes (the default before the global search).

Each fit is classified as in `fit_success.py`: `truth` (every parameter within 0.5 Hz),
`identifiability` (another solution whose misfit is no worse than the truth's), or
`search failure` (the misfit at the truth is lower than the one found). Times are wall
times of the whole call, compilation included on the first problem of each method.

Writes `network_fit.json` into `--out` after every problem (atomically), each row with
the commit, date and machine.

    uv run python benchmarks/network_fit.py                 # 12 problems at 16 and 40 Hz
    uv run python benchmarks/network_fit.py --quick         # 1 problem, short descents
"""

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, outcome, stamp, write_json  # noqa: E402


def ring(half_width: float):
    """The ring's spec with every shift's box the file's value +- `half_width` Hz."""
    import bayesnmr as bn

    spec = bn.load_spin_system(ROOT / "examples" / "systems" / "ortho_disubstituted_benzene.toml")
    centres = np.asarray(spec.system.offsets_hz)
    boxes = tuple((c - half_width, c + half_width) for c in centres)
    return dataclasses.replace(spec, offset_boxes=boxes)


def run_one(half_width: float, k: int, quick: bool) -> dict:
    import jax
    import jax.numpy as jnp

    import bayesnmr as bn
    from bayesnmr._inference._network_misfit import _misfit_fn
    from bayesnmr._inference._network_space import NetworkSpace

    spec = ring(half_width)
    space = NetworkSpace(spec)
    rng = np.random.default_rng([1, int(half_width), k])
    truth = rng.uniform(space.lo, space.hi)
    data = bn.synthesize(space.system(jnp.asarray(truth)), bn.TimeGrid(300, 1e-3), 0.01, seed=k)
    misfit = _misfit_fn(data, space, None)
    loss_truth = float(misfit(jnp.asarray(truth), jnp.ones(data.grid.n)))
    row = {"box_half_width_hz": half_width, "problem": k, "truth": truth.tolist()}
    settings = {"n_starts": 2, "steps": 8} if quick else {}
    for name, init in (("global", None), ("file_starts", space.start)):
        t0 = time.perf_counter()
        with jax.numpy_rank_promotion("allow"):
            fit = bn.fit(data, spec, init=init, progress_bar=False, **settings)
        seconds = time.perf_counter() - t0
        err = float(np.abs(space.free(fit.offsets_hz, fit.j_hz) - truth).max())
        row[name] = {
            "outcome": outcome(err, fit.loss, loss_truth),
            "max_error_hz": err,
            "loss": fit.loss,
            "seconds": seconds,
        }
    row["loss_at_truth"] = loss_truth
    return row | stamp()


def summarise(rows: list[dict]) -> dict:
    out = {}
    for width in sorted({r["box_half_width_hz"] for r in rows}):
        mine = [r for r in rows if r["box_half_width_hz"] == width]
        out[str(width)] = {"problems": len(mine)}
        for name in ("global", "file_starts"):
            outcomes = [r[name]["outcome"] for r in mine]
            out[str(width)][name] = {
                "counts": {
                    o: outcomes.count(o) for o in ("truth", "identifiability", "search failure")
                },  # fmt: skip
                "success_rate": 1 - outcomes.count("search failure") / len(mine),
                "median_seconds": float(np.median([r[name]["seconds"] for r in mine])),
            }
    return out


def main(args) -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)
    widths = [16.0] if args.quick else args.boxes
    count = 1 if args.quick else args.problems
    path = Path(args.out) / "network_fit.json"
    rows = []
    for width in widths:
        for k in range(count):
            rows.append(run_one(width, k, args.quick))
            r = rows[-1]
            print(f"box +-{width:g} Hz, problem {k}: "
                  + ", ".join(f"{m} {r[m]['outcome']} ({r[m]['max_error_hz']:.3f} Hz, "
                              f"{r[m]['seconds']:.1f} s)" for m in ("global", "file_starts")),
                  flush=True)  # fmt: skip
            results = {
                "benchmark": "network_fit",
                "method": __doc__,
                "quick": args.quick,
                "machine": machine(),
                "summary": summarise(rows),
                "rows": rows,
            }
            write_json(path, results)
    print(results["summary"])
    return results


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="1 problem, short descents")
    p.add_argument("--boxes", type=float, nargs="+", default=[16.0, 40.0],
                   help="half-widths of the shifts' boxes, Hz")  # fmt: skip
    p.add_argument("--problems", type=int, default=12)
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    return p.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
