"""The dataset's notes as the trainer reads them: normalised IF-mel spectrograms at each stage's
size, blended like Magenta's real images."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from gansynth_instrument.errors import TrainingError
from gansynth_instrument.export.graph import GeneratorConfig, lod_weights
from gansynth_instrument.fileio import atomic_path
from gansynth_instrument.model import spectral
from gansynth_instrument.training.config import Schedule
from gansynth_instrument.training.dataset import SAMPLE_RATE, Dataset
from gansynth_instrument.training.networks import upscale
from gansynth_instrument.training.synthesis import loudness_and_brightness


class RealData:
    """The dataset's notes as normalised IF-mel spectrograms, pooled to each stage's size.

    Full-size spectrograms are computed once (Magenta's forward transform) into a float16 cache
    in the train dir, reused on resume; each smaller size is pooled from it once when its stage
    starts and kept in memory.
    """

    def __init__(self, data: Dataset, config: GeneratorConfig, cache_dir: Path) -> None:
        self.config = config
        self.labels = torch.from_numpy(
            np.searchsorted(np.array(config.pitches), data.pitches).astype(np.int64)
        )
        self.full = self._cache(data, cache_dir)
        self.levels: dict[int, torch.Tensor] = {}
        self.data = data
        self._figures: dict[int, torch.Tensor] = {}

    def _cache(self, data: Dataset, cache_dir: Path) -> np.ndarray:
        rep = self.config.representation()
        index = (data.path / "index.json").read_bytes()
        digest = hashlib.sha256(index + repr(rep).encode()).hexdigest()[:16]
        path = cache_dir / f"spectrograms-{digest}.npy"
        shape = (len(data.pitches), 2, rep.frames, rep.bins)
        if not path.is_file():
            with atomic_path(path) as tmp:
                out = np.lib.format.open_memmap(tmp, "w+", np.float16, shape)
                chunk = 16
                for start in tqdm(
                    range(0, shape[0], chunk), desc="spectrograms", unit="chunk", delay=1.0
                ):
                    rows = range(start, min(start + chunk, shape[0]))
                    audio = np.stack([data.note(r) for r in rows])
                    spec = spectral.normalize(spectral.audio_to_spectrogram(audio, rep), rep)
                    out[start : start + len(rows)] = spec.transpose(0, 3, 1, 2)
                out.flush()
                del out
            for old in cache_dir.glob("spectrograms-*.npy"):
                if old != path:
                    old.unlink()
        cached = np.load(path, mmap_mode="r")
        if cached.shape != shape:
            raise TrainingError(f"{path}: shape {cached.shape}, expected {shape}; delete it")
        return cached

    def level(self, num_blocks: int) -> torch.Tensor | np.ndarray:
        factor = 2 ** (self.config.num_blocks - num_blocks)
        if factor == 1:
            return self.full
        if factor not in self.levels:
            parts = [
                F.avg_pool2d(torch.from_numpy(self.full[s : s + 64].astype(np.float32)), factor)
                for s in range(0, len(self.full), 64)
            ]
            self.levels = {factor: torch.cat(parts)}  # only the current size is kept
        return self.levels[factor]

    def figures(self, rows: np.ndarray) -> torch.Tensor:
        """[B, 2]: the notes' audio level and brightness (``synthesis.loudness_and_brightness``),
        each worked out the first time its row is drawn."""
        for row in set(rows.tolist()) - self._figures.keys():
            audio = torch.from_numpy(self.data.note(row))[None]
            self._figures[row] = loudness_and_brightness(audio, SAMPLE_RATE)[0]
        return torch.stack([self._figures[row] for row in rows.tolist()])

    def batch(self, rows: np.ndarray, where: Schedule) -> tuple[torch.Tensor, torch.Tensor]:
        """Real images at the stage's size, blended like Magenta's ``blend_images``."""
        level = self.level(where.num_blocks)
        if isinstance(level, np.ndarray):
            x = torch.from_numpy(level[np.sort(rows)].astype(np.float32))
            labels = self.labels[np.sort(rows)]
        else:
            x, labels = level[rows], self.labels[rows]
        alphas = lod_weights(self.config.num_blocks, where.progress)
        below = alphas[where.num_blocks - 2] if where.num_blocks > 1 else 0.0
        if below > 0:
            x = (1.0 - below) * x + below * upscale(F.avg_pool2d(x, 2), 2)
        return x, labels
