"""A small deterministic NoteModel for engine tests: what is played can be measured exactly.

It implements the note cache's model protocol (``cache.NoteModel``); the generator itself is not
under test there, the engine's decisions are. Tests of the real model use the exported tiny one.
"""

from __future__ import annotations

import numpy as np

RATE = 16000


class ToneModel:
    """NoteModel: 1 s decaying tones; z[0] sets the 2nd harmonic, so timbres differ audibly."""

    digest = "tone-model-v1"
    pitches = tuple(range(48, 73))
    latent_size = 8
    sample_rate = RATE
    audio_length = RATE

    def __init__(self) -> None:
        self.generated: list[tuple[float, int]] = []  # (z[0], pitch) in render order

    def generate(self, z: np.ndarray, pitches) -> np.ndarray:
        t = np.arange(RATE) / RATE
        out = []
        for row, pitch in zip(z, pitches, strict=True):
            self.generated.append((float(row[0]), int(pitch)))
            f = 440.0 * 2 ** ((int(pitch) - 69) / 12)
            h2 = 0.5 * (1 + np.tanh(row[0]))
            wave = np.sin(2 * np.pi * f * t) + h2 * np.sin(4 * np.pi * f * t)
            out.append(0.4 * wave * np.exp(-t))
        return np.asarray(out, dtype=np.float32)
