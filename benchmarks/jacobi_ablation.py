"""Ablation: how much of the eigen surrogate's accuracy is the network's?

Method: for the shipped `chain4` and `chain8`, the traces from the network's sector
bases V (as shipped), and after 1 or 2 sweeps of parallel Jacobi rotations applied to
V; and, for comparison, 1 to 3 sweeps started from the identity (no network). A sweep
computes M = V^T H V, rotates every pair (i, j) at once by its exact 2 x 2 angle
phi_ij = atan2(2 M_ij sign(d), |d|) / 2 with d = M_jj - M_ii (the smaller rotation),
composed through the Cayley map with tan(phi / 2), and sets V <- V R. Energies are the
Rayleigh quotients diag(V^T H V) in every case. Errors: relative L2 over the trace
against the exact solver (float64), on fresh chains drawn uniformly from the domain
(500 at N = 4, 150 at N = 8; `--quick`: 20 chains at N = 4, three variants).

Writes `jacobi_ablation.json` into `--out`.

    uv run python benchmarks/jacobi_ablation.py [--quick]
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, stamp, write_json  # noqa: E402


def main(args) -> dict:
    import equinox as eqx
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    import bayesnmr as bn
    from bayesnmr._surrogate._data import exact_traces
    from bayesnmr._surrogate._metrics import relative_errors
    from bayesnmr._surrogate._nets import traces_in_bases

    def sweep(v, h):
        m = v.T @ h @ v
        d = jnp.diag(m)
        gap = d[None, :] - d[:, None]
        phi = jnp.triu(0.5 * jnp.arctan2(2 * m * jnp.where(gap >= 0, 1.0, -1.0), jnp.abs(gap)), 1)
        s = jnp.tan(phi / 2)
        eye = jnp.eye(v.shape[0], dtype=v.dtype)
        return v @ jnp.linalg.solve(eye - (s - s.T), eye + (s - s.T))

    def traces(net, theta, sweeps, from_network):
        blocks = net.blocks(theta)
        vecs = net.frames(theta) if from_network else [jnp.eye(h.shape[0]) for h in blocks]
        vecs = list(vecs)
        for _ in range(sweeps):
            vecs = [
                v if v.shape[0] == 1 else sweep(v, h) for v, h in zip(vecs, blocks, strict=True)
            ]
        return traces_in_bases(vecs, blocks, net.grid)

    results = {"benchmark": "jacobi_ablation", "method": __doc__, "machine": machine(), "rows": []}
    models = (("chain4", 20),) if args.quick else (("chain4", 500), ("chain8", 150))
    variants = (
        (("network", 0), ("network", 1), ("identity", 1))
        if args.quick
        else (
            ("network", 0),
            ("network", 1),
            ("network", 2),
            ("identity", 1),
            ("identity", 2),
            ("identity", 3),
        )
    )
    for name, count in models:
        sur = bn.load_surrogate(name)
        net = jax.tree.map(
            lambda x: x.astype(jnp.float64) if eqx.is_inexact_array(x) else x, sur.net
        )
        rng = np.random.default_rng(5)
        thetas = rng.uniform(sur.domain.lower, sur.domain.upper, (count, sur.n_spins + 1))
        truth = exact_traces(thetas, sur.grid)
        for start, sweeps in variants:
            run = jax.jit(
                jax.vmap(lambda t, m=net, s=sweeps, f=start == "network": traces(m, t, s, f))
            )
            err = relative_errors(np.asarray(run(jnp.asarray(thetas))), truth)
            row = {"model": name, "start": start, "sweeps": sweeps, "chains": count}
            for i, obs in enumerate(("mx", "my", "iz1")):
                row[obs] = {
                    "median": float(np.median(err[:, i])),
                    "p95": float(np.percentile(err[:, i], 95)),
                }
            results["rows"].append(row | stamp())
            print(
                name,
                start,
                sweeps,
                f"mx median {row['mx']['median']:.2e} p95 {row['mx']['p95']:.2e}",
            )
    write_json(Path(args.out) / "jacobi_ablation.json", results)
    return results


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="20 and 10 chains: a smoke test")
    p.add_argument("--out", default="benchmarks/results")
    return p.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
