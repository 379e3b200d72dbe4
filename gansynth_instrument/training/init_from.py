"""``train --init-from MODEL.onnx|RUN_DIR``: a new run that starts from trained generator weights.

Why: so extra CPU hours add to a model that shipped instead of starting from zero. An exported
model holds the EMA generator only, folded for inference (``graph.stored_weights`` unfolds it),
and only the to_rgb layers its progress reads; a run dir holds the raw generator and its EMA.
The new run starts at the source's image count, so its schedule goes on where the source was,
with a fresh optimiser.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from gansynth_instrument.errors import GansynthError, TrainingError
from gansynth_instrument.export.checkpoint import read_checkpoint
from gansynth_instrument.export.graph import (
    GeneratorConfig,
    check_weights,
    lod_weights,
    stored_weights,
    weight_name,
)
from gansynth_instrument.model.metadata import ModelInfo
from gansynth_instrument.training.networks import Generator
from gansynth_instrument.training.run_state import STATE_PT


@dataclass(frozen=True)
class Initial:
    """Generator weights (stored form, by Magenta name) and where the source had got to."""

    path: Path
    generator: dict[str, np.ndarray]
    ema: dict[str, np.ndarray]
    images: int
    progress: float
    timbres: dict[str, list[float]] | None  # dataset instrument → latent; None: not recorded


def read_initial(path: Path, config: GeneratorConfig) -> Initial:
    """The weights in ``path`` (an exported .onnx or a train dir), checked against ``config``.

    Raises TrainingError, one line naming ``path`` and what does not fit.
    """
    if not path.exists():
        raise TrainingError(f"{path}: no such model file or train dir")
    initial = _from_run(path, config) if path.is_dir() else _from_model(path, config)
    try:
        check_weights(initial.ema, config, partial=True)
        check_weights(initial.generator, config, partial=True)
    except ValueError as err:
        raise TrainingError(f"{path}: does not fit the config: {err}") from None
    return initial


def _from_model(path: Path, config: GeneratorConfig) -> Initial:
    try:
        model = onnx.load(str(path))
    except Exception as err:  # protobuf raises DecodeError, ValueError...
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise TrainingError(f"{path}: not an ONNX model ({first})") from None
    try:
        info = ModelInfo.from_props({p.key: p.value for p in model.metadata_props}, str(path))
    except GansynthError as err:
        raise TrainingError(str(err)) from None
    if info.latent_size != config.latent_size:
        raise TrainingError(
            f"{path}: does not fit the config: latent size {info.latent_size}, "
            f"the config's is {config.latent_size}"
        )
    if info.pitches != config.pitches:
        raise TrainingError(
            f"{path}: does not fit the config: pitches {info.pitches[0]}..{info.pitches[-1]} "
            f"({len(info.pitches)}), the dataset's are {config.pitches[0]}..{config.pitches[-1]} "
            f"({len(config.pitches)})"
        )
    try:
        weights = stored_weights(model, config)
    except ValueError as err:
        raise TrainingError(f"{path}: does not fit the config: {err}") from None
    timbres = {t.instrument: list(t.latent) for t in info.timbres} if info.timbres else None
    return Initial(path, weights, weights, info.source_step, info.progress, timbres)


def _from_run(path: Path, config: GeneratorConfig) -> Initial:
    """The run's EMA as ``export`` reads it, and its raw generator from the resume state."""
    try:
        checkpoint = read_checkpoint(path)
    except GansynthError as err:
        raise TrainingError(str(err)) from None
    state_path = path / STATE_PT
    try:
        state = torch.load(state_path, map_location="cpu", weights_only=False)
        raw = Generator(checkpoint.config)
        raw.load_state_dict(state["generator"])
    except (OSError, RuntimeError, KeyError, EOFError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise TrainingError(f"{state_path}: cannot read the generator from it ({first})") from None
    if checkpoint.config.pitches != config.pitches:
        raise TrainingError(
            f"{path}: does not fit the config: its pitches differ from the dataset's"
        )
    timbres = {name: list(z) for name, z in checkpoint.timbres.items()} or None
    return Initial(
        path,
        raw.magenta_weights(),
        checkpoint.weights,
        checkpoint.step,
        checkpoint.progress,
        timbres,
    )


def apply_initial(
    initial: Initial, generator: Generator, ema: Generator, num_blocks: int, progress: float
) -> None:
    """Load ``initial`` into a new run's networks, which start at ``num_blocks``/``progress``.

    Raises TrainingError when that stage reads a layer the source does not hold (an export
    leaves out the to_rgb layers its own progress does not read).
    """
    needed = [
        name
        for b, alpha in enumerate(lod_weights(generator.config.num_blocks, progress), start=1)
        if b <= num_blocks
        for name in _block_names(b, with_rgb=alpha > 0)
    ]
    missing = [n for n in needed if n not in initial.ema]
    if missing:
        raise TrainingError(
            f"{initial.path}: holds the generator at progress {initial.progress:g}, but the run "
            f"would start at progress {progress:g}, which reads '{missing[0]}' that it does not "
            "hold; set trainer_stage_images with --hparams so the run starts where the source was"
        )
    generator.load_magenta_weights(initial.generator)
    ema.load_magenta_weights(initial.ema)


def _block_names(block: int, with_rgb: bool) -> list[str]:
    layers = ("conv0", "conv1", "to_rgb") if with_rgb else ("conv0", "conv1")
    return [weight_name(block, layer, kind) for layer in layers for kind in ("kernel", "bias")]
