"""The command line's surrogate and calibration commands: generate, train, evaluate, sbc."""

import argparse
from pathlib import Path

import numpy as np

from ._cli_args import _parse_floats, _range, _shard_list


def cmd_generate(args: argparse.Namespace) -> int:
    import bayesnmr as bn

    domain = bn.Domain(
        args.spins, _range(args.offset_range, "offset-range"), _range(args.j_range, "j-range")
    )
    spec = bn.DataSpec(
        domain, bn.TimeGrid(args.n, args.dt), args.samples, args.shard_size, args.seed
    )
    scheduler = None if args.dask is None else (args.dask or "local")
    paths = bn.generate_data(
        args.out, spec, shards=_shard_list(args.shards), batch=args.batch, scheduler=scheduler
    )
    print(f"{len(paths)} shard(s) of {spec.n_shards} complete in {args.out}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    import bayesnmr as bn

    config = bn.TrainConfig(
        architecture=args.arch,
        width=args.width,
        depth=args.depth,
        frame_steps=args.frame_steps,
        trace_steps=args.trace_steps,
        hard_fraction=args.hard_fraction,
        val_fraction=args.val_fraction,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        eval_every=args.eval_every,
        patience=args.patience,
        seed=args.seed,
    )
    out = Path(args.out)
    ckpt = Path(args.checkpoint) if args.checkpoint else out.with_name(out.name + ".ckpt")
    command = "bayesnmr " + " ".join(args.argv) if args.record_argv else None
    sur = bn.train_surrogate(
        args.data, config, checkpoint=ckpt, command=command, init=args.init or None
    )
    bn.save_surrogate(out, sur)
    _print_accuracy(sur.metadata["validation"], "validation split")
    print(f"Wrote {out} (checkpoint {ckpt} can be deleted)")
    return 0


def _print_accuracy(report: dict, what: str) -> None:
    print(f"Relative L2 error over the trace, {what} ({report['n']} chains): median / p95")
    for name in ("mx", "my", "iz1", "iz1_minus_1"):
        r = report[name]
        print(f"  {name:>12}: {r['median']:8.3%} / {r['p95']:8.3%}")
    if "stability" in report:
        st = ", ".join(f"{k} {v:.2f}" for k, v in report["stability"].items())
        print(f"  late/early RMS error (last third / first third): {st}")


def cmd_evaluate(args: argparse.Namespace) -> int:
    import json

    import bayesnmr as bn

    from ._io import atomic_path, save_figure
    from ._surrogate._evaluate import held_out

    sur = bn.load_surrogate(args.model)
    if args.data:
        _, thetas, traces = bn.load_training_data(args.data)
        what = f"data in {args.data}"
    else:
        thetas, traces = held_out(sur, args.samples, seed=args.seed, progress_bar=True)
        what = f"{args.samples} fresh chains from the domain (seed {args.seed})"
    report = bn.evaluate_surrogate(sur, thetas=thetas, traces=traces)
    _print_accuracy(report, what)
    if args.json:
        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(report, indent=1))
        print(f"Wrote {args.json}")
    if args.plot:
        fig = bn.plot_stability(sur, thetas[0], thetas[:1000], traces[:1000])
        print(f"Wrote {save_figure(fig, args.plot)}")
    return 0


def cmd_sbc(args: argparse.Namespace) -> int:
    import bayesnmr as bn

    out = Path(args.out)
    if args.system:  # any network of couplings: its boxes, the exact solver
        if args.model != "exact":
            raise ValueError("`--system` is calibrated with the exact solver; drop `--model`.")
        spec = bn.load_spin_system(args.system)
        grid = bn.TimeGrid(args.n or 300, args.dt or 1e-3)
        print(
            f"SBC: {args.datasets} data sets, the spin system of {args.system} ({spec.n_spins} "
            f"spins), sigma {args.sigma:g}, {args.chains} chain(s) x ({args.warmup} + "
            f"{args.draws}) NUTS each, started at the truth"
        )
        result = bn.calibrate(
            grid,
            spec,
            sigma=args.sigma,
            n_datasets=args.datasets,
            sampler=bn.NUTS(chains=args.chains, warmup=args.warmup, draws=args.draws),
            rank_draws=min(99, args.chains * args.draws),
            seed=args.seed,
            checkpoint=out / "sbc.checkpoint.json",
        )
        return _report_sbc(result, args, out, f"{Path(args.system).stem}, sigma {args.sigma:g}")
    if args.model in ("exact", "local"):
        solver = None if args.model == "exact" else "local"
    else:
        solver = bn.load_surrogate(args.model)
    if isinstance(solver, bn.Surrogate) and args.n is None and args.dt is None:
        grid = solver.grid
    else:
        grid = bn.TimeGrid(args.n or 300, args.dt or 1e-3)
    centres = _parse_floats(args.offsets, "offsets")
    priors = bn.Priors.around(
        centres, args.width, j_hz=_range(args.j_range, "j-range"), fixed={"sigma": args.sigma}
    )
    model_error = None
    if args.model_error:
        if not isinstance(solver, bn.Surrogate):
            raise ValueError(
                "`--model-error` estimates a surrogate's error; give `--model` a surrogate."
            )
        model_error = bn.surrogate_error(solver, priors, n_samples=args.error_samples)
        rms = np.sqrt(np.mean(model_error**2, axis=1))
        print(
            "surrogate error over the priors (RMS per observable, from "
            f"{args.error_samples} exact trajectories): mx {rms[0]:.3g}, my {rms[1]:.3g}, "
            f"iz1 {rms[2]:.3g}; noise sigma {args.sigma:g}"
        )
    print(
        f"SBC: {args.datasets} data sets, {len(centres)} spins, forward model {args.model}"
        f"{' + model error' if args.model_error else ''}, sigma {args.sigma:g}, "
        f"{args.chains} chain(s) x ({args.warmup} + {args.draws}) NUTS each"
    )
    result = bn.calibrate(
        grid,
        priors,
        solver=solver,
        model_error=model_error,
        n_datasets=args.datasets,
        sampler=bn.NUTS(chains=args.chains, warmup=args.warmup, draws=args.draws),
        rank_draws=min(99, args.chains * args.draws),
        seed=args.seed,
        batch=args.batch,
        scheduler=None if args.dask is None else (args.dask or "local"),
        correct=False if args.no_correct else None,
        fallback=not args.no_fallback,
        checkpoint=out / "sbc.checkpoint.json",
    )
    title = f"{args.model}{' + model error' if args.model_error else ''}, sigma {args.sigma:g}"
    return _report_sbc(result, args, out, title)


def _report_sbc(result, args, out: Path, title: str) -> int:
    import bayesnmr as bn

    from ._io import save_figure

    cover, pv = result.coverage, result.p_values
    width = max(14, *(len(n) for n in result.names))
    print(f"{'parameter':>{width}}  cover50  cover90  p(uniform ranks)")
    for name in result.names:
        print(
            f"{name:>{width}}  {cover['50'][name]:7.1%}  {cover['90'][name]:7.1%}  {pv[name]:.3g}"
        )
    if result.pareto_k is not None:
        k = result.pareto_k
        bad = int(np.isnan(k).sum())
        print(
            f"exact correction: {int(result.corrected.sum())} of {len(result.corrected)} data "
            f"sets corrected (Pareto k-hat median {np.nanmedian(k):.2f}, max {np.nanmax(k):.2f}"
            f"{f'; {bad} not computable' if bad else ''})"
        )
        if result.fallback is not None:
            fb = {w: int(np.sum(result.fallback == w)) for w in ("local", "exact", "none")}
            print(
                f"  failed corrections fell back to a local surrogate in {fb['local']}, to exact "
                f"NUTS in {fb['exact']}, to nothing in {fb['none']} (ranked as they were)"
            )
        else:
            print("  failed corrections are ranked as they are (--no-fallback)")
    print(f"Wrote {result.save(out / 'sbc.json')}")
    print(f"Wrote {save_figure(result.plot(title), out / 'sbc.png')}")
    if args.compare:
        ref = bn.SBCResult.load(args.compare)
        cmp = result.compare(ref)
        print(f"Against {args.compare} (same data sets), median [5 %, 95 %] over data sets:")
        for name in result.names:
            sh, ra = cmp["shift"][name], cmp["sd_ratio"][name]
            print(
                f"{name:>14}  mean shift {sh['median']:+.2f} [{sh['p05']:+.2f}, {sh['p95']:+.2f}]"
                f" ref sds ({cmp['beyond_2sd'][name]:.0%} beyond 2); sd ratio "
                f"{ra['median']:.2f} [{ra['p05']:.2f}, {ra['p95']:.2f}]"
            )
    return 0
