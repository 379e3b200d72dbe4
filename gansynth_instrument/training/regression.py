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

import functools
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gansynth_instrument.errors import TrainingError
from gansynth_instrument.export.checkpoint import TIMBRES_JSON
from gansynth_instrument.model.metadata import Representation
from gansynth_instrument.model.spectral import mel_bin_centres_hz
from gansynth_instrument.training.synthesis import (
    first_source,
    loudness_and_brightness,
    mel_to_linear,
    spectrogram_to_audio,
)

# Normalised log magnitude of silence is about -0.8 (log 1e-6 · 0.066 + 0.114); the IF error is
# weighted by how far a bin is above that, so the noise-like IF of silent bins costs nothing.
SILENT_MAG = -0.8
LOUD_SPAN = 1.0
IF_LOSS_WEIGHT = 1.0
BANDS = 16  # band_power's bands: the top 4 of them are 4-8 kHz at 16 kHz (mel scale)
SILENT_POWER = float(np.exp(-9.0))  # mel power floor of band_power (log magnitude² -9)
FULL_BINS = 1024  # mel bins of the full-size spectrogram
SAMPLE_RATE = 16000


def timbre_latents(seed: int, count: int, latent_size: int) -> torch.Tensor:
    """Each instrument's fixed N(0, 1) latent (own random stream: weight init does not move it)."""
    rng = np.random.default_rng([seed, 0x7173])
    return torch.from_numpy(rng.standard_normal((count, latent_size)).astype(np.float32))


def add_timbres(
    timbres: dict[str, list[float]], names: list[str], seed: int, latent_size: int
) -> dict[str, list[float]]:
    """``timbres`` (the source run's, kept as they are) with a fresh N(0, 1) latent for each of
    ``names`` it lacks, in sorted order, from a stream of their own.

    Why: ``train --init-from`` with a dataset of more instruments teaches a trained model new
    ones; its own instruments keep the latents their presets hold, and a new random latent is
    as far from them as theirs are from each other (a mean latent would sit between them and
    take their random latents' notes).
    """
    missing = sorted(set(names) - set(timbres))
    rng = np.random.default_rng([seed, 0x7173, len(timbres)])
    fresh = rng.standard_normal((len(missing), latent_size)).astype(np.float32)
    return {**timbres, **{n: [float(v) for v in fresh[i]] for i, n in enumerate(missing)}}


def read_timbres(train_dir: Path, instruments: tuple[str, ...]) -> torch.Tensor:
    """The run's ``timbres.json`` (instrument → latent, written when the run starts and what
    presets are made from) as latents in the sorted order of ``instruments``' names."""
    path = train_dir / TIMBRES_JSON
    try:
        timbres = json.loads(path.read_text(encoding="utf-8"))
        rows = [timbres[name] for name in sorted(set(instruments))]
    except (OSError, ValueError, KeyError) as err:
        raise TrainingError(f"{path}: cannot read the run's timbre latents ({err})") from None
    return torch.tensor(rows, dtype=torch.float32)


class Sampler:
    """Rows of the dataset and the latent each is generated from (see the module docstring)."""

    def __init__(
        self,
        instruments: tuple[str, ...],
        latents: torch.Tensor,
        weights: np.ndarray | None = None,
    ) -> None:
        """``weights``: how often each row is drawn, relative (None: all alike)."""
        names = sorted(set(instruments))
        self.names = names
        self.timbre = np.array([names.index(i) for i in instruments])
        self.rows_of = [np.flatnonzero(self.timbre == t) for t in range(len(names))]
        self.latents = latents
        self.unit = F.normalize(latents, dim=1).numpy()
        self.weights = weights

    def batch(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, torch.Tensor]:
        """(rows [size], z [size, latent]): first half timbre latents, second half random."""
        fixed = size // 2 if size > 1 else int(rng.integers(0, 2))
        rows = [int(r) for r in self._draw(rng, np.arange(len(self.timbre)), fixed)]
        z = [self.latents[self.timbre[r]].numpy() for r in rows]
        for _ in range(size - fixed):
            fresh = rng.standard_normal(self.latents.shape[1]).astype(np.float32)
            nearest = int(np.argmax(self.unit @ fresh))
            rows.append(int(self._draw(rng, self.rows_of[nearest], 1)[0]))
            z.append(fresh)
        return np.array(rows), torch.from_numpy(np.stack(z))

    def _draw(self, rng: np.random.Generator, among: np.ndarray, count: int) -> np.ndarray:
        if self.weights is None:
            return among[rng.integers(0, len(among), count)]
        p = self.weights[among]
        return rng.choice(among, count, p=p / p.sum())


def pitch_weights(pitches: np.ndarray, boost: list[int]) -> np.ndarray | None:
    """Row weights of hparam ``trainer_pitch_boost`` [low, high, factor]: notes at pitches
    low..high drawn factor× as often as the others (where the model is worst in tune)."""
    low, high, factor = boost
    if factor == 1:
        return None
    return np.where((pitches >= low) & (pitches <= high), float(factor), 1.0)


@functools.lru_cache(maxsize=8)
def low_bin_weights(bins: int, reference: int, cap: int) -> torch.Tensor | None:
    """Per mel bin weights of both channels' errors (hparam ``trainer_low_bin_boost``
    [reference Hz, cap]): bins below the reference count (reference / f)² as much, at most cap×.

    Why: the lowest partials decide the pitch a listener hears, and an error in a partial's IF
    is a constant number of hertz at any frequency, so a pitch error in cents that grows as 1/f.
    A note of the lowest octave has its fundamental in the first few of 1024 bins, which an MSE
    over bins lets the model drop (the note then sounds an octave high) at no cost to the loss.
    ``f`` is ``spectral.mel_bin_centres_hz`` (Magenta's widened triangles, not the nominal mel
    spacing); a lower resolution of progressive growing averages the
    full-size weights over each run of bins. None: no boost (cap 1).
    """
    if cap == 1:
        return None
    centres = mel_bin_centres_hz(FULL_BINS, SAMPLE_RATE)
    weights = np.clip((reference / np.maximum(centres, 1.0)) ** 2, 1.0, float(cap))
    pooled = weights.reshape(bins, FULL_BINS // bins).mean(axis=1)
    return torch.from_numpy(pooled.astype(np.float32))


def band_power(x: torch.Tensor, normalizer: tuple[float, float]) -> torch.Tensor:
    """Log of the mean mel power per frame in ``BANDS`` equal runs of mel bins: [B, frames, BANDS].

    The power is taken in the linear domain, so it is dominated by the spectrum's peaks as a
    listener's level and brightness are; ``SILENT_POWER`` keeps silent bands from counting.
    """
    a, b = normalizer
    power = torch.exp((x[:, 0] - b) / a)  # channel 0 is log mel magnitude²
    frames, bins = power.shape[1:]
    pooled = power.reshape(-1, frames, BANDS, bins // BANDS).mean(dim=-1)
    return torch.log(pooled + SILENT_POWER)


def regression_loss(
    fake: torch.Tensor,
    real: torch.Tensor,
    normalizer: tuple[float, float] = (1.0, 0.0),
    band_weight: float = 0.0,
    bin_weights: torch.Tensor | None = None,
    if_period: float | None = None,
) -> dict[str, torch.Tensor]:
    """MSE of the magnitude channel, and of IF weighted by the real magnitude's loudness; both
    weighted per mel bin by ``bin_weights`` (``low_bin_weights``) if given.

    ``if_period`` (the IF channel's 2π in normalised units, 2 · p_normalizer_a), at full size:
    the IF error is taken where synthesis uses it, as each linear bin's phase step per hop
    (``mel2l`` of the mel IF), and modulo 2π. A partial whose step is near ±π per hop has a real
    IF that flips between the two from frame to frame; they are one partial to synthesis, but a
    plain MSE fits their mean, the step that puts the partial farthest off. Below full size the
    IF error stays the plain one (mel2l is the full-size representation's).

    The MSE of log magnitudes alone fits the log-domain mean: where the target is uncertain the
    fit is smoother than the real spectrum, with lower peaks, so the notes come out quiet and
    dull. ``band_weight`` > 0 adds the squared error of ``band_power`` (per frame and band, in
    nepers of power; ``normalizer`` is the magnitude channel's (a, b)), which holds level and
    brightness to the real notes'.
    """
    mag_error = (fake[:, 0] - real[:, 0]).square()
    loud = ((real[:, 0] - SILENT_MAG) / LOUD_SPAN).clamp(0.0, 1.0)
    if bin_weights is not None:
        mag_error = mag_error * bin_weights
        loud = loud * bin_weights
    mag_mse = mag_error.mean()
    if_error = fake[:, 1] - real[:, 1]
    if if_period is not None and real.shape[-1] == FULL_BINS:
        if_error = mel_to_linear(if_error, SAMPLE_RATE)
        if_error = if_error - if_period * torch.round(if_error / if_period)
        loud = loud[..., first_source(FULL_BINS, SAMPLE_RATE)]  # a linear bin's: its 1st source's
    if_mse = (loud * if_error.square()).mean()
    losses = {"loss": mag_mse + IF_LOSS_WEIGHT * if_mse, "mag_mse": mag_mse, "if_mse": if_mse}
    if band_weight > 0:
        band_mse = (band_power(fake, normalizer) - band_power(real, normalizer)).square().mean()
        losses["loss"] = losses["loss"] + band_weight * band_mse
        losses["band_mse"] = band_mse
    return losses


def audio_loss(
    fake: torch.Tensor, real_figures: torch.Tensor, rep: Representation, weights: list[float]
) -> dict[str, torch.Tensor]:
    """Hparam ``trainer_audio_loss`` [level weight, brightness weight], at full size: the squared
    error of the note's level and of its 4-8 kHz share (``synthesis.loudness_and_brightness``,
    in nepers of power), with the fake note made into audio as synthesis makes it.

    Why: the spectrogram losses hold the representation to the real one, but a note is heard
    after synthesis, which loses level of its own where the rebuilt phases of overlapping frames
    disagree (``eval_model.py``'s ``floor`` column for real notes; more for generated ones).
    Only the magnitude learns from it: the IF is the pitch, which the spectrogram loss holds (with
    the IF free as well, notes came out of tune; README, bundled14).
    ``real_figures``: [B, 2] of the real notes' audio (``RealData.figures``).
    """
    heard = torch.stack([fake[:, 0], fake[:, 1].detach()], dim=1)
    made = loudness_and_brightness(spectrogram_to_audio(heard, rep, SAMPLE_RATE), SAMPLE_RATE)
    level_mse, bright_mse = (made - real_figures).square().mean(dim=0)
    return {
        "loss": weights[0] * level_mse + weights[1] * bright_mse,
        "level_mse": level_mse,
        "bright_mse": bright_mse,
    }
