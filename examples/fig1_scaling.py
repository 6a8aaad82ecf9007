"""The paper's Figure 1: time per trajectory against chain length N, exact and surrogate.

    uv run python examples/fig1_scaling.py [--quick] [--max-n 12] [--out DIR]

For each N: random chains (offsets U[-100, 100] Hz, J U[0, 20] Hz), 300 points at
dt = 1 ms, FID and iz1, float64. Timed, warm and jitted, the median of `--repeats`
calls on fresh parameters:

- `exact`: bayesnmr's exact solver (one `eigh` per F_z sector);
- `mlp`: the paper's kind of surrogate (a 3 x 512 dense network, one output per time
  point), sized for N, with untrained weights: its cost does not depend on its weights,
  and trained at N = 4 it is not accurate (see docs/surrogates.md); this is a timing;
- `eigen`: the shipped eigen-structured surrogates where one exists (N = 4, 8).

The speedup at the largest N is printed and annotated. Writes `fig1_scaling.png` and
`fig1_scaling.json`. The benchmark `benchmarks/scaling.py` measures more methods (a
dense solver, QuTiP, Diffrax) in separate processes, with peak memory.
"""

import argparse
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

import bayesnmr as bn  # noqa: E402

GRID = bn.TimeGrid(300, 1e-3)


def time_solver(solver, n: int, repeats: int, seed: int = 0) -> float:
    """The median wall time of one warm jitted trajectory at N = `n`."""
    rng = np.random.default_rng([seed, n])
    run = jax.jit(lambda o, j: bn.simulate(bn.SpinChain(o, j), GRID, solver=solver).as_array())
    params = [(rng.uniform(-100, 100, n), rng.uniform(0, 20)) for _ in range(repeats + 1)]
    run(*params[0]).block_until_ready()  # compile
    times = []
    for p in params[1:]:
        t0 = time.perf_counter()
        run(*p).block_until_ready()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main(args) -> dict:
    ns = list(range(2, (5 if args.quick else args.max_n) + 1))
    repeats = 2 if args.quick else args.repeats
    shipped = {4: "chain4", 8: "chain8"}
    rows = {"exact": {}, "mlp": {}, "eigen": {}}
    for n in ns:
        rows["exact"][n] = time_solver(None, n, repeats)
        domain = bn.Domain(n, (-100.0, 100.0), (0.0, 20.0))
        mlp = bn.untrained_surrogate("mlp", domain, GRID, width=512, depth=3, seed=n)
        rows["mlp"][n] = time_solver(mlp, n, repeats)
        if n in shipped and not (args.quick and n > 4):
            rows["eigen"][n] = time_solver(bn.load_surrogate(shipped[n]), n, repeats)
        print(
            f"N = {n:2d}: exact {rows['exact'][n] * 1e3:9.3f} ms, mlp "
            f"{rows['mlp'][n] * 1e3:7.3f} ms"
            + (f", eigen {rows['eigen'][n] * 1e3:7.3f} ms" if n in rows["eigen"] else "")
        )
    top = ns[-1]
    speedup = rows["exact"][top] / rows["mlp"][top]
    print(f"At N = {top}: exact / mlp = {speedup:,.0f}x (timing only: the MLP is not accurate)")
    result = {
        "method": __doc__,
        "quick": args.quick,
        "repeats": repeats,
        "seconds": {k: {str(n): v for n, v in r.items()} for k, r in rows.items()},
        "speedup_at_max_n": {"n": top, "exact_over_mlp": speedup},
    }
    out = Path(args.out)
    bn.write_json(out / "fig1_scaling.json", result)
    bn.save_figure(plot(rows, top, speedup), out / "fig1_scaling.png")
    print(f"Wrote {out / 'fig1_scaling.png'} and {out / 'fig1_scaling.json'}")
    return result


def plot(rows: dict, top: int, speedup: float):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    labels = {
        "exact": "exact (sector eigh)",
        "mlp": "MLP surrogate (timing only)",
        "eigen": "eigen surrogate (shipped)",
    }
    for key, style in (("exact", "o-"), ("mlp", "s-"), ("eigen", "D")):
        if rows[key]:
            ns = sorted(rows[key])
            ax.semilogy(ns, [rows[key][n] for n in ns], style, label=labels[key])
    ax.annotate(
        f"{speedup:,.0f}x",
        xy=(top, np.sqrt(rows["exact"][top] * rows["mlp"][top])),
        ha="right",
        fontsize=10,
    )
    ax.set_xlabel("spins N")
    ax.set_ylabel("seconds per trajectory (warm)")
    ax.set_title("Time per trajectory, 300 points, FID + iz1", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="N <= 5, two repeats")
    p.add_argument("--max-n", type=int, default=12)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default="examples/out")
    return p.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
