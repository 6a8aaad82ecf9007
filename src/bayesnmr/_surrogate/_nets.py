r"""The surrogate networks: $\theta = (\nu_1 \dots \nu_N, J)$ in, `(3, T)` traces out.

- `MLPNet`, the paper's baseline: a dense network with one output per trace sample.
- `EigenNet`, designed for accuracy and long-time stability: the network predicts an
  orthogonal eigenbasis of every $F_z$ sector, and the traces are the exact spectral
  sums in that basis.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._physics._exact import sector_hamiltonian
from .._physics._grid import TimeGrid
from .._physics._sectors import (
    fid_norm,
    iz1_amplitudes,
    iz1_norm,
    raising_amplitudes,
    sectors,
)
from .._physics._spectral import phase_sum, phase_table
from .._physics._system import SpinChain
from ._domain import Domain


class MLPNet(eqx.Module):
    r"""The paper's baseline: a multi-head dense network $\theta \to$ (mx, my, iz1).

    The input is scaled to $[-1, 1]$ on the training box; a shared trunk of `depth`
    hidden layers of `width` units feeds one linear head per observable, each with one
    output per time point. Its cost does not depend on $N$ beyond the input layer.
    """

    trunk: eqx.nn.MLP
    heads: tuple[eqx.nn.Linear, ...]
    domain: Domain = eqx.field(static=True)
    grid: TimeGrid = eqx.field(static=True)

    def __init__(self, domain: Domain, grid: TimeGrid, width: int, depth: int, *, key):
        k1, *hk = jax.random.split(key, 4)
        self.trunk = eqx.nn.MLP(
            domain.n_params, width, width, depth - 1, activation=jax.nn.gelu, key=k1
        )
        self.heads = tuple(eqx.nn.Linear(width, grid.n, key=k) for k in hk)
        self.domain, self.grid = domain, grid

    def __call__(self, theta: Float[Array, " p"]) -> Float[Array, "3 n"]:
        lo = jnp.asarray(self.domain.lower, theta.dtype)
        hi = jnp.asarray(self.domain.upper, theta.dtype)
        x = (2 * (theta - lo) / (hi - lo) - 1).astype(_net_dtype(self.trunk))
        h = jax.nn.gelu(self.trunk(x))
        return jnp.stack([head(h) for head in self.heads]).astype(theta.dtype)


class EigenNet(eqx.Module):
    r"""An eigen-structured surrogate: the network predicts the eigenbasis, physics does
    the rest.

    For every sector $k$ of fixed $F_z$ (dimension $d_k > 1$) the network outputs a
    skew-symmetric $S_k$, and $V_k = (1 - S_k)^{-1}(1 + S_k)$ (the Cayley map) is an
    orthogonal basis by construction. The energies are the Rayleigh quotients
    $E_k = \mathrm{diag}(V_k^\top H_k V_k)$, whose error is second order in the error of
    $V_k$; the line weights are $|V_p^\top X V_q|^2$ as in the exact solver, so the sum
    rules $m_x(0) = 1$, $i_{z1}(0) = 1$ hold exactly; and the traces are sums of
    undamped complex exponentials, so the error cannot grow with time beyond the phase
    drift of the energies. No `eigh` is computed.

    The network sees only the direction of $(\nu - \bar\nu, J)$ and the mixing angles
    $\arctan(J / (\nu_i - \nu_j))$ of every pair of spins: the eigenvectors do not
    change when all offsets shift together or when all parameters scale together, so
    those two symmetries are exact.
    """

    mlp: eqx.nn.MLP
    domain: Domain = eqx.field(static=True)
    grid: TimeGrid = eqx.field(static=True)

    def __init__(self, domain: Domain, grid: TimeGrid, width: int, depth: int, *, key):
        n = domain.n_spins
        n_in = n + 1 + n * (n - 1)
        n_out = sum(d * (d - 1) // 2 for d in _dims(n))
        self.mlp = eqx.nn.MLP(n_in, n_out, width, depth, activation=jax.nn.gelu, key=key)
        self.domain, self.grid = domain, grid

    @property
    def n_spins(self) -> int:
        return self.domain.n_spins

    def features(self, theta: Float[Array, " p"]) -> Array:
        n = self.n_spins
        nu, j = theta[:n], theta[n]
        d = nu - jnp.mean(nu)
        scale = jnp.sqrt(jnp.mean(d**2) + j**2 + 1e-12)
        rows, cols = np.triu_indices(n, 1)
        angle = jnp.arctan2(j + 1e-3, nu[rows] - nu[cols])
        return jnp.concatenate([d / scale, (j / scale)[None], jnp.cos(angle), jnp.sin(angle)])

    def frames(self, theta: Float[Array, " p"]) -> list[Array]:
        """The predicted orthogonal eigenbasis of every sector, in `theta`'s dtype."""
        raw = self.mlp(self.features(theta).astype(_net_dtype(self.mlp))).astype(theta.dtype)
        out, start = [], 0
        for d in _dims(self.n_spins):
            if d == 1:
                out.append(jnp.ones((1, 1), theta.dtype))
                continue
            rows, cols = np.triu_indices(d, 1)
            a = jnp.zeros((d, d), theta.dtype).at[rows, cols].set(raw[start : start + rows.size])
            start += rows.size
            eye = jnp.eye(d, dtype=theta.dtype)
            out.append(jnp.linalg.solve(eye - (a - a.T), eye + (a - a.T)))
        return out

    def blocks(self, theta: Float[Array, " p"]) -> list[Array]:
        chain = SpinChain(theta[: self.n_spins], theta[self.n_spins])
        return [sector_hamiltonian(chain, k) for k in range(self.n_spins + 1)]

    def frame_loss(self, theta: Float[Array, " p"]) -> Float[Array, ""]:
        r"""How far the predicted bases are from diagonalising $H$: the sum of squared
        off-diagonal entries of $V_k^\top H_k V_k$, with $H$ scaled to unit size. Zero
        exactly when every $V_k$ is an eigenbasis; no labels are needed."""
        n = self.n_spins
        nu, j = theta[:n], theta[n]
        d = nu - jnp.mean(nu)
        scale = 2 * jnp.pi * jnp.sqrt(jnp.mean(d**2) + j**2 + 1e-12)
        total = jnp.zeros((), theta.dtype)
        for v, h in zip(self.frames(theta), self.blocks(theta), strict=True):
            if v.shape[0] > 1:
                m = v.T @ (h / scale) @ v
                total = total + jnp.sum(m**2) - jnp.sum(jnp.diag(m) ** 2)
        return total

    def __call__(self, theta: Float[Array, " p"]) -> Float[Array, "3 n"]:
        return traces_in_bases(self.frames(theta), self.blocks(theta), self.grid)


def traces_in_bases(vecs: list, blocks: list, grid: TimeGrid) -> Float[Array, "3 n"]:
    r"""`(mx, my, iz1)` from an orthogonal basis `vecs[k]` of every sector block
    `blocks[k]`: Rayleigh-quotient energies, exact line weights, spectral sums."""
    n = len(blocks) - 1
    lam = [jnp.diag(v.T @ h @ v) for v, h in zip(vecs, blocks, strict=True)]
    tables = [phase_table(x, grid.times) for x in lam]
    fid_re = fid_im = iz1 = jnp.zeros(grid.n, lam[0].dtype)
    for k in range(n):
        a = raising_amplitudes(n, k)(vecs[k], vecs[k + 1])
        re, im = phase_sum(a * a, tables[k], tables[k + 1])
        fid_re, fid_im = fid_re + re, fid_im + im
    for k in range(n + 1):
        b = iz1_amplitudes(sectors(n)[k].z[0])(vecs[k], vecs[k])
        iz1 = iz1 + phase_sum(b * b, tables[k], tables[k])[0]
    return jnp.stack([fid_re / fid_norm(n), fid_im / fid_norm(n), iz1 / iz1_norm(n)])


ARCHITECTURES = {"mlp": MLPNet, "eigen": EigenNet}


def _dims(n: int) -> list[int]:
    return [s.dim for s in sectors(n)]


def _net_dtype(mlp: eqx.nn.MLP):
    return mlp.layers[0].weight.dtype
