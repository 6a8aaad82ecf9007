"""The `bayesnmr` command line."""

import argparse
import os
import sys
from pathlib import Path

from ._cli_args import DEFAULT_J, DEFAULT_OFFSETS, _add_dask_option
from ._cli_demo import cmd_demo
from ._cli_inference import cmd_fit, cmd_sample, cmd_simulate
from ._cli_surrogate import cmd_evaluate, cmd_generate, cmd_sbc, cmd_train


def compilation_cache_dir() -> Path | None:
    """Where the command line keeps JAX's compiled functions between runs:
    `$BAYESNMR_JAX_CACHE`, else `$XDG_CACHE_HOME/bayesnmr/jax` (`~/.cache/bayesnmr/jax`);
    `BAYESNMR_JAX_CACHE=off` turns the cache off."""
    env = os.environ.get("BAYESNMR_JAX_CACHE")
    if env is not None:
        return None if env.strip().lower() in ("", "0", "off", "no", "false") else Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bayesnmr" / "jax"


def _setup(args: argparse.Namespace) -> None:
    # The CLI is an entry point: it chooses float64 for physics accuracy, and lets NUTS
    # run one chain per CPU core (this must happen before JAX starts).
    import jax

    if args.command in ("sample", "demo"):
        from ._inference._sampler import use_cpu_cores

        use_cpu_cores(max(os.cpu_count() or 1, args.chains))
    jax.config.update("jax_enable_x64", True)
    cache = compilation_cache_dir()
    if cache is not None:  # compiled functions persist between runs: a second run starts fast
        jax.config.update("jax_compilation_cache_dir", str(cache))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    import matplotlib

    matplotlib.use("Agg")  # the CLI writes figures to files; it never opens a window


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
    p.add_argument(
        "--system",
        default="",
        help="a spin-system TOML file: fit any network of couplings, its shifts and "
        "couplings free in their boxes (replaces --offsets, --width, --j-range)",
    )
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
    sim.add_argument(
        "--system",
        default="",
        help="a spin-system TOML file (any network of couplings; see docs/spin-systems.md): "
        "its values replace --offsets and --j",
    )
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
        "--system",
        default="",
        help="calibrate a spin-system TOML file's network (its boxes; --sigma the known noise)",
    )
    sbc.add_argument(
        "--no-fallback",
        action="store_true",
        help="rank a failed correction's draws, instead of sampling that data set again "
        "with a local surrogate or exact NUTS (as `sample` does)",
    )
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
    ev.add_argument("--seed", type=int, default=0)
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
