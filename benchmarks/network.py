"""Networks of couplings: the exact solver on fully coupled systems against chains, and
the stick spectrum against nmrsim.

Method, per N, in one process, float64, T = 300 points at 1 ms, FID + iz:

- `exact`: one fully coupled system (every pair coupled: offsets U[-100, 100] Hz, J
  U[0.5, 15] Hz, seed N) and one chain of the same N (the same offsets, J 10 Hz), each
  `bn.simulate` warm (jitted), timed interleaved (median of 5 alternating calls), with
  the first call's time (compilation included); `ratio` = network / chain. Target
  (issue 18): a fully coupled 12-spin system in <= 2 s on 2 cores; the chain's speed
  unchanged by the network support.
- `lines`: `bn.line_list` against nmrsim's `qm_spinsystem` (cache=False, sparse=False:
  a plain dense eigensolve per call; nmrsim's own cap is 11 spins) on the same network
  (offsets + 250 Hz: nmrsim wants positive frequencies), median of 3, interleaved (one
  call where nmrsim takes over 10 s), up to N = 10 (nmrsim took 45 s at N = 10).

Writes `network.json` into `--out` (default benchmarks/results).

    uv run python benchmarks/network.py            # N = 4..12 (lines: 4..10)
    uv run python benchmarks/network.py --quick    # N = 3, 4: a smoke test
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, median_time, stamp, write_json  # noqa: E402


def systems(n: int):
    import bayesnmr as bn

    rng = np.random.default_rng([18, n])
    offsets = rng.uniform(-100, 100, n)
    j = np.triu(rng.uniform(0.5, 15.0, (n, n)), 1)
    return bn.SpinSystem(offsets, j + j.T), bn.SpinChain(offsets, 10.0)


def exact_row(n: int, repeats: int) -> dict:
    import bayesnmr as bn

    net, chain = systems(n)
    grid = bn.TimeGrid(300, 1e-3)
    first = {}
    for name, s in (("network", net), ("chain", chain)):
        t0 = time.perf_counter()
        bn.simulate(s, grid).mx.block_until_ready()
        first[name] = time.perf_counter() - t0
    times = {"network": [], "chain": []}
    for _ in range(repeats):
        for name, s in (("network", net), ("chain", chain)):
            times[name].append(
                median_time(lambda s=s: bn.simulate(s, grid).mx.block_until_ready(), 1)[0]
            )
    med = {k: float(np.median(v)) for k, v in times.items()}
    return {
        "method": "exact",
        "n": n,
        "network_seconds": med["network"],
        "chain_seconds": med["chain"],
        "ratio": med["network"] / med["chain"],
        "network_first_call_seconds": first["network"],
        "chain_first_call_seconds": first["chain"],
        "pairs": n * (n - 1) // 2,
    } | stamp()


def lines_row(n: int, repeats: int) -> dict | None:
    import bayesnmr as bn

    try:
        from nmrsim.qm import qm_spinsystem
    except ImportError:
        return None
    net, _ = systems(n)
    offsets = np.asarray(net.offsets_hz) + 250.0
    shifted = bn.SpinSystem(offsets, net.j_hz)
    jm = np.asarray(net.j_hz)
    ours, theirs = [], []
    for _ in range(repeats):
        ours.append(median_time(lambda: bn.line_list(shifted), 1)[0])
        theirs.append(
            median_time(lambda: qm_spinsystem(list(offsets), jm, cache=False, sparse=False), 1)[0]
        )
        if theirs[-1] > 10.0:  # nmrsim at N = 10: 45 s a call; once is enough
            break
    return {
        "method": "lines",
        "n": n,
        "line_list_seconds": float(np.median(ours)),
        "nmrsim_seconds": float(np.median(theirs)),
        "speedup": float(np.median(theirs) / np.median(ours)),
        "lines": int(len(bn.line_list(shifted))),
    } | stamp()


def main(args) -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)
    ns = [3, 4] if args.quick else list(range(4, 13))
    rows = []
    for n in ns:
        rows.append(exact_row(n, 2 if args.quick else 5))
        r = rows[-1]
        print(f"exact N = {n}: network {r['network_seconds']:.4f} s, chain "
              f"{r['chain_seconds']:.4f} s ({r['ratio']:.2f}x)", flush=True)  # fmt: skip
        if n <= 10:  # nmrsim at N = 11 takes many minutes a call
            row = lines_row(n, 2 if args.quick else 3)
            if row is not None:
                rows.append(row)
                ours, theirs = row["line_list_seconds"], row["nmrsim_seconds"]
                print(f"lines N = {n}: ours {ours:.4f} s, nmrsim {theirs:.4f} s "
                      f"({row['speedup']:.1f}x)", flush=True)  # fmt: skip
    out = Path(args.out)
    result = {"method": __doc__, "machine": machine(), "rows": rows}
    write_json(out / "network.json", result)
    print(f"Wrote {out / 'network.json'}")
    return result


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    return p.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
