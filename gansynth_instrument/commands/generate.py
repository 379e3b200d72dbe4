"""``gansynth-instrument generate``: random or preset notes to WAV files, like gansynth_generate."""

from __future__ import annotations

import argparse

from gansynth_instrument.commands import load_model_from_args, model_info_from_args
from gansynth_instrument.offline.render import generate_notes
from gansynth_instrument.presets.preset_files import find_preset


def run(args: argparse.Namespace) -> int:
    """Prints one line per file written."""
    pitches = list(args.pitch or []) + [int(p) for p in (args.pitches or "").split(",") if p]
    if args.preset is not None:
        # a typo or a preset for another model fails before the model loads
        find_preset(args.preset, model=model_info_from_args(args))
    written = generate_notes(
        load_model_from_args(args),
        args.output_dir,
        count=args.count,
        pitches=pitches or None,
        seed=args.seed,
        preset=args.preset,
        normalize=args.normalize,
    )
    for note in written:
        print(f"wrote {note.path}  pitch {note.pitch}  {note.timbre}")
    return 0
