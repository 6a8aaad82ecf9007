"""`bayesnmr demo` as a user runs it: wall time cold and warm, and where it goes.

Method: the installed `bayesnmr` command (the one `uv run bayesnmr demo` starts), run
twice in fresh processes with its persistent compilation cache pointed at one new, empty
folder (`BAYESNMR_JAX_CACHE`): `cold` is a first run on a fresh machine (every function
compiled), `warm` the second run (compiled code read from the cache). Each run's wall
time is measured from outside the process (interpreter start, imports and writing the
files included); the stage start times are the demo's own "[N s]" markers (measured
from its start, after the imports). Target (issue 17): <= 60 s on 2 cores.

Writes `demo.json` into `--out`, with the demo's output of each run.

    uv run python benchmarks/demo.py            # cold, then warm (a few minutes)
    uv run python benchmarks/demo.py --quick    # one short run in this process: a smoke test
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, stamp, write_json  # noqa: E402

STAGES = {
    "1": "simulate",
    "2": "recover_j",
    "3": "global_fit",
    "4": "nuts_exact",
    "5": "surrogate_corrected",
}


def command() -> list[str]:
    """The `bayesnmr` console script of this environment."""
    found = shutil.which("bayesnmr", path=str(Path(sys.executable).parent))
    if found is None:
        raise SystemExit("The `bayesnmr` command is not installed here: run `uv sync` first.")
    return [found]


def run_demo(out: Path, cache: str | None, extra: list[str], in_process: bool = False) -> dict:
    """One run of `bayesnmr demo`, in a fresh process (or, `in_process`, in this one)."""
    argv = ["demo", "--out", str(out), *extra]
    t0 = time.perf_counter()
    if in_process:
        import contextlib
        import io

        from bayesnmr._cli import main as cli

        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            rc = cli(argv)
        seconds, text, err = time.perf_counter() - t0, buffer.getvalue(), ""
    else:
        env = dict(os.environ)
        if cache is not None:
            env["BAYESNMR_JAX_CACHE"] = cache
        done = subprocess.run([*command(), *argv], capture_output=True, text=True, env=env)
        seconds, rc, text, err = time.perf_counter() - t0, done.returncode, done.stdout, done.stderr
    if rc != 0:
        raise SystemExit(f"bayesnmr demo failed ({rc}):\n{err[-3000:]}")
    marks = {m[0]: float(m[1]) for m in re.findall(r"^(\d)\. \[(\d+) s\]", text, re.M)}
    marks.setdefault("1", 0.0)
    total = float(re.search(r"^Done in (\d+) s\.", text, re.M)[1])
    starts = [(STAGES[k], marks[k]) for k in sorted(marks)]
    ends = [s for _, s in starts[1:]] + [total]
    return {
        "seconds": seconds,
        "demo_seconds": total,
        "stage_seconds": {name: end - s for (name, s), end in zip(starts, ends, strict=True)},
        "output": text,
    } | stamp()


def main(args) -> dict:
    extra = ["--chains", "2", "--warmup", "100", "--draws", "100"] if args.quick else []
    out = Path(args.out)
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = Path(args.demo_out or tmp)
        if args.quick:
            # A smoke test of the demo and of this script, in this process (the test suite
            # runs it so, sharing its compiled functions): its time means nothing.
            runs["quick"] = run_demo(files / "quick", None, extra, in_process=True)
        else:
            cache = str(Path(tmp) / "jax-cache")
            for name in ("cold", "warm"):
                runs[name] = run_demo(files / name, cache, extra)
                print(f"{name}: {runs[name]['seconds']:.1f} s", flush=True)
    results = {
        "benchmark": "demo",
        "method": __doc__,
        "quick": args.quick,
        "demo_arguments": extra,
        "machine": machine(),
        "runs": runs,
    }
    write_json(out / "demo.json", results)
    print(f"Wrote {out / 'demo.json'}")
    return results


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="one short run (a smoke test)")
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument(
        "--demo-out", help="keep the demo's files here, one folder per run (default: discard)"
    )
    return p.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
