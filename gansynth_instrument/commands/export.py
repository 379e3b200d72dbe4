"""``gansynth-instrument export``: a Magenta checkpoint (or ``--random``) to one ONNX model;
prints a one-line summary."""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

from gansynth_instrument.errors import CheckpointError
from gansynth_instrument.export.checkpoint import read_checkpoint
from gansynth_instrument.export.onnx_model import check_output, export_model, random_checkpoint
from gansynth_instrument.model.metadata import FAMILY_PATTERN
from gansynth_instrument.training.timbre_presets import model_timbres


def run(args: argparse.Namespace) -> int | None:
    output = Path(args.output)
    if args.random == bool(args.checkpoint):
        raise CheckpointError("give either a checkpoint path or --random (not both, not neither)")
    if args.family and not FAMILY_PATTERN.fullmatch(args.family):
        raise CheckpointError(
            f"--family {args.family!r} is not a name (1-64 letters, digits, '.', '-' or '_')"
        )
    check_output(output)
    with tqdm(total=2, desc="reading checkpoint", unit="step", leave=False, delay=1.0) as bar:
        if args.random:
            checkpoint = random_checkpoint(args.seed)
        else:
            checkpoint = read_checkpoint(Path(args.checkpoint))
        bar.update()
        bar.set_description("building + writing ONNX", refresh=False)
        timbres = model_timbres(
            checkpoint.timbres, args.timbre_prefix, f"{checkpoint.source.split('/')[0]} run"
        )
        info = export_model(checkpoint, output, timbres, args.family)
        bar.update()
    params = sum(w.size for w in checkpoint.weights.values())
    print(
        f"wrote {output}: {len(info.pitches)} pitches "
        f"({info.pitches[0]}..{info.pitches[-1]}), latent {info.latent_size}, "
        f"step {info.source_step}, progress {info.progress:g}, {params / 1e6:.2f} M parameters "
        f"in the checkpoint's generator, {len(info.timbres)} instrument timbres, "
        f"digest {info.digest}" + (f", family {info.family}" if info.family else "")
    )
    return 0
