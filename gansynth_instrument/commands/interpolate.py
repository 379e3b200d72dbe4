"""``gansynth-instrument interpolate A B``: notes along the slerp path between two timbres; with
``--grid A B C D`` the 2-D grid between four."""

from __future__ import annotations

import argparse

from gansynth_instrument.commands import load_model_from_args, model_info_from_args
from gansynth_instrument.errors import GansynthError
from gansynth_instrument.notes.levels import master_gain
from gansynth_instrument.offline.render import interpolate, interpolate_grid
from gansynth_instrument.presets.preset_files import find_preset


def run(args: argparse.Namespace) -> int:
    """``interpolate A B`` or ``interpolate --grid A B C D``: prints one line per file written."""
    if args.grid and (args.a or args.b):
        raise GansynthError("interpolate: give either A B, or --grid A B C D, not both")
    if not args.grid and not (args.a and args.b):
        raise GansynthError("interpolate: give two timbres A B, or --grid A B C D")
    specs = [spec for spec in args.grid or [args.a, args.b] if not spec.isdigit()]
    if specs:
        info = model_info_from_args(args)
        for spec in specs:
            find_preset(spec, model=info)  # a typo or a misfit fails before the model loads
    master_gain(args.gain_db)
    if args.grid:
        written = interpolate_grid(
            load_model_from_args(args),
            args.grid,
            args.output_dir,
            size=args.size,
            pitch=args.pitch,
            gain_db=args.gain_db,
        )
    else:
        written = interpolate(
            load_model_from_args(args),
            args.a,
            args.b,
            args.output_dir,
            steps=args.steps,
            pitch=args.pitch,
            gain_db=args.gain_db,
        )
    for note in written:
        print(f"wrote {note.path}  pitch {note.pitch}  {note.timbre}")
    return 0
