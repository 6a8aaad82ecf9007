"""Wall time per trajectory against chain length N (the paper's Figure 1), measured.

Methods, each on the same random chains (offsets U[-100, 100] Hz, J U[0, 20] Hz),
T = 300 points at dt = 1 ms, FID and iz1, float64:

- dense: what a user would write first. The full 2^N Hamiltonian in NumPy, one
  `numpy.linalg.eigh`, and the spectral sums for both observables in the full space;
  N <= 12 (its memory passed 15 GiB at N = 13). Its largest deviation from the exact
  solver is recorded.
- qutip: `qutip.mesolve` from both initial states, at tolerances that agree with the
  exact solver to about 1e-6 (the observed error is recorded).
- diffrax: bayesnmr's Liouville-von Neumann integrator (small N).
- numpy_sectors (recorded in the exact rows, below): the reference a careful user
  would write in plain NumPy (`NumpySectors`, in this file): the sector blocks of
  fixed F_z, `numpy.linalg.eigh` per block, the amplitudes as BLAS products, cos/sin
  tables by angle addition (sqrt(T) x sqrt(T) factorisation), both observables as
  matrix products with the tables. Index tables are built once per N, outside the
  timing, as the exact solver caches its own.
- exact: bayesnmr's sector-eigh solver as `bn.simulate` runs it: jitted (warm time,
  compile time apart) below `stream_from` = 14 spins, from there sector by sector in
  NumPy/SciPy with bounded memory (nothing to compile; "path" in the JSON says which).
  Up to N = 14 the same process also times `numpy_sectors` on the same parameters,
  interleaved with the exact solver's repeats (`ratio_to_numpy_sectors`: exact's time
  over the reference's, both medians from that process: the ratio the noise of a busy
  machine affects least), and the `numpy.linalg.eigh` of every block alone
  (`eigh_seconds`, `ratio_to_eigh`: the floor that `eigh` sets).
  Below `stream_from` the same loop also times one gradient of a least-squares misfit
  in all N + 1 parameters (`jax.grad`, jitted, warm: `gradient_seconds`, and
  `gradient_ratio`, its time over the forward solve's).
- exact_openblas (N = 8-13): the same jitted solver with SciPy's OpenBLAS left at its
  own threads (`BAYESNMR_LAPACK_THREADS` = cores, the behaviour before 2026-11-30),
  where bayesnmr's default gives it half the cores per call (one on 2 cores) and lets
  XLA run the blocks' `eigh` side by side: the ratio of the two rows is what that
  choice is worth.
- exact_f32: the same with `time_dtype="float32"` (phase tables and sums over times in
  float32), N >= 8, and its largest deviation from the float64 solver.
- exact_batch (N = 8): 256 chains at once, `bn.simulate_batch` (lax.map over chunks of
  16, each a vmap) against one plain `jax.vmap` over all 256 and against
  `simulate_batch` with float32 time evaluation, interleaved repeats.
- typicality: the stochastic solver, one cold call.
- surrogate_eigen / surrogate_mlp: one warm jitted call of each surrogate architecture
  sized for N (eigen: width 256, depth 3; the MLP baseline: 3 x 512), timing only, with
  initial weights; trained models and their accuracy: `surrogate.py`. The eigen head
  stops at N = 10: at N = 12 its output layer would hold 3.5e8 weights.

Each (method, N) runs in its own process, so its peak memory (max RSS) is its own; a
bare JAX process is measured too, as the baseline. Times are medians of repeats (warm
for jitted methods). A method stops at the first N whose run exceeds `--limit` seconds.

Writes `scaling.json` and `scaling.png` into `--out`. A re-run keeps from the last file
the runs it did not plan (other methods, N beyond its limits), each row with the commit
and date it was measured at.

    uv run python benchmarks/scaling.py            # the full run (~30 min on 2 cores)
    uv run python benchmarks/scaling.py --max-n 16 --exact-limit 1500   # + N = 15, 16
    uv run python benchmarks/scaling.py --quick    # N <= 4, one repeat: a smoke test
"""

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, median_time, run_worker, stamp, write_json  # noqa: E402

GRID_N, GRID_DT = 300, 1e-3


def chain_params(n: int, seed: int = 0) -> tuple[np.ndarray, float]:
    rng = np.random.default_rng(seed + n)
    return rng.uniform(-100, 100, n), float(rng.uniform(0, 20))


def dense_solve(offsets, j, times):
    """Full-space eigh and spectral sums in NumPy: the first thing a user writes."""
    from bayesnmr._physics._operators import hamiltonian_terms, spin_operators

    n = len(offsets)
    z, b = hamiltonian_terms(n)
    iz, ip = spin_operators(n)
    h = 2 * np.pi * (np.tensordot(offsets, z, 1) + j * b.sum(0))
    lam, v = np.linalg.eigh(h)
    fplus = v.T @ ip.sum(0) @ v
    izv = v.T @ iz[0] @ v
    phase = np.exp(1j * np.outer(lam, times))
    fid = np.einsum("it,ij,jt->t", phase, fplus**2, phase.conj()) / (n * 2.0 ** (n - 1))
    iz1 = np.einsum("it,ij,jt->t", phase, izv**2, phase.conj()).real * 4 / 2**n
    return fid, iz1


class NumpySectors:
    """The exact traces in plain NumPy, sector block by sector block: the reference.

    A basis state is an integer whose bit i is 1 when spin i points down; sector k holds
    the states with k spins down. The index tables depend on N only and are built here,
    once; a call builds the blocks, diagonalises them and forms the spectral sums."""

    def __init__(self, n: int, times: np.ndarray):
        from math import isqrt

        self.n = n
        states = [np.array([s for s in range(2**n) if s.bit_count() == k]) for k in range(n + 1)]
        self.z = [0.5 - ((s[None, :] >> np.arange(n)[:, None]) & 1) for s in states]
        index = [{int(x): m for m, x in enumerate(s)} for s in states]
        self.flips = []  # per sector: rows and cols of the flip-flop entries
        for s, idx in zip(states, index, strict=True):
            rows, cols = [], []
            for m, x in enumerate(s):
                for b in range(n - 1):
                    if ((x >> b) ^ (x >> (b + 1))) & 1:
                        rows.append(m)
                        cols.append(idx[int(x) ^ (3 << b)])
            self.flips.append((np.array(rows, int), np.array(cols, int)))
        # F_+ from sector k + 1 onto sector k: row m lists the states of sector k + 1
        # that it maps onto state x_m of sector k, x_m | (1 << i) for each spin i up in x_m.
        self.raise_table = [
            np.array(
                [[index[k + 1][int(x) | (1 << i)] for i in range(n) if not (x >> i) & 1]
                 for x in states[k]]
            ).reshape(len(states[k]), n - k)
            for k in range(n)
        ]  # fmt: skip
        self.up = [np.flatnonzero(z[0] > 0) for z in self.z]
        t = np.asarray(times, np.float64)
        self.n_times, self.dt = t.size, float(t[1] - t[0])
        self.m = isqrt(t.size - 1) + 1
        self.q = -(-t.size // self.m)

    def tables(self, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """cos and sin of lam t by angle addition: t = (q m + j) dt."""
        fine = np.outer(lam, np.arange(self.m) * self.dt)
        coarse = np.outer(lam, np.arange(self.q) * self.m * self.dt)
        cf, sf = np.cos(fine)[:, None, :], np.sin(fine)[:, None, :]
        cc, sc = np.cos(coarse)[:, :, None], np.sin(coarse)[:, :, None]
        shape = (lam.size, self.q * self.m)
        cos = (cc * cf - sc * sf).reshape(shape)[:, : self.n_times]
        sin = (sc * cf + cc * sf).reshape(shape)[:, : self.n_times]
        return cos, sin

    def blocks(self, offsets: np.ndarray, j: float) -> list[np.ndarray]:
        out = []
        for z, (rows, cols) in zip(self.z, self.flips, strict=True):
            h = np.diag(2 * np.pi * (offsets @ z + j * (z[:-1] * z[1:]).sum(0)))
            h[rows, cols] += np.pi * j
            out.append(h)
        return out

    def __call__(self, offsets, j) -> tuple[np.ndarray, np.ndarray]:
        n = self.n
        eig = [np.linalg.eigh(h) for h in self.blocks(np.asarray(offsets, np.float64), j)]
        tab = [self.tables(lam) for lam, _ in eig]
        fid = np.zeros(self.n_times, complex)
        iz1 = np.zeros(self.n_times)
        for k in range(n + 1):
            (c, s), v = tab[k], eig[k][1]
            v_up = v[self.up[k]]
            b = v_up.T @ v_up - 0.5 * np.eye(v.shape[1])
            w = b * b
            iz1 += (c * (w @ c)).sum(0) + (s * (w @ s)).sum(0)
            if k < n:
                (cq, sq), vq = tab[k + 1], eig[k + 1][1]
                fv = vq[self.raise_table[k]].sum(1)
                a = v.T @ fv
                w = a * a
                wc, ws = w @ cq, w @ sq
                fid += (c * wc + s * ws).sum(0) + 1j * (s * wc - c * ws).sum(0)
        return fid / (n * 2.0 ** (n - 1)), iz1 / (2.0**n / 4)


def qutip_solve(offsets, j, times):
    import qutip

    n = len(offsets)
    one = {"x": qutip.sigmax() / 2, "y": qutip.sigmay() / 2, "z": qutip.sigmaz() / 2}
    ops = {
        a: [qutip.tensor([one[a] if k == i else qutip.qeye(2) for k in range(n)]) for i in range(n)]
        for a in "xyz"
    }
    h = sum(2 * np.pi * offsets[i] * ops["z"][i] for i in range(n))
    for bnd in range(n - 1):
        h += 2 * np.pi * j * sum(ops[a][bnd] * ops[a][bnd + 1] for a in "xyz")
    fx, fy = sum(ops["x"]), sum(ops["y"])
    opts = {"atol": 1e-11, "rtol": 1e-9, "nsteps": 10**6}
    rx = qutip.mesolve(h, fx, times, e_ops=[fx, fy], options=opts)
    rz = qutip.mesolve(h, ops["z"][0], times, e_ops=[ops["z"][0]], options=opts)
    norm = n * 2.0**n / 4
    fid = (np.asarray(rx.expect[0]) + 1j * np.asarray(rx.expect[1])) / norm
    return fid, np.real(rz.expect[0]) / (2.0**n / 4)


def worker(method: str, n: int, repeats: int) -> dict:
    if method == "exact_openblas":
        # SciPy's OpenBLAS keeps its own threads (applied at the next exact trace).
        os.environ["BAYESNMR_LAPACK_THREADS"] = str(os.cpu_count() or 1)
    import equinox as eqx
    import jax

    jax.config.update("jax_enable_x64", True)
    import bayesnmr as bn

    offsets, j = chain_params(n)
    grid = bn.TimeGrid(GRID_N, GRID_DT)
    result = {"method": method, "n": n}
    if method == "baseline":
        jax.numpy.ones(3).block_until_ready()
        result["seconds"] = 0.0
    elif method == "dense":
        result["seconds"], result["times"] = median_time(
            lambda: dense_solve(offsets, j, grid.times), repeats
        )
        # The fast paths against the plain full-space solution, wherever it runs.
        fid, iz1 = dense_solve(offsets, j, grid.times)
        ref = bn.simulate(bn.SpinChain(offsets, j), grid)
        result["max_error_vs_exact"] = float(
            max(np.abs(fid - np.asarray(ref.fid)).max(), np.abs(iz1 - np.asarray(ref.iz1)).max())
        )
    elif method == "qutip":
        result["seconds"], result["times"] = median_time(
            lambda: qutip_solve(offsets, j, grid.times), repeats
        )
        fid, iz1 = qutip_solve(offsets, j, grid.times)
        ref = bn.simulate(bn.SpinChain(offsets, j), grid)
        result["max_error_vs_exact"] = float(
            max(np.abs(fid - np.asarray(ref.fid)).max(), np.abs(iz1 - np.asarray(ref.iz1)).max())
        )
    elif method in ("exact", "exact_openblas", "exact_f32", "diffrax"):
        solver = {
            "exact": bn.ExactSolver(),
            "exact_openblas": bn.ExactSolver(),
            "exact_f32": bn.ExactSolver(time_dtype="float32"),
            "diffrax": bn.DiffraxSolver(),
        }[method]
        streamed = method != "diffrax" and n >= solver.stream_from
        result["path"] = "streamed" if streamed else "jit"

        def call(o, jj):
            return bn.simulate(bn.SpinChain(o, jj), grid, solver=solver).as_array()

        # What `bn.simulate` does with concrete values: the jitted solver, or from
        # `stream_from` spins on the sector-by-sector path (which cannot be jitted).
        sim = call if streamed else jax.jit(call)
        t0 = time.perf_counter()
        sim(offsets, j).block_until_ready()
        first = time.perf_counter() - t0
        if streamed and first > 60:
            # Nothing compiles on this path, so the first call is a warm one; a long one
            # (N >= 15) is not repeated.
            result["seconds"], result["times"], result["compile_seconds"] = first, [first], 0.0
        else:
            # Warm runs on other parameters of the same shape (no caching of results).
            rng = np.random.default_rng(n)
            params = [
                (rng.uniform(-100, 100, n), float(rng.uniform(0, 20))) for _ in range(repeats)
            ]
            if method in ("exact", "exact_openblas") and n <= 14:
                # The NumPy reference and the blocks' eigh alone, interleaved with the
                # exact solver's repeats on the same parameters.
                ref = NumpySectors(n, grid.times)
                fid, iz1 = ref(offsets, j)
                exact = np.asarray(sim(offsets, j))
                result["numpy_sectors_max_error"] = float(
                    max(np.abs(fid.real - exact[0]).max(), np.abs(fid.imag - exact[1]).max(),
                        np.abs(iz1 - exact[2]).max())
                )  # fmt: skip
                times = {"exact": [], "numpy_sectors": [], "eigh": []}
                if not streamed:
                    # One gradient of a least-squares misfit in all N + 1 parameters.
                    data = jax.numpy.asarray(exact)
                    misfit = lambda o, jj: ((call(o, jj) - data) ** 2).sum()  # noqa: E731
                    grad = jax.jit(jax.grad(misfit, (0, 1)))
                    jax.block_until_ready(grad(offsets, j))
                    times["gradient"] = []

                def clock(fn, *args):
                    t0 = time.perf_counter()
                    jax.block_until_ready(fn(*args))
                    return time.perf_counter() - t0

                for o, jj in params:
                    times["exact"].append(clock(sim, o, jj))
                    times["numpy_sectors"].append(clock(ref, o, jj))
                    blocks = ref.blocks(o, jj)
                    times["eigh"].append(clock(lambda b: [np.linalg.eigh(h) for h in b], blocks))
                    if "gradient" in times:
                        times["gradient"].append(clock(grad, o, jj))
                med = {k: float(np.median(v)) for k, v in times.items()}
                result["seconds"], result["times"] = med["exact"], times["exact"]
                result["numpy_sectors_seconds"] = med["numpy_sectors"]
                result["eigh_seconds"] = med["eigh"]
                result["ratio_to_numpy_sectors"] = med["exact"] / med["numpy_sectors"]
                result["ratio_to_eigh"] = med["exact"] / med["eigh"]
                result["numpy_sectors_eigh_share"] = med["eigh"] / med["numpy_sectors"]
                if "gradient" in med:
                    result["gradient_seconds"] = med["gradient"]
                    result["gradient_ratio"] = med["gradient"] / med["exact"]
            else:
                it = iter(params)
                result["seconds"], result["times"] = median_time(
                    lambda: sim(*next(it)).block_until_ready(), repeats
                )
            result["compile_seconds"] = 0.0 if streamed else max(first - result["seconds"], 0.0)
        if method == "exact_f32":
            ref = bn.simulate(bn.SpinChain(offsets, j), grid).as_array()
            result["max_error_vs_exact"] = float(np.abs(sim(offsets, j) - ref).max())
    elif method == "typicality":
        solver = bn.TypicalitySolver(seed=1)
        chain = bn.SpinChain(offsets, j)
        t0 = time.perf_counter()
        tr = bn.simulate(chain, grid, solver=solver)
        tr.mx.block_until_ready()
        result["seconds"] = time.perf_counter() - t0  # one cold call, compilation included
        result["n_vectors"] = solver.vectors_for(n)
        result["max_stderr"] = {
            k: float(np.max(getattr(tr, k + "_err"))) for k in ("mx", "my", "iz1")
        }
        if n <= 14:
            ref = bn.simulate(chain, grid)
            result["max_error_vs_exact"] = {
                "fid": float(np.abs(np.asarray(tr.fid - ref.fid)).max()),
                "iz1": float(np.abs(np.asarray(tr.iz1 - ref.iz1)).max()),
            }
    elif method in ("surrogate_eigen", "surrogate_mlp"):
        # Timing only: the architecture sized for N, with its initial weights (the cost of
        # a call does not depend on the values of the weights). The trained sizes and their
        # accuracy are in benchmarks/results/surrogate.json.
        from bayesnmr._surrogate._files import build_net

        arch = method.removeprefix("surrogate_")
        width, depth = (256, 3) if arch == "eigen" else (512, 3)
        net = build_net(arch, bn.Domain(n), grid, width, depth, jax.random.key(0))
        sur = bn.Surrogate(net)
        sim = jax.jit(lambda o, jj: bn.simulate(bn.SpinChain(o, jj), grid, solver=sur).as_array())
        t0 = time.perf_counter()
        sim(offsets, j).block_until_ready()
        first = time.perf_counter() - t0
        rng = np.random.default_rng(n)
        reps = max(repeats, 20)
        params = [(rng.uniform(-100, 100, n), float(rng.uniform(0, 20))) for _ in range(reps)]
        it = iter(params)
        result["seconds"], result["times"] = median_time(
            lambda: sim(*next(it)).block_until_ready(), reps
        )
        result["compile_seconds"] = max(first - result["seconds"], 0.0)
        result["parameters"] = int(
            sum(x.size for x in jax.tree.leaves(eqx.filter(net, eqx.is_array)))
        )
    elif method == "exact_batch":
        # The same 256 chains two ways, interleaved: `bn.simulate_batch` (lax.map over
        # chunks of 16, each a vmap; the default on a CPU) and one plain jax.vmap.
        batch = 256
        rng = np.random.default_rng(1)
        o, jj = rng.uniform(-100, 100, (batch, n)), rng.uniform(0, 20, batch)
        plain = jax.jit(jax.vmap(lambda o, jj: bn.simulate(bn.SpinChain(o, jj), grid).as_array()))
        f32 = bn.ExactSolver(time_dtype="float32")
        ways = {
            "simulate_batch": lambda: bn.simulate_batch(o, jj, grid).mx.block_until_ready(),
            "vmap": lambda: plain(o, jj).block_until_ready(),
            "float32": lambda: bn.simulate_batch(o, jj, grid, f32).mx.block_until_ready(),
        }
        times = {k: [] for k in ways}
        for fn in ways.values():
            fn()  # compile
        for _ in range(max(repeats, 5)):
            for k, fn in ways.items():
                times[k].append(median_time(fn, 1)[0])
        secs = {k: float(np.median(v)) for k, v in times.items()}
        result["batch"] = batch
        result["seconds"] = secs["simulate_batch"] / batch
        result["trajectories_per_second"] = batch / secs["simulate_batch"]
        result["vmap_trajectories_per_second"] = batch / secs["vmap"]
        result["float32_trajectories_per_second"] = batch / secs["float32"]
        result["float32_max_error"] = float(
            np.abs(
                bn.simulate_batch(o, jj, grid, f32).as_array()
                - bn.simulate_batch(o, jj, grid).as_array()
            ).max()
        )
        result["times"] = times
    else:
        raise ValueError(f"unknown method {method!r}")
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


METHOD_STYLE = {
    "dense": ("dense 2^N eigh (NumPy)", "tab:gray", "s"),
    "qutip": ("QuTiP mesolve", "tab:green", "^"),
    "diffrax": ("bayesnmr DiffraxSolver", "tab:purple", "v"),
    "exact": ("bayesnmr ExactSolver", "tab:blue", "o"),
    "exact_openblas": ("ExactSolver, OpenBLAS's own threads", "tab:olive", "o"),
    "exact_f32": ("ExactSolver, float32 time evaluation", "tab:cyan", "o"),
    "typicality": ("bayesnmr TypicalitySolver", "tab:orange", "D"),
    "surrogate_eigen": ("eigen surrogate (timing)", "tab:red", "*"),
    "surrogate_mlp": ("MLP baseline (timing)", "tab:brown", "P"),
}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bayesnmr._io import save_figure

    fig, (ax, ax_err) = plt.subplots(
        1, 2, figsize=(12, 4.8), constrained_layout=True, width_ratios=[3, 2]
    )
    for method, (label, color, marker) in METHOD_STYLE.items():
        rows = sorted(
            (r for r in results["runs"] if r.get("method") == method and "seconds" in r),
            key=lambda r: r["n"],
        )
        if not rows:
            continue
        ns = [r["n"] for r in rows]
        ax.semilogy(ns, [r["seconds"] for r in rows], marker=marker, color=color, label=label)
    ref = sorted((r for r in results["runs"] if "numpy_sectors_seconds" in r), key=lambda r: r["n"])
    if ref:
        ax.semilogy(
            [r["n"] for r in ref], [r["numpy_sectors_seconds"] for r in ref], ls="--",
            marker="x", color="black", label="NumPy sector blocks (reference)",
        )  # fmt: skip
    # The speedup over the dense baseline at the largest N both reached (12 if it did).
    done = {(r["method"], r["n"]): r["seconds"] for r in results["runs"] if "seconds" in r}
    shared = [n for (m, n) in done if m == "exact" and ("dense", n) in done]
    if shared:
        n_ref = 12 if 12 in shared else max(shared)
        ratio = done[("dense", n_ref)] / done[("exact", n_ref)]
        ax.annotate(
            f"N = {n_ref}: exact {ratio:.0f}x faster than dense",
            xy=(n_ref, done[("exact", n_ref)]),
            xytext=(max(n_ref - 8, 2), done[("exact", n_ref)] * 30),
            arrowprops={"arrowstyle": "->"},
        )
    if ("surrogate_mlp", 12) in done and ("exact", 12) in done:
        ratio = done[("exact", 12)] / done[("surrogate_mlp", 12)]
        ax.annotate(
            f"N = 12: MLP baseline {ratio:.0f}x faster than exact\n(timing only; it is inaccurate)",
            xy=(12, done[("surrogate_mlp", 12)]),
            xytext=(12.6, done[("surrogate_mlp", 12)] * 8),
            arrowprops={"arrowstyle": "->"},
            fontsize=8,
        )
    ax.set(
        xlabel="number of spins N",
        ylabel="wall time per trajectory (s)",
        title=f"FID + iz1, T = {GRID_N} points, float64, {results['machine']['cores']} CPU cores",
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    typ = sorted(
        (r for r in results["runs"] if r.get("method") == "typicality" and "max_stderr" in r),
        key=lambda r: r["n"],
    )
    if typ:
        ns = [r["n"] for r in typ]
        ax_err.semilogy(
            ns,
            [r["max_stderr"]["mx"] for r in typ],
            "D-",
            color="tab:orange",
            label="max reported s.e. (mx)",
        )
        measured = [
            (r["n"], r["max_error_vs_exact"]["fid"]) for r in typ if "max_error_vs_exact" in r
        ]
        if measured:
            ax_err.semilogy(
                *zip(*measured, strict=True), "k.", ms=10, label="max |error| vs exact (FID)"
            )
        ax_err.axhline(0.01, color="gray", ls=":", label="1 %")
        ax_err.set(
            xlabel="number of spins N", ylabel="FID error", title="TypicalitySolver error band"
        )
        ax_err.grid(alpha=0.3, which="both")
        ax_err.legend(fontsize=8)
    else:
        ax_err.set_axis_off()
    save_figure(fig, path)


def main(args) -> dict:
    script = Path(__file__).resolve()
    max_n = 4 if args.quick else args.max_n
    repeats = 1 if args.quick else args.repeats
    plan = {
        # Dense N = 13 had passed 15 GiB after 3 minutes when stopped (2026-11-26).
        "dense": range(2, min(max_n, 12) + 1),
        "qutip": range(2, min(max_n, 2 if args.quick else args.qutip_max_n) + 1),
        "diffrax": range(2, min(max_n, 3 if args.quick else 7) + 1),
        "exact": range(2, max_n + 1),
        # The jitted solver with SciPy's OpenBLAS left at its own threads (the default
        # before 2026-11-30), for the ratio: BAYESNMR_LAPACK_THREADS = cores.
        "exact_openblas": range(2, 5, 2) if args.quick else range(8, min(max_n, 13) + 1),
        "exact_f32": range(2, max_n + 1, 2) if args.quick else range(8, min(max_n, 14) + 1),
    }
    if args.typicality:
        plan["typicality"] = range(8, args.typicality_max_n + 1, 2)
    plan["surrogate_eigen"] = range(2, min(max_n, 10) + 1, 2)
    plan["surrogate_mlp"] = range(2, max(max_n, 12) + 1, 2) if not args.quick else range(2, 5, 2)
    batch = True
    if args.methods:
        wanted = args.methods.split(",")
        plan = {m: ns for m, ns in plan.items() if m in wanted}
        batch = "exact_batch" in wanted

    def measure(method, n, timeout):
        # --quick measures in this process (fast, but peak memory is then shared).
        if args.quick:
            return worker(method, n, repeats)
        return run_worker(script, [method, str(n), str(repeats)], timeout)

    runs = [measure("baseline", 1, args.limit * 4) | stamp()]
    for method, ns in plan.items():
        for n in ns:
            timeout = {
                "typicality": 2 * args.typicality_limit,
                "exact": max(args.exact_limit, args.limit) * (2 + repeats),
            }.get(method, args.limit * (2 + repeats))
            res = measure(method, n, timeout)
            res.setdefault("method", method)
            res.setdefault("n", n)
            res |= stamp()
            runs.append(res)
            print(json.dumps(res), flush=True)
            limit = {"typicality": args.typicality_limit, "exact": args.exact_limit}.get(
                method, args.limit
            )
            if "error" in res or res["seconds"] > limit:
                break
    if batch:
        res = measure("exact_batch", 4 if args.quick else 8, args.limit * 10) | stamp()
        runs.append(res)
        print(json.dumps(res), flush=True)
    out = Path(args.out)
    if not args.quick and (out / "scaling.json").exists():
        # Keep from the last file, each with the commit and date it was measured at, the
        # runs this one did not plan: other methods, or N outside a method's range here
        # (the exact solver at N = 15, 16 takes a quarter of an hour: `--max-n 16`).
        old = json.loads((out / "scaling.json").read_text())
        planned = {(m, n) for m, ns in plan.items() for n in ns} | {("baseline", 1)}
        if batch:
            planned.add(("exact_batch", 8))
        runs = [r for r in old["runs"] if (r.get("method"), r.get("n")) not in planned] + runs
    results = {
        "benchmark": "scaling",
        "method": __doc__,
        "grid": {"n": GRID_N, "dt": GRID_DT},
        "quick": args.quick,
        "machine": machine(),
        "runs": runs,
    }
    write_json(out / "scaling.json", results)
    plot(results, out / "scaling.png")
    print(f"Wrote {out / 'scaling.json'} and {out / 'scaling.png'}")
    return results


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="N <= 6 and one repeat (a smoke test)")
    p.add_argument("--max-n", type=int, default=14)
    p.add_argument("--qutip-max-n", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--limit", type=float, default=60.0, help="stop a method past this many seconds")
    p.add_argument(
        "--exact-limit",
        type=float,
        default=60.0,
        help="stop the exact solver past this many seconds (1500 reaches N = 16)",
    )
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--typicality", action="store_true", help="also time TypicalitySolver")
    p.add_argument("--typicality-max-n", type=int, default=20)
    p.add_argument("--typicality-limit", type=float, default=300.0)
    p.add_argument("--methods", default="", help="comma-separated subset to re-measure")
    p.add_argument("--plot-only", action="store_true", help="redraw the PNG from the JSON in --out")
    p.add_argument("--worker", nargs=3, metavar=("METHOD", "N", "REPEATS"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


if __name__ == "__main__":
    a = parse_args()
    if a.worker:
        print(json.dumps(worker(a.worker[0], int(a.worker[1]), int(a.worker[2]))))
    elif a.plot_only:
        plot(json.loads((Path(a.out) / "scaling.json").read_text()), Path(a.out) / "scaling.png")
    else:
        main(a)
