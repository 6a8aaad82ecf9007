"""The `bayesnmr` commands that simulate, fit and sample."""

import argparse
from pathlib import Path

import numpy as np

from ._cli_args import _parse_floats


def _priors_for(data, args):
    """The spin-system file's boxes (`--system`), boxes around `--offsets` if given, else
    what the data alone allow."""
    import bayesnmr as bn

    if args.system:
        if args.offsets or args.known_offsets:
            raise ValueError("`--system` gives the shifts and boxes; drop `--offsets`.")
        return bn.load_spin_system(args.system)
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


def _print_fit(result, spec=None) -> None:
    names = result.names
    err = result.stderr if result.stderr is not None else [float("nan")] * len(names)
    if spec is not None:  # a network: the free parameters by name
        picked = dict(zip(names, _network_values(result, spec), strict=True))
    else:
        values = list(result.offsets_hz) + list(result.j_hz.reshape(-1))
        picked = {n: v for n, v in zip(_all_names(result), values, strict=True)}
    for n, e in zip(names, err, strict=True):
        print(f"  {n:>14} = {picked[n]:10.4f} +- {e:.4f} Hz  (Laplace)")
    if spec is not None:
        how = f"global search, {result.n_starts} descents, {result.seconds:.1f} s"
    elif result.n_steps:
        how = f"{result.n_steps} L-BFGS steps in {result.seconds:.2f} s"
    else:
        how = f"global search, {result.n_starts} descents, {result.seconds:.1f} s"
    print(f"  noise sigma ~ {result.sigma:.4g}; {how}")
    if len(result.modes) > 1:
        print(f"  {len(result.modes)} competing solutions (Laplace probabilities):")
        for line in result.describe().splitlines():
            print(f"    {line}")


def _network_values(result, spec) -> list[float]:
    from ._inference._network_space import NetworkSpace

    return NetworkSpace(spec).free(result.offsets_hz, result.j_hz).tolist()


def _network_truth(data, spec) -> dict | None:
    """The true values by the titles of a network posterior's marginal panels."""
    from ._inference._network_space import NetworkSpace

    if not data.truth:
        return None
    space = NetworkSpace(spec)
    j = np.asarray(data.truth["j_hz"], float)
    by_title = {f"offsets_hz\n{n}": data.truth["offsets_hz"][i] for n, i in
                zip(space.offset_names, space.free_offsets, strict=True)}  # fmt: skip
    if j.ndim == 2:
        for name, pairs in zip(space.coupling_names, space.coupling_pairs, strict=True):
            by_title[f"j_hz\n{name}"] = j[pairs[0]]
    return {"sigma": data.truth.get("sigma"), "by_title": by_title}


def _all_names(result):
    n = len(result.offsets_hz)
    j = result.j_hz.reshape(-1)
    return [f"offsets_hz[{i}]" for i in range(n)] + (
        ["j_hz"] if result.j_hz.ndim == 0 else [f"j_hz[{i}]" for i in range(j.size)]
    )


def cmd_simulate(args: argparse.Namespace) -> int:
    import bayesnmr as bn

    if args.system:
        chain = bn.load_spin_system(args.system).system
        if args.t2 is not None:
            chain = bn.SpinSystem(
                chain.offsets_hz, chain.j_hz, args.t2, iz_spin=chain.iz_spin, names=chain.names
            )
        what = f"the spin system of {args.system}"
    else:
        offsets = _parse_floats(args.offsets, "offsets")
        j = _parse_floats(args.j, "j")
        chain = bn.SpinChain(offsets, j[0] if len(j) == 1 else j, t2_s=args.t2)
        what = "a chain"
    grid = bn.TimeGrid(args.n, args.dt)
    data = bn.synthesize(chain, grid, args.sigma, args.seed, observe_iz1=not args.no_iz1)
    path = bn.save_dataset(data, args.out)
    print(f"Wrote {path}: {what}, {chain.n_spins} spins, {grid.n} points, sigma = {args.sigma}")
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    import bayesnmr as bn

    data = bn.load_dataset(args.data, n_spins=args.n_spins)
    priors = _priors_for(data, args)
    result = bn.fit(data, priors, n_starts=args.starts, steps=args.steps, seed=args.seed)
    spec = priors if isinstance(priors, bn.SystemSpec) else None
    if spec is not None:
        print(f"Searched the network of {args.system} from the data alone, in its boxes.")
    elif not args.offsets:
        print(f"Searched every order of {data.n_spins} spins, offsets in the spectral window.")
    print(f"Fit of {args.data} ({data.n_spins} spins):")
    _print_fit(result, spec)
    if data.truth:
        from ._inference._fit import couplings_text

        offsets = np.round(np.asarray(data.truth["offsets_hz"], float), 4).tolist()
        print(f"  truth: offsets {offsets} Hz, J {couplings_text(data.truth['j_hz'], 4)} Hz")
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
        sampler=bn.NUTS(chains=args.chains, warmup=args.warmup, draws=args.draws),
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
    truth = _network_truth(data, priors) if isinstance(priors, bn.SystemSpec) else data.truth
    paths = bn.plot_posterior(dt, out, truth=truth, prefix=prefix)
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
