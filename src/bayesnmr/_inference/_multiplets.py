"""Candidate offsets from the spectrum: first-order multiplet analysis of a chain.

In weak coupling (|nu_i - nu_j| >> J) each spin of a chain with one coupling J gives a
multiplet centred on its offset: a doublet (lines at nu +- J/2, each 1/2N of the
intensity) at either end of the chain, a 1:2:1 triplet (nu - J, nu, nu + J) inside it.
Matching pursuit on the absorption spectrum picks N such multiplets, strongest first,
subtracting each one's lines before looking for the next. Strong coupling bends these
patterns, so the offsets found are starting points (typically within a few Hz), and
which multiplet sits where along the chain is left to the search.
"""

import numpy as np

from ._data import Dataset


def absorption_spectrum(data: Dataset, zero_fill: int = 8):
    """The apodised absorption spectrum of the FID, and the spectrum of a unit line at 0 Hz.

    Exponential apodisation over a third of the acquisition (a line width of about
    $3/\\pi T$), the first point halved, zero-filled `zero_fill` times. `M_+` has
    positive-frequency lines with positive real amplitudes, so the real part of its FFT
    is absorptive.

    **Returns:** `(freqs_hz, spectrum, unit)`, ascending in frequency.
    """
    g = data.grid
    window = np.exp(-g.times / (g.duration / 3))
    n_fft = zero_fill * g.n

    def spectrum(fid):
        fid = fid * window
        fid[0] *= 0.5
        return np.fft.fftshift(np.fft.fft(fid, n_fft)).real

    freqs = np.fft.fftshift(np.fft.fftfreq(n_fft, g.dt))
    return freqs, spectrum(data.mx + 1j * data.my), spectrum(np.ones(g.n, complex))


def _patterns(n_spins: int, j_hz: float) -> dict:
    """The first-order multiplets of a chain: (line offset in Hz, share of intensity)."""
    w = 1.0 / n_spins
    return {
        "singlet": [(0.0, w)],
        "doublet": [(-j_hz / 2, w / 2), (j_hz / 2, w / 2)],
        "triplet": [(-j_hz, w / 4), (0.0, w / 2), (j_hz, w / 4)],
    }


def pursue(freqs, spectrum, unit, n_spins: int, j_hz: float, allowed=None):
    """N multiplets picked from the spectrum by matching pursuit, for a chain of one J.

    `allowed`: a boolean mask over `freqs` of where an offset may lie (the prior boxes).

    **Returns:** `(offsets, kinds, score)`: the centres in Hz (in the order picked), their
    kinds (`"doublet"`: an end of the chain), and the summed matches (each at most 1).
    """
    df = freqs[1] - freqs[0]
    zero = int(np.argmin(np.abs(freqs)))
    height = unit[zero]
    patterns = _patterns(n_spins, j_hz)
    need = {"singlet": 1} if n_spins == 1 else {"doublet": 2, "triplet": n_spins - 2}
    residual = spectrum.copy()
    offsets, kinds, total = [], [], 0.0
    for _ in range(n_spins):
        best = None
        for kind, count in need.items():
            if count == 0:
                continue
            # How much of each line of the pattern the residual still holds, the weakest.
            score = np.full(freqs.size, np.inf)
            for off, w in patterns[kind]:
                score = np.minimum(score, np.roll(residual, -round(off / df)) / (w * height))
            if allowed is not None:
                score = np.where(allowed, score, -np.inf)
            i = int(np.argmax(score))
            if best is None or score[i] > best[0]:
                best = (float(score[i]), kind, i)
        s, kind, i = best
        need[kind] -= 1
        offsets.append(float(freqs[i]))
        kinds.append(kind)
        total += min(s, 1.0)
        for off, w in patterns[kind]:
            residual -= w * np.roll(unit, i - zero + round(off / df))
    return np.array(offsets), kinds, total


def candidate_sets(data: Dataset, n_spins: int, j_grid, boxes=None, tol_hz: float = 1.0):
    """Distinct candidate offset sets, one pursuit per J of `j_grid`, best score first.

    `boxes` (`(N, 2)`) limits the offsets to their union.

    **Returns:** a list of `(offsets_sorted, j_hz, score)`.
    """
    freqs, spectrum, unit = absorption_spectrum(data)
    allowed = None
    if boxes is not None:
        b = np.asarray(boxes)
        allowed = np.any((freqs[:, None] >= b[:, 0]) & (freqs[:, None] <= b[:, 1]), axis=1)
    found = []
    for j in j_grid:
        offsets, _, score = pursue(freqs, spectrum, unit, n_spins, float(j), allowed)
        found.append((np.sort(offsets), float(j), score))
    found.sort(key=lambda t: -t[2])
    distinct: list = []
    for s, j, score in found:
        if not any(np.abs(s - s2).max() < tol_hz for s2, _, _ in distinct):
            distinct.append((s, j, score))
    return distinct


def line_density(data: Dataset):
    """Frequencies and a probability over them, sharpened from the magnitude spectrum:
    where to draw random starting offsets."""
    freqs, spectrum, _ = absorption_spectrum(data)
    p = np.clip(spectrum - np.median(spectrum), 0, None) ** 2
    total = p.sum()
    return freqs, (p / total if total > 0 else np.full(p.size, 1 / p.size))
