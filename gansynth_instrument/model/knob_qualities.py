"""What each timbre knob does to the sound, measured on the model, and which way is +.

A knob direction comes out of a PCA (``ganspace.py``) with an arbitrary sign: nothing in the
activations says whether + makes notes brighter or darker, and a model trained again may flip it.
So what a knob does is measured once per model, after its directions are found: a few seeded
latents, each at one of a few pitches, are moved ``ORIENT_OFFSET`` standard deviations to either
side along the knob, and each note pair is compared on a handful of audible qualities. The quality
the knob moves most consistently names it, and the direction is flipped where needed so that +
raises that quality: "knob 2: brighter (+)". Level is not among them: every timbre is levelled by
its middle C's peak (``levels.py``), so a knob cannot make notes louder as heard.

The qualities, each of a whole note at the model's rate (pure NumPy and SciPy):

* ``brightness``: the share of the note's power from 4 kHz up (the top octave GANSynth makes), dB;
* ``noisiness``: spectral flatness (geometric over arithmetic mean of the power, per frame,
  weighted by the frame's power), dB: noise is flat, a harmonic tone is peaky;
* ``thinness``: the spectral centroid, Hz: weight moving up from the low and middle partials;
* ``decay``: seconds from the 10 ms RMS envelope's peak until it is 20 dB below it;
* ``attack``: seconds from the note's start to that peak.

Cost: ``(1 + knobs × 2) × ORIENT_LATENTS`` notes (68 for 8 knobs), in batches with a progress bar.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import signal
from tqdm import tqdm

from gansynth_instrument.model.latent import random_latent

if TYPE_CHECKING:
    from gansynth_instrument.model.runtime import Model

ORIENT_OFFSET = 2.0  # standard deviations from each latent, to either side (see orient)
ORIENT_LATENTS = 4  # seeded latents, each at one pitch of ORIENT_PITCHES in turn
MIN_SHARE = 0.875  # a knob is named for a quality whose changes agree this often (7 in 8)
MIN_T = 2.0  # and whose changes' t statistic reaches this (a rare large change is not enough)
TURN_OFFSET = 2.0  # either side, when a knob's effect is checked over its travel (turned)
ORIENT_PITCHES = (48, 60, 72)  # a few octaves: a knob's name must hold across the keyboard
ORIENT_SEED = 2811  # latents of their own: not the PCA's (seed 0), not a test's
_BATCH = 16
_FRAME = 1024
_ENVELOPE_S = 0.01
_DECAY_DB = 20.0
_BRIGHT_HZ = 4000.0

# Quality → (what + does, what − does).
WORDS: dict[str, tuple[str, str]] = {
    "brightness": ("brighter", "darker"),
    "noisiness": ("noisier", "purer"),
    "thinness": ("thinner", "fuller"),
    "decay": ("longer decay", "shorter decay"),
    "attack": ("slower attack", "faster attack"),
}


def _power_spectrum(audio: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    freqs, power = signal.welch(audio.astype(np.float64), fs=rate, nperseg=_FRAME)
    return freqs, power


def brightness(audio: np.ndarray, rate: int) -> float:
    freqs, power = _power_spectrum(audio, rate)
    return float(10 * np.log10(power[freqs >= _BRIGHT_HZ].sum() / max(power.sum(), 1e-30) + 1e-12))


def noisiness(audio: np.ndarray, rate: int) -> float:
    _, _, spec = signal.stft(audio.astype(np.float64), fs=rate, nperseg=_FRAME)
    power = np.abs(spec[1:]) ** 2 + 1e-20  # without DC
    flatness = np.exp(np.log(power).mean(axis=0)) / power.mean(axis=0)
    weight = power.sum(axis=0)
    return float(10 * np.log10((flatness * weight).sum() / weight.sum()))


def thinness(audio: np.ndarray, rate: int) -> float:
    freqs, power = _power_spectrum(audio, rate)
    return float((freqs * power).sum() / max(power.sum(), 1e-30))


def _envelope_db(audio: np.ndarray, rate: int) -> np.ndarray:
    frame = round(_ENVELOPE_S * rate)
    frames = audio[: len(audio) // frame * frame].astype(np.float64).reshape(-1, frame)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-20)


def decay(audio: np.ndarray, rate: int) -> float:
    level = _envelope_db(audio, rate)
    peak = int(level.argmax())
    below = np.flatnonzero(level[peak:] < level[peak] - _DECAY_DB)
    return float((below[0] if len(below) else len(level) - peak) * _ENVELOPE_S)


def attack(audio: np.ndarray, rate: int) -> float:
    return float(_envelope_db(audio, rate).argmax() * _ENVELOPE_S)


MEASURES: dict[str, Callable[[np.ndarray, int], float]] = {
    "brightness": brightness,
    "noisiness": noisiness,
    "thinness": thinness,
    "decay": decay,
    "attack": attack,
}


@dataclass(frozen=True)
class Orientation:
    """Per knob: ``signs`` (+1 or −1, what to multiply its direction by), ``qualities`` (the
    quality + now raises, "" for none) and ``strengths`` (its changes' t statistic)."""

    signs: tuple[int, ...]
    qualities: tuple[str, ...]
    strengths: tuple[float, ...]


def measure_notes(
    model: Model, jobs: Sequence[tuple[np.ndarray, int]], *, progress: bool = True
) -> dict[str, np.ndarray]:
    """Quality → its value for each (latent, model pitch) of ``jobs``, made in batches."""
    values = {name: np.empty(len(jobs)) for name in MEASURES}
    bar = tqdm(total=len(jobs), desc="timbre knobs (qualities)", unit="note", disable=not progress)
    with bar:
        for start in range(0, len(jobs), _BATCH):
            chunk = jobs[start : start + _BATCH]
            z = np.stack([j[0] for j in chunk]).astype(np.float32)
            notes = model.generate(z, np.array([j[1] for j in chunk], dtype=np.int64))
            for n, note in enumerate(notes):
                for name, measure in MEASURES.items():
                    values[name][start + n] = measure(note, model.sample_rate)
            bar.update(len(chunk))
    return values


def _nearest(model: Model, pitches: Sequence[int]) -> list[int]:
    return [min(model.pitches, key=lambda p, q=q: (abs(p - q), p)) for q in pitches]


def turned(
    model: Model,
    directions: np.ndarray,
    *,
    seeds: Sequence[int],
    pitches: Sequence[int],
    offset: float = TURN_OFFSET,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Quality → [knobs, len(seeds)] changes as each knob turns from −``offset`` to +``offset``
    (unit rows of ``directions``), latent ``random_latent(seeds[i])`` at ``pitches[i %
    len(pitches)]`` (the model's nearest): what a player hears turning it across its travel."""
    near = _nearest(model, pitches)
    latents = [random_latent(seed, model.latent_size).astype(np.float64) for seed in seeds]
    jobs = []  # per knob and latent: the note at +offset, then the one at -offset
    for direction in np.asarray(directions, dtype=np.float64):
        for i, z in enumerate(latents):
            pitch = near[i % len(near)]
            jobs += [(z + offset * direction, pitch), (z - offset * direction, pitch)]
    values = measure_notes(model, jobs, progress=progress)
    shape = (len(directions), len(seeds))
    return {name: (v[0::2] - v[1::2]).reshape(shape) for name, v in values.items()}


def orient(model: Model, directions: np.ndarray, *, progress: bool = True) -> Orientation:
    """Each knob's most consistently moved quality and the sign that makes + raise it (see the
    module docstring). Each of ``ORIENT_LATENTS`` latents of its own is made unmoved and moved
    ``ORIENT_OFFSET`` to either side by each knob: a knob's changes are (+side − unmoved) and
    (unmoved − −side), both halves of its travel, and the same notes whichever sign a direction
    came with. Consistency: the share of changes with the majority's sign, then (between equal
    shares) their mean over its standard error, a t statistic; a quality must reach
    ``MIN_SHARE`` and ``MIN_T`` to name a knob, else the knob keeps the PCA's sign and no name (a
    quality that rises on both sides, say, is no quality of +)."""
    near = _nearest(model, ORIENT_PITCHES)
    seeds = range(ORIENT_SEED, ORIENT_SEED + ORIENT_LATENTS)
    latents = [random_latent(seed, model.latent_size).astype(np.float64) for seed in seeds]
    pitches = [near[i % len(near)] for i in range(len(latents))]
    jobs = list(zip(latents, pitches, strict=True))
    for direction in np.asarray(directions, dtype=np.float64):
        for side in (1.0, -1.0):
            jobs += [(z + side * ORIENT_OFFSET * direction, p) for z, p in jobs[: len(latents)]]
    values = measure_notes(model, jobs, progress=progress)
    n = len(latents)
    signs, qualities, strengths = [], [], []
    for k in range(len(directions)):
        ranked = []
        for name, v in values.items():
            unmoved, plus, minus = (
                v[:n],
                v[n * (2 * k + 1) : n * (2 * k + 2)],
                v[n * (2 * k + 2) : n * (2 * k + 3)],
            )
            row = np.concatenate([plus - unmoved, unmoved - minus])
            t = float(row.mean()) / (float(row.std(ddof=1)) / np.sqrt(len(row)) + 1e-12)
            up, down = float(np.mean(row > 0)), float(np.mean(row < 0))
            sign = 1 if up >= down else -1  # the majority's way; t must agree with it
            ranked.append((max(up, down), sign * t, name, sign))
        share, strength, name, sign = max(ranked)
        if strength < MIN_T or share < MIN_SHARE:
            sign, name = 1, ""
        signs.append(sign)
        qualities.append(name)
        strengths.append(strength)
    return Orientation(tuple(signs), tuple(qualities), tuple(strengths))


def knob_summary(qualities: Sequence[str]) -> str:
    """Every knob's + side in one line: "1 longer decay (+), 2 brighter (+), 5 no single
    quality"; for banners, ``info`` and the page."""
    return ", ".join(
        f"{k + 1} {plus_label(q) or 'no single quality'}" for k, q in enumerate(qualities)
    )


def plus_label(quality: str) -> str:
    """A knob's + side: "brighter (+)"; "" for a knob with no single quality."""
    return f"{WORDS[quality][0]} (+)" if quality else ""


def describe_knob(quality: str, offset: float = 1.0) -> str:
    """What turning a knob of ``quality`` by ``offset`` does: "brighter", "darker" ("" at 0,
    or for a knob with no quality)."""
    if offset == 0 or not quality:
        return ""
    plus, minus = WORDS[quality]
    return plus if offset > 0 else minus
