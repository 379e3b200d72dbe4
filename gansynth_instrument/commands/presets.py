"""``gansynth-instrument presets list|show|new|save|rm``."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np

from gansynth_instrument.errors import ModelError, PresetError
from gansynth_instrument.model.knob_qualities import describe_knob
from gansynth_instrument.model.metadata import ModelInfo
from gansynth_instrument.presets.bank import Bank
from gansynth_instrument.presets.bank_files import find_bank, scan_banks
from gansynth_instrument.presets.knobs import describe, parse_knobs
from gansynth_instrument.presets.preset import Preset
from gansynth_instrument.presets.preset_files import (
    find_preset,
    is_shipped,
    lookup_preset,
    scan_presets,
    shipped_presets_dir,
    user_presets_dir,
)
from gansynth_instrument.presets.preset_saving import create_preset, delete_preset, save_copy

_EDITABLE_FIELDS = ("gain_db", "attack_s", "release_s", "program", "bank", "loop", "description")


def run(args: argparse.Namespace) -> int:
    """``gansynth-instrument presets list|show|new|save|rm``."""
    changes = {k: getattr(args, k) for k in _EDITABLE_FIELDS if getattr(args, k, None) is not None}
    if args.action == "list":
        print(format_listing(model=_model_info(args)))
    elif args.action == "show":
        print(show_text(args.name, bank=args.bank, model=_model_info(args)), end="")
    elif args.action == "new":
        move, note, latent_size, turns = None, "", args.latent_size, []
        if args.knob:
            if args.from_preset is None:
                raise PresetError("presets new: --knob needs --from PRESET (the timbre it turns)")
            move, note, latent_size, turns = _knob_move(args)
        preset, path = create_preset(
            args.name,
            seed=args.seed,
            random=args.random,
            between=tuple(args.between) if args.between else None,
            at=args.at,
            latent_size=latent_size,
            from_preset=args.from_preset,
            move=move,
            move_note=note,
            changes=changes,
            force=args.force,
            model=_model_info(args),
        )
        print(f"wrote {path} ({_timbre_text(preset)})")
        for line in turns:
            print(line)
    elif args.action == "save":
        preset, path = save_copy(
            args.source,
            new_name=args.as_name,
            changes=changes,
            force=args.force,
            model=_model_info(args),
        )
        print(f"wrote {path} ({_timbre_text(preset)})")
    elif args.action == "rm":
        print(f"deleted {delete_preset(args.name)}")
    return 0


def _model_info(args: argparse.Namespace) -> ModelInfo | None:
    """The model whose own timbres join the presets and that presets are checked against:
    ``--model``, else ``$GANSYNTH_MODEL``, else the bundled one; None when there is none at all
    (an install without the bundled model: the preset files alone)."""
    from gansynth_instrument.model.runtime import model_path, read_info

    try:
        path = model_path(args.model)
    except ModelError:
        return None
    return read_info(path)


def _knob_move(
    args: argparse.Namespace,
) -> tuple[Callable[[np.ndarray], np.ndarray], str, int, list[str]]:
    """(latent → latent moved by the ``--knob`` offsets, their description, the model's latent
    size, a line per turned knob saying what it did, as measured on the model: "knob 2 +2.5:
    brighter"). The specs and the source preset are checked before the model loads."""
    from gansynth_instrument.commands import load_model_from_args
    from gansynth_instrument.presets.ganspace import KNOB_COUNT, knob_directions

    offsets = parse_knobs(args.knob, KNOB_COUNT)
    find_preset(args.from_preset, model=_model_info(args))
    model = load_model_from_args(args)
    knobs = knob_directions(model)
    turns = [
        f"knob {k + 1} {offset:+g}: "
        + (describe_knob(knobs.qualities[k], offset) or "no single quality (measured)")
        for k, offset in enumerate(offsets)
        if offset != 0.0
    ]
    move = functools.partial(knobs.move, offsets=offsets)
    return move, describe(offsets), model.latent_size, turns


def _timbre_text(preset: Preset) -> str:
    if preset.seed is not None:
        return f"seed {preset.seed}"
    assert preset.latent is not None
    return f"latent[{len(preset.latent)}]"


def format_listing(*, user_dir: Path | None = None, model: ModelInfo | None = None) -> str:
    """The ``presets list`` table: presets (with ``model``, its own timbres among them, and the
    ones made for another model marked), then banks; a user file that cannot be read is listed
    as broken, with why."""
    lines = []
    if model is not None:
        made_for = f"family {model.family}" if model.family else f"digest {model.digest}"
        lines += [f"model {made_for}: {len(model.timbres)} timbres of its own (where: model)", ""]
    lines.append(
        f"{'preset':<25} {'prog':>5}  {'timbre':<14} {'gain_db':>7}  {'where':<7}  description"
    )
    presets, broken = scan_presets(user_dir=user_dir, model=model)
    for p in presets:
        # Bank select 0 shows the program alone; another bank as BANK:PROGRAM.
        prog = "" if p.program is None else f"{p.bank}:{p.program}" if p.bank else str(p.program)
        where = "model" if p.path is None else "shipped" if is_shipped(p) else "user"
        misfit = None if model is None else p.misfit(model.preset_model, model.latent_size)
        note = f" [not for this model: {misfit}]" if misfit else ""
        lines.append(
            f"{p.name:<25} {prog:>5}  {_timbre_text(p):<14} {p.gain_db:>7.1f}  {where:<7}  "
            f"{p.description}{note}"
        )
    lines += [
        f"{path.stem:<25} {'':>5}  {'broken':<14} {'':>7}  user     {why}"
        for path, why in broken.items()
    ]
    banks, broken_banks = scan_banks(user_dir=user_dir, model=model)
    if banks or broken_banks:
        lines.append("")
        lines.append(f"{'bank':<20} {'programs':>8}  morph (CC, steps: path)")
        for b in banks:
            morph = (
                f"CC{b.morph_cc}, {b.morph_steps}: {' → '.join(b.morph_path)}"
                if b.morph_path
                else "-"
            )
            programs = len(b.programs) + sum(len(v) for v in b.variations.values())
            lines.append(f"{b.name:<20} {programs:>8}  {morph}")
        lines += [f"{path.stem:<20} {'broken':>8}  {why}" for path, why in broken_banks.items()]
    lines.append("")
    lines.append(f"user presets: {user_dir if user_dir is not None else user_presets_dir()}")
    lines.append(f"shipped presets (read-only): {shipped_presets_dir()}")
    return "\n".join(lines)


def show_text(
    name_or_path: str,
    *,
    bank: bool = False,
    user_dir: Path | None = None,
    model: ModelInfo | None = None,
) -> str:
    """The file behind a preset (or bank) exactly as stored, headed by a comment with its path;
    a model's own timbre as the preset file ``presets save`` would write of it."""
    item: Preset | Bank = (
        find_bank(name_or_path, user_dir=user_dir, model=model)
        if bank
        else lookup_preset(name_or_path, user_dir=user_dir, model=model)
    )
    if item.path is None:
        assert isinstance(item, Preset)
        return f"# the model's own timbre (in its metadata)\n{item.to_yaml()}"
    return f"# {item.path}\n" + item.path.read_text(encoding="utf-8")
