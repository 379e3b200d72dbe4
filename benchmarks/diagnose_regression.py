"""Why a regression run's notes are (un)pitched: the data path, then the generator, per channel.

    python benchmarks/diagnose_regression.py RUN_DIR DATASET [--notes 24] [--seed 1] [--threads 2]
                                             [--pitches LOW HIGH]

1. Round trip without the model: real notes → the trainer's normalised tensors (``RealData``, its
   cache in RUN_DIR) → the runtime's decoding (``spectral.denormalize`` + ``spectrogram_to_audio``):
   pitch (YIN within 30 cents, as ``eval_model.py``) and RMS relative to the original note.
2. The run's EMA generator at its current stage, for the same notes from their instrument's latent:
   per-channel error (IF weighted by loudness as in the loss, next to predicting IF = 0), the
   loudest bins' level error, and decodes mixing real and generated channels.
3. Pitch use: how much the output moves for a whole tone up against how much the real note moves
   (1.0 = as much as the data), the same for another instrument at the same pitch; both at the
   run's current size, the real notes pooled and blended as the trainer feeds them (against
   full-size notes, a low-resolution stage reads near 0 whatever it has learned).

``--pitches LOW HIGH`` draws the notes from those pitches only.

Measured on ``bundled3`` (79 k images): round trip 39/40 pitched; generator IF as good as zeros;
output moves 0.03× as much as the data for a whole tone, 0.56× for another instrument: the
generator ignores pitch (see README, bundled model). On ``bundled5`` (16 k steps of 4 at
16x128): a whole tone 0.51× at 16x128, 0.42× at 32x256, 0.35× at 64x512 (24 notes). On
``bundled9``, ``--pitches 24 30``: real magnitude with generated IF in tune, generated magnitude
with real IF an octave high (the generator drops those notes' fundamentals).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gansynth_instrument.model import spectral
from gansynth_instrument.training import run_state
from gansynth_instrument.training.config import schedule_at
from gansynth_instrument.training.dataset import read_dataset
from gansynth_instrument.training.networks import upscale
from gansynth_instrument.training.pitch_labels import detect_pitch
from gansynth_instrument.training.real_data import RealData
from gansynth_instrument.training.regression import SILENT_MAG, Sampler, timbre_latents

CENTS = 30.0


def score(name: str, audio: np.ndarray, original: np.ndarray, pitches: np.ndarray) -> None:
    detected = [detect_pitch(note) for note in audio]
    errors = [abs(d - p) * 100 for d, p in zip(detected, pitches, strict=True) if d is not None]
    hits = sum(e <= CENTS for e in errors)
    rms = np.sqrt(np.mean(audio**2, axis=1) / np.maximum(np.mean(original**2, axis=1), 1e-20))
    print(f"  {name:24s} pitch {hits:3d}/{len(audio)}  RMS / original: median {np.median(rms):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--notes", type=int, default=24)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pitches", type=int, nargs=2, metavar=("LOW", "HIGH"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = read_dataset(args.dataset)
    pitches = tuple(int(p) for p in np.unique(data.pitches))
    state = torch.load(args.run_dir / run_state.STATE_PT, map_location="cpu", weights_only=False)
    run = run_state.new_run(state["hparams"], pitches, 0)
    run.ema.load_state_dict(state["ema"])
    config, rep = run.config, run.config.representation()
    where = schedule_at(run.hp, int(state["images"]))
    real = RealData(data, config, args.run_dir)
    low, high = args.pitches or (min(pitches), max(pitches))
    among = np.flatnonzero((data.pitches >= low) & (data.pitches <= high))
    if len(among) < args.notes:
        parser.error(f"--pitches {low} {high}: {len(among)} notes, fewer than --notes {args.notes}")
    rows = np.sort(np.random.default_rng(args.seed).choice(among, args.notes, False))
    notes_pitch = data.pitches[rows]
    original = np.stack([data.note(r) for r in rows])

    def real_notes(which: np.ndarray) -> torch.Tensor:
        """The trainer's normalised tensors [B, 2, frames, bins] of dataset rows ``which``."""
        return torch.from_numpy(np.asarray(real.full[which], dtype=np.float32))

    x = real_notes(rows)

    def decode(mag: torch.Tensor, if_: torch.Tensor) -> np.ndarray:
        spec = torch.stack([mag, if_], dim=-1).numpy()
        return spectral.spectrogram_to_audio(spectral.denormalize(spec, rep), rep)

    print(f"1. round trip, {args.notes} notes of {args.dataset} (trainer tensors → runtime decode)")
    score("original", original, original, notes_pitch)
    score("round trip", decode(x[:, 0], x[:, 1]), original, notes_pitch)

    names = sorted(set(data.instruments))
    latents = timbre_latents(int(run.hp["seed"]), len(names), config.latent_size)
    sampler = Sampler(data.instruments, latents)

    def generate(timbres: np.ndarray, labels: torch.Tensor) -> torch.Tensor:
        """The EMA generator's output at the run's current size."""
        one_hot = F.one_hot(labels, len(pitches)).float()
        with torch.no_grad():
            return run.ema(latents[timbres], one_hot, where.progress, where.num_blocks)

    def at_stage(which: np.ndarray) -> torch.Tensor:
        """Real notes ``which`` as the trainer sees them now (pooled, blended), in that order."""
        order = np.argsort(which, kind="stable")
        return real.batch(which[order], where)[0][np.argsort(order)]

    labels = real.labels[rows]
    fake = upscale(
        generate(sampler.timbre[rows], labels), 2 ** (config.num_blocks - where.num_blocks)
    )
    print(f"2. EMA generator at {state['images']} images (stage {where.stage}), same notes")
    loud = ((x[:, 0] - SILENT_MAG) / 1.0).clamp(0, 1)
    mag_mse = (fake[:, 0] - x[:, 0]).square().mean()
    if_mse = (loud * (fake[:, 1] - x[:, 1]).square()).mean()
    print(f"  magnitude MSE {mag_mse:.4f}; IF MSE (loudness-weighted) {if_mse:.4f}, ", end="")
    print(f"predicting IF = 0: {(loud * x[:, 1].square()).mean():.4f}")
    peaks = x[:, 0] >= 0.0
    gap = (fake[:, 0] - x[:, 0])[peaks].mean() / rep.mag_normalizer_a * 10 / np.log(10)
    print(f"  loudest bins ({peaks.float().mean():.1%}): generated {gap:+.1f} dB vs real")
    score("generated", decode(fake[:, 0], fake[:, 1]), original, notes_pitch)
    score("generated mag + real IF", decode(fake[:, 0], x[:, 1]), original, notes_pitch)
    score("real mag + generated IF", decode(x[:, 0], fake[:, 1]), original, notes_pitch)
    score("real mag + IF = 0", decode(x[:, 0], torch.zeros_like(x[:, 1])), original, notes_pitch)

    height, width = at_stage(rows[:1]).shape[2:]
    print(f"3. pitch use at {height}x{width}: output change / data change (1 = as in the data)")
    pitch_ratio, timbre_ratio = [], []
    instrument = sampler.timbre
    for row in rows:
        t, p = instrument[row], data.pitches[row]
        up = np.flatnonzero((instrument == t) & (data.pitches == p + 2))
        other = np.flatnonzero((instrument == (t + 1) % len(names)) & (data.pitches == p))
        if not len(up) or not len(other):
            continue
        pair = np.array([row, up[0], other[0]])
        y = generate(instrument[pair], real.labels[pair])[:, 0]
        r = at_stage(pair)[:, 0]
        pitch_ratio.append(float((y[0] - y[1]).square().mean() / (r[0] - r[1]).square().mean()))
        timbre_ratio.append(float((y[0] - y[2]).square().mean() / (r[0] - r[2]).square().mean()))
    print(f"  a whole tone up: {np.mean(pitch_ratio):.3f}; another instrument: ", end="")
    print(f"{np.mean(timbre_ratio):.3f} ({len(pitch_ratio)} notes)")


if __name__ == "__main__":
    main()
