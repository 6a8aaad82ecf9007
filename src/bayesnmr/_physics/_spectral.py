r"""Spectral sums over the eigenstates of the $F_z$ sectors, with exact derivatives.

Both observables are sums of terms

$$O(t) = \mathrm{Tr}\left[e^{iH_p t} X e^{-iH_q t} X^\top\right]
       = \sum_{i,a} A_{ia}^2\, e^{i(\lambda_i - \mu_a) t},\qquad A = V_p^\top X V_q,$$

where $H_p = V_p \Lambda V_p^\top$ and $H_q = V_q M V_q^\top$ are sector blocks of the
Hamiltonian and $X$ a fixed operator block: $F_+$ between neighbouring sectors for the
FID, $I_{1z}$ within one sector for `iz1`.

Differentiating through `eigh` gives NaN where eigenvalues coincide (at $J = 0$ or equal
offsets), although $O$ is a smooth function of the Hamiltonian. The JVP here is the
Daleckii–Krein formula instead: the derivative of $e^{iHt}$ in the eigenbasis has
entries $(e^{i\lambda_i t} - e^{i\lambda_j t})/(\lambda_i - \lambda_j)$, replaced by its
limit $it\,e^{i\lambda_i t}$ where $|\lambda_i - \lambda_j|\,t_{\max}$ is below a
threshold. With $\tilde M = M/\Delta$ off the degenerate pairs and $M^{d}$ on them
($M = V^\top dH\, V$),

$$dO(t) = S\big(A \circ (2\tilde M_p A - 2A\tilde M_q)\big)(t)
        + it\, S\big(A \circ (M^d_p A - A M^d_q)\big)(t),$$

with $S(W)(t) = \sum_{ia} W_{ia} e^{i(\lambda_i - \mu_a)t}$. It is linear in the tangent
and made of ordinary JAX operations, so reverse mode, `vmap` and `jit` work through it.
"""

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float


def eigh_centred(h: Float[Array, "d d"]) -> tuple[Array, Array]:
    """`eigh` of a block after removing its mean diagonal (exactly), for accuracy."""
    shift = jnp.trace(h) / h.shape[0]
    lam, vec = jnp.linalg.eigh(h - shift * jnp.eye(h.shape[0], dtype=h.dtype))
    return lam + shift, vec


def phase_table(lam: Float[Array, " d"], times: np.ndarray) -> tuple[Array, Array]:
    r"""$\cos\lambda t$ and $\sin\lambda t$ at every time, each of shape `(d, T)`.

    Computed directly. (A factorised table, $e^{i\lambda(qm + j)\Delta t} =
    e^{i\lambda qm\Delta t}\, e^{i\lambda j\Delta t}$ with $m \approx \sqrt{T}$, needs
    $2\sqrt{T}$ transcendentals per eigenvalue instead of $2T$, but its products and
    reshapes cost more than they save under XLA on a CPU: measured in one run, direct
    against factorised, N = 8 batched 277 against 207 trajectories/s, N = 4 0.45 against
    0.66 ms, N = 10 22.5 against 46.3 ms, N = 12 0.43 against 0.52 s.)
    """
    t = jnp.asarray(times, dtype=lam.dtype)[None, :]
    x = lam[:, None] * t
    return jnp.cos(x), jnp.sin(x)


def phase_sum(
    w: Float[Array, "... p q"],
    table_p: tuple[Array, Array],
    table_q: tuple[Array, Array],
) -> tuple[Array, Array]:
    r"""$S(W)(t) = \sum_{i,a} W_{ia} e^{i(\lambda_i - \mu_a)t}$ at every time, as (re, im).

    Takes the `phase_table`s of both blocks. Two real matrix products of size
    `(p, q) x (q, T)` and a reduction over `p`.
    """
    (cp, sp), (cq, sq) = table_p, table_q
    wc, ws = w @ cq, w @ sq
    lead = (1,) * (wc.ndim - 2)
    cp, sp = cp.reshape(lead + cp.shape), sp.reshape(lead + sp.shape)
    re = jnp.sum(cp * wc + sp * ws, axis=-2)
    im = jnp.sum(sp * wc - cp * ws, axis=-2)
    return re, im


def split_tangent(lam: Array, m: Array, tmax: float) -> tuple[Array, Array]:
    r"""Split $M = V^\top dH\,V$ into $M/\Delta$ (separated pairs) and $M$ (degenerate)."""
    delta = lam[:, None] - lam[None, :]
    tol = 10.0 * float(np.sqrt(np.finfo(np.dtype(lam.dtype)).eps))
    degenerate = jnp.abs(delta) * tmax < tol
    safe = jnp.where(degenerate, 1.0, delta)
    return jnp.where(degenerate, 0.0, m / safe), jnp.where(degenerate, m, 0.0)


# A term of an observable: (p, q, amplitudes A from the eigenvectors of blocks p and q).
Amplitudes = Callable[[Array, Array], Array]


def make_spectral_observable(
    groups: Sequence[Sequence[tuple[int, int, Amplitudes]]], times: np.ndarray
) -> Callable[[Sequence[Array]], list[tuple[Array, Array]]]:
    r"""Build several observables $\sum_{\text{terms}} O_{pq}(t)$ from all sector blocks.

    **Arguments:**

    - `groups`: one list of `(p, q, amplitudes)` terms per observable;
      `amplitudes(V_p, V_q)` returns $A = V_p^\top X V_q$.
    - `times`: the output times in seconds (a NumPy constant).

    **Returns:** a function of the list of blocks returning one `(Re O(t), Im O(t))`
    pair per group. Each block is diagonalised once, however many terms use it.
    """
    t = np.asarray(times, dtype=np.float64)
    tmax = float(t[-1]) if t.size else 0.0
    used = sorted({b for terms in groups for p, q, _ in terms for b in (p, q)})

    def decompose(blocks):
        eig = {b: eigh_centred(blocks[b]) for b in used}
        tables = {b: phase_table(eig[b][0], t) for b in used}
        amps = [[amp(eig[p][1], eig[q][1]) for p, q, amp in terms] for terms in groups]
        return eig, tables, amps

    def total(parts):
        return sum(r for r, _ in parts), sum(i for _, i in parts)

    def primal_sums(eig, tables, amps):
        return [
            total(
                [
                    phase_sum(a * a, tables[p], tables[q])
                    for (p, q, _), a in zip(terms, ga, strict=True)
                ]
            )
            for terms, ga in zip(groups, amps, strict=True)
        ]

    @jax.custom_jvp
    def observable(blocks):
        return primal_sums(*decompose(blocks))

    @observable.defjvp
    def observable_jvp(primals, tangents):
        (blocks,), (dblocks,) = primals, tangents
        eig, tables, amps = decompose(blocks)
        split = {
            b: split_tangent(eig[b][0], eig[b][1].T @ dblocks[b] @ eig[b][1], tmax) for b in used
        }
        # The primal must not depend on the tangents, or reverse mode cannot linearise.
        primal = primal_sums(eig, tables, amps)
        tt = jnp.asarray(t, dtype=eig[used[0]][0].dtype)
        out = []
        for terms, ga in zip(groups, amps, strict=True):
            parts = []
            for (p, q, _), a in zip(terms, ga, strict=True):
                (div_p, deg_p), (div_q, deg_q) = split[p], split[q]
                w1 = a * (2.0 * (div_p @ a) - 2.0 * (a @ div_q))
                w2 = a * (deg_p @ a - a @ deg_q)
                parts.append(phase_sum(jnp.stack([w1, w2]), tables[p], tables[q]))
            re, im = total(parts)
            out.append((re[0] - tt * im[1], im[0] + tt * re[1]))
        return primal, out

    return observable
