"""The `bayesnmr` command line."""

import argparse
import os
import sys
from pathlib import Path

from ._cli_args import DEFAULT_J, DEFAULT_OFFSETS, _add_dask_option, _parse_floats
from ._cli_surrogate import cmd_evaluate, cmd_generate, cmd_sbc, cmd_train


def _setup(args: argparse.Namespace) -> None:
    # The CLI is an entry point: it chooses float64 for physics accuracy, and lets NUTS
    # run one chain per CPU core (this must happen before JAX starts).
    import jax

    if args.command in ("sample", "demo"):
        from ._inference._nuts import use_cpu_cores

        use_cpu_cores(max(os.cpu_count() or 1, args.chains))
    jax.config.update("jax_enable_x64", True)
    import matplotlib

    matplotlib.use("Agg")  # the CLI writes figures to files; it never opens a window


def _priors_for(data, args):
    """Boxes around `--offsets` if given, else what the data alone allow."""
    import bayesnmr as bn

    j_range = _parse_floats(args.j_range, "j-range")
    if not args.offsets:
        if args.known_offsets:
            raise ValueError("`--known-offsets` needs `--offsets`.")
        return bn.Priors.from_data(data, j_hz=j_range)
    guess = _parse_floats(args.offsets, "offsets")
    if len(guess) != data.n_spins:
        raise ValueError(
            f"`--offsets` gives {len(guess)} values but the data are for {data.n_spins} spins."
        )
    fixed = {"offsets_hz": guess} if args.known_offsets else {}
    return bn.Priors.around(guess, args.width, j_hz=j_range, fixed=fixed)


def _print_fit(result) -> None:
    names = result.names
    err = result.stderr if result.stderr is not None else [float("nan")] * len(names)
    values = list(result.offsets_hz) + list(result.j_hz.reshape(-1))
    picked = {n: v for n, v in zip(_all_names(result), values, strict=True)}
    for n, e in zip(names, err, strict=True):
        print(f"  {n:>14} = {picked[n]:10.4f} +- {e:.4f} Hz  (Laplace)")
    how = (
        f"{result.n_steps} L-BFGS steps in {result.seconds:.2f} s"
        if result.n_steps
        else f"global search, {result.n_starts} descents, {result.seconds:.1f} s"
    )
    print(f"  noise sigma ~ {result.sigma:.4g}; {how}")
    if len(result.modes) > 1:
        print(f"  {len(result.modes)} competing solutions (Laplace probabilities):")
        for line in result.describe().splitlines():
            print(f"    {line}")


def _all_names(result):
    n = len(result.offsets_hz)
    j = result.j_hz.reshape(-1)
    return [f"offsets_hz[{i}]" for i in range(n)] + (
        ["j_hz"] if result.j_hz.ndim == 0 else [f"j_hz[{i}]" for i in range(j.size)]
    )


def cmd_simulate(args: argparse.Namespace) -> int:
    import bayesnmr as bn

    offsets = _parse_floats(args.offsets, "offsets")
    j = _parse_floats(args.j, "j")
    chain = bn.SpinChain(offsets, j[0] if len(j) == 1 else j, t2_s=args.t2)
    grid = bn.TimeGrid(args.n, args.dt)
    data = bn.synthesize(chain, grid, args.sigma, args.seed, observe_iz1=not args.no_iz1)
    path = bn.save_dataset(data, args.out)
    print(f"Wrote {path}: {chain.n_spins} spins, {grid.n} points, sigma = {args.sigma}")
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    import bayesnmr as bn

    data = bn.load_dataset(args.data, n_spins=args.n_spins)
    priors = _priors_for(data, args)
    result = bn.fit(data, priors, n_starts=args.starts, steps=args.steps, seed=args.seed)
    if not args.offsets:
        print(f"Searched every order of {data.n_spins} spins, offsets in the spectral window.")
    print(f"Fit of {args.data} ({data.n_spins} spins):")
    _print_fit(result)
    if data.truth:
        print(f"  truth: offsets {data.truth['offsets_hz']}, J {data.truth['j_hz']}")
    return 0


def _sample_and_report(data, priors, args, out: Path, prefix: str = "", **kwargs) -> None:
    """NUTS (from the global fit unless `init` is passed), the ArviZ summary and
    diagnostics, the posterior file and figures."""
    import bayesnmr as bn

    from ._inference._diagnose import correction_report, format_summary
    from ._io import save_figure

    dt = bn.sample_posterior(
        data,
        priors,
        chains=args.chains,
        warmup=args.warmup,
        draws=args.draws,
        seed=getattr(args, "seed", 0),
        **kwargs,
    )
    summary, problems = bn.diagnose(dt, warn=False)
    print(format_summary(summary))
    for line in correction_report(dt):
        print(line)
    for p in problems:
        print(f"WARNING: {p}")
    print(f"Wrote {bn.save_posterior(dt, out / f'{prefix}posterior.nc')}")
    paths = bn.plot_posterior(dt, out, truth=data.truth, prefix=prefix)
    paths.append(save_figure(bn.plot_predictive(dt, data), out / f"{prefix}predictive.png"))
    print("Wrote " + ", ".join(str(p) for p in paths))
    return dt


def cmd_sample(args: argparse.Namespace) -> int:
    import bayesnmr as bn

    data = bn.load_dataset(args.data, n_spins=args.n_spins)
    priors = _priors_for(data, args)
    if args.solver == "exact":
        solver = None
    elif args.solver == "local":
        solver = "local"
    else:
        solver = bn.load_surrogate(args.solver)
    correct = False if args.no_correct else None
    _sample_and_report(data, priors, args, Path(args.out), solver=solver, correct=correct)
    return 0


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
            data, boxes, solver=sur, init=res, chains=2, warmup=300, draws=300, progress_bar=False
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


def _add_prior_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="a NetCDF file from `bayesnmr simulate` (or the same format)")
    p.add_argument(
        "--spins",
        "--n-spins",
        dest="n_spins",
        type=int,
        default=None,
        help="if the file does not say",
    )
    p.add_argument(
        "--offsets",
        default="",
        help="guessed offsets in Hz, spin 1 first (default: none; every offset anywhere in "
        "the spectral window, the order along the chain unknown)",
    )
    p.add_argument("--width", type=float, default=15.0, help="prior half-width around --offsets")
    p.add_argument("--j-range", default="0,25", help="prior box for J in Hz (default %(default)s)")
    p.add_argument("--known-offsets", action="store_true", help="fix the offsets at --offsets")
    p.add_argument("--seed", type=int, default=0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bayesnmr",
        description="Fast, differentiable NMR spin dynamics and Bayesian parameter estimation.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="the whole story on the embedded default chain")
    demo.add_argument("--out", default="bayesnmr-demo", help="output folder (default: %(default)s)")
    demo.add_argument("--chains", type=int, default=4)
    demo.add_argument("--warmup", type=int, default=500)
    demo.add_argument("--draws", type=int, default=500)
    demo.set_defaults(func=cmd_demo)

    sim = sub.add_parser("simulate", help="write a noisy synthetic data set (NetCDF)")
    sim.add_argument(
        "--offsets", default=",".join(map(str, DEFAULT_OFFSETS)), help="Hz, comma-separated"
    )
    sim.add_argument("--j", default=str(DEFAULT_J), help="Hz: one value, or N-1 comma-separated")
    sim.add_argument("--t2", type=float, default=None, help="T2 in seconds (default: none)")
    sim.add_argument("--n", type=int, default=300, help="number of time points")
    sim.add_argument("--dt", type=float, default=1e-3, help="time step in seconds")
    sim.add_argument("--sigma", type=float, default=0.02, help="noise standard deviation")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--no-iz1", action="store_true", help="observe the FID only")
    sim.add_argument("--out", default="data.nc")
    sim.set_defaults(func=cmd_simulate)

    fit = sub.add_parser("fit", help="point estimate (L-BFGS, multi-start) with Laplace errors")
    _add_prior_options(fit)
    fit.add_argument("--starts", type=int, default=None, help="descents (default 16 + 8N)")
    fit.add_argument("--steps", type=int, default=25, help="L-BFGS steps per stage")
    fit.set_defaults(func=cmd_fit)

    sample = sub.add_parser("sample", help="NUTS posterior with ArviZ diagnostics and plots")
    _add_prior_options(sample)
    sample.add_argument("--chains", type=int, default=4)
    sample.add_argument("--warmup", type=int, default=1000)
    sample.add_argument("--draws", type=int, default=1000)
    sample.add_argument(
        "--solver",
        default="exact",
        help="the forward model: exact (default); local (a surrogate trained for these data, "
        "then corrected to the exact posterior); or a shipped surrogate (chain4) or .bnsur "
        "file (corrected to the exact posterior too)",
    )
    sample.add_argument(
        "--no-correct",
        action="store_true",
        help="keep a surrogate's own posterior, without the exact correction",
    )
    sample.add_argument("--out", default="bayesnmr-posterior", help="output folder")
    sample.set_defaults(func=cmd_sample)

    gen = sub.add_parser("generate", help="exact training trajectories, in resumable shards")
    gen.add_argument("--spins", type=int, default=4, help="chain length N")
    gen.add_argument("--samples", type=int, default=20000)
    gen.add_argument("--out", required=True, help="output folder")
    gen.add_argument("--shard-size", type=int, default=1000)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--shards", default="", help="only these shards, e.g. 0-9,12 (default all)")
    gen.add_argument("--offset-range", default="-100,100", help="Hz (default %(default)s)")
    gen.add_argument("--j-range", default="0,20", help="Hz (default %(default)s)")
    gen.add_argument("--n", type=int, default=300, help="number of time points")
    gen.add_argument("--dt", type=float, default=1e-3, help="time step in seconds")
    gen.add_argument("--batch", type=int, default=256, help="trajectories per vmapped solve")
    _add_dask_option(gen, "the shards", "threads")
    gen.set_defaults(func=cmd_generate)

    train = sub.add_parser("train", help="train a surrogate on generated data")
    train.add_argument("data", help="a folder from `bayesnmr generate`")
    train.add_argument("--out", required=True, help="the surrogate file to write (.bnsur)")
    train.add_argument("--arch", choices=["eigen", "mlp"], default="eigen")
    train.add_argument("--width", type=int, default=256)
    train.add_argument("--depth", type=int, default=3)
    train.add_argument("--frame-steps", type=int, default=30000, help="eigen: label-free stage")
    train.add_argument("--trace-steps", type=int, default=0, help="steps on the exact traces")
    train.add_argument("--hard-fraction", type=float, default=0.3, help="eigen: strong coupling")
    train.add_argument("--val-fraction", type=float, default=0.1, help="held out for validation")
    train.add_argument("--batch-size", type=int, default=256)
    train.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    train.add_argument("--eval-every", type=int, default=500)
    train.add_argument("--patience", type=int, default=20, help="validations without gain")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--checkpoint", default="", help="default: OUT.ckpt; resumes if present")
    train.add_argument("--init", default="", help="start from this surrogate's weights")
    train.add_argument(
        "--no-record-argv",
        dest="record_argv",
        action="store_false",
        help="do not store the command line in the file",
    )
    train.set_defaults(func=cmd_train)

    sbc = sub.add_parser("sbc", help="simulation-based calibration of the posterior")
    sbc.add_argument(
        "--model",
        default="exact",
        help="exact; local (a surrogate trained for each data set); a shipped surrogate or a "
        ".bnsur file. Surrogate posteriors are corrected to the exact one",
    )
    sbc.add_argument("--no-correct", action="store_true", help="keep a surrogate's own posterior")
    sbc.add_argument(
        "--model-error", action="store_true", help="add the surrogate's error to the noise"
    )
    sbc.add_argument("--error-samples", type=int, default=500, help="for --model-error")
    sbc.add_argument(
        "--offsets", default=",".join(map(str, DEFAULT_OFFSETS)), help="prior box centres, Hz"
    )
    sbc.add_argument("--width", type=float, default=10.0, help="prior box half-width (Hz)")
    sbc.add_argument("--j-range", default="5,20", help="prior box for J, Hz (default %(default)s)")
    sbc.add_argument("--sigma", type=float, default=0.02, help="known noise sigma")
    sbc.add_argument("--n", type=int, default=None, help="time points (default: the model's, 300)")
    sbc.add_argument("--dt", type=float, default=None, help="time step in s (default: 1e-3)")
    sbc.add_argument("--datasets", type=int, default=200)
    sbc.add_argument("--chains", type=int, default=1)
    sbc.add_argument("--warmup", type=int, default=200)
    sbc.add_argument("--draws", type=int, default=200)
    sbc.add_argument("--seed", type=int, default=0)
    sbc.add_argument("--batch", type=int, default=10, help="data sets per task")
    _add_dask_option(sbc, "the data sets", "one process per core")
    sbc.add_argument("--compare", default="", help="an sbc.json of the same data sets")
    sbc.add_argument("--out", default="bayesnmr-sbc", help="output folder")
    sbc.set_defaults(func=cmd_sbc)

    ev = sub.add_parser("evaluate", help="a surrogate against the exact solver")
    ev.add_argument("model", help="a shipped name (chain4, chain8) or a .bnsur file")
    ev.add_argument("--data", default="", help="a generated folder (default: fresh samples)")
    ev.add_argument("--samples", type=int, default=1000)
    ev.add_argument("--seed", type=int, default=12345)
    ev.add_argument("--json", default="", help="write the figures to this JSON file")
    ev.add_argument("--plot", default="", help="write the stability figure to this PNG")
    ev.set_defaults(func=cmd_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded by `train`
    _setup(args)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"bayesnmr {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
