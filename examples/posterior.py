"""A complete Bayesian fit of the kind users write: data, fit, NUTS, checks.

    uv run python examples/posterior.py [--quick] [--data FILE] [--out DIR]

Without `--data` it simulates a noisy 4-spin chain. It fits every offset and J from the
data alone (no guesses: the order of the spins along the chain unknown), prints the
competing solutions, samples the posterior with NUTS from the fit's modes, prints
ArviZ's summary with its diagnostics, and writes the posterior and its figures.
"""

import argparse
from pathlib import Path

import jax

import bayesnmr as bn

bn.use_cpu_cores()  # one chain per core; before JAX computes anything
jax.config.update("jax_enable_x64", True)


def main(args):
    if args.data:
        data = bn.load_dataset(args.data)
    else:
        chain = bn.SpinChain([-40.0, -10.0, 20.0, 45.0], 12.5)
        data = bn.synthesize(chain, bn.TimeGrid(300, 1e-3), sigma=0.02, seed=args.seed)
    fit = bn.fit(data, **({"n_starts": 4, "steps": 8} if args.quick else {}))
    print("fit:", fit.offsets_hz.round(3), float(fit.j_hz), "+-", fit.stderr.round(4))
    print(fit.describe())
    posterior = bn.sample_posterior(
        data,
        init=fit,
        sampler=bn.NUTS(
            chains=2 if args.quick else 4,
            warmup=30 if args.quick else 1000,
            draws=30 if args.quick else 1000,
        ),
        seed=args.seed,
        progress_bar=not args.quick,
    )
    summary, problems = bn.diagnose(posterior, warn=False)
    print(bn.format_summary(summary))
    for p in problems:
        print("WARNING:", p)
    out = Path(args.out)
    bn.save_posterior(posterior, out / "posterior.nc")
    bn.plot_posterior(posterior, out, truth=data.truth, prefix="posterior_")
    bn.save_figure(bn.plot_predictive(posterior, data), out / "posterior_predictive.png")
    return posterior


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="tiny settings (a smoke test)")
    p.add_argument("--data", default=None, help="a NetCDF data file (default: simulate one)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="examples/output")
    return p.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
