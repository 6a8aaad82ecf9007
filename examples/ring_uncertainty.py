"""How well can a 0.5 Hz para coupling be determined? An uncertainty study on the ring
protons of a 1,2-disubstituted benzene (`examples/systems/ortho_disubstituted_benzene.toml`).

For each noise level sigma and acquisition time T (dt = 1 ms, T2 = 0.5 s unless
`--t2`), the posterior sd of every free shift and coupling by the Laplace approximation
at the true values: cov = sigma^2 (A^T A)^-1, with A the exact Jacobian of the observed
traces (mx, my and spin H3's iz) by the free parameters (`jax.jacfwd` through the exact
solver). This is the posterior sd that a well-converged fit or NUTS run would report when
the posterior is close to Gaussian; one point is checked against NUTS in the docs
(docs/spin-systems.md). Writes `ring_uncertainty.json` (with provenance) and
`ring_uncertainty.png`.

    uv run python examples/ring_uncertainty.py [--quick] [--out DIR] [--t2 S]
"""

import argparse
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import bayesnmr as bn  # noqa: E402
from bayesnmr._inference._network_space import NetworkSpace  # noqa: E402

SYSTEM = Path(__file__).resolve().parent / "systems" / "ortho_disubstituted_benzene.toml"


def laplace_sds(space, x, grid, sigma, t2, observe_iz):
    def traces(v):
        s = space.system(v)
        tr = bn.simulate(bn.SpinSystem(s.offsets_hz, s.j_hz, t2, iz_spin=s.iz_spin), grid)
        return jnp.concatenate([tr.mx, tr.my] + ([tr.iz1] if observe_iz else []))

    a = np.asarray(jax.jacfwd(traces)(jnp.asarray(x)))
    return sigma * np.sqrt(np.diag(np.linalg.inv(a.T @ a)))


def main(args) -> dict:
    spec = bn.load_spin_system(args.system)
    space = NetworkSpace(spec)
    x = space.start
    sigmas = [0.005, 0.02] if args.quick else [0.002, 0.005, 0.01, 0.02, 0.05]
    times = [0.15, 0.6] if args.quick else [0.15, 0.3, 0.6, 1.2, 2.4]
    rows = []
    t0 = time.perf_counter()
    for t in times:
        grid = bn.TimeGrid(int(round(t / 1e-3)), 1e-3)
        unit = laplace_sds(space, x, grid, 1.0, args.t2, True)  # sd scales with sigma
        fid_only = laplace_sds(space, x, grid, 1.0, args.t2, False)
        for sigma in sigmas:
            rows.append(
                {
                    "acquisition_s": t,
                    "sigma": sigma,
                    "sd": dict(zip(space.names, (sigma * unit).tolist(), strict=True)),
                    "sd_fid_only": dict(zip(space.names, (sigma * fid_only).tolist(), strict=True)),
                }
            )
    para = "j_hz[H3-H6]"
    result = {
        "method": "Laplace sd at the truth: sigma * sqrt(diag((A^T A)^-1)), A the exact "
        "Jacobian of the traces by the free parameters (jax.jacfwd through ExactSolver); "
        f"dt = 1 ms, T2 = {args.t2} s, sigma on mx, my and iz of H3",
        "system": str(Path(args.system).name),
        "truth": dict(zip(space.names, x.tolist(), strict=True)),
        "rows": rows,
        "seconds": time.perf_counter() - t0,
        "provenance": bn.provenance(),
    }
    out = Path(args.out)
    bn.write_json(out / "ring_uncertainty.json", result)
    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    for sigma in sigmas:
        sd = [r["sd"][para] for r in rows if r["sigma"] == sigma]
        ax.loglog(times, sd, "o-", label=f"sigma = {sigma:g}")
    ax.axhline(0.5, color="k", ls=":", label="J para = 0.5 Hz")
    ax.set_xlabel("acquisition time T (s)")
    ax.set_ylabel("posterior sd of J para (Hz)")
    ax.set_title(f"1,2-disubstituted benzene, 400 MHz, T2 = {args.t2} s")
    ax.legend(fontsize=8)
    bn.save_figure(fig, out / "ring_uncertainty.png")
    plt.close(fig)
    print(f"posterior sd of the para coupling ({x[space.names.index(para)]:.2f} Hz):")
    print("  T (s)  " + "  ".join(f"sigma={s:<6g}" for s in sigmas))
    for t in times:
        sd = [r["sd"][para] for r in rows if r["acquisition_s"] == t]
        print(f"  {t:5.2f}  " + "  ".join(f"{v:12.4f}" for v in sd))
    print(f"Wrote {out / 'ring_uncertainty.json'} and ring_uncertainty.png")
    return result


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2 x 2 settings (a smoke test)")
    p.add_argument("--out", default=".", help="output folder")
    p.add_argument("--t2", type=float, default=0.5, help="T2 in seconds (default 0.5)")
    p.add_argument("--system", default=str(SYSTEM), help="a spin-system TOML file")
    return p.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
