"""The mirror mode of a chain, and the two ways to remove it.

    uv run python examples/mirror_modes.py [--quick] [--out DIR]

Reversing a chain (offsets and bonds read backwards) leaves the FID unchanged, but not
iz1, the polarisation of spin 1. So from the FID alone, offsets (-20, 5, 25) Hz and
(25, 5, -20) Hz fit the data equally well. (Two spins are no example: there iz1 depends
on (nu_1 - nu_2)^2 only, so it cannot tell the orderings apart either.) For one noisy
3-spin chain:

1. The misfit on a grid of (nu_1, nu_3) (nu_2 and J at their true values), from the
   FID alone and from the FID and iz1: two minima, then one.
2. `fit` started at each of the two modes: the difference of their chi^2. About zero
   from the FID alone (the data cannot tell them apart); large with iz1.
3. The ordering fix for FID-only data: prior boxes that put the spins in order
   (nu_1 < nu_2 < nu_3, from the spectrum's peaks, say) hold one mode only; NUTS from
   the fit.

(NUTS from random starting points is no way to find the modes: the misfit of an FID
oscillates, and chains stick in its false minima. Start from `fit`.)
"""

import argparse
import dataclasses
import warnings
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import bayesnmr as bn  # noqa: E402

TRUTH, J, SIGMA = (-20.0, 5.0, 25.0), 8.0, 0.05


def chi2_grid(data, nus):
    """chi^2 over a grid of (nu_1, nu_3), with nu_2 and J at their true values."""

    def chi2(n1, n3):
        tr = bn.simulate(bn.SpinChain(jnp.stack([n1, TRUTH[1], n3]), J), data.grid)
        res = [tr.mx - data.mx, tr.my - data.my]
        if data.iz1 is not None:
            res.append(tr.iz1 - data.iz1)
        return sum(jnp.sum(r**2) for r in res) / SIGMA**2

    return np.asarray(jax.jit(jax.vmap(jax.vmap(chi2, (None, 0)), (0, None)))(nus, nus))


def main(args) -> dict:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    grid = bn.TimeGrid(150 if args.quick else 300, 2e-3)
    full = bn.synthesize(bn.SpinChain(list(TRUTH), J), grid, sigma=SIGMA, seed=args.seed)
    fid_only = dataclasses.replace(full, iz1=None)
    box = bn.Priors([[-35.0, 35.0]] * 3, [0.0, 20.0], fixed={"sigma": SIGMA})
    nus = np.linspace(-35, 35, 71 if args.quick else 281)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    result = {}
    for ax, (title, data) in zip(axes, (("FID only", fid_only), ("FID + iz1", full)), strict=False):
        chi2 = chi2_grid(data, nus)
        im = ax.imshow(
            np.log10(1 + chi2 - chi2.min()).T,
            origin="lower",
            extent=(nus[0], nus[-1], nus[0], nus[-1]),
            cmap="magma_r",
            vmax=3.0,  # the minima are narrow (~0.05 Hz): saturate the rest
        )
        fig.colorbar(im, ax=ax, shrink=0.8, label="log10(1 + chi^2 - min)")
        ax.set(title=f"{title}: misfit (nu_2, J at truth)", xlabel="nu_1 (Hz)")
        # fit from each mode; compare their chi^2
        chi2 = []
        for start in (TRUTH, TRUTH[::-1]):  # the true mode and its mirror
            res = bn.fit(
                data, box, init={"offsets_hz": start, "j_hz": J}, n_starts=1, broadening=()
            )
            chi2.append(2 * res.loss / SIGMA**2)
        result[title] = chi2[1] - chi2[0]
        print(f"{title:>10}: chi^2(mirror mode) - chi^2(true mode) = {result[title]:.2f}")
    axes[0].set_ylabel("nu_3 (Hz)")
    for ax in axes[:2]:
        ax.plot(TRUTH[0], TRUTH[2], "o", ms=14, mfc="none", mec="c", mew=1.5, label="truth")
        ax.plot(TRUTH[2], TRUTH[0], "s", ms=14, mfc="none", mec="g", mew=1.5, label="mirror")
        ax.legend(fontsize=7, loc="upper right")
    # The ordering fix: FID only, boxes that keep nu_1 < nu_2 < nu_3.
    ordered = bn.Priors([[-35.0, -5.0], [-5.0, 15.0], [15.0, 35.0]], [0.0, 20.0])
    start = bn.fit(fid_only, ordered, **({"n_starts": 2} if args.quick else {}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        post = bn.sample_posterior(
            fid_only,
            ordered,
            sampler=bn.NUTS(
                chains=2 if args.quick else 4,
                warmup=100 if args.quick else 500,
                draws=100 if args.quick else 500,
            ),
            seed=args.seed,
            init={"offsets_hz": start.offsets_hz, "j_hz": start.j_hz},
            progress_bar=False,
        )
    nu = np.asarray(post.posterior["offsets_hz"]).reshape(-1, 3)
    result["ordered_mean"] = nu.mean(0).tolist()
    print(f"FID only, ordered boxes: posterior mean offsets {np.round(nu.mean(0), 3)} Hz")
    axes[2].plot(nu[:, 0], nu[:, 2], ".", ms=2, alpha=0.4)
    axes[2].plot(TRUTH[0], TRUTH[2], "k+", ms=12, mew=2)
    axes[2].set(title="FID only, ordered boxes: NUTS draws", xlabel="nu_1 (Hz)", ylabel="nu_3 (Hz)")
    fig.tight_layout()
    path = bn.save_figure(fig, Path(args.out) / "mirror_modes.png")
    print(f"Wrote {path}")
    return result


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="coarser grid, shorter chains and trace")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="examples/out")
    return p.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
