"""``train --objective regression``: the generator fitted to the real notes, no discriminator.

Why: on a 2-core CPU the GAN recipe sees too few full-resolution images to learn pitch at all
(``shared/docs/cpu-training-facts.md``), while the per-pitch mean of real IF-mel spectrograms
already inverts to the right pitch. So the same Magenta-layout generator (it exports unchanged)
is trained by mean squared error to reproduce a real note's normalised IF-mel spectrogram from
(latent, pitch), growing progressively like the GAN run.

Latents: every instrument of the dataset (a soundfont program × velocity) gets a fixed random
N(0, 1) latent, its *timbre latent*; half of each batch uses these, so each instrument can be
played back exactly (they become presets). The other half draws fresh N(0, 1) latents and asks
for the note of the instrument whose timbre latent is nearest in angle, so every random latent a
player (or the evaluation) picks maps to a pitched note of some instrument, and the space between
instruments is filled by smooth blends, which keep the pitch: same pitch, same partials.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gansynth_instrument.fileio import write_text_atomic

TIMBRES_JSON = "timbres.json"
# Normalised log magnitude of silence is about -0.8 (log 1e-6 · 0.066 + 0.114); the IF error is
# weighted by how far a bin is above that, so the noise-like IF of silent bins costs nothing.
SILENT_MAG = -0.8
LOUD_SPAN = 1.0
IF_LOSS_WEIGHT = 1.0


def timbre_latents(seed: int, count: int, latent_size: int) -> torch.Tensor:
    """Each instrument's fixed N(0, 1) latent (own random stream: weight init does not move it)."""
    rng = np.random.default_rng([seed, 0x7173])
    return torch.from_numpy(rng.standard_normal((count, latent_size)).astype(np.float32))


class Sampler:
    """Rows of the dataset and the latent each is generated from (see the module docstring)."""

    def __init__(self, instruments: tuple[str, ...], latents: torch.Tensor) -> None:
        names = sorted(set(instruments))
        self.names = names
        self.timbre = np.array([names.index(i) for i in instruments])
        self.rows_of = [np.flatnonzero(self.timbre == t) for t in range(len(names))]
        self.latents = latents
        self.unit = F.normalize(latents, dim=1).numpy()

    def batch(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, torch.Tensor]:
        """(rows [size], z [size, latent]): first half timbre latents, second half random."""
        fixed = size // 2 if size > 1 else int(rng.integers(0, 2))
        rows = list(rng.integers(0, len(self.timbre), fixed))
        z = [self.latents[self.timbre[r]].numpy() for r in rows]
        for _ in range(size - fixed):
            fresh = rng.standard_normal(self.latents.shape[1]).astype(np.float32)
            nearest = int(np.argmax(self.unit @ fresh))
            rows.append(int(rng.choice(self.rows_of[nearest])))
            z.append(fresh)
        return np.array(rows), torch.from_numpy(np.stack(z))

    def write(self, train_dir: Path) -> None:
        """``timbres.json``: instrument name → its latent, what presets are made from."""
        data = {n: [float(v) for v in self.latents[t]] for t, n in enumerate(self.names)}
        write_text_atomic(train_dir / TIMBRES_JSON, json.dumps(data) + "\n")


def regression_loss(fake: torch.Tensor, real: torch.Tensor) -> dict[str, torch.Tensor]:
    """MSE of the magnitude channel, and of IF weighted by the real magnitude's loudness."""
    mag_mse = (fake[:, 0] - real[:, 0]).square().mean()
    loud = ((real[:, 0] - SILENT_MAG) / LOUD_SPAN).clamp(0.0, 1.0)
    if_mse = (loud * (fake[:, 1] - real[:, 1]).square()).mean()
    return {"loss": mag_mse + IF_LOSS_WEIGHT * if_mse, "mag_mse": mag_mse, "if_mse": if_mse}
