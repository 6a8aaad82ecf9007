"""The ring protons of a 1,2-disubstituted benzene, fitted with all six couplings free:
does the posterior cover the truth, and how wide are the meta and para couplings?

Reads `examples/systems/ortho_disubstituted_benzene.toml`, unties the meta pair and
frees every coupling (ortho in [6, 10] Hz, meta and para in [-1, 3] Hz), synthesizes data
(sigma 0.01, 300 points at 1 ms, FID and H3's polarisation), then `bn.fit(data, spec)`
and `bn.sample_posterior(data, spec)` (4 chains x (1000 + 1000)). Prints the posterior
against the truth in posterior sds and writes `ring_posterior.json` (with provenance)
and the marginal plots.

    uv run python examples/ring_posterior.py [--quick] [--out DIR] [--seed S]
"""

import argparse
import dataclasses
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import numpy as np  # noqa: E402

import bayesnmr as bn  # noqa: E402
from bayesnmr._physics._system_file import Coupling  # noqa: E402

SYSTEM = Path(__file__).resolve().parent / "systems" / "ortho_disubstituted_benzene.toml"


def all_free(spec):
    """Every coupling of `spec` free: the ortho ones in [6, 10] Hz, the others in [-1, 3]."""
    couplings = tuple(
        Coupling(c.pair, c.j_hz, (6.0, 10.0) if c.j_hz > 5 else (-1.0, 3.0)) for c in spec.couplings
    )
    return dataclasses.replace(spec, couplings=couplings)


def main(args) -> dict:
    spec = all_free(bn.load_spin_system(args.system))
    grid = bn.TimeGrid(300, 1e-3)
    data = bn.synthesize(spec.system, grid, sigma=0.01, seed=args.seed)
    sampler = bn.NUTS(chains=2, warmup=100, draws=100) if args.quick else bn.NUTS()
    t0 = time.perf_counter()
    fit = bn.fit(data, spec, seed=args.seed)
    post = bn.sample_posterior(data, spec, sampler=sampler, init=fit, seed=args.seed)
    seconds = time.perf_counter() - t0
    summary, problems = bn.diagnose(post, warn=False)
    p = post.posterior
    names = [f"offsets_hz[{s}]" for s in p["offsets_hz"].coords["spin"].values] + [
        f"j_hz[{c}]" for c in p["j_hz"].coords["coupling"].values
    ]
    draws = np.column_stack(
        [
            np.asarray(p["offsets_hz"]).reshape(-1, p["offsets_hz"].shape[-1]),
            np.asarray(p["j_hz"]).reshape(-1, p["j_hz"].shape[-1]),
        ]
    )
    truth = np.r_[
        np.asarray(spec.system.offsets_hz), [spec.system.j_hz[c.pair] for c in spec.couplings]
    ]
    mean, sd = draws.mean(0), draws.std(0)
    q05, q95 = np.quantile(draws, [0.05, 0.95], axis=0)
    rows = [
        {
            "name": n,
            "truth": float(t),
            "mean": float(m),
            "sd": float(s),
            "truth_in_sds": float((t - m) / s),
            "in_90": bool(lo <= t <= hi),
            "laplace_sd": float(e),
        }
        for n, t, m, s, lo, hi, e in zip(names, truth, mean, sd, q05, q95, fit.stderr, strict=True)
    ]
    result = {
        "method": __doc__.split("\n\n")[1].replace("\n", " "),
        "seconds": seconds,
        "max_r_hat": float(summary["r_hat"].max()),
        "min_ess_bulk": float(summary["ess_bulk"].min()),
        "problems": problems,
        "rows": rows,
        "provenance": bn.provenance(),
    }
    out = Path(args.out)
    bn.write_json(out / "ring_posterior.json", result)
    bn.plot_posterior(post, out, prefix="ring_")
    print(f"fit + NUTS in {seconds:.0f} s; max R-hat {result['max_r_hat']:.3f}, min bulk ESS "
          f"{result['min_ess_bulk']:.0f}")  # fmt: skip
    for r in rows:
        z, lap = r["truth_in_sds"], r["laplace_sd"]
        print(f"  {r['name']:>16}: truth {r['truth']:8.3f}, posterior {r['mean']:8.3f} +- "
              f"{r['sd']:.3f} ({z:+.2f} sd; Laplace sd {lap:.3f})")  # fmt: skip
    print(f"Wrote {out / 'ring_posterior.json'}")
    return result


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2 chains x (100 + 100): a smoke test")
    p.add_argument("--out", default=".", help="output folder")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--system", default=str(SYSTEM), help="a spin-system TOML file")
    return p.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
