"""Gaussian action noise correlated in time ("coloured" noise).

PPO's Gaussian policy draws its noise independently at every step (white noise). Over a
few steps that averages out, so a motion that needs the same push held for tens of steps
(a lean, then a jump, then a tuck) is rarely tried. Noise whose power spectrum falls as
``1 / f**beta`` keeps each step's noise a standard normal but makes neighbouring steps
alike: ``beta`` 0 is white, 1 pink, 2 red (a random walk's spectrum). Eberhard et al.
2023, "Pink noise is all you need", found pink noise a good default for continuous
control. Each step's noise is still N(0, 1), so the log-probability of an action under
the policy is the one of white noise.

A stream is made in chunks of ``length`` steps by the spectral method (Timmer and König
1995): random Fourier coefficients scaled by the spectrum's square root, transformed back.
"""

from __future__ import annotations

import numpy as np


def coloured_noise(beta: float, rows: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """``rows`` independent sequences of ``length`` steps, ``(rows, length)`` float64, each
    step N(0, 1), with a power spectrum proportional to ``1 / f**beta``.

    Frequencies below ``1 / length`` (the lowest a sequence of this length holds) are given
    that frequency's power.
    """
    if length < 2:
        raise ValueError(f"coloured noise needs at least 2 steps, not {length}")
    freqs = np.fft.rfftfreq(length)
    freqs[0] = freqs[1]
    scale = freqs ** (-beta / 2.0)
    real = rng.standard_normal((rows, len(freqs))) * scale
    imag = rng.standard_normal((rows, len(freqs))) * scale
    # the zero frequency (and, for an even length, the highest) has no imaginary part:
    # its real part carries the variance of both
    imag[:, 0] = 0.0
    real[:, 0] *= np.sqrt(2.0)
    if length % 2 == 0:
        imag[:, -1] = 0.0
        real[:, -1] *= np.sqrt(2.0)
    # a step's variance after irfft: 2 / length^2 * sum(weights * scale^2), the frequencies
    # between the ends counting twice (as the conjugate pairs irfft fills in)
    weights = np.full(len(freqs), 2.0)
    weights[0] = 1.0
    if length % 2 == 0:
        weights[-1] = 1.0
    std = np.sqrt(2.0 * np.sum(weights * scale**2)) / length
    return np.fft.irfft(real + 1j * imag, n=length) / std


class NoiseStream:
    """Noise for a batch of envs, one step per :meth:`draw`; each env and action dimension
    its own sequence. ``beta`` 0 draws white noise straight from ``rng``."""

    def __init__(self, beta: float, rng: np.random.Generator, length: int = 1000):
        self.beta, self.rng, self.length = beta, rng, length
        self._chunk: np.ndarray | None = None  # (*shape, length)
        self._t = 0

    def draw(self, shape: tuple[int, ...]) -> np.ndarray:
        """The next step's noise for ``shape = (envs, action dims)``, float32."""
        if self.beta == 0.0:
            return self.rng.standard_normal(shape, dtype=np.float32)
        if self._chunk is None or self._chunk.shape[:-1] != shape or self._t == self.length:
            self._chunk = coloured_noise(self.beta, int(np.prod(shape)), self.length, self.rng).reshape(
                *shape, self.length
            )
            self._t = 0
        noise = self._chunk[..., self._t].astype(np.float32)
        self._t += 1
        return noise
