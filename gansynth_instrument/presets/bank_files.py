"""Bank files: a bank found by name or path and loaded with the presets it names, listed, and
rewritten when ``play --learn``/``--learn-knob`` binds a controller.

Banks live in a ``banks/`` subfolder of either presets dir (``preset_files``); a user bank
hides the shipped one of its name. Loaded for a model, a bank keeps the presets its names stood
for (``Bank.presets``, read through ``bank_preset``) and leaves out, with one notice line
(``Bank.notice``), the presets that do not suit the model and the user files that cannot be read.
A shipped bank is never rewritten: a learned controller goes to a user copy of it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from gansynth_instrument.errors import PresetError
from gansynth_instrument.fileio import write_text_atomic
from gansynth_instrument.model.metadata import ModelInfo
from gansynth_instrument.presets.bank import Bank, bank_text
from gansynth_instrument.presets.preset import Preset
from gansynth_instrument.presets.preset_files import (
    PRESET_SUFFIX,
    broken_notice,
    find_preset,
    is_shipped,
    kit_file,
    kit_misfit,
    looks_like_path,
    lookup_kit,
    lookup_preset,
    make_user_dir,
    misfit,
    names_in,
    scan_presets,
    search_dirs,
    user_presets_dir,
)
from gansynth_instrument.presets.preset_yaml import parse_yaml, read_yaml

BANKS_SUBDIR = "banks"
PROGRAMS_FROM_PRESETS = "presets"  # bank files: "programs: presets" = each preset's own number


def load_bank_file(
    path: Path, *, user_dir: Path | None = None, model: ModelInfo | None = None
) -> Bank:
    """Read and validate one bank file, finding every preset it names (kept in ``presets``).

    ``programs: presets`` (instead of a mapping) takes each preset's own ``bank`` and ``program``
    fields, so a preset saved with ``--program N`` joins the bank without editing it; with
    ``model``, the model's own timbres join in too. With ``model``, presets that do not suit it
    are left out of the bank, and ``notice`` names them.
    """
    path = Path(path)
    data = read_yaml(path)
    misfits: dict[str, str] = {}
    presets, broken = scan_presets(user_dir=user_dir, model=model)
    if isinstance(data, Mapping) and data.get("programs") == PROGRAMS_FROM_PRESETS:
        fitting = []
        for preset in presets:
            reason = misfit(preset, model)
            if reason is None:
                fitting.append(preset)
            elif preset.program is not None:
                misfits[preset.name] = reason
        banks = programs_from_presets(fitting)
        variations = {b: p for b, p in banks.items() if b != 0}
        data = {**data, "programs": banks.get(0, {}), "variations": variations}
    bank = Bank.from_dict(data, str(path), path)
    found: dict[str, Preset] = {}
    broken_names = {p.stem for p in broken}
    unreadable: set[str] = set()
    kit = None
    if bank.drums is not None and kit_file(bank.drums, user_dir) is not None:
        try:
            kit = lookup_kit(bank.drums, user_dir=user_dir, model=model)
        except PresetError as err:
            raise PresetError(f"{path}: field 'drums': {err}") from None
        reason = kit_misfit(kit, model)
        if reason is not None:
            misfits[kit.name] = reason
        found.update(kit.presets)
    for field_name, name in _references(bank, kit is not None):
        try:
            found[name] = lookup_preset(name, user_dir=user_dir, model=model)
        except PresetError as err:
            if name in broken_names:  # its own notice below says why
                unreadable.add(name)
                continue
            raise PresetError(f"{path}: field '{field_name}': {err}") from None
        reason = misfit(found[name], model)
        if reason is not None:
            misfits[name] = reason
    notices = [broken_notice(reason) for reason in broken.values()]
    if misfits:
        names = sorted(misfits)
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        notices.append(
            f"{path}: skipped {len(names)} preset{'s' if len(names) > 1 else ''} that do not "
            f"suit this model: {shown} ({names[0]}: {misfits[names[0]]})"
        )
    if misfits or unreadable:
        bank = _without(bank, set(misfits) | unreadable)
    bank = replace(bank, kit=kit if bank.drums is not None else None)
    kept = {name: found[name] for name in bank.preset_names()}
    return replace(bank, presets=kept, notice="\n".join(notices))


def _references(bank: Bank, drums_kit: bool) -> list[tuple[str, str]]:
    """(field, preset name) for every name a bank holds, in file order (its drums only when
    they name a preset, not a kit)."""
    refs = [(f"programs.{p}", name) for p, name in sorted(bank.programs.items())]
    for number, programs in bank.variations.items():
        refs += [(f"variations.{number}.{p}", name) for p, name in sorted(programs.items())]
    refs += [("morph.path", name) for name in bank.morph_path]
    refs += [("drums", bank.drums)] if bank.drums is not None and not drums_kit else []
    refs += [("pad.corners", name) for name in bank.pad_corners]
    return refs


def _without(bank: Bank, names: set[str]) -> Bank:
    """The bank with the ``names`` left out: a morph path that keeps fewer than 2 presets, and
    a pad that loses a corner, go whole."""

    def keep(programs: Mapping[int, str]) -> dict[int, str]:
        return {p: name for p, name in programs.items() if name not in names}

    path = tuple(name for name in bank.morph_path if name not in names)
    variations = {b: keep(programs) for b, programs in bank.variations.items()}
    return replace(
        bank,
        programs=keep(bank.programs),
        variations={b: programs for b, programs in variations.items() if programs},
        drums=None if bank.drums in names else bank.drums,
        morph_path=path if len(path) >= 2 else (),
        pad_corners=() if names & set(bank.pad_corners) else bank.pad_corners,
    )


def programs_from_presets(presets: Iterable[Preset]) -> dict[int, dict[int, str]]:
    """Bank → program → preset name from the presets' own ``bank`` and ``program`` fields.

    A user preset takes a number from a model's own timbre, which takes it from a shipped
    preset; two of the same kind on one bank and program are a PresetError naming the second.
    """
    owners: dict[tuple[int, int], Preset] = {}
    for preset in presets:
        if preset.program is None:
            continue
        slot = (preset.bank, preset.program)
        other = owners.get(slot)
        if other is None or _rank(preset) > _rank(other):
            owners[slot] = preset
        elif _rank(preset) == _rank(other):
            where = f"bank {preset.bank} program {preset.program}"
            raise PresetError(f"{preset.where}: field 'program': {where} is also {other.name}'s")
    banks: dict[int, dict[int, str]] = {}
    for number, program in sorted(owners):
        banks.setdefault(number, {})[program] = owners[number, program].name
    return banks


def _rank(preset: Preset) -> int:
    """Which preset holds a program: a user's (2) over a model's own (1, no file) over shipped."""
    return 1 if preset.path is None else 0 if is_shipped(preset) else 2


def bank_preset(bank: Bank, name: str) -> Preset:
    """The preset a bank's name stands for: the one found when the bank was loaded, else (a
    bank built in code) the one ``find_preset`` finds."""
    return bank.presets.get(name) or find_preset(name)


def find_bank(
    name_or_path: str | Path, *, user_dir: Path | None = None, model: ModelInfo | None = None
) -> Bank:
    """A bank by file path, or by name from ``<user dir>/banks``, then the shipped banks; with
    ``model``, made for it (``load_bank_file``). A broken user bank that hides a shipped one of
    its name gives way to it, with the warning in ``notice``."""
    if looks_like_path(name_or_path):
        return load_bank_file(Path(name_or_path), user_dir=user_dir, model=model)
    name = str(name_or_path)
    dirs = [d / BANKS_SUBDIR for d in search_dirs(user_dir)]
    user, shipped = (d / f"{name}{PRESET_SUFFIX}" for d in dirs)
    if user.is_file():
        try:
            return load_bank_file(user, user_dir=user_dir, model=model)
        except PresetError as err:
            if not shipped.is_file():
                raise
            bank = load_bank_file(shipped, user_dir=user_dir, model=model)
            notice = "\n".join(filter(None, [broken_notice(str(err)), bank.notice]))
            return replace(bank, notice=notice)
    if shipped.is_file():
        return load_bank_file(shipped, user_dir=user_dir, model=model)
    known = ", ".join(names_in(dirs)) or "none"
    raise PresetError(f"unknown bank '{name}' (known: {known})")


def list_banks(*, user_dir: Path | None = None, model: ModelInfo | None = None) -> list[Bank]:
    """Every bank, sorted by name; a user bank hides the shipped one of the same name. A bank
    that cannot be loaded is left out (``scan_banks`` says why)."""
    return scan_banks(user_dir=user_dir, model=model)[0]


def scan_banks(
    *, user_dir: Path | None = None, model: ModelInfo | None = None
) -> tuple[list[Bank], dict[Path, str]]:
    """``list_banks``'s banks, and each user bank file that cannot be loaded → why (one line
    naming it); a shipped bank its broken file would hide is listed."""
    found: dict[str, Bank] = {}
    broken: dict[Path, str] = {}
    for directory in (d / BANKS_SUBDIR for d in search_dirs(user_dir)):
        for name in names_in([directory]):
            path = directory / f"{name}{PRESET_SUFFIX}"
            if name not in found:
                try:
                    found[name] = load_bank_file(path, user_dir=user_dir, model=model)
                except PresetError as err:
                    broken[path] = str(err)
    return [found[name] for name in sorted(found)], broken


# A bank file's own "cc:" line with one number (morph's, in block style), so a learned controller
# can be saved without losing the file's comments or its "programs: presets".
_CC_LINE = re.compile(r"^(?P<head>[ \t]+cc:[ \t]*)\d+(?=[ \t]*(#.*)?$)", re.MULTILINE)


def save_morph_cc(bank: Bank, cc: int, *, user_dir: Path | None = None) -> Path:
    """Remember a learned morph controller (``play --learn``): write the bank with ``morph.cc``
    (``_save_bank_change``: the file's text is kept, comments and ``programs: presets``, when only
    its ``cc:`` line needs to change). Atomic; returns the path."""
    if not bank.morph_path:
        raise PresetError(f"bank '{bank.name}' has no morph path, so no morph controller to save")
    why = f"'play --learn' (morph: CC{cc})"
    return _save_bank_change(bank, "morph", {"cc": cc}, why, user_dir=user_dir)


def save_knob_cc(bank: Bank, knob: int, cc: int, *, user_dir: Path | None = None) -> Path:
    """Remember a learned knob controller (``play --learn-knob``): write the bank with
    ``knobs.cc`` (knob 0-based) through ``_save_bank_change`` (the file's comments go;
    ``programs: presets`` stays). Atomic; returns the path."""
    ccs = list(bank.knob_ccs)
    ccs[knob] = cc
    why = f"'play --learn-knob' (knob {knob + 1}: CC{cc})"
    return _save_bank_change(bank, "knobs", {"cc": ccs}, why, user_dir=user_dir)


def _save_bank_change(
    bank: Bank,
    section: str,
    changes: Mapping[str, Any],
    why: str,
    *,
    user_dir: Path | None = None,
) -> Path:
    """The one bank writer: ``bank`` with ``changes`` made in its ``section`` (``morph``,
    ``knobs``), checked as a file is when read, written atomically; ``why`` names what saved it.

    A shipped bank is never modified: the copy goes to the user banks folder under the same name,
    where ``find_bank`` looks first. A user bank, or one read from a path, is rewritten in place,
    keeping the file's own fields (``programs: presets`` stays), and its own text (comments
    included) when changing its one ``cc:`` line gives exactly the intended fields; otherwise the
    fields are written out anew (``bank_text``).
    """
    where = str(bank.path) if bank.path is not None else f"bank '{bank.name}'"
    raw = read_yaml(bank.path) if bank.path is not None else bank.to_dict()
    if not isinstance(raw, Mapping):
        raise PresetError(f"{where}: no longer a mapping of fields; not saved")
    old = raw.get(section) or {}
    if not isinstance(old, Mapping):
        raise PresetError(f"{where}: field '{section}': no longer a mapping; not saved")
    data = {**raw, section: {**old, **changes}}
    Bank.from_dict({**data, "programs": bank.programs}, where, bank.path)  # still valid?
    text = bank_text(data)
    cc = changes.get("cc")
    if bank.path is not None and type(cc) is int:
        edited, count = _CC_LINE.subn(rf"\g<head>{cc}", bank.path.read_text(encoding="utf-8"))
        if count == 1 and parse_yaml(edited) == data:
            text = edited
    if bank.path is not None and not is_shipped(bank):
        target = bank.path
    else:
        directory = (user_dir if user_dir is not None else user_presets_dir()) / BANKS_SUBDIR
        make_user_dir(directory, "banks")
        target = directory / f"{bank.name}{PRESET_SUFFIX}"
        if bank.path is not None:  # the shipped text's comments may name the old controller
            text = f"# Your copy of {bank.path}, saved by {why}.\n" + text
    return write_text_atomic(target, text)
