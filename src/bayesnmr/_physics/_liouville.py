r"""The Liouville–von Neumann integrator on Diffrax, with optional Lindblad relaxation."""

from typing import ClassVar

import diffrax
import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._checks import check_finite, check_positive
from ._grid import TimeGrid
from ._operators import hamiltonian_terms, spin_operators
from ._solver import AbstractSolver
from ._system import System
from ._traces import Traces


class LindbladRelaxation(eqx.Module):
    r"""Per-spin Lindblad relaxation for the Liouville–von Neumann equation.

    $$\mathcal{L}(\rho) = \sum_i \sum_{L \in \{a_i I_{i+},\, a_i I_{i-},\, c_i I_{iz}\}}
    \left(L\rho L^\dagger - \tfrac12\{L^\dagger L, \rho\}\right),\quad
    a_i^2 = \frac{1}{2T_{1,i}},\ c_i^2 = \frac{2}{T_{2,i}} - \frac{1}{T_{1,i}}.$$

    Alone, spin $i$ then has $\langle I_{iz}\rangle \propto e^{-t/T_1}$ and
    $\langle I_{i+}\rangle \propto e^{-t/T_2}$. The equal up and down rates relax the
    *deviation* from equilibrium to zero (the high-temperature limit): the simulated
    $\rho$ is that deviation. Physical rates need $T_2 \le 2T_1$.

    **Arguments:**

    - `t1_s`: longitudinal relaxation time(s) in seconds, a scalar or one per spin;
      `None` for no $T_1$ process.
    - `t2_s`: transverse relaxation time(s) in seconds, a scalar or one per spin;
      `None` for $T_2 = 2T_1$ (relaxation by $T_1$ alone).
    """

    t1_s: float | np.ndarray | None = None
    t2_s: float | np.ndarray | None = None

    def __check_init__(self):
        if self.t1_s is None and self.t2_s is None:
            raise ValueError(
                "LindbladRelaxation needs at least one of `t1_s` and `t2_s`; for no "
                "relaxation pass `relaxation=None` to DiffraxSolver."
            )
        for name in ("t1_s", "t2_s"):
            value = getattr(self, name)
            if value is not None:
                check_finite(name, value)
                check_positive(name, value)

    def rates(self, n_spins: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-spin squared amplitudes `(a^2, c^2)` of the jump operators."""
        inv_t1 = np.zeros(n_spins) if self.t1_s is None else 1.0 / self._per_spin("t1_s", n_spins)
        if self.t2_s is None:
            c2 = np.zeros(n_spins)
        else:
            c2 = 2.0 / self._per_spin("t2_s", n_spins) - inv_t1
            if np.any(c2 < -1e-12):
                raise ValueError(
                    "LindbladRelaxation: `t2_s` must not exceed 2 * `t1_s` for every spin "
                    f"(a physical relaxation), but t1_s={self.t1_s!r}, t2_s={self.t2_s!r}."
                )
        return inv_t1 / 2.0, np.maximum(c2, 0.0)

    def _per_spin(self, name: str, n_spins: int) -> np.ndarray:
        value = np.asarray(getattr(self, name), dtype=np.float64)
        if value.ndim == 0:
            return np.full(n_spins, float(value))
        if value.shape != (n_spins,):
            raise ValueError(
                f"Argument `{name}` of LindbladRelaxation must be a scalar or have one "
                f"entry per spin, shape ({n_spins},), but has shape {value.shape}."
            )
        return value


class DiffraxSolver(AbstractSolver):
    r"""Integrates the Liouville–von Neumann equation with Diffrax.

    $$\frac{d\rho}{dt} = -i[H, \rho] + \mathcal{L}(\rho)$$

    is solved for the density matrix in the full $2^N$-dimensional space, from
    $\rho(0) = F_x$ (for the FID) and from $\rho(0) = I_{1z}$ (for `iz1`), as real and
    imaginary parts. This is the independent ground truth for the exact solver, and
    the only solver with physical (Lindblad) relaxation.

    **Cost.** Each right-hand side evaluation is a few dense $2^N \times 2^N$ matrix
    products, so a step costs $O(8^N)$ and the state needs $O(4^N)$ memory. It is
    practical to about $N = 8$; `max_memory_gib` refuses larger systems up front.

    **Arguments:**

    - `solver`: a Diffrax solver (default `diffrax.Dopri8()`).
    - `rtol`, `atol`: tolerances of the adaptive step-size controller (default 1e-10).
    - `max_steps`: the most steps before the solve fails (default 100 000).
    - `relaxation`: an optional `LindbladRelaxation`.
    - `max_memory_gib`: refuse systems whose estimated working memory exceeds this.
    """

    solver: diffrax.AbstractSolver = diffrax.Dopri8()
    rtol: float = eqx.field(static=True, default=1e-10)
    atol: float = eqx.field(static=True, default=1e-10)
    max_steps: int = eqx.field(static=True, default=100_000)
    relaxation: LindbladRelaxation | None = None
    max_memory_gib: float = eqx.field(static=True, default=4.0)
    check_values: ClassVar[bool] = False

    def __check_init__(self):
        if not isinstance(self.solver, diffrax.AbstractSolver):
            raise ValueError(
                f"Argument `solver` must be a Diffrax solver such as `diffrax.Dopri8()`, "
                f"but is {self.solver!r}."
            )
        check_positive("rtol", self.rtol)
        check_positive("atol", self.atol)
        if not isinstance(self.max_steps, int) or self.max_steps < 1:
            raise ValueError(
                f"Argument `max_steps` must be a positive int, got {self.max_steps!r}."
            )
        if self.relaxation is not None and not isinstance(self.relaxation, LindbladRelaxation):
            raise ValueError(
                "Argument `relaxation` must be a `bn.LindbladRelaxation` or None, but is "
                f"{self.relaxation!r}."
            )

    @staticmethod
    def memory_bytes(n_spins: int) -> float:
        """Estimated working memory: four real $2^N$ matrices times ~20 solver stages."""
        return 20 * 4 * 8.0 * 4.0**n_spins

    def check(self, chain: System, grid: TimeGrid) -> None:
        if self.relaxation is not None and chain.t2_s is not None:
            raise ValueError(
                "Both the chain (`t2_s`) and the solver (`relaxation`) carry a T2: the "
                "decays would multiply. Give the relaxation in one place: "
                "`LindbladRelaxation(t2_s=...)` on the solver, or `SpinChain(..., t2_s=...)` "
                "(a phenomenological decay) with `relaxation=None`."
            )
        n = chain.n_spins
        need = self.memory_bytes(n)
        if need > self.max_memory_gib * 2**30:
            raise ValueError(
                f"DiffraxSolver: a chain of {n} spins needs about {need / 2**30:.1f} GiB "
                f"(dense {2**n}x{2**n} density matrices), over `max_memory_gib="
                f"{self.max_memory_gib}`. Use `bn.ExactSolver()` for chains this long."
            )
        if self.relaxation is not None:
            self.relaxation.rates(n)

    def observables(self, chain: System, grid: TimeGrid) -> Traces:
        n = chain.n_spins
        dtype = chain.offsets_hz.dtype
        z_ops, b_ops = hamiltonian_terms(n, chain.pairs)
        iz, ip = spin_operators(n)
        h = 2 * jnp.pi * jnp.einsum("i,ijk->jk", chain.offsets_hz, jnp.asarray(z_ops, dtype))
        if chain.pairs:
            h = h + 2 * jnp.pi * jnp.einsum("b,bjk->jk", chain.pair_j_hz, jnp.asarray(b_ops, dtype))
        jumps = self._jump_operators(n, dtype)

        def dissipator(x):
            out = jnp.zeros_like(x)
            for op in jumps:
                out = out + op @ x @ op.T - 0.5 * (op.T @ op @ x + x @ op.T @ op)
            return out

        def rhs(t, y, args):
            re, im = y  # each (2, d, d): the evolutions from F_x and from I_1z
            d_re = h @ im - im @ h + dissipator(re)
            d_im = re @ h - h @ re + dissipator(im)
            return d_re, d_im

        fx = 0.5 * (ip.sum(0) + np.transpose(ip, (0, 2, 1)).sum(0))
        y0_re = jnp.asarray(np.stack([fx, iz[chain.iz_index]]), dtype)
        y0 = (y0_re, jnp.zeros_like(y0_re))
        fplus = jnp.asarray(ip.sum(0), dtype)
        iz1 = jnp.asarray(iz[chain.iz_index], dtype)
        norm_fx = n * 2.0**n / 4.0
        norm_iz = 2.0**n / 4.0

        def observe(t, y, args):
            re, im = y
            return (
                jnp.sum(re[0] * fplus.T) / norm_fx,
                jnp.sum(im[0] * fplus.T) / norm_fx,
                jnp.sum(re[1] * iz1) / norm_iz,
            )

        ts = jnp.asarray(grid.times, dtype)
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(rhs),
            self.solver,
            t0=0.0,
            t1=ts[-1],
            dt0=None,
            y0=y0,
            saveat=diffrax.SaveAt(ts=ts, fn=observe),
            stepsize_controller=diffrax.PIDController(rtol=self.rtol, atol=self.atol),
            max_steps=self.max_steps,
        )
        mx, my, izt = sol.ys
        return Traces(mx=mx, my=my, iz1=izt, grid=grid)

    def _jump_operators(self, n: int, dtype) -> list:
        if self.relaxation is None:
            return []
        a2, c2 = self.relaxation.rates(n)
        iz, ip = spin_operators(n)
        ops = []
        for i in range(n):
            if a2[i] > 0:
                ops += [np.sqrt(a2[i]) * ip[i], np.sqrt(a2[i]) * ip[i].T]
            if c2[i] > 0:
                ops.append(np.sqrt(c2[i]) * iz[i])
        return [jnp.asarray(op, dtype) for op in ops]
