"""Exact posteriors through surrogates: the shipped `chain4` corrected, and a
problem-local surrogate trained for the data at hand.

    uv run python examples/surrogate_posterior.py [--quick] [--spins N] [--out DIR]

1. NUTS on the shipped `chain4` surrogate, then the exact correction (PSIS weights
   from exact re-solves of the draws): the surrogate's own posterior and the corrected
   one, both against exact NUTS, in exact posterior sds. (On this data set chain4's
   posterior is too far from the exact one to reweigh; the correction says so, and
   the workflow falls back to a local surrogate.)
2. `solver="local"` on an N-spin chain (default 6): a surrogate trained for these data
   around the fit, NUTS on it, and the exact correction; its k-hat, effective draws and
   the time of each stage.
"""

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np

import bayesnmr as bn

jax.config.update("jax_enable_x64", True)


def draws(group) -> np.ndarray:
    cols = [np.asarray(group[k]) for k in ("offsets_hz", "j_hz")]
    return np.column_stack([c.reshape(c.shape[0] * c.shape[1], -1) for c in cols])


def main(args) -> dict:
    grid = bn.TimeGrid(300, 1e-3)
    settings = {"sampler": bn.NUTS(chains=2, warmup=100, draws=100)} if args.quick else {}
    chain = bn.SpinChain([-40.0, -10.0, 20.0, 45.0], 12.5)
    data = bn.synthesize(chain, grid, sigma=0.02, seed=1)
    priors = bn.Priors.around(chain.offsets_hz, 15.0, j_hz=(0.0, 20.0))  # chain4's domain
    fit = bn.fit(data, priors, init={"offsets_hz": chain.offsets_hz, "j_hz": 12.0})
    exact = bn.sample_posterior(data, priors, init=fit, progress_bar=False, **settings)
    sur = bn.sample_posterior(
        data, priors, solver=bn.load_surrogate("chain4"), init=fit, progress_bar=False,
        **settings,
    )  # fmt: skip
    ref = draws(exact.posterior)
    out = {"chain4": {}}
    for group in ("posterior_surrogate", "posterior"):
        shift = (draws(sur[group]).mean(0) - ref.mean(0)) / ref.std(0)
        out["chain4"][group] = np.round(shift, 2).tolist()
        print(f"chain4 {group:>19}: means - exact means, in exact sds: {np.round(shift, 2)}")
    out["chain4"]["pareto_k"] = sur["correction"].attrs["pareto_k"]
    out["chain4"]["fallback"] = sur.attrs.get("fallback", "")
    print(f"chain4 correction: k-hat {out['chain4']['pareto_k']:.2f}")
    if out["chain4"]["fallback"]:  # chain4's posterior too far from the exact one
        print(f"chain4 fell back to {out['chain4']['fallback']}")

    n = 3 if args.quick else args.spins
    rng = np.random.default_rng(n)
    chain = bn.SpinChain(rng.uniform(-100, 100, n), float(rng.uniform(2, 20)))
    data = bn.synthesize(chain, grid, sigma=0.02, seed=n)
    priors = bn.Priors.around(chain.offsets_hz, 5.0)
    t0 = time.perf_counter()
    start = {"offsets_hz": np.asarray(chain.offsets_hz) + 0.3, "j_hz": float(chain.j_hz)}
    fit = bn.fit(data, priors, init=start, n_starts=1)
    t1 = time.perf_counter()
    dt = bn.sample_posterior(data, priors, solver="local", init=fit, progress_bar=False, **settings)
    t2 = time.perf_counter()
    c = dt["correction"].attrs
    training = json.loads(c["local_surrogate"])["training"]
    summary, problems = bn.diagnose(dt, warn=False)
    print(bn.format_summary(summary))
    for p in problems:
        print("WARNING:", p)
    out["local"] = {
        "n_spins": n,
        "fit_seconds": t1 - t0,
        "sample_seconds": t2 - t1,
        "training_seconds": training["seconds"],
        "correction_seconds": c["seconds"],
        "pareto_k": c["pareto_k"],
        "ess": c["ess"],
        "corrected": int(dt.attrs["corrected"]),
    }
    print(f"local, N = {n}: {json.dumps(out['local'])}")
    bn.save_posterior(dt, Path(args.out) / "local_posterior.nc")
    return out


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="N = 3, 2 chains x (100 + 100)")
    p.add_argument("--spins", type=int, default=6)
    p.add_argument("--out", default="surrogate-posterior")
    return p.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
