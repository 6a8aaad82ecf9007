"""The parameter box a surrogate is trained on, and may be used in."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


class Domain(eqx.Module):
    r"""A box of parameters $\theta = (\nu_1 \dots \nu_N, J)$: one range for every offset
    and one for the (uniform) coupling, all in Hz.

    **Arguments:**

    - `n_spins`: the chain length $N$.
    - `offsets_hz`: `(lo, hi)`, the range of every offset (default `(-100, 100)`), or
      one `(lo, hi)` per spin, shape `(N, 2)` (the region of a problem-local surrogate).
    - `j_hz`: `(lo, hi)`, the range of $J$ (default `(0, 20)`).

    Training draws $\theta$ uniformly from the box. A surrogate refuses (or warns about)
    parameters outside it: a network is not to be trusted where it has seen no data.
    """

    n_spins: int = eqx.field(static=True)
    offsets_hz: tuple = eqx.field(static=True, default=(-100.0, 100.0))
    j_hz: tuple[float, float] = eqx.field(static=True, default=(0.0, 20.0))

    def __init__(self, n_spins: int, offsets_hz=(-100.0, 100.0), j_hz=(0.0, 20.0)):
        if isinstance(n_spins, bool) or not isinstance(n_spins, int | np.integer) or n_spins < 2:
            raise ValueError(
                f"Argument `n_spins` must be an integer >= 2 (a surrogate needs a coupled "
                f"chain), but is {n_spins!r}."
            )
        self.n_spins = int(n_spins)
        if np.ndim(offsets_hz) == 2:
            if np.shape(offsets_hz) != (n_spins, 2):
                raise ValueError(
                    f"Argument `offsets_hz` must be one (lo, hi) pair or shape ({n_spins}, 2) "
                    f"(one box per spin), got shape {np.shape(offsets_hz)}."
                )
            self.offsets_hz = tuple(_box(f"offsets_hz[{i}]", b) for i, b in enumerate(offsets_hz))
        else:
            self.offsets_hz = _box("offsets_hz", offsets_hz)
        self.j_hz = _box("j_hz", j_hz)
        if self.j_hz[0] < 0:
            raise ValueError(f"Argument `j_hz` must have lo >= 0 Hz, got {self.j_hz}.")

    @property
    def n_params(self) -> int:
        return self.n_spins + 1

    @property
    def per_spin(self) -> bool:
        """Whether every offset has its own range."""
        return isinstance(self.offsets_hz[0], tuple)

    @property
    def offset_boxes(self) -> np.ndarray:
        """The range of every offset, shape `(N, 2)`."""
        boxes = self.offsets_hz if self.per_spin else [self.offsets_hz] * self.n_spins
        return np.array(boxes, np.float64)

    @property
    def lower(self) -> np.ndarray:
        return np.r_[self.offset_boxes[:, 0], self.j_hz[0]]

    @property
    def upper(self) -> np.ndarray:
        return np.r_[self.offset_boxes[:, 1], self.j_hz[1]]

    def sample(self, key, n: int, dtype=jnp.float32) -> jax.Array:
        """`n` parameter vectors drawn uniformly from the box, shape `(n, N + 1)`."""
        u = jax.random.uniform(key, (n, self.n_params), dtype=dtype)
        lo, hi = jnp.asarray(self.lower, dtype)[None], jnp.asarray(self.upper, dtype)[None]
        return lo + (hi - lo) * u

    def outside(self, theta) -> list[str]:
        """A description of every entry of concrete `theta` outside the box (empty if none)."""
        theta = np.asarray(theta, np.float64)
        names = [f"offsets_hz[{i}]" for i in range(self.n_spins)] + ["j_hz"]
        out = []
        for name, v, lo, hi in zip(names, theta, self.lower, self.upper, strict=True):
            if not lo <= v <= hi:
                out.append(f"{name} = {v:.4g} Hz is outside [{lo:g}, {hi:g}]")
        return out

    def box_outside(self, lower, upper) -> list[str]:
        """A description of every entry of the box `[lower, upper]` (offsets, then J) that
        reaches outside this domain (empty if none); an entry with `lower == upper` is a
        fixed value."""
        lower, upper = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
        names = [f"offsets_hz[{i}]" for i in range(self.n_spins)] + ["j_hz"]
        out = []
        for name, a, b, lo, hi in zip(names, lower, upper, self.lower, self.upper, strict=True):
            if a == b and not lo <= a <= hi:
                out.append(f"fixed {name} = {a:.4g} Hz is outside [{lo:g}, {hi:g}]")
            elif a != b and (a < lo or b > hi):
                out.append(f"box {name} = [{a:g}, {b:g}] reaches outside [{lo:g}, {hi:g}]")
        return out

    def to_dict(self) -> dict:
        off = [list(b) for b in self.offsets_hz] if self.per_spin else list(self.offsets_hz)
        return {"n_spins": self.n_spins, "offsets_hz": off, "j_hz": list(self.j_hz)}

    @classmethod
    def from_dict(cls, d: dict) -> "Domain":
        return cls(int(d["n_spins"]), d["offsets_hz"], tuple(d["j_hz"]))


def _box(name: str, box) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in box)
    except (TypeError, ValueError):
        raise ValueError(f"Argument `{name}` must be a pair (lo, hi) in Hz, got {box!r}.") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"Argument `{name}` must have finite lo < hi, got {box!r}.")
    return (lo, hi)
