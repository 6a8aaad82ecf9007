"""How well is J determined? Its posterior sd against noise, acquisition length and Δν/J.

    uv run python examples/noise_study.py [--quick] [--out DIR]

A two-spin (AB) system, offsets ±Δν/2 and J = 10 Hz, mx, my and iz1 observed, the exact
solver. One axis is varied at a time around the base point (σ = 0.02, 200 points at
dt = 1 ms, Δν/J = 4):

- the noise σ,
- the acquisition length T = n·dt (dt fixed, more points),
- the coupling regime Δν/J (strong coupling at Δν/J ≲ 1, first order at Δν/J ≫ 1).

At each point: one noisy data set (seed fixed per point), NUTS (2 chains × (300 warmup +
300 draws), σ integrated out, J in [0, 20] Hz, offsets in ±10 Hz boxes) for the
posterior sd of J, and the Laplace sd of `bn.fit` beside it. Writes `noise_study.json`
(every number) and `noise_study.png` (three log-log panels, with the slope of a
power-law fit for the first two).
"""

import argparse
import time
from pathlib import Path

import jax

import bayesnmr as bn

bn.use_cpu_cores()  # one chain per core; before JAX computes anything
jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

J_HZ = 10.0
BASE = {"sigma": 0.02, "n": 200, "ratio": 4.0}
AXES = {
    "sigma": [0.005, 0.01, 0.02, 0.05, 0.1],
    "n": [50, 100, 200, 400, 800],
    "ratio": [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0],
}
QUICK_AXES = {"sigma": [0.01, 0.05], "n": [50, 100], "ratio": [1.0, 4.0]}
LABELS = {
    "sigma": "noise σ",
    "n": "acquisition length T (s)",
    "ratio": "Δν / J",
}


def posterior_sd_of_j(sigma: float, n: int, ratio: float, seed: int, quick: bool) -> dict:
    dnu = ratio * J_HZ
    chain = bn.SpinChain([-dnu / 2, dnu / 2], J_HZ)
    grid = bn.TimeGrid(n, 1e-3)
    data = bn.synthesize(chain, grid, sigma=sigma, seed=seed)
    priors = bn.Priors.around(chain.offsets_hz, 10.0, j_hz=(0.0, 20.0))
    fit = bn.fit(data, priors, init={"offsets_hz": chain.offsets_hz, "j_hz": J_HZ}, n_starts=1)
    length = 20 if quick else 300
    post = bn.sample_posterior(
        data,
        priors,
        sampler=bn.NUTS(chains=2, warmup=length, draws=length),
        seed=seed,
        progress_bar=False,
        init={"offsets_hz": fit.offsets_hz, "j_hz": fit.j_hz},
        predictive_draws=2,
    )
    draws = np.asarray(post.posterior["j_hz"]).ravel()
    summary, problems = bn.diagnose(post, warn=False)
    return {
        "sigma": sigma,
        "n": n,
        "T_s": grid.duration,
        "ratio": ratio,
        "j_mean": float(draws.mean()),
        "j_sd": float(draws.std(ddof=1)),
        "j_sd_laplace": float(fit.stderr[fit.names.index("j_hz")]),
        "ess_bulk_j": float(summary.loc["j_hz", "ess_bulk"]),
        "problems": problems,
    }


def main(args) -> dict:
    axes = QUICK_AXES if args.quick else AXES
    t0 = time.perf_counter()
    rows: dict[str, list] = {}
    for axis, values in axes.items():
        rows[axis] = []
        for i, v in enumerate(values):
            point = dict(BASE, **{axis: v})
            row = posterior_sd_of_j(
                point["sigma"], int(point["n"]), point["ratio"], seed=100 + i, quick=args.quick
            )
            rows[axis].append(row)
            print(
                f"{axis:>6} = {v:<6g} J = {row['j_mean']:.4f}  sd {row['j_sd']:.2e} Hz "
                f"(Laplace {row['j_sd_laplace']:.2e})" + ("  !" if row["problems"] else "")
            )
    slopes = {
        axis: float(
            np.polyfit(
                np.log([r["T_s" if axis == "n" else axis] for r in rows[axis]]),
                np.log([r["j_sd"] for r in rows[axis]]),
                1,
            )[0]
        )
        for axis in ("sigma", "n")
    }
    print(
        f"log-log slopes of sd(J): against sigma {slopes['sigma']:.2f}, against T {slopes['n']:.2f}"
    )
    result = {
        "method": __doc__,
        "quick": args.quick,
        "j_true_hz": J_HZ,
        "base": BASE,
        "rows": rows,
        "slopes": slopes,
        "seconds": time.perf_counter() - t0,
        "provenance": bn.provenance(),
    }
    out = Path(args.out)
    bn.write_json(out / "noise_study.json", result)
    bn.save_figure(plot(rows, slopes), out / "noise_study.png")
    print(f"Wrote {out / 'noise_study.json'} and {out / 'noise_study.png'}")
    return result


def plot(rows: dict, slopes: dict):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    for ax, axis in zip(axes, ("sigma", "n", "ratio"), strict=True):
        x = [r["T_s" if axis == "n" else axis] for r in rows[axis]]
        ax.loglog(x, [r["j_sd"] for r in rows[axis]], "o-", label="NUTS posterior sd")
        ax.loglog(x, [r["j_sd_laplace"] for r in rows[axis]], "x--", label="Laplace (fit)")
        ax.set_xlabel(LABELS[axis])
        title = f"slope {slopes[axis]:.2f}" if axis in slopes else "strong ← → weak coupling"
        ax.set_title(title, fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("sd of J (Hz)")
    axes[0].legend(fontsize=8)
    b = BASE
    fig.suptitle(
        f"Posterior sd of J, two spins, J = {J_HZ:g} Hz (base: σ = {b['sigma']:g}, "
        f"T = {b['n'] * 1e-3:g} s, Δν/J = {b['ratio']:g})",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="two points per axis, short chains")
    p.add_argument("--out", default="examples/out")
    return p.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
