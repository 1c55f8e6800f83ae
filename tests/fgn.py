"""Exact fractional Gaussian noise by circulant embedding (Davies-Harte).

Shared by the Hurst tests and ``bench/hurst_accuracy.py``. Exact means each generated
window has precisely the fGn autocovariance, not an approximation of it, so an
estimator's bias measured on these windows is the estimator's own.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def fgn_autocovariance(h: float, lags: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """gamma(k) of unit-variance fGn: (|k+1|^2H - 2|k|^2H + |k-1|^2H) / 2."""
    k = np.abs(np.asarray(lags, dtype=np.float64))
    two_h = 2.0 * h
    gamma: npt.NDArray[np.float64] = 0.5 * (
        np.abs(k + 1) ** two_h - 2 * k**two_h + np.abs(k - 1) ** two_h
    )
    return gamma


def fgn(h: float, n: int, count: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """``count`` independent unit-variance fGn windows of length ``n``, shape (count, n)."""
    if not 0.0 < h < 1.0:
        raise ValueError(f"H must be in (0, 1), got {h}")
    m = 2 * n
    row = fgn_autocovariance(h, np.r_[np.arange(n + 1), np.arange(n - 1, 0, -1)])
    eigenvalues = np.fft.fft(row).real
    if eigenvalues.min() < -1e-10:
        raise ArithmeticError(f"circulant embedding is not non-negative for H={h}")
    scale = np.sqrt(np.clip(eigenvalues, 0.0, None) / m)
    # Real and imaginary parts of F(sqrt(L/m) Z) are two independent exact fGn paths.
    pairs = (count + 1) // 2
    z = rng.standard_normal((pairs, m)) + 1j * rng.standard_normal((pairs, m))
    paths = np.fft.fft(scale * z, axis=1)[:, :n]
    both = np.concatenate([paths.real, paths.imag], axis=0)
    out: npt.NDArray[np.float64] = both[:count]
    return out
