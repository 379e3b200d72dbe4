"""The subcommands, one module each (as mido keeps its scripts apart): each turns the parsed
arguments into plain values for the domain modules and prints what the user should see.
``cli.py`` builds the parser and calls each module's ``run``; no domain module parses arguments
or prints.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gansynth_instrument.live.config import Sounds
    from gansynth_instrument.model.metadata import ModelInfo
    from gansynth_instrument.model.runtime import Model
    from gansynth_instrument.presets.bank import Bank
    from gansynth_instrument.presets.kit import Kit
    from gansynth_instrument.presets.preset import Preset


def model_info_from_args(args: argparse.Namespace) -> ModelInfo:
    """The metadata of the model ``--model`` names (else ``$GANSYNTH_MODEL``, else the bundled
    one), read without starting a backend: what presets and banks are checked against (its own
    timbres, the model presets are made for) before the model loads."""
    from gansynth_instrument.model.runtime import model_path, read_info

    return read_info(model_path(args.model))


def load_model_from_args(args: argparse.Namespace) -> Model:
    """The model the shared model options name (``parsers.options.add_model_options``):
    ``--model`` (else ``$GANSYNTH_MODEL``, else the bundled model) on ``--backend`` with
    ``--threads`` and ``--precision``. Imports onnxruntime: call it once the other arguments are
    checked."""
    from gansynth_instrument.model.runtime import load_model, model_path

    return load_model(
        model_path(args.model), backend=args.backend, threads=args.threads, precision=args.precision
    )


def drums_from_args(
    args: argparse.Namespace, info: ModelInfo | None, bank: Bank | None
) -> tuple[Kit | Preset | None, Bank | None]:
    """(drums, bank) for ``--drums``/``--no-drums``: ``--drums`` names a kit or a preset;
    ``--no-drums`` silences channel 10, the bank's ``drums:`` too; otherwise a bank's
    ``drums:`` decides, and a single preset plays with the default kit, unless it was made for
    another model (then drum notes are skipped with the engine's notice)."""
    from dataclasses import replace

    from gansynth_instrument.errors import PresetError
    from gansynth_instrument.presets.preset_files import DEFAULT_KIT, find_kit_or_preset

    if args.no_drums:
        return None, replace(bank, drums=None, kit=None) if bank is not None else None
    if args.drums:
        return find_kit_or_preset(args.drums, model=info), bank
    if bank is not None:
        return None, bank
    try:
        return find_kit_or_preset(DEFAULT_KIT, model=info), bank
    except PresetError:
        return None, bank


def sounds_from_args(args: argparse.Namespace, info: ModelInfo | None) -> Sounds:
    """What play and render play: ``--preset`` and/or ``--bank`` (neither: the default bank),
    and the drums (``drums_from_args``); presets checked against the model ``info`` describes
    (None: a single preset, read without the model). A bank's notice of the presets it left out
    is printed on stderr."""
    import sys

    from gansynth_instrument.live.config import Sounds
    from gansynth_instrument.presets.bank_files import find_bank
    from gansynth_instrument.presets.preset_files import DEFAULT_BANK, find_kit_or_preset

    preset = find_kit_or_preset(args.preset, model=info) if args.preset else None
    bank = find_bank(args.bank, model=info) if args.bank else None
    if preset is None and bank is None:
        bank = find_bank(DEFAULT_BANK, model=info)
    drums, bank = drums_from_args(args, info, bank)
    if bank is not None and bank.notice:
        print(bank.notice, file=sys.stderr)
    return Sounds(preset, bank, drums, info.preset_model if info is not None else None)
