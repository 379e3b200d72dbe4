"""``gansynth-instrument train``: GANSynth's recipe in PyTorch, resumable in time-boxed chunks.

The recipe (Magenta's ``mel_prog_hires``, facts in ``shared/docs/magenta-gansynth.md``): IF-mel
spectrograms with the prespecified normaliser, progressive growing from 2×16 to 128×1024 over
stable and transition stages counted in images, WGAN-GP (penalty 10 at slope 1, drift 0.001),
the auxiliary pitch classifier on both sides (weight 10), Adam (lr 8e-4, β 0/0.99), an EMA of
the generator weights (0.999) for inference.

``--objective regression`` (the ``bundled`` config) trains the same generator without the
discriminator, fitting real notes from fixed per-instrument latents (``regression.py``): what
learns pitch within the CPU-hours a 2-core machine has.

The train dir is also an export source: ``experiment.json`` (Magenta's flag names),
``meta.json`` (the pitches) and ``generator_ema.npz`` (EMA generator weights under Magenta's
variable names, plus ``global_step`` = images seen) are what ``gansynth-instrument export``
reads. ``train_state.pt`` holds everything else needed to resume (raw weights, discriminator,
optimisers, random states); ``losses.csv`` and ``samples/stage_NN/*.wav`` show how it goes.

Several GPUs: ``torchrun --nproc_per_node N -m gansynth_instrument train ...`` — one process per
GPU, each with its own batch, gradients averaged with ``torch.distributed.all_reduce`` (NCCL on
GPUs, gloo on CPUs). Not ``DistributedDataParallel``'s wrapper: it does not support the
``torch.autograd.grad`` double backward of the gradient penalty.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import csv
import hashlib
import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import torch
import torch.distributed as dist
import torch.nn.functional as F
from gansynth_export.checkpoint import (
    EMA_SUFFIX,
    EXPERIMENT_JSON,
    GENERATOR_SCOPE,
    MEL_PROG_HIRES,
    magenta_progress,
    stage_lengths,
)
from gansynth_export.checkpoint import TRAINED_NPZ as EMA_NPZ
from gansynth_export.graph import GeneratorConfig, lod_weights
from tqdm import tqdm

from gansynth_instrument import spectral
from gansynth_instrument.dataset import META_JSON, Dataset, detect_pitch, read_dataset
from gansynth_instrument.errors import DatasetError, TrainingError
from gansynth_instrument.fileio import atomic_path, check_writable_dir, write_text_atomic
from gansynth_instrument.memory import keep_freed_memory
from gansynth_instrument.metadata import Representation
from gansynth_instrument.training.init_from import apply_initial, read_initial
from gansynth_instrument.training.networks import Discriminator, Generator, filters_for, upscale
from gansynth_instrument.training.regression import (
    TIMBRES_JSON,
    Sampler,
    read_timbres,
    regression_loss,
    timbre_latents,
)

STATE_PT = "train_state.pt"
LOSSES_CSV = "losses.csv"
SAMPLE_SEED = 1234
SAMPLE_PITCHES = 6

# Magenta's mel_prog_hires + the set_flags values it relies on (experiment.json keys).
FULL: dict[str, Any] = {
    **MEL_PROG_HIRES,
    "g_fn": "specgram",
    "d_fn": "specgram",
    "data_normalizer": "specgrams_prespecified_normalizer",
    "mag_normalizer_a": 0.0661371661726,
    "mag_normalizer_b": 0.113718730221,
    "p_normalizer_a": 0.8,
    "p_normalizer_b": 0.0,
    "audio_length": 64000,
    "sample_rate": 16000,
    "train_time_limit": None,
    "simple_arch": False,
    "scale_mode": "ALL",
    "scale_base": 2,
    "to_rgb_activation": "tanh",
    "kernel_size": 3,
    "batch_size_schedule": [8],
    "generator_learning_rate": 8e-4,
    "discriminator_learning_rate": 8e-4,
    "adam_beta1": 0.0,
    "adam_beta2": 0.99,
    "gradient_penalty_target": 1.0,
    "gradient_penalty_weight": 10.0,
    "real_score_penalty_weight": 0.001,
    "generator_ac_loss_weight": 10.0,
    "discriminator_ac_loss_weight": 10.0,
    "ema_decay": 0.999,
}
CONFIGS: dict[str, dict[str, Any]] = {
    "full": FULL,
    # Widths capped at 32 (433 k generator parameters), bigger batches where images are cheap.
    "cpu": {
        **FULL,
        "fmap_base": 4096,
        "fmap_max": 32,
        "stable_stage_num_images": 20000,
        "transition_stage_num_images": 20000,
        "total_num_images": 260000,
        "batch_size_schedule": [32, 32, 32, 16, 16, 8, 8],
    },
    # The bundled default model: regression (no discriminator, see regression.py), 64 filters
    # at low resolution and 32/16 at the two costly top ones; Adam with momentum (no GAN game).
    # Batches of 4 at every size: what each note's pitch adds to its instrument's average is seen
    # once per note, so pitch is learned per Adam step, not per image. Measured at 16x128 from
    # scratch (928 notes, same CPU time per image): the generated note is the nearest of its
    # instrument's real notes in pitch for 14 % (batch 32), 67 % (batch 8), 88 % (batch 4) after
    # ~30 k images; batch 32 at low sizes left bundled3 ignoring pitch (diagnose_regression.py).
    "bundled": {
        **FULL,
        "trainer_objective": "regression",
        "fmap_base": 2048,
        "fmap_max": 64,
        "stable_stage_num_images": 5000,  # Magenta's flags, overridden by trainer_stage_images
        "transition_stage_num_images": 5000,
        # Images per stage (2x16, ->4x32, 4x32, ..., ->128x1024): 16 k steps of 4 at 16x128,
        # where pitch is learned (bundled5, diagnose_regression.py: a whole tone moved the output
        # 0.21, 0.39, 0.51x as much as the data after 8, 12, 16 k steps), then 2.5 k steps at
        # 32x256 and 1 k at each of the two dear top sizes.
        "trainer_stage_images": [4000] * 4 + [8000, 8000, 64000, 4000, 6000, 2000, 2000, 2000],
        "total_num_images": 400000,
        "batch_size_schedule": [4],
        "generator_learning_rate": 1e-3,
        "adam_beta1": 0.9,
        "ema_decay": 0.995,
        "trainer_bf16": True,
        "trainer_pitch_gain": 16.0,
        "trainer_band_loss_weight": 0.0,  # regression.band_power; > 0 for level and brightness
    },
    # For tests: 4 filters, two images per stage, every stage reached in seconds.
    "tiny": {
        **FULL,
        "fmap_base": 512,
        "fmap_max": 4,
        "latent_vector_size": 8,
        "stable_stage_num_images": 2,
        "transition_stage_num_images": 2,
        "total_num_images": 26,
        "batch_size_schedule": [2],
    },
}


@dataclass(frozen=True)
class Schedule:
    """Where ``images`` seen puts the run: Magenta's stage, its blocks and LOD progress."""

    stage: int
    num_blocks: int
    progress: float
    batch_size: int


def schedule_at(hp: dict[str, Any], images: int) -> Schedule:
    """Stage ``2k`` is stable with k+1 blocks, ``2k+1`` fades block k+2 in; the last runs on."""
    blocks = int(hp["num_resolutions"])
    stage = int(np.searchsorted(np.cumsum(stage_lengths(hp)), images, side="right"))
    num_blocks = min((stage + 1) // 2 + 1, blocks)
    sizes = list(hp["batch_size_schedule"])
    return Schedule(
        stage=stage,
        num_blocks=num_blocks,
        progress=magenta_progress(hp, blocks, images, 0.0),
        batch_size=int(sizes[min(num_blocks - 1, len(sizes) - 1)]),
    )


def generator_config(hp: dict[str, Any], pitches: tuple[int, ...]) -> GeneratorConfig:
    filters = filters_for(
        int(hp["fmap_base"]),
        float(hp["fmap_decay"]),
        int(hp["fmap_max"]),
        int(hp["num_resolutions"]),
    )
    if min(filters) < 1:
        raise TrainingError(f"fmap_base/fmap_max give a block with no filters: {list(filters)}")
    scale = 2 ** (int(hp["num_resolutions"]) - 1)
    if (int(hp["start_height"]) * scale, int(hp["start_width"]) * scale) != (128, 1024):
        raise TrainingError(
            "start_height/start_width/num_resolutions must reach 128×1024 (the only size the "
            "runtime plays: 4 s of Magenta's hi-freq-res IF-mel)"
        )
    return GeneratorConfig(
        latent_size=int(hp["latent_vector_size"]),
        pitches=pitches,
        start_height=int(hp["start_height"]),
        start_width=int(hp["start_width"]),
        filters=filters[1:],
        kernel_size=int(hp["kernel_size"]),
        normalizer_a=(float(hp["mag_normalizer_a"]), float(hp["p_normalizer_a"])),
        normalizer_b=(float(hp["mag_normalizer_b"]), float(hp["p_normalizer_b"])),
    )


def representation(config: GeneratorConfig) -> Representation:
    frames, bins = config.resolution
    return Representation(
        frames=frames,
        bins=bins,
        mag_normalizer_a=config.normalizer_a[0],
        mag_normalizer_b=config.normalizer_b[0],
        p_normalizer_a=config.normalizer_a[1],
        p_normalizer_b=config.normalizer_b[1],
    )


# ---------------------------------------------------------------------------------------------
# Real data


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

    def _cache(self, data: Dataset, cache_dir: Path) -> np.ndarray:
        rep = representation(self.config)
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


# ---------------------------------------------------------------------------------------------
# Run state


@dataclass
class Run:
    hp: dict[str, Any]
    config: GeneratorConfig
    generator: Generator
    ema: Generator
    discriminator: Discriminator | None  # None for the regression objective
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer | None
    images: int = 0
    train_s: float = 0.0

    @property
    def regression(self) -> bool:
        return self.hp.get("trainer_objective", "gan") == "regression"


def _new_run(hp: dict[str, Any], pitches: tuple[int, ...], seed: int) -> Run:
    config = generator_config(hp, pitches)
    torch.manual_seed(seed)
    generator = Generator(config)
    betas = (float(hp["adam_beta1"]), float(hp["adam_beta2"]))
    discriminator = opt_d = None
    if hp.get("trainer_objective", "gan") != "regression":
        filters_0 = filters_for(
            int(hp["fmap_base"]), float(hp["fmap_decay"]), int(hp["fmap_max"]), 0
        )[0]
        discriminator = Discriminator(config, filters_0)
        opt_d = torch.optim.Adam(
            discriminator.parameters(), lr=float(hp["discriminator_learning_rate"]), betas=betas
        )
    gain = float(hp.get("trainer_pitch_gain", 1.0))
    if gain != 1.0:
        with torch.no_grad():
            block_1 = generator.blocks["progressive_gan_block_1"]["conv0"].kernel
            block_1[:, :, config.latent_size :] *= gain  # see _pitch_rows
    return Run(
        hp=hp,
        config=config,
        generator=generator,
        ema=copy.deepcopy(generator).requires_grad_(False),
        discriminator=discriminator,
        opt_g=torch.optim.Adam(
            generator.parameters(), lr=float(hp["generator_learning_rate"]), betas=betas
        ),
        opt_d=opt_d,
    )


def save(run: Run, train_dir: Path, rng: np.random.Generator) -> None:
    """Write the export checkpoint and the resume state, each atomically."""
    ema = {
        GENERATOR_SCOPE + name + EMA_SUFFIX: value
        for name, value in run.ema.magenta_weights().items()
    }
    with atomic_path(train_dir / EMA_NPZ) as tmp, tmp.open("wb") as out:
        np.savez(out, global_step=np.int64(run.images), **ema)
    state = {
        "hparams": run.hp,
        "images": run.images,
        "train_s": run.train_s,
        "generator": run.generator.state_dict(),
        "ema": run.ema.state_dict(),
        "discriminator": None if run.discriminator is None else run.discriminator.state_dict(),
        "opt_g": run.opt_g.state_dict(),
        "opt_d": None if run.opt_d is None else run.opt_d.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": rng.bit_generator.state,
    }
    with atomic_path(train_dir / STATE_PT) as tmp:
        torch.save(state, tmp)


def _resume(train_dir: Path, pitches: tuple[int, ...], rng: np.random.Generator) -> Run:
    path = train_dir / STATE_PT
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        run = _new_run(state["hparams"], pitches, 0)
        run.generator.load_state_dict(state["generator"])
        run.ema.load_state_dict(state["ema"])
        run.opt_g.load_state_dict(state["opt_g"])
        if run.discriminator is not None and run.opt_d is not None:
            run.discriminator.load_state_dict(state["discriminator"])
            run.opt_d.load_state_dict(state["opt_d"])
        torch.set_rng_state(state["torch_rng"])
        rng.bit_generator.state = state["numpy_rng"]
    except (OSError, RuntimeError, KeyError, ValueError, EOFError) as err:
        raise TrainingError(f"{path}: cannot resume from it ({err})") from None
    run.images, run.train_s = int(state["images"]), float(state["train_s"])
    return run


# ---------------------------------------------------------------------------------------------
# One step


def _average_gradients(module: torch.nn.Module, world: int) -> None:
    """Mean of every rank's gradients (one all-reduce of all of them)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    flat = torch.cat([g.flatten() for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def _agree(flag: bool, world: int, device: torch.device) -> bool:
    """True on every rank when it is true on any (ranks must stop at the same step)."""
    if world == 1:
        return flag
    value = torch.tensor([float(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def train_step(
    run: Run,
    real: torch.Tensor,
    labels: torch.Tensor,
    fake_labels: torch.Tensor,
    where: Schedule,
    world: int,
) -> dict[str, float]:
    """One discriminator and one generator update (tfgan's 1:1), then the EMA.

    The generator runs once: its output (and graph) serves the discriminator update detached,
    then the generator update against the updated discriminator, as a second forward pass with
    fresh latents would (measured: 21 % less CPU time per full-resolution step).
    """
    hp, g, d = run.hp, run.generator, run.discriminator
    assert d is not None and run.opt_d is not None
    p, n = where.progress, where.num_blocks
    batch = real.shape[0]
    device = real.device
    one_hot = F.one_hot(fake_labels, len(run.config.pitches)).float()
    generated = g(torch.randn(batch, run.config.latent_size, device=device), one_hot, p, n)
    fake = generated.detach()

    d.requires_grad_(True)
    real_score, real_class = d(real, p, n)
    fake_score, _ = d(fake, p, n)
    mix_t = torch.rand(batch, 1, 1, 1, device=device)
    mix = (real + mix_t * (fake - real)).requires_grad_(True)
    (grad,) = torch.autograd.grad(d(mix, p, n)[0].sum(), mix, create_graph=True)
    slopes = torch.sqrt(grad.square().sum(dim=(1, 2, 3)) + 1e-10)
    target = float(hp["gradient_penalty_target"])
    penalty = ((slopes / target - 1.0) ** 2).mean()
    wasserstein = fake_score.mean() - real_score.mean()
    drift = real_score.square().mean()
    d_ac = F.cross_entropy(real_class, labels)
    d_loss = (
        wasserstein
        + float(hp["gradient_penalty_weight"]) * penalty
        + float(hp["real_score_penalty_weight"]) * drift
        + float(hp["discriminator_ac_loss_weight"]) * d_ac
    )
    run.opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    if world > 1:
        _average_gradients(d, world)
    run.opt_d.step()

    d.requires_grad_(False)
    fake_score, fake_class = d(generated, p, n)
    g_ac = F.cross_entropy(fake_class, fake_labels)
    g_loss = -fake_score.mean() + float(hp["generator_ac_loss_weight"]) * g_ac
    run.opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    if world > 1:
        _average_gradients(g, world)
    run.opt_g.step()
    _update_ema(run)
    return {
        "d_loss": d_loss.item(),
        "g_loss": g_loss.item(),
        "wasserstein": wasserstein.item(),
        "gradient_penalty": penalty.item(),
        "drift": drift.item(),
        "d_pitch_ce": d_ac.item(),
        "g_pitch_ce": g_ac.item(),
    }


def _update_ema(run: Run) -> None:
    decay = float(run.hp["ema_decay"])
    with torch.no_grad():
        for shadow, param in zip(run.ema.parameters(), run.generator.parameters(), strict=True):
            shadow.lerp_(param, 1.0 - decay)


def regression_step(
    run: Run, real: torch.Tensor, labels: torch.Tensor, z: torch.Tensor, where: Schedule, world: int
) -> dict[str, float]:
    """One generator update towards the real notes (regression.py), then the EMA."""
    one_hot = F.one_hot(labels, len(run.config.pitches)).float()
    with torch.autocast("cpu", torch.bfloat16, enabled=_bf16(run)):
        fake = run.generator(z, one_hot, where.progress, where.num_blocks)
    normalizer = (run.config.normalizer_a[0], run.config.normalizer_b[0])
    band_weight = float(run.hp.get("trainer_band_loss_weight", 0.0))
    losses = regression_loss(fake.float(), real, normalizer, band_weight)
    run.opt_g.zero_grad(set_to_none=True)
    losses["loss"].backward()
    if world > 1:
        _average_gradients(run.generator, world)
    pitch_rows, gain = _pitch_rows(run), float(run.hp.get("trainer_pitch_gain", 1.0))
    before = pitch_rows.detach().clone() if gain != 1.0 else None
    run.opt_g.step()
    if before is not None:
        with torch.no_grad():
            pitch_rows += (gain - 1.0) * (pitch_rows - before)
    _update_ema(run)
    return {k: v.item() for k, v in losses.items()}


def _pitch_rows(run: Run) -> torch.Tensor:
    """Block 1's kernel rows that the one-hot pitch feeds (a view: writes go to the weights).

    The pitch is one input of latent + pitches, after pixel norm as big as one latent value, so
    through N(0, 1) rows it reaches the first layer sqrt(latent) = 16× weaker than the latent as
    a whole, and Adam moves every weight by about the same step. Measured: after 2,600 steps the
    generator ignored pitch (outputs two semitones apart 1.5e-5 MSE apart, timbres 0.05). So a
    regression run gives these rows ``trainer_pitch_gain``× the initial values and steps: the
    same as training ``gain · v`` at the usual rate, the exported weights unchanged in layout.
    """
    kernel = run.generator.blocks["progressive_gan_block_1"]["conv0"].kernel
    return kernel[:, :, run.config.latent_size :]


def _bf16(run: Run) -> bool:
    """bf16 autocast of the CPU forward pass (hparam ``trainer_bf16``, regression only): on the
    2-core AVX-512-bf16 machine, 1.6× more images per CPU-second at 64×512 and 128×1024 than
    float32 (channels_last: no gain); the loss, gradients and weights stay float32."""
    return bool(run.hp.get("trainer_bf16", False)) and not torch.cuda.is_available()


# ---------------------------------------------------------------------------------------------
# Samples and logs


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
    rep = representation(run.config)
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


# ---------------------------------------------------------------------------------------------
# Entry point


@contextlib.contextmanager
def _distributed() -> Iterator[tuple[int, int, torch.device]]:
    """(rank, world size, device) under torchrun; (0, 1, cuda or cpu) otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        yield 0, 1, torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        device = torch.device("cuda", local) if torch.cuda.is_available() else torch.device("cpu")
        yield dist.get_rank(), world, device
    finally:
        dist.destroy_process_group()


# What --hparams may change when resuming: the schedule's lengths and batch sizes, nothing that
# shapes the networks or that the optimiser state depends on.
RESUMABLE_HPARAMS = ("total_num_images", "batch_size_schedule", "trainer_stage_images")


def parse_hparams(text: str | None, base: dict[str, Any]) -> dict[str, Any]:
    """``--hparams`` JSON (Magenta's flag names) checked against ``base``'s keys and types."""
    if not text:
        return {}
    try:
        values = json.loads(text)
    except json.JSONDecodeError as err:
        raise TrainingError(
            f"--hparams: not valid JSON ({err.msg} at column {err.colno})"
        ) from None
    if not isinstance(values, dict):
        raise TrainingError("--hparams: expected a JSON object, e.g. '{\"fmap_max\": 64}'")
    for key, value in values.items():
        if key not in base or key == "seed":
            raise TrainingError(f"--hparams: unknown key '{key}' (known: {', '.join(base)})")
        expected = base[key]
        numbers = (int, float) if isinstance(expected, float) else (type(expected),)
        if isinstance(value, bool) != isinstance(expected, bool) or not isinstance(value, numbers):
            raise TrainingError(
                f"--hparams: '{key}' should be like {json.dumps(expected)}, got {json.dumps(value)}"
            )
        if isinstance(value, list) and not (
            value and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
        ):
            raise TrainingError(f"--hparams: '{key}' needs positive ints: {value}")
        stages = 2 * int(base["num_resolutions"]) - 2
        if key == "trainer_stage_images" and len(value) != stages:
            raise TrainingError(
                f"--hparams: 'trainer_stage_images' needs {stages} counts (every stage but the "
                f"last), got {len(value)}"
            )
    return values


def _start(args: argparse.Namespace, train_dir: Path, data: Dataset, rng: np.random.Generator):
    pitches = tuple(int(p) for p in np.unique(data.pitches))
    if (train_dir / STATE_PT).is_file():
        run = _resume(train_dir, pitches, rng)
        if args.config is not None and args.config != run.hp.get("trainer_config"):
            raise TrainingError(
                f"{train_dir}: holds a run of another config than --config {args.config}; "
                "leave --config out to resume it, or pick a new train dir"
            )
        if args.objective is not None and args.objective != run.hp.get("trainer_objective", "gan"):
            raise TrainingError(
                f"{train_dir}: holds a run with another objective than --objective "
                f"{args.objective}; leave it out to resume, or pick a new train dir"
            )
        if args.init_from is not None:
            raise TrainingError(
                f"{train_dir}: holds a started run; leave --init-from out to resume it, or pick "
                "a new train dir"
            )
        if run.config.pitches != pitches:
            raise TrainingError(f"{args.dataset}: pitches differ from the run in {train_dir}")
        changes = parse_hparams(args.hparams, run.hp)
        fixed = sorted(set(changes) - set(RESUMABLE_HPARAMS))
        if fixed:
            raise TrainingError(
                f"--hparams: {', '.join(fixed)} cannot change in a started run (only "
                f"{', '.join(RESUMABLE_HPARAMS)}); start a new train dir"
            )
        if changes:
            run.hp = {**run.hp, **changes}
            write_text_atomic(train_dir / EXPERIMENT_JSON, json.dumps(run.hp, indent=1) + "\n")
        return run
    if train_dir.is_dir() and any(train_dir.iterdir()):
        raise TrainingError(f"{train_dir}: not empty and holds no {STATE_PT}; pick a new dir")
    name = args.config or "cpu"
    hp = {**CONFIGS[name], "seed": args.seed, "trainer_config": name}
    if args.objective is not None:
        hp["trainer_objective"] = args.objective
    hp.update(parse_hparams(args.hparams, hp))
    run = _new_run(hp, pitches, args.seed)
    timbres = None
    if args.init_from is not None:
        initial = read_initial(Path(args.init_from), run.config)
        run.images = initial.images
        where = schedule_at(hp, run.images)
        apply_initial(initial, run.generator, run.ema, where.num_blocks, where.progress)
        hp["trainer_init_from"] = f"{initial.path} at {initial.images} images"
        timbres = initial.timbres
    check_writable_dir(train_dir, create=True)
    write_text_atomic(train_dir / EXPERIMENT_JSON, json.dumps(hp, indent=1) + "\n")
    write_text_atomic(train_dir / META_JSON, (data.path / META_JSON).read_text(encoding="utf-8"))
    if run.regression:
        names = sorted(set(data.instruments))
        if timbres is None:
            latents = timbre_latents(int(hp["seed"]), len(names), run.config.latent_size)
            timbres = {n: [float(v) for v in latents[i]] for i, n in enumerate(names)}
        missing = sorted(set(names) - set(timbres))
        if missing:
            raise TrainingError(
                f"{args.init_from}: has no timbre for the dataset's instrument '{missing[0]}'"
            )
        write_text_atomic(
            train_dir / TIMBRES_JSON, json.dumps({n: timbres[n] for n in names}) + "\n"
        )
    save(run, train_dir, rng)  # other ranks start from this, and export works from the start
    return run


def run_train(args: argparse.Namespace) -> int:
    """Train (or resume) until total_num_images, --time-limit-min or --stop-after-images."""
    keep_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    train_dir = Path(args.train_dir)
    data = read_dataset(Path(args.dataset))
    if not (data.path / META_JSON).is_file():
        raise DatasetError(f"{data.path}: no {META_JSON}")
    previous = signal.signal(signal.SIGTERM, _interrupt)  # `timeout`, a scheduler: save, stop
    try:
        return _train(args, train_dir, data)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _train(args: argparse.Namespace, train_dir: Path, data: Dataset) -> int:
    with _distributed() as (rank, world, device):
        rng = np.random.default_rng([args.seed, rank])
        run = _start(args, train_dir, data, rng) if rank == 0 else None
        real = RealData(data, run.config, train_dir) if run is not None else None
        if world > 1:
            dist.barrier()  # rank 0 has written the run and the spectrogram cache
            run = run or _resume(train_dir, tuple(int(p) for p in np.unique(data.pitches)), rng)
            real = real or RealData(data, run.config, train_dir)
            rng = np.random.default_rng([args.seed, rank, run.images])
        assert run is not None and real is not None
        for module in (run.generator, run.ema, run.discriminator):
            if module is not None:
                module.to(device)
        if rank == 0:
            where = schedule_at(run.hp, run.images)
            threads = f", {torch.get_num_threads()} threads" if device.type == "cpu" else ""
            print(
                f"{train_dir}: config {run.hp.get('trainer_config', '?')}, "
                f"{len(real.labels)} notes, {len(run.config.pitches)} pitches, "
                f"{'starting' if run.images == 0 else 'resuming at'} {run.images} of "
                f"{run.hp['total_num_images']} images (stage {where.stage}), {world} × {device}"
                f"{threads}"
            )
        sampler = None
        if run.regression:
            sampler = Sampler(data.instruments, read_timbres(train_dir, data.instruments))
        return _loop(args, run, real, sampler, train_dir, rng, rank, world, device)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _loop(
    args,
    run: Run,
    real: RealData,
    sampler: Sampler | None,
    train_dir: Path,
    rng,
    rank,
    world,
    device,
) -> int:
    total = int(run.hp["total_num_images"])
    stop_at = min(total, args.stop_after_images or total)
    log = LossLog(train_dir / LOSSES_CSV, run.images) if rank == 0 else None
    deadline = None if args.time_limit_min is None else time.monotonic() + 60 * args.time_limit_min
    next_save = time.monotonic() + 60 * args.checkpoint_every_min
    last_log, images_at_log = time.monotonic(), run.images
    bar = tqdm(total=stop_at, initial=run.images, unit="img", disable=rank != 0, delay=1.0)
    where = schedule_at(run.hp, run.images)
    reason = "done"
    try:
        while run.images < stop_at:
            started = time.monotonic()
            if sampler is not None:
                rows, z = sampler.batch(rng, where.batch_size)
                order = np.argsort(rows, kind="stable")  # RealData.batch reads rows sorted
                x, labels = real.batch(rows[order], where)
                losses = regression_step(
                    run, x.to(device), labels.to(device), z[order].to(device), where, world
                )
            else:
                rows = rng.integers(0, len(real.labels), where.batch_size)
                x, labels = real.batch(rows, where)
                fake_labels = real.labels[rng.integers(0, len(real.labels), where.batch_size)]
                losses = train_step(
                    run, x.to(device), labels.to(device), fake_labels.to(device), where, world
                )
            run.images += where.batch_size * world
            run.train_s += time.monotonic() - started
            bar.update(where.batch_size * world)
            if log is not None:
                log.add(losses)
            now = time.monotonic()
            after = schedule_at(run.hp, run.images)
            stage_done = after.stage != where.stage
            if log is not None and (now - last_log > 30 or stage_done or run.images >= stop_at):
                rate = (run.images - images_at_log) / max(now - last_log, 1e-9)
                means = log.flush(run.images, where, rate)
                shown = ("loss",) if sampler is not None else ("d_loss", "g_loss")
                bar.set_postfix(
                    stage=where.stage, **{k: f"{means[k]:.3g}" for k in shown}, refresh=False
                )
                last_log, images_at_log = now, run.images
            if rank == 0 and stage_done:
                samples = write_samples(run, where, train_dir)
                save(run, train_dir, rng)
                bar.write(f"stage {where.stage} done at {run.images} images: {samples}")
                next_save = time.monotonic() + 60 * args.checkpoint_every_min
            elif rank == 0 and now > next_save:
                save(run, train_dir, rng)
                next_save = now + 60 * args.checkpoint_every_min
            where = after
            if _agree(deadline is not None and now > deadline, world, device):
                reason = f"time limit ({args.time_limit_min:g} min)"
                break
    except KeyboardInterrupt:
        reason = "interrupted"
    finally:
        bar.close()
    if rank == 0:
        if run.images >= total:
            print(write_samples(run, where, train_dir))
        save(run, train_dir, rng)
        status = "finished" if run.images >= total else "stopped; run the same command to go on"
        print(
            f"{train_dir}: {reason}, {run.images} of {total} images, stage {where.stage} "
            f"(progress {where.progress:g}), {run.train_s / 60:.1f} min of training in all; "
            f"{status}. Export: gansynth-instrument export {train_dir} -o model.onnx"
        )
    return 130 if reason == "interrupted" else 0
