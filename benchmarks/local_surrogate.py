"""Problem-local surrogates at 8-12 spins: the whole workflow against exact NUTS.

Method: per N, one random chain (offsets U[-100, 100] Hz, J U[2, 20] Hz, seed N),
TimeGrid(300, 1e-3), sigma = 0.02 (integrated out), mx, my and iz1 observed; priors
+-5 Hz around the true offsets, J in [0, 25] Hz. Timed in one process, compilation
included, as a user waits:

- `fit_seconds`: `bn.fit(data, priors, init=..., n_starts=1)` from offsets 0.5 Hz off
  the truth (one descent: with the default 8 it took 234 s at N = 10). The global search
  from no guesses is not part of this benchmark (`fit_success.py` measures it at N = 4
  and 6; at N >= 8 it is not yet reliable).
- `sample_seconds`: `bn.sample_posterior(data, priors, solver="local", init=fit)`,
  4 chains x (1000 + 1000), vectorized: the exact line lists and the local surrogate's
  training (`training_seconds`), NUTS on it, the exact correction of every draw
  (`correction_seconds`, 1000 draws: `correction_draws`'s default) and the predictive.
- Diagnostics of the corrected posterior: Pareto k-hat, effective draws after the
  correction, ArviZ max R-hat and min bulk/tail ESS.
- `exact_gradient_seconds`: one exact gradient of the least-squares misfit over all
  N + 1 parameters, warm (median of 3), and `exact_nuts_estimate_seconds`: that times the
  mean leapfrog steps per iteration of the surrogate's NUTS times 4 x 2000 iterations
  (what exact NUTS would cost, sequentially), and its ratio to the whole local workflow.
- `line_sum_seconds`: on a local surrogate trained around the fit (ten Laplace sds, as
  `sample_posterior` does), the value and gradient of the least-squares misfit for 4
  parameter vectors at once (jitted, warm, median of 5), two ways in one process: the
  surrogate as it is (its sums over lines by a non-uniform FFT: `nufft`) and the same
  lines summed directly over a table of phases (`direct`: what it did before), with
  their largest difference in the traces (`line_sum_max_difference`).
- `--reference N`: exact NUTS on the same data, 2 chains x (500 + 500), vectorized,
  timed, written to `local_surrogate_reference.json`; the local posterior's means (in
  reference sds) and sds (relative) against it.

Writes `local_surrogate.json` into `--out` (a rerun keeps the rows of other N).

    uv run python benchmarks/local_surrogate.py --spins 8 10 12
    uv run python benchmarks/local_surrogate.py --reference 10   # about an hour at N = 10
    uv run python benchmarks/local_surrogate.py --compare        # rows against references
    uv run python benchmarks/local_surrogate.py --quick          # N = 3, a smoke test
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, median_time, stamp, write_json  # noqa: E402


def problem(n: int):
    import bayesnmr as bn

    rng = np.random.default_rng([7, n])
    chain = bn.SpinChain(rng.uniform(-100, 100, n), float(rng.uniform(2, 20)))
    grid = bn.TimeGrid(300, 1e-3)
    data = bn.synthesize(chain, grid, sigma=0.02, seed=n)
    priors = bn.Priors.around(np.asarray(chain.offsets_hz), 5.0, j_hz=(0.0, 25.0))
    return chain, data, priors


def moments(dt) -> tuple[np.ndarray, np.ndarray]:
    post = dt.posterior
    x = np.column_stack(
        [np.asarray(post["offsets_hz"]).reshape(-1, post["offsets_hz"].shape[-1]),
         np.asarray(post["j_hz"]).reshape(-1, 1)]
    )  # fmt: skip
    return x.mean(0), x.std(0)


def exact_gradient_seconds(data, chain) -> float:
    import jax
    import jax.numpy as jnp

    import bayesnmr as bn

    n = data.n_spins

    def loss(theta):
        tr = bn.simulate(bn.SpinChain(theta[:n], theta[n]), data.grid)
        return sum(jnp.sum((a - b) ** 2) for a, b in ((tr.mx, data.mx), (tr.my, data.my),
                                                      (tr.iz1, data.iz1)))  # fmt: skip

    g = jax.jit(jax.grad(loss))
    theta = jnp.asarray(np.r_[chain.offsets_hz, chain.j_hz])
    g(theta).block_until_ready()
    return median_time(lambda: g(theta).block_until_ready(), 3)[0]


def line_sum_seconds(data, fit) -> dict:
    """The local surrogate's misfit gradient, its sums by non-uniform FFT and directly."""
    import jax
    import jax.numpy as jnp

    import bayesnmr as bn
    from bayesnmr._physics._sectors import fid_norm, iz1_norm
    from bayesnmr._physics._spectral import phase_table

    n, grid = data.n_spins, data.grid
    centre = np.r_[fit.offsets_hz, np.atleast_1d(fit.j_hz)]
    half = 10 * fit.stderr[: n + 1]
    region = bn.Domain(n, np.stack([centre[:n] - half[:n], centre[:n] + half[:n]], -1),
                       (centre[n] - half[n], centre[n] + half[n]))  # fmt: skip
    net = bn.train_local_surrogate(region, grid, progress_bar=False).net
    observed = jnp.stack([jnp.asarray(data.mx), jnp.asarray(data.my), jnp.asarray(data.iz1)])

    def direct(theta):
        ff, fw, fi, wi = net.lines(theta)
        (cf, sf), (ci, _) = phase_table(ff, grid.times), phase_table(fi, grid.times)
        return jnp.stack([fw @ cf / fid_norm(n), fw @ sf / fid_norm(n), wi @ ci / iz1_norm(n)])

    def misfit(model):
        return jax.jit(
            jax.vmap(jax.value_and_grad(lambda th: jnp.sum((model(th) - observed) ** 2)))
        )

    rng = np.random.default_rng(0)
    thetas = jnp.asarray(centre + rng.uniform(-0.5, 0.5, (4, n + 1)) * half)
    out = {}
    for name, model in (("nufft", net), ("direct", direct)):
        fn = misfit(model)
        jax.block_until_ready(fn(thetas))
        out[name] = median_time(lambda fn=fn: jax.block_until_ready(fn(thetas)), 5)[0]
    diff = jnp.abs(jax.vmap(net)(thetas) - jax.vmap(direct)(thetas)).max()
    return {"line_sum_seconds": out, "line_sum_max_difference": float(diff)}


def run_local(n: int, quick: bool) -> dict:
    import bayesnmr as bn

    chain, data, priors = problem(n)
    chains, warmup, draws = (2, 100, 100) if quick else (4, 1000, 1000)
    t0 = time.perf_counter()
    start = {"offsets_hz": np.asarray(chain.offsets_hz) + 0.5, "j_hz": float(chain.j_hz)}
    fit = bn.fit(data, priors, init=start, n_starts=1, progress_bar=False)
    print(f"fit: {time.perf_counter() - t0:.1f} s", flush=True)
    fit_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    dt = bn.sample_posterior(
        data,
        priors,
        solver="local",
        init=fit,
        sampler=bn.NUTS(chains=chains, warmup=warmup, draws=draws),
        progress_bar=True,
    )
    sample_seconds = time.perf_counter() - t1
    summary, _ = bn.diagnose(dt, warn=False)
    c = dt["correction"].attrs
    record = json.loads(c["local_surrogate"])["training"]
    steps = float(np.asarray(dt.sample_stats["n_steps"]).mean())
    grad = exact_gradient_seconds(data, chain)
    estimate = grad * steps * chains * (warmup + draws)
    mean, sd = moments(dt)
    truth = np.r_[chain.offsets_hz, chain.j_hz]
    sums = line_sum_seconds(data, fit)
    return sums | {
        "n_spins": n,
        "offsets_hz": np.asarray(chain.offsets_hz).tolist(),
        "j_hz": float(chain.j_hz),
        "chains": chains,
        "warmup": warmup,
        "draws": draws,
        "fit_seconds": fit_seconds,
        "sample_seconds": sample_seconds,
        "total_seconds": fit_seconds + sample_seconds,
        "training_seconds": record["seconds"],
        "training_points": record["points"],
        "lines": [record["fid_lines"], record["iz1_lines"]],
        "line_groups": [record["fid_groups"], record["iz1_groups"]],
        "correction_seconds": c["seconds"],
        "pareto_k": c["pareto_k"],
        "ess_after_correction": c["ess"],
        "corrected": int(dt.attrs["corrected"]),
        "max_r_hat": float(summary["r_hat"].max()),
        "min_ess_bulk": float(summary["ess_bulk"].min()),
        "min_ess_tail": float(summary["ess_tail"].min()),
        "mean_leapfrog_steps": steps,
        "exact_gradient_seconds": grad,
        "exact_nuts_estimate_seconds": estimate,
        "speedup_estimate": estimate / (fit_seconds + sample_seconds),
        "posterior_mean": mean.tolist(),
        "posterior_sd": sd.tolist(),
        "truth_in_sds": ((mean - truth) / sd).tolist(),
    }


def run_reference(n: int, out: Path, host: dict) -> dict:
    import bayesnmr as bn

    chain, data, priors = problem(n)
    start = {"offsets_hz": np.asarray(chain.offsets_hz) + 0.5, "j_hz": float(chain.j_hz)}
    fit = bn.fit(data, priors, init=start, n_starts=1, progress_bar=False)
    t0 = time.perf_counter()
    dt = bn.sample_posterior(
        data,
        priors,
        init=fit,
        sampler=bn.NUTS(chains=2, warmup=500, draws=500),
        progress_bar=True,
    )
    seconds = time.perf_counter() - t0
    summary, _ = bn.diagnose(dt, warn=False)
    mean, sd = moments(dt)
    row = {
        "n_spins": n,
        "chains": 2,
        "warmup": 500,
        "draws": 500,
        "seconds": seconds,
        "max_r_hat": float(summary["r_hat"].max()),
        "min_ess_bulk": float(summary["ess_bulk"].min()),
        "mean_leapfrog_steps": float(np.asarray(dt.sample_stats["n_steps"]).mean()),
        "posterior_mean": mean.tolist(),
        "posterior_sd": sd.tolist(),
        **{k: host[k] for k in ("cpu", "cores")},
        **stamp(),
    }
    path = out / "local_surrogate_reference.json"
    old = json.loads(path.read_text()) if path.is_file() else {"rows": []}
    rows = [r for r in old["rows"] if r["n_spins"] != n] + [row]
    write_json(path, {"benchmark": "local_surrogate_reference", "method": __doc__, "rows": rows})
    return row


def compared(row: dict, ref: dict | None) -> dict:
    """`row` with its posterior against the exact reference's (if there is one)."""
    if ref is None:
        return row
    m, s = np.array(ref["posterior_mean"]), np.array(ref["posterior_sd"])
    return row | {
        "vs_exact_mean_in_sds": ((np.array(row["posterior_mean"]) - m) / s).tolist(),
        "vs_exact_sd_ratio": (np.array(row["posterior_sd"]) / s).tolist(),
        "exact_reference_seconds": ref["seconds"],
        "exact_reference_commit": ref["commit"],
    }


def main(args) -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)
    out = Path(args.out)
    host = machine()
    if args.reference:
        row = run_reference(args.reference, out, host)
        print(json.dumps(row, indent=1))
        return row
    spins = [3] if args.quick else args.spins
    path = out / "local_surrogate.json"
    old = json.loads(path.read_text()) if path.is_file() and not args.quick else {"rows": []}
    rows = [r for r in old["rows"] if r["n_spins"] not in spins]
    ref_path = out / "local_surrogate_reference.json"
    refs = {r["n_spins"]: r for r in json.loads(ref_path.read_text())["rows"]} if (
        ref_path.is_file()
    ) else {}  # fmt: skip
    if args.compare:  # only (re)compare the stored rows with the stored references
        spins, rows = [], [compared(r, refs.get(r["n_spins"])) for r in old["rows"]]
        results = {**old, "rows": rows}
        write_json(path, results)
    for n in spins:
        row = run_local(n, args.quick) | {k: host[k] for k in ("cpu", "cores")} | stamp()
        if not args.quick:
            row = compared(row, refs.get(n))
        rows.append(row)
        print(json.dumps(row, indent=1), flush=True)
        results = {
            "benchmark": "local_surrogate",
            "method": __doc__,
            "quick": args.quick,
            "machine": host,
            "rows": sorted(rows, key=lambda r: r["n_spins"]),
        }
        write_json(path, results)
    return results


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spins", type=int, nargs="+", default=[8, 10, 12])
    p.add_argument("--reference", type=int, default=0, help="run exact NUTS at this N")
    p.add_argument("--quick", action="store_true")
    p.add_argument(
        "--compare", action="store_true", help="only compare the stored rows with the references"
    )
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    return p.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
