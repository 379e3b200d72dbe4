"""Onset-envelope correlation between two renders (this instrument's and FluidSynth's), and
FluidSynth's render of some channels of a MIDI file: the measure issue 29's figures use
(the drum track alone ≥ 0.6 at a lag ≤ 10 ms). Benchmarks import it as they import jackrig.

The onset envelope is the half-wave rectified frame-to-frame rise of the RMS envelope in 10 ms
frames; two envelopes are compared by normalised cross-correlation over lags of ±50 ms.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import numpy as np

from gansynth_instrument.offline.midi_file import read_midi

FRAME_S = 0.01
MAX_LAG_S = 0.05
FLUID_GAIN = 0.5


def onset_envelope(audio: np.ndarray, sample_rate: int, frame_s: float = FRAME_S) -> np.ndarray:
    """The half-wave rectified rise of ``audio``'s RMS (mono: channels averaged) per frame."""
    mono = audio.mean(axis=1) if audio.ndim == 2 else audio
    hop = round(frame_s * sample_rate)
    frames = len(mono) // hop
    rms = np.sqrt(np.mean(mono[: frames * hop].astype(np.float64).reshape(frames, hop) ** 2, 1))
    return np.maximum(np.diff(rms, prepend=0.0), 0.0)


def onset_correlation(
    a: np.ndarray,
    b: np.ndarray,
    sample_rate: int,
    *,
    frame_s: float = FRAME_S,
    max_lag_s: float = MAX_LAG_S,
) -> tuple[float, float]:
    """(correlation, lag in seconds) of the best normalised cross-correlation of the onset
    envelopes of ``a`` and ``b`` over lags up to ±``max_lag_s``; a positive lag: ``a`` late."""
    ea, eb = onset_envelope(a, sample_rate, frame_s), onset_envelope(b, sample_rate, frame_s)
    n = min(len(ea), len(eb))
    ea, eb = ea[:n] - ea[:n].mean(), eb[:n] - eb[:n].mean()
    norm = np.sqrt((ea**2).sum() * (eb**2).sum())
    if norm == 0.0:
        return 0.0, 0.0
    lags = range(-round(max_lag_s / frame_s), round(max_lag_s / frame_s) + 1)

    def at(lag: int) -> float:
        return float(np.dot(ea[max(lag, 0) : n + min(lag, 0)], eb[max(-lag, 0) : n - max(lag, 0)]))

    best = max(lags, key=at)
    return at(best) / norm, best * frame_s


def fluidsynth_render(
    midi_path: Path,
    soundfont: Path,
    sample_rate: int = 48000,
    *,
    channels: Collection[int] | None = None,
    until_s: float | None = None,
    tail_s: float = 1.0,
) -> np.ndarray:
    """Stereo float32 [frames, 2] of FluidSynth (pyfluidsynth) playing ``midi_path``'s
    ``channels`` (0-15; None: all) with ``soundfont``, events up to ``until_s``."""
    import fluidsynth

    synth = fluidsynth.Synth(gain=FLUID_GAIN, samplerate=float(sample_rate))
    sfid = synth.sfload(str(soundfont))
    for channel in range(16):
        synth.program_select(channel, sfid, 128 if channel == 9 else 0, 0)
    events = [e for e in read_midi(midi_path) if until_s is None or e.time_s < until_s]
    blocks, done = [], 0
    for event in events:
        frame = round(event.time_s * sample_rate)
        if frame > done:
            blocks.append(synth.get_samples(frame - done))
            done = frame
        status, channel = event.data[0] & 0xF0, event.data[0] & 0x0F
        if channels is not None and channel not in channels:
            continue
        if status == 0x90 and event.data[2] > 0:
            synth.noteon(channel, event.data[1], event.data[2])
        elif status in (0x80, 0x90):
            synth.noteoff(channel, event.data[1])
        elif status == 0xB0:
            synth.cc(channel, event.data[1], event.data[2])
        elif status == 0xC0:
            synth.program_change(channel, event.data[1])
        elif status == 0xE0:
            synth.pitch_bend(channel, (event.data[1] | event.data[2] << 7) - 8192)
    blocks.append(synth.get_samples(round(tail_s * sample_rate)))
    synth.delete()
    audio = np.concatenate(blocks).astype(np.float32) / 32768.0
    return audio.reshape(-1, 2)
