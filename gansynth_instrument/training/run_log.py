"""What a run shows of itself while it trains: sample notes per stage and ``losses.csv``."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import soundfile
import torch
import torch.nn.functional as F

from gansynth_instrument.fileio import atomic_path
from gansynth_instrument.model import spectral
from gansynth_instrument.training.config import Schedule
from gansynth_instrument.training.networks import upscale
from gansynth_instrument.training.pitch_labels import detect_pitch
from gansynth_instrument.training.run_state import Run

LOSSES_CSV = "losses.csv"
SAMPLE_SEED = 1234
SAMPLE_PITCHES = 6


def write_samples(run: Run, where: Schedule, train_dir: Path) -> str:
    """EMA-generator notes for a fixed latent at a few pitches → samples/stage_NN/*.wav.

    Returns a line naming the folder and how many notes have their fundamental within 30 cents
    of the pitch asked for (YIN): a rough, early view of the figure the model is judged by.
    """
    pitches = run.config.pitches
    spread = np.linspace(0, len(pitches) - 1, SAMPLE_PITCHES).round().astype(int)
    chosen = sorted({pitches[i] for i in spread})
    z = torch.from_numpy(
        np.random.default_rng(SAMPLE_SEED).standard_normal((1, run.config.latent_size))
    ).float()
    labels = torch.tensor([pitches.index(p) for p in chosen])
    device = next(run.ema.parameters()).device
    with torch.no_grad():
        x = run.ema(
            z.expand(len(chosen), -1).to(device),
            F.one_hot(labels, len(pitches)).float().to(device),
            where.progress,
            where.num_blocks,
        )
        x = upscale(x, 2 ** (run.config.num_blocks - where.num_blocks)).cpu().numpy()
    rep = run.config.representation()
    audio = spectral.spectrogram_to_audio(spectral.denormalize(x.transpose(0, 2, 3, 1), rep), rep)
    out = train_dir / "samples" / f"stage_{where.stage:02d}"
    out.mkdir(parents=True, exist_ok=True)
    in_tune = 0
    for pitch, note in zip(chosen, audio, strict=True):
        with atomic_path(out / f"pitch_{pitch:03d}.wav") as tmp:
            soundfile.write(tmp, note / max(1.0, float(np.abs(note).max())), 16000)
        detected = detect_pitch(note)
        in_tune += detected is not None and abs(detected - pitch) <= 0.3
    return f"samples in {out}, {in_tune}/{len(chosen)} within 30 cents of their pitch"


LOSS_FIELDS = (
    "images",
    "stage",
    "progress",
    "images_per_s",
    "d_loss",
    "g_loss",
    "wasserstein",
    "gradient_penalty",
    "drift",
    "d_pitch_ce",
    "g_pitch_ce",
    "loss",
    "mag_mse",
    "if_mse",
    "band_mse",
    "level_mse",
    "bright_mse",
)


class LossLog:
    """Per-interval mean losses appended to losses.csv; rows past a resumed state are dropped."""

    def __init__(self, path: Path, resumed_images: int) -> None:
        self.path = path
        rows = []
        if path.is_file():
            with path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["images"]) <= resumed_images]
        with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, LOSS_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        self.sums: dict[str, float] = {}
        self.steps = 0

    def add(self, losses: dict[str, float]) -> None:
        for key, value in losses.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
        self.steps += 1

    def flush(self, images: int, where: Schedule, images_per_s: float) -> dict[str, float]:
        means = {k: v / max(self.steps, 1) for k, v in self.sums.items()}
        row = {
            "images": images,
            "stage": where.stage,
            "progress": f"{where.progress:.4f}",
            "images_per_s": f"{images_per_s:.2f}",
            **{k: f"{v:.5g}" for k, v in means.items()},
        }
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, LOSS_FIELDS).writerow(row)
        self.sums, self.steps = {}, 0
        return means
