"""``gansynth-instrument interpolate A B``: notes along the slerp path between two timbres."""

from __future__ import annotations

import argparse

from gansynth_instrument.commands import load_model_from_args
from gansynth_instrument.offline import interpolate
from gansynth_instrument.presets import find_preset


def run(args: argparse.Namespace) -> int:
    """Prints one line per file written."""
    for spec in (args.a, args.b):
        if not spec.isdigit():
            find_preset(spec)  # a typo fails before the model loads
    written = interpolate(
        load_model_from_args(args),
        args.a,
        args.b,
        args.output_dir,
        steps=args.steps,
        pitch=args.pitch,
    )
    for note in written:
        print(f"wrote {note.path}  pitch {note.pitch}  {note.timbre}")
    return 0
