"""``gansynth-instrument export``: checkpoint (or ``--random``) → one self-describing ONNX file."""

from __future__ import annotations

import argparse
from pathlib import Path

import onnx
from gansynth_export.checkpoint import Checkpoint, read_checkpoint
from gansynth_export.graph import build_generator, graph_digest, random_weights, released_config
from tqdm import tqdm

from gansynth_instrument import __version__
from gansynth_instrument.errors import CheckpointError, OutputError
from gansynth_instrument.fileio import atomic_path, check_writable_dir
from gansynth_instrument.metadata import ModelInfo, ModelTimbre
from gansynth_instrument.training.timbre_presets import model_timbres, shared_programs


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
    checkpoint: Checkpoint, output: Path, timbres: tuple[ModelTimbre, ...] = ()
) -> ModelInfo:
    """Build the graph for ``checkpoint``; write it with its ModelInfo (``timbres``: the
    instruments it was trained to play) atomically to ``output``."""
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
    )
    onnx.helper.set_model_props(model, info.to_props())
    with atomic_path(output) as tmp:
        onnx.save_model(model, tmp)
    return info


def _check_output(output: Path) -> None:
    """Fail before the slow part if ``output`` cannot be written."""
    if output.is_dir():
        raise OutputError(f"{output}: is a directory; give the .onnx file to write")
    check_writable_dir(output.parent if str(output.parent) else Path("."))


def run_export(args: argparse.Namespace) -> int:
    """Entry point of the ``export`` subcommand; prints a one-line summary."""
    output = Path(args.output)
    if args.random == bool(args.checkpoint):
        raise CheckpointError("give either a checkpoint path or --random (not both, not neither)")
    _check_output(output)
    with tqdm(total=2, desc="reading checkpoint", unit="step", leave=False, delay=1.0) as bar:
        if args.random:
            checkpoint = random_checkpoint(args.seed)
        else:
            checkpoint = read_checkpoint(Path(args.checkpoint))
        bar.update()
        bar.set_description("building + writing ONNX", refresh=False)
        timbres = model_timbres(
            checkpoint.timbres,
            args.timbre_prefix,
            f"{checkpoint.source.split('/')[0]} run",
            shared_programs(),
        )
        info = export_model(checkpoint, output, timbres)
        bar.update()
    params = sum(w.size for w in checkpoint.weights.values())
    print(
        f"wrote {output}: {len(info.pitches)} pitches "
        f"({info.pitches[0]}..{info.pitches[-1]}), latent {info.latent_size}, "
        f"step {info.source_step}, progress {info.progress:g}, {params / 1e6:.2f} M parameters "
        f"in the checkpoint's generator, {len(info.timbres)} instrument timbres, "
        f"digest {info.digest}"
    )
    return 0
