"""Shared helpers for the benchmarks: machine description, timing, atomic JSON."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def machine() -> dict:
    """What ran the benchmark: CPU, cores, memory, the versions that matter, the date, and
    the commit (with `+dirty` for uncommitted changes to the code)."""
    from bayesnmr._io import provenance

    return provenance() | {"commit": commit()}


def stamp() -> dict:
    """What every row of a results file records: the commit and the date it was measured
    on (the machine is in the file's `machine`), so that re-measuring some rows does not
    restamp the others; and how busy the machine was: the cores this process may use
    (`taskset` narrows them) and the 1-minute load average when the row was written."""
    return {
        "commit": commit(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "usable_cores": len(os.sched_getaffinity(0)),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def commit() -> str:
    """The git commit of the working tree, with `+dirty` if it has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            # The results a run is writing do not make the code dirty.
            [
                "git",
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                ":!benchmarks/results",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return (head or "unknown") + ("+dirty" if dirty else "")


def median_time(fn, repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), times


def write_json(path: Path, payload: dict) -> None:
    from bayesnmr._io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2))


def run_worker(script: Path, args: list[str], timeout: float) -> dict | None:
    """Run one measurement in a fresh process (so peak memory is its own)."""
    try:
        out = subprocess.run(
            [sys.executable, str(script), "--worker", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        return {"error": (out.stderr or out.stdout).strip().splitlines()[-1:] or ["failed"]}
    return json.loads(lines[-1])


def outcome(max_error_hz: float, loss: float, loss_at_truth: float) -> str:
    """A fit's outcome: `truth` (every parameter within 0.5 Hz of it), `identifiability`
    (another solution whose misfit is no worse than the truth's: the data cannot tell
    them apart), or `search failure` (the misfit at the truth is lower than the one
    found)."""
    if max_error_hz < 0.5:
        return "truth"
    return "identifiability" if loss <= loss_at_truth + 1e-9 else "search failure"
