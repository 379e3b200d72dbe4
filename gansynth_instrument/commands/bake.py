"""``gansynth-instrument bake``: presets or a bank as a sample pack (SFZ, DecentSampler,
``.multisample``)."""

from __future__ import annotations

import argparse
import sys

from gansynth_instrument.commands import load_model_from_args, model_info_from_args
from gansynth_instrument.errors import GansynthError
from gansynth_instrument.notes.levels import velocity_exponent
from gansynth_instrument.offline import bake
from gansynth_instrument.presets.bank_files import find_bank
from gansynth_instrument.presets.preset_files import find_preset


def run(args: argparse.Namespace) -> int:
    """Check names and settings before the model loads, bake, and list the files written."""
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    bake.check_settings(formats, args.rate, args.bit_depth, args.output_dir)
    exponent = velocity_exponent(args.velocity_curve)
    info = model_info_from_args(args)
    presets = [find_preset(name, model=info) for name in args.presets]
    bank = find_bank(args.bank, model=info) if args.bank else None
    if bank is not None and bank.notice:
        print(bank.notice, file=sys.stderr)
    if not presets and bank is None:
        raise GansynthError("nothing to bake: name presets or a --bank")
    result = bake.bake(
        load_model_from_args(args),
        args.output_dir,
        presets,
        bank,
        formats=formats,
        rate=args.rate,
        bit_depth=args.bit_depth,
        velocity_exponent=exponent,
        cache_dir=args.cache_dir or bake.DEFAULT_CACHE_DIR,
    )
    for path in result.files:
        print(f"wrote {path}")
    print(f"{result.instruments} instrument(s), {result.samples} samples in {args.output_dir}")
    return 0
