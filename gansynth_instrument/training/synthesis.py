"""The trainer's view of a note as a listener hears it: Magenta's synthesis in torch, so a loss
on the audio (its level, its brightness) reaches the generator's weights.

``spectral.spectrogram_to_audio`` is the exact, NumPy one the runtime uses; this one leaves out
Magenta's float32 phase round trip (it only adds multiples of 2π, up to rounding), which keeps it
differentiable and within rounding of the exact audio (``tests/training/test_train.py`` holds them
together).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from gansynth_instrument.model.metadata import Representation
from gansynth_instrument.model.spectral import MAG2_EPS, sparse_mel_to_linear, synthesis_window

BRIGHT_BAND_HZ = (4000.0, 8000.0)  # issue 16's brightness band
SILENT_SHARE = 1e-8  # -80 dB: the band share of a note with nothing there


@functools.lru_cache(maxsize=4)
def _mel_to_linear_taps(
    bins: int, sample_rate: int
) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Synthesis's ``mel2l`` per linear bin: (mel source index, weight) tensors, one per tap."""
    taps = sparse_mel_to_linear(bins, sample_rate)
    sources = tuple(torch.from_numpy(np.array(row)) for row in taps.sources)
    weights = tuple(torch.from_numpy(np.array(row)) for row in taps.weights)
    return sources, weights


def mel_to_linear(x: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """``x @ mel2l`` over the last axis (mel bins → linear bins), as synthesis applies it."""
    sources, weights = _mel_to_linear_taps(x.shape[-1], sample_rate)
    return sum(x[..., src] * w for src, w in zip(sources, weights, strict=True))


def first_source(bins: int, sample_rate: int) -> torch.Tensor:
    """Each linear bin's first mel source (where a per-mel-bin weight applies to it)."""
    return _mel_to_linear_taps(bins, sample_rate)[0][0]


def spectrogram_to_audio(spec: torch.Tensor, rep: Representation, sample_rate: int) -> torch.Tensor:
    """Normalised generator output [B, 2, frames, bins] (mel, IF) → audio [B, samples].

    The steps of ``spectral.spectrogram_to_audio``: denormalise; phase = cumsum(IF · π) over
    time; magnitude = sqrt(mel2l(exp(log mag²)) + eps), phase = mel2l(phase); a zero DC bin;
    irfft × the synthesis window, overlap-added at the hop; the first ``pad_front`` dropped.
    """
    log_power = (spec[:, 0] - rep.mag_normalizer_b) / rep.mag_normalizer_a
    if_pi = (spec[:, 1] - rep.p_normalizer_b) / rep.p_normalizer_a
    phase = mel_to_linear(torch.cumsum(if_pi * np.pi, dim=1), sample_rate)
    magnitude = torch.sqrt(mel_to_linear(torch.exp(log_power), sample_rate) + MAG2_EPS)
    stft = F.pad(torch.polar(magnitude, phase), (1, 0))  # DC bin = 0
    frames = torch.fft.irfft(stft, n=rep.n_fft, dim=-1)
    window = torch.from_numpy(np.array(synthesis_window(rep.n_fft, rep.hop_length)))
    frames = (frames * window).transpose(1, 2)  # [B, n_fft, frames], as fold wants
    length = rep.hop_length * (rep.frames - 1) + rep.n_fft
    audio = F.fold(frames, (1, length), (1, rep.n_fft), stride=(1, rep.hop_length))
    return audio[:, 0, 0, rep.pad_front :]


def loudness_and_brightness(audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """[B, 2]: each note's ln mean square (its level in nepers of power) and ln of its
    4-8 kHz band's share of its energy (its brightness), as ``benchmarks/eval_model.py`` reads
    a note (there in dB)."""
    power = torch.fft.rfft(audio.double(), dim=-1).abs().square()
    hz = torch.fft.rfftfreq(audio.shape[-1], 1.0 / sample_rate, dtype=torch.float64)
    band = ((hz >= BRIGHT_BAND_HZ[0]) & (hz < BRIGHT_BAND_HZ[1])).double()
    total = power.sum(dim=-1)
    level = torch.log(audio.double().square().mean(dim=-1) + 1e-24)
    share = torch.log((power * band).sum(dim=-1) / (total + 1e-30) + SILENT_SHARE)
    return torch.stack([level, share], dim=-1).float()
