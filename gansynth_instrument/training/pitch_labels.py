"""A note's label: its level, and its fundamental detected by YIN (de Cheveigné & Kawahara
2002); silent and unpitched notes are dropped, each with the reason the dataset summary counts.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from gansynth_instrument.training.dataset import SAMPLE_RATE

# YIN settings for notes from MIDI 21 (27.5 Hz) up.
_YIN_WINDOW = 1024  # integration window; lags up to this (15.6 Hz)
_YIN_THRESHOLD = 0.15  # first dip of the normalised difference below this is the period
_YIN_MIN_LAG = 3  # 5.3 kHz: far above any note we label
_VOICED_FRACTION = 0.5  # fewer periodic frames than this: the note is unpitched
_LOUD_RANGE_DB = 20.0  # analyse frames within this of the loudest one (skips the silent tail)


def hz_to_midi(frequency_hz: float) -> float:
    return 69.0 + 12.0 * np.log2(frequency_hz / 440.0)


def level_db(audio: np.ndarray) -> float:
    """RMS level in dB relative to full scale (a full-scale sine is -3 dB)."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
    return 20.0 * np.log10(max(rms, 1e-12))


def detect_pitch(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float | None:
    """Fundamental of a note as a (fractional) MIDI number, or None when it is not periodic.

    YIN on frames of the loud part of the note: the cumulative-mean-normalised difference
    function, its first dip below 0.15 (the shortest clear period, so octave-down errors are
    rare), refined to a fraction of a sample by a parabola. The note's pitch is the median over
    its frames; fewer than half periodic frames means unpitched (noise, clicks, chords).
    """
    x = np.asarray(audio, dtype=np.float64)
    hop = _YIN_WINDOW
    length = 2 * _YIN_WINDOW
    if x.size < length:
        return None
    frames = np.lib.stride_tricks.sliding_window_view(x, length)[::hop]
    energy = np.sum(frames**2, axis=1)
    if energy.max() <= 0:
        return None
    loud = frames[energy >= energy.max() * 10 ** (-_LOUD_RANGE_DB / 10)]
    # d(τ) = Σ_j<W (x_j - x_j+τ)² = E(0) + E(τ) - 2 r(τ), r by FFT cross-correlation.
    n_fft = scipy.fft.next_fast_len(2 * length)
    head = scipy.fft.rfft(loud[:, :_YIN_WINDOW], n_fft)
    full = scipy.fft.rfft(loud, n_fft)
    corr = scipy.fft.irfft(np.conj(head) * full, n_fft)[:, : _YIN_WINDOW + 1]
    squares = np.concatenate([np.zeros((len(loud), 1)), np.cumsum(loud**2, axis=1)], axis=1)
    lags = np.arange(_YIN_WINDOW + 1)
    shifted = squares[:, lags + _YIN_WINDOW] - squares[:, lags]
    diff = squares[:, [_YIN_WINDOW]] + shifted - 2.0 * corr
    diff[:, 0] = 0.0
    running = np.cumsum(diff[:, 1:], axis=1) / np.arange(1, _YIN_WINDOW + 1)
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] / np.maximum(running, 1e-12)
    pitches = []
    for row in cmnd:
        below = np.flatnonzero(row[_YIN_MIN_LAG:-1] < _YIN_THRESHOLD)
        if below.size == 0:
            continue
        lag = below[0] + _YIN_MIN_LAG
        while lag + 1 < len(row) - 1 and row[lag + 1] < row[lag]:
            lag += 1
        left, mid, right = row[lag - 1], row[lag], row[lag + 1]
        curvature = left - 2 * mid + right
        offset = 0.5 * (left - right) / curvature if curvature > 0 else 0.0
        pitches.append(hz_to_midi(sample_rate / (lag + offset)))
    if len(pitches) < _VOICED_FRACTION * len(loud):
        return None
    return float(np.median(pitches))


def label_note(
    audio: np.ndarray, *, silence_db: float, pitch_range: tuple[int, int], fixed_pitch: int | None
) -> tuple[int | None, str | None]:
    """(MIDI pitch, None) for a keepable note, else (None, why it is dropped)."""
    if level_db(audio) < silence_db:
        return None, f"silent (below {silence_db:g} dBFS RMS)"
    if fixed_pitch is not None:
        return fixed_pitch, None
    detected = detect_pitch(audio)
    if detected is None:
        return None, "unpitched"
    pitch = round(detected)
    if not pitch_range[0] <= pitch <= pitch_range[1]:
        return None, f"pitch outside {pitch_range[0]}..{pitch_range[1]}"
    return pitch, None
