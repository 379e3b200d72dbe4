"""Making notes: latent + pitch → a finished ``Note`` at the output rate.

The model generates a batch at its own rate (16 kHz), soxr resamples the whole batch once to the
output rate, and each row is quantised to int16 with a per-note gain. The note workers
(``note_workers.py``) run exactly this, in a thread or in a process of their own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import soxr

from gansynth_instrument.errors import ModelError
from gansynth_instrument.notes.note import Note

INT16_FULL_SCALE = 32767
RESAMPLE_QUALITY = "HQ"  # soxr's "high quality" recipe (20-bit precision)


class NoteModel(Protocol):
    """What making notes needs from ``gansynth_instrument.model.runtime.Model``."""

    digest: str
    pitches: tuple[int, ...]
    latent_size: int
    sample_rate: int
    audio_length: int  # samples per note at sample_rate

    def generate(self, z: np.ndarray, pitches: Sequence[int] | np.ndarray) -> np.ndarray: ...


def make_notes(
    model: NoteModel, z: np.ndarray, pitches: np.ndarray, sample_rate: int
) -> list[Note]:
    """generate + resample once + quantize: all the work a note worker does, thread or process."""
    audio = np.asarray(model.generate(z, pitches), dtype=np.float32)
    if model.sample_rate != sample_rate:
        # One call for the whole batch: soxr takes [frames, channels].
        audio = soxr.resample(
            np.ascontiguousarray(audio.T), model.sample_rate, sample_rate, quality=RESAMPLE_QUALITY
        ).T
    return [
        quantize(row, int(pitch), sample_rate) for row, pitch in zip(audio, pitches, strict=True)
    ]


def quantize(audio: np.ndarray, pitch: int, sample_rate: int) -> Note:
    """float waveform → ``Note`` (int16, peak ↦ 32767). Raises ModelError on NaN/inf."""
    peak = max(float(audio.max()), -float(audio.min())) if len(audio) else 0.0
    if not math.isfinite(peak):
        raise ModelError(f"the model produced non-finite audio for pitch {pitch}")
    gain = peak / INT16_FULL_SCALE if peak > 0 else 1.0 / INT16_FULL_SCALE
    scaled = np.multiply(audio, np.float32(1.0 / gain), dtype=np.float32)
    pcm = np.rint(scaled, out=scaled).astype(np.int16)
    pcm.flags.writeable = False
    return Note(pcm=pcm, gain=gain, pitch=pitch, sample_rate=sample_rate)
