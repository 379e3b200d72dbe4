"""``gansynth-instrument hallucinate``: the course's hallucination patch, to a WAV file."""

from __future__ import annotations

import argparse

from gansynth_instrument.commands import load_model_from_args
from gansynth_instrument.notes.levels import master_gain
from gansynth_instrument.offline.render import Hallucination, check_output_file, hallucinate


def run(args: argparse.Namespace) -> int:
    """Prints what it wrote."""
    settings = Hallucination(
        note_count=args.notes,
        interp_steps=args.steps,
        spacing_s=args.spacing_s,
        trim=args.trim,
        attack=args.attack,
        sustain=args.sustain,
        release=args.release,
    )
    settings.check()
    master_gain(args.gain_db)
    check_output_file(args.output)  # bad settings or output fail before the model loads
    path, count, duration_s = hallucinate(
        load_model_from_args(args),
        args.output,
        settings,
        pitch=args.pitch,
        seed=args.seed,
        through=args.through or (),
        gain_db=args.gain_db,
    )
    print(f"wrote {path}  {count} notes, {duration_s:.2f} s")
    return 0
