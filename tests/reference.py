"""An independent dense reference: full 2^N matrices, built from Pauli matrices here,
sharing no code with bayesnmr."""

import numpy as np

SX = np.array([[0, 1], [1, 0]], dtype=complex) / 2
SY = np.array([[0, -1j], [1j, 0]], dtype=complex) / 2
SZ = np.array([[1, 0], [0, -1]], dtype=complex) / 2


def op(single, site, n):
    mats = [single if i == site else np.eye(2) for i in range(n)]
    out = mats[0]
    for m in mats[1:]:
        out = np.kron(out, m)
    return out


def _as_matrix(n, j):
    """A chain's N - 1 bond couplings as the (N, N) coupling matrix; a matrix as it is."""
    j = np.asarray(j, dtype=float)
    if j.ndim == 2:
        return j
    m = np.zeros((n, n))
    for b in range(n - 1):
        m[b, b + 1] = m[b + 1, b] = j[b]
    return m


def qutip_operators(qutip, n):
    """`{"x", "y", "z", "p"}` -> the N single-spin operators I_x, I_y, I_z, I_+ in QuTiP."""
    return {
        name: [qutip.tensor([f() if k == i else qutip.qeye(2) for k in range(n)]) for i in range(n)]
        for name, f in (
            ("x", lambda: qutip.sigmax() / 2),
            ("y", lambda: qutip.sigmay() / 2),
            ("z", lambda: qutip.sigmaz() / 2),
            ("p", qutip.sigmap),
        )
    }


def dense_hamiltonian(offsets, j_bonds):
    """H (rad/s) as a full 2^N matrix: `j_bonds` a chain's N - 1 bond couplings, or an
    (N, N) coupling matrix (every pair i < j)."""
    n = len(offsets)
    jm = _as_matrix(n, j_bonds)
    ix = [op(SX, i, n) for i in range(n)]
    iy = [op(SY, i, n) for i in range(n)]
    iz = [op(SZ, i, n) for i in range(n)]
    h = sum(2 * np.pi * offsets[i] * iz[i] for i in range(n))
    for a in range(n):
        for b in range(a + 1, n):
            h = h + 2 * np.pi * jm[a, b] * (ix[a] @ ix[b] + iy[a] @ iy[b] + iz[a] @ iz[b])
    return h


def dense_traces(offsets, j_bonds, times, iz_spin=1):
    """mx, my, and the polarisation of spin `iz_spin` (counted from 1) from I_kz."""
    n = len(offsets)
    ix = [op(SX, i, n) for i in range(n)]
    iy = [op(SY, i, n) for i in range(n)]
    iz = [op(SZ, i, n) for i in range(n)]
    e, v = np.linalg.eigh(dense_hamiltonian(offsets, j_bonds))
    fx = sum(ix)
    fp = sum(ix) + 1j * sum(iy)
    izk = iz[iz_spin - 1]
    out = {"mx": [], "my": [], "iz1": []}
    for t in times:
        u = (v * np.exp(-1j * e * t)) @ v.conj().T
        rho_x = u @ fx @ u.conj().T
        rho_z = u @ izk @ u.conj().T
        m = np.trace(rho_x @ fp) / np.trace(fx @ fx).real
        out["mx"].append(m.real)
        out["my"].append(m.imag)
        out["iz1"].append((np.trace(rho_z @ izk) / np.trace(izk @ izk)).real)
    return {k: np.array(v) for k, v in out.items()}


def grid_posterior_moments(data, sigma, centre, sd, points=61, width=6.0):
    """Means and sds of the (nu_1, nu_2, J) marginals of a 2-spin posterior with known
    sigma and flat priors, by brute force on a grid of `width` sds around `centre`."""
    import jax
    import jax.numpy as jnp

    import bayesnmr as bn

    axes = [
        np.linspace(c - width * s, c + width * s, points) for c, s in zip(centre, sd, strict=True)
    ]

    def loglik(nu1, nu2, j):
        tr = bn.simulate(bn.SpinChain(jnp.stack([nu1, nu2]), j), data.grid)
        r = [tr.mx - data.mx, tr.my - data.my, tr.iz1 - data.iz1]
        return -0.5 * sum(jnp.sum(x**2) for x in r) / sigma**2

    f = jax.vmap(jax.vmap(jax.vmap(loglik, (None, None, 0)), (None, 0, None)), (0, None, None))
    ll = np.asarray(jax.jit(f)(*[jnp.asarray(a) for a in axes]))
    w = np.exp(ll - ll.max())
    w /= w.sum()
    means, sds = [], []
    for i, a in enumerate(axes):
        marg = w.sum(axis=tuple(k for k in range(3) if k != i))
        mean = np.sum(a * marg)
        means.append(mean)
        sds.append(np.sqrt(np.sum((a - mean) ** 2 * marg)))
    return np.array(means), np.array(sds)
