r"""Spectral sums over the eigenstates of $F_z$ sectors, with exact derivatives.

Every observable of bayesnmr has the form

$$O(t) = \mathrm{Tr}\left[e^{iH_p t} X e^{-iH_q t} X^\top\right]
       = \sum_{i,a} |A_{ia}|^2 e^{i(\lambda_i - \mu_a) t},\qquad A = V_p^\top X V_q,$$

where $H_p = V_p \Lambda V_p^\top$ and $H_q = V_q M V_q^\top$ are two sector blocks of the
Hamiltonian (the same block for `iz1`) and $X$ a fixed operator block.

Differentiating through `eigh` gives NaN where eigenvalues coincide (at $J = 0$ or equal
offsets), although $O$ is a smooth function of the Hamiltonian. The JVP below is the
Daleckii–Krein formula instead: the derivative of $e^{iHt}$ in the eigenbasis has
entries $(e^{i\lambda_i t} - e^{i\lambda_j t})/(\lambda_i - \lambda_j)$, replaced by its
limit $it\,e^{i\lambda_i t}$ where $|\lambda_i - \lambda_j|\,t_{\max}$ is below a
threshold. It is linear in the tangent and built from ordinary JAX operations, so
reverse mode, `vmap` and `jit` all work through it.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float


def _eigh_centred(h: Float[Array, "d d"]) -> tuple[Array, Array]:
    """`eigh` of a block after removing its mean diagonal (exactly), for accuracy."""
    shift = jnp.trace(h) / h.shape[0]
    lam, vec = jnp.linalg.eigh(h - shift * jnp.eye(h.shape[0], dtype=h.dtype))
    return lam + shift, vec


def phase_sum(
    w: Float[Array, "... p q"],
    lam_p: Float[Array, " p"],
    lam_q: Float[Array, " q"],
    times: np.ndarray,
) -> tuple[Array, Array]:
    r"""$\sum_{i,a} W_{ia} e^{i(\lambda_i - \mu_a)t}$ at every time, as (real, imaginary).

    Two real matrix products of size `(p, q) x (q, T)`: the dominant cost of a solve.
    """
    t = jnp.asarray(times, dtype=lam_p.dtype)
    cq, sq = jnp.cos(lam_q[:, None] * t[None, :]), jnp.sin(lam_q[:, None] * t[None, :])
    cp, sp = jnp.cos(lam_p[:, None] * t[None, :]), jnp.sin(lam_p[:, None] * t[None, :])
    wc, ws = w @ cq, w @ sq
    lead = (1,) * (wc.ndim - 2)
    cp, sp = cp.reshape(lead + cp.shape), sp.reshape(lead + sp.shape)
    re = jnp.sum(cp * wc + sp * ws, axis=-2)
    im = jnp.sum(sp * wc - cp * ws, axis=-2)
    return re, im


def _split(delta: Array, m: Array, tmax: float) -> tuple[Array, Array]:
    """Divided-difference part $M/\\Delta$ and degenerate part of a tangent matrix."""
    tol = 10.0 * float(np.sqrt(np.finfo(np.dtype(delta.dtype)).eps))
    degenerate = jnp.abs(delta) * tmax < tol
    safe = jnp.where(degenerate, 1.0, delta)
    return jnp.where(degenerate, 0.0, m / safe), jnp.where(degenerate, m, 0.0)


def make_transition_signal(
    apply_x: Callable[[Array], Array], times: np.ndarray, same_block: bool
) -> Callable[..., tuple[Array, Array]]:
    """Build $O(t)$ for one pair of sector blocks, with its Daleckii–Krein JVP.

    **Arguments:**

    - `apply_x`: $V \\mapsto X V$, the fixed operator block applied to the columns of
      the eigenvectors of block $q$.
    - `times`: the output times in seconds (a NumPy constant).
    - `same_block`: `True` when $H_p = H_q$ (then the function takes one block).

    **Returns:** a function of the block(s) returning `(Re O(t), Im O(t))`.
    """
    t = np.asarray(times, dtype=np.float64)
    tmax = float(t[-1]) if t.size else 0.0

    def decompose(hp, hq):
        lam_p, vp = _eigh_centred(hp)
        lam_q, vq = (lam_p, vp) if same_block else _eigh_centred(hq)
        a = vp.T @ apply_x(vq)
        return lam_p, vp, lam_q, vq, a

    def signal(hp, hq):
        lam_p, _, lam_q, _, a = decompose(hp, hq)
        return phase_sum(a * a, lam_p, lam_q, t)

    def signal_jvp(primals, tangents):
        hp, hq = primals
        dhp, dhq = tangents
        lam_p, vp, lam_q, vq, a = decompose(hp, hq)
        mp_div, mp_deg = _split(lam_p[:, None] - lam_p[None, :], vp.T @ dhp @ vp, tmax)
        mq_div, mq_deg = _split(lam_q[:, None] - lam_q[None, :], vq.T @ dhq @ vq, tmax)
        w1 = a * (2.0 * (mp_div @ a) - 2.0 * (a @ mq_div))
        w2 = a * (mp_deg @ a - a @ mq_deg)
        # The primal must not depend on the tangents, or reverse mode cannot linearise.
        primal = phase_sum(a * a, lam_p, lam_q, t)
        re, im = phase_sum(jnp.stack([w1, w2]), lam_p, lam_q, t)
        tt = jnp.asarray(t, dtype=re.dtype)
        # dO = S(w1) + i t S(w2)
        return primal, (re[0] - tt * im[1], im[0] + tt * re[1])

    core = jax.custom_jvp(signal)
    core.defjvp(signal_jvp)
    if same_block:
        return lambda h: core(h, h)
    return core
