"""A checkpoint (or random weights) → one self-describing ONNX file, written atomically."""

from __future__ import annotations

from pathlib import Path

import onnx

from gansynth_instrument import __version__
from gansynth_instrument.errors import OutputError
from gansynth_instrument.export.checkpoint import Checkpoint
from gansynth_instrument.export.graph import (
    build_generator,
    graph_digest,
    random_weights,
    released_config,
)
from gansynth_instrument.fileio import atomic_path, check_writable_dir
from gansynth_instrument.model.metadata import ModelInfo, ModelTimbre


def random_checkpoint(seed: int) -> Checkpoint:
    """Released shapes (7.3 M generator parameters), Magenta-style random weights, progress 6."""
    config = released_config()
    return Checkpoint(
        config=config,
        weights=random_weights(config, seed),
        progress=float(config.num_blocks - 1),
        step=0,
        source=f"random weights (seed {seed}, released all_instruments shapes)",
    )


def export_model(
    checkpoint: Checkpoint,
    output: Path,
    timbres: tuple[ModelTimbre, ...] = (),
    family: str = "",
) -> ModelInfo:
    """Build the graph for ``checkpoint``; write it with its ModelInfo (``timbres``: the
    instruments it was trained to play; ``family``: the latent space it shares with the models
    it was trained on from, see ``ModelInfo.family``) atomically to ``output``."""
    model = build_generator(checkpoint.weights, checkpoint.config, checkpoint.progress)
    config = checkpoint.config
    info = ModelInfo(
        latent_size=config.latent_size,
        pitches=config.pitches,
        representation=config.representation(),
        source=checkpoint.source,
        source_step=checkpoint.step,
        progress=checkpoint.progress,
        digest=graph_digest(model),
        exporter_version=__version__,
        timbres=timbres,
        family=family,
    )
    onnx.helper.set_model_props(model, info.to_props())
    with atomic_path(output) as tmp:
        onnx.save_model(model, tmp)
    return info


def check_output(output: Path) -> None:
    """Fail before the slow part if ``output`` cannot be written."""
    if output.is_dir():
        raise OutputError(f"{output}: is a directory; give the .onnx file to write")
    check_writable_dir(output.parent if str(output.parent) else Path("."))
