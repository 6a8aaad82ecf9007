"""The paper's Figure 2: is the surrogate stable over a long trace (300 steps)?

    uv run python examples/fig2_stability.py [--quick] [--model chain4] [--out DIR]

The shipped surrogate against the exact solver on held-out chains drawn from its
domain: the relative L2 error of each trace, and the RMS error against time. Stable
means the error does not grow along the trace: the printed late/early ratio is the RMS
error over the last third of the trace over that over the first third. Writes
`fig2_stability.png` (one held-out chain, exact and surrogate, and the RMS error
against time over the test set) and `fig2_stability.json`.
"""

import argparse
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import bayesnmr as bn  # noqa: E402


def main(args) -> dict:
    sur = bn.load_surrogate(args.model)
    samples = 20 if args.quick else args.samples
    thetas, traces = bn.held_out(sur, samples, seed=args.seed)
    report = bn.evaluate_surrogate(sur, thetas=thetas, traces=traces)
    print(
        f"{args.model}: {sur.n_spins} spins, {sur.grid.n} steps of {sur.grid.dt * 1e3:g} ms, "
        f"{samples} held-out chains"
    )
    for name in ("mx", "my", "iz1"):
        r = report[name]
        print(
            f"  {name:>3}: relative L2 error median {r['median']:.2%}, p95 {r['p95']:.2%}; "
            f"late/early RMS error {report['stability'][name]:.2f}"
        )
    fig = bn.plot_stability(sur, thetas[0], thetas, traces)  # the first held-out chain
    out = Path(args.out)
    bn.save_figure(fig, out / "fig2_stability.png")
    bn.write_json(out / "fig2_stability.json", {"model": args.model, "quick": args.quick, **report})
    print(f"Wrote {out / 'fig2_stability.png'} and {out / 'fig2_stability.json'}")
    return report


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="20 held-out chains")
    p.add_argument("--model", default="chain4", help="a shipped surrogate or a .bnsur file")
    p.add_argument("--samples", type=int, default=500)
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--out", default="examples/out")
    return p.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
