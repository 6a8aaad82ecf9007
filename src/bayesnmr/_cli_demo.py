"""`bayesnmr demo`: the whole story on the embedded default chain."""

import argparse
from pathlib import Path

from ._cli_args import DEFAULT_J, DEFAULT_OFFSETS
from ._cli_inference import _print_fit, _sample_and_report


def cmd_demo(args: argparse.Namespace) -> int:
    import time
    import warnings

    import numpy as np

    import bayesnmr as bn

    from ._inference._diagnose import correction_report
    from ._io import save_figure
    from ._plots import plot_traces

    t_start = time.perf_counter()

    def elapsed() -> str:
        return f"[{time.perf_counter() - t_start:.0f} s]"

    out = Path(args.out)
    chain = bn.SpinChain(offsets_hz=DEFAULT_OFFSETS, j_hz=DEFAULT_J)
    grid = bn.TimeGrid(n=300, dt=1e-3)
    print(f"1. Simulate: offsets {DEFAULT_OFFSETS} Hz, J = {DEFAULT_J} Hz, {grid.n} points at")
    print(f"   dt = {grid.dt * 1e3:g} ms, exact solver; cross-checked by Liouville-von Neumann:")
    tr = bn.simulate(chain, grid)
    check = bn.simulate(chain, grid, solver=bn.DiffraxSolver())
    diff = max(float(abs(getattr(tr, k) - getattr(check, k)).max()) for k in ("mx", "my", "iz1"))
    print(f"   max |exact - Diffrax| = {diff:.1e}")
    sur = bn.load_surrogate("chain4")
    approx = bn.simulate(chain, grid, solver=sur)
    diff = max(float(abs(getattr(tr, k) - getattr(approx, k)).max()) for k in ("mx", "my", "iz1"))
    print(f"   the shipped surrogate `chain4` (eigen-structured network): max |error| = {diff:.1e}")
    fig = plot_traces(tr, title="Default 4-spin chain")
    print(f"   Wrote {save_figure(fig, out / 'demo_traces.png')}")
    sigma = 0.02
    data = bn.synthesize(chain, grid, sigma=sigma, seed=1)
    print(f"   Wrote {bn.save_dataset(data, out / 'demo_data.nc')} (noise sigma = {sigma})")

    print(f"2. {elapsed()} Recover J from a wrong guess (the paper's experiment: offsets known,")
    print("   J from 5 Hz):")
    known = bn.Priors.around(
        DEFAULT_OFFSETS, 10.0, j_hz=(0.0, 20.0), fixed={"offsets_hz": DEFAULT_OFFSETS}
    )
    for name, solver in (("surrogate", sur), ("exact", None)):
        res = bn.fit(
            data, known, solver=solver, init={"j_hz": 5.0}, n_starts=1, broadening=(), steps=20
        )
        print(
            f"   {name:>9}: J = {float(res.j_hz):.4f} +- {res.stderr[0]:.4f} Hz after "
            f"{res.n_steps} steps, {res.seconds:.2f} s after compilation (truth {DEFAULT_J})"
        )

    print(f"3. {elapsed()} Fit every offset and J from the data alone (exact solver): offsets")
    print("   anywhere in the spectral window, J in [0, 25] Hz, the order along the chain unknown:")
    res = bn.fit(data)
    _print_fit(res)

    print(
        f"4. {elapsed()} NUTS posterior (exact solver), started at that fit "
        f"({args.chains} chains x ({args.warmup} warmup + {args.draws} draws)):"
    )
    exact = _sample_and_report(data, None, args, out, prefix="demo_", init=res, progress_bar=False)

    print(
        f"5. {elapsed()} The same posterior from the shipped surrogate `chain4`, corrected to the"
    )
    print("   exact one (every draw re-solved exactly, PSIS weights; 2 chains x (300 + 300)):")
    boxes = bn.Priors.around(res.offsets_hz, 15.0, j_hz=(0.0, 20.0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dt = bn.sample_posterior(
            data,
            boxes,
            solver=sur,
            init=res,
            sampler=bn.NUTS(chains=2, warmup=300, draws=300),
            progress_bar=False,
        )
    for w in caught:
        print(f"   {w.category.__name__}: {w.message}")
    for line in correction_report(dt):
        print(f"   {line}")
    raw = "the local surrogate alone" if dt.attrs.get("fallback") else "chain4 alone"

    def draws(group):  # every draw as a row of offsets and J
        post = group.to_dataset() if hasattr(group, "to_dataset") else group
        cols = [np.asarray(post[k]) for k in ("offsets_hz", "j_hz")]
        return np.column_stack([c.reshape(c.shape[0] * c.shape[1], -1) for c in cols])

    ref = draws(exact.posterior)
    for group, label in (("posterior_surrogate", raw), ("posterior", "corrected")):
        off = np.abs(draws(dt[group]).mean(0) - ref.mean(0)) / ref.std(0)
        print(f"   {label:>25}: posterior means within {off.max():.2f} exact sds of exact NUTS")
    print(f"Done in {time.perf_counter() - t_start:.0f} s.")
    return 0
