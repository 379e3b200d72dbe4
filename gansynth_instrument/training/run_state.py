"""A run's networks, optimisers and counters, and their files: the export checkpoint
(``generator_ema.npz``, Magenta's names) and the resume state (``train_state.pt``)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gansynth_instrument.errors import TrainingError
from gansynth_instrument.export.checkpoint import EMA_SUFFIX, GENERATOR_SCOPE
from gansynth_instrument.export.checkpoint import TRAINED_NPZ as EMA_NPZ
from gansynth_instrument.export.graph import GeneratorConfig
from gansynth_instrument.fileio import atomic_path
from gansynth_instrument.training.config import generator_config
from gansynth_instrument.training.networks import Discriminator, Generator, filters_for

STATE_PT = "train_state.pt"


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


def new_run(hp: dict[str, Any], pitches: tuple[int, ...], seed: int) -> Run:
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
            block_1[:, :, config.latent_size :] *= gain  # see steps.pitch_rows
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


def resume(train_dir: Path, pitches: tuple[int, ...], rng: np.random.Generator) -> Run:
    path = train_dir / STATE_PT
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        run = new_run(state["hparams"], pitches, 0)
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
