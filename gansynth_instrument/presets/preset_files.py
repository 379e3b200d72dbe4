"""Where presets and bank files live: lookup by name or path, listing, and atomic saving.

Lookup order for a name: an explicit path (anything ending in .yaml/.yml or holding a "/"), then
the user presets dir (``<platformdirs user data dir>/presets``), then, given the model that will
play (``model=``, its ``ModelInfo``), the timbres the model carries in its metadata (as a
soundfont carries its presets), then the shipped ``presets/`` folder. Given the model, a preset
made for another one (``Preset.misfit``) is a one-line error when asked for by name, and is
skipped in a bank with one notice (``Bank.notice``). A user file that cannot be read costs that
file alone: listings and banks skip it (one warning line each in ``Bank.notice``; ``scan_presets``
and ``scan_banks`` say why), and only asking for it by name fails.

A user preset with a shipped name shadows it (``presets save NAME`` makes such an editable
copy on purpose; ``presets new`` with a shipped name refuses without ``--force``); shipped presets
are read-only. Banks live in a ``banks/`` subfolder of either presets dir. Writes go to a
temporary name and are renamed. Drum kits live in a ``kits/`` subfolder: ``--drums`` and a
bank's ``drums:`` name a kit, or else a preset (``find_kit_or_preset``); the shipped default
kit is ``DEFAULT_KIT``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs

from gansynth_instrument.errors import PresetError
from gansynth_instrument.fileio import write_text_atomic
from gansynth_instrument.model.latent import LATENT_SIZE
from gansynth_instrument.model.metadata import ModelInfo, ModelTimbre
from gansynth_instrument.notes.timbre import Timbre
from gansynth_instrument.presets.preset import (
    Bank,
    Kit,
    Preset,
    bank_text,
    check_name,
    preset_between,
    random_seed,
)
from gansynth_instrument.presets.preset_yaml import parse_yaml, read_yaml

APP_NAME = "gansynth-instrument"
PRESET_SUFFIX = ".yaml"
BANKS_SUBDIR = "banks"
KITS_SUBDIR = "kits"
DEFAULT_KIT = "gm-kit"  # channel 10 with a single preset (the default bank names it too)
PROGRAMS_FROM_PRESETS = "presets"  # bank files: "programs: presets" = each preset's own number


def user_presets_dir() -> Path:
    """The user's presets folder (made on first save), e.g. ~/.local/share/…/presets."""
    return Path(platformdirs.user_data_dir(APP_NAME)) / "presets"


def shipped_presets_dir() -> Path:
    """The read-only presets shipped with the package.

    In a wheel they are installed as the data package ``gansynth_instrument/shipped_presets``; in a
    source checkout (and an editable install) they are the repository's top-level ``presets/``.
    """
    here = Path(__file__).resolve().parent.parent  # the package folder
    installed = here / "shipped_presets"
    return installed if installed.is_dir() else here.parent / "presets"


def _search_dirs(user_dir: Path | None) -> list[Path]:
    return [user_dir if user_dir is not None else user_presets_dir(), shipped_presets_dir()]


def _looks_like_path(name_or_path: str | Path) -> bool:
    text = str(name_or_path)
    return isinstance(name_or_path, Path) or "/" in text or text.endswith((".yaml", ".yml"))


def load_preset_file(path: Path) -> Preset:
    """Read and validate one preset file."""
    path = Path(path)
    return Preset.from_dict(read_yaml(path), str(path), path)


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
            reason = _misfit(preset, model)
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
    if bank.drums is not None and _kit_file(bank.drums, user_dir) is not None:
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
        reason = _misfit(found[name], model)
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


def broken_notice(reason: str) -> str:
    """The one warning line for a user file that is skipped (``reason`` names the file)."""
    return f"warning: skipped a broken file: {reason}"


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


def _misfit(preset: Preset, model: ModelInfo | None) -> str | None:
    return None if model is None else preset.misfit(model.preset_model, model.latent_size)


def timbre_preset(
    timbre: Timbre | ModelTimbre,
    name: str | None = None,
    *,
    note: str = "",
    model: str | None = None,
) -> Preset:
    """The explicit-latent preset ``name`` (default: the timbre's own name) that plays
    ``timbre``, made for ``model`` (a ``preset_model``: the model its latent means this timbre
    on). What plays (a ``Timbre``) keeps its latent exactly (float32 values, so it reloads to
    bit-identical notes), level and envelope, and the description says where it came from and
    ``note`` (e.g. the knob offsets); a model's own timbre keeps its latent as stored, its
    program, bank and description."""
    fields: dict[str, Any]
    if isinstance(timbre, ModelTimbre):
        fields = {
            "latent": timbre.latent,
            "program": timbre.program,
            "bank": timbre.bank,
            "description": timbre.description,
        }
    else:
        fields = {
            "latent": tuple(np.asarray(timbre.latent, dtype=np.float32).tolist()),
            "gain_db": timbre.gain_db,
            "attack_s": timbre.attack_s,
            "release_s": timbre.release_s,
            "loop": timbre.loop,
            "description": f"from {timbre.name}" + (f", {note}" if note else ""),
        }
    return Preset(name=timbre.name if name is None else name, seed=None, model=model, **fields)


def model_presets(model: ModelInfo) -> list[Preset]:
    """The timbres the model carries, as presets made for it."""
    return [timbre_preset(t, model=model.preset_model or None) for t in model.timbres]


def _load_named(path: Path, name: str) -> Preset:
    preset = load_preset_file(path)
    if preset.name != name:
        raise PresetError(
            f"{path}: field 'name': {preset.name!r} does not match the file name "
            f"(rename the file to {preset.name}{PRESET_SUFFIX} or fix the name)"
        )
    return preset


def _names_in(directories: Iterable[Path]) -> list[str]:
    names: set[str] = set()
    for d in directories:
        if d.is_dir():
            names.update(p.stem for p in d.glob("*" + PRESET_SUFFIX) if not p.name.startswith("."))
    return sorted(names)


def find_preset(
    name_or_path: str | Path, *, user_dir: Path | None = None, model: ModelInfo | None = None
) -> Preset:
    """A preset by file path, or by name from the user dir, the model's own timbres, then the
    shipped presets. Given ``model``, one made for another model is a PresetError naming its
    file and the mismatch."""
    preset = lookup_preset(name_or_path, user_dir=user_dir, model=model)
    reason = _misfit(preset, model)
    if reason is not None:
        raise PresetError(f"{preset.where}: {reason}")
    return preset


def lookup_preset(
    name_or_path: str | Path, *, user_dir: Path | None = None, model: ModelInfo | None = None
) -> Preset:
    """``find_preset``'s preset, whichever model it suits (``presets show`` shows any)."""
    if _looks_like_path(name_or_path):
        return load_preset_file(Path(name_or_path))
    name = str(name_or_path)
    user, shipped = _search_dirs(user_dir)
    candidate = user / f"{name}{PRESET_SUFFIX}"
    if candidate.is_file():
        return _load_named(candidate, name)
    own = {p.name: p for p in model_presets(model)} if model is not None else {}
    if name in own:
        return own[name]
    candidate = shipped / f"{name}{PRESET_SUFFIX}"
    if candidate.is_file():
        return _load_named(candidate, name)
    known = ", ".join(sorted({*_names_in([user, shipped]), *own})) or "none"
    raise PresetError(f"unknown preset '{name}' (known: {known})")


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
    if _looks_like_path(name_or_path):
        return load_bank_file(Path(name_or_path), user_dir=user_dir, model=model)
    name = str(name_or_path)
    dirs = [d / BANKS_SUBDIR for d in _search_dirs(user_dir)]
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
    known = ", ".join(_names_in(dirs)) or "none"
    raise PresetError(f"unknown bank '{name}' (known: {known})")


def load_kit_file(
    path: Path, *, user_dir: Path | None = None, model: ModelInfo | None = None
) -> Kit:
    """Read and validate one kit file, finding every preset it names (kept in ``presets``),
    whichever model they suit (``kit_misfit`` says whether they suit one)."""
    path = Path(path)
    kit = Kit.from_dict(read_yaml(path), str(path), path)
    found: dict[str, Preset] = {}
    for key, sound in kit.sounds.items():
        if sound.preset not in found:
            try:
                found[sound.preset] = lookup_preset(sound.preset, user_dir=user_dir, model=model)
            except PresetError as err:
                raise PresetError(f"{path}: field 'kit.{key}.preset': {err}") from None
    return replace(kit, presets=found)


def kit_misfit(kit: Kit, model: ModelInfo | None) -> str | None:
    """Why ``kit`` does not suit ``model`` (the first of its presets that does not), or None."""
    for name, preset in kit.presets.items():
        reason = _misfit(preset, model)
        if reason is not None:
            return f"its preset {name} was {reason}"
    return None


def _kit_file(name: str, user_dir: Path | None) -> Path | None:
    """The kit file ``name`` stands for (the user's over the shipped one), None if no kit."""
    for d in _search_dirs(user_dir):
        candidate = d / KITS_SUBDIR / f"{name}{PRESET_SUFFIX}"
        if candidate.is_file():
            return candidate
    return None


def lookup_kit(
    name_or_path: str | Path, *, user_dir: Path | None = None, model: ModelInfo | None = None
) -> Kit:
    """A kit by file path, or by name from ``<user dir>/kits``, then the shipped kits, whichever
    model it suits."""
    if _looks_like_path(name_or_path):
        return load_kit_file(Path(name_or_path), user_dir=user_dir, model=model)
    path = _kit_file(str(name_or_path), user_dir)
    if path is None:
        known = ", ".join(_names_in(d / KITS_SUBDIR for d in _search_dirs(user_dir))) or "none"
        raise PresetError(f"unknown kit '{name_or_path}' (known: {known})")
    return load_kit_file(path, user_dir=user_dir, model=model)


def find_kit_or_preset(
    name_or_path: str | Path, *, user_dir: Path | None = None, model: ModelInfo | None = None
) -> Kit | Preset:
    """What ``--drums`` (or ``--preset``) names: a kit (a file with a ``kit:`` table, or a name
    in ``kits/``), else a preset (``find_preset``; as the drums it plays every key at its own
    pitch). Given ``model``, one that does not suit it is a PresetError naming its file."""
    if _looks_like_path(name_or_path):
        data = read_yaml(Path(name_or_path))
        is_kit = isinstance(data, Mapping) and "kit" in data
    else:
        is_kit = _kit_file(str(name_or_path), user_dir) is not None
    if not is_kit:
        return find_preset(name_or_path, user_dir=user_dir, model=model)
    kit = lookup_kit(name_or_path, user_dir=user_dir, model=model)
    reason = kit_misfit(kit, model)
    if reason is not None:
        raise PresetError(f"{kit.path or kit.name}: {reason}")
    return kit


def list_presets(*, user_dir: Path | None = None, model: ModelInfo | None = None) -> list[Preset]:
    """Every preset, sorted by name, whichever model it suits: the user's, the model's own
    timbres, the shipped ones; a name hides the same name further on. A broken user file is
    left out (``scan_presets`` says why)."""
    return scan_presets(user_dir=user_dir, model=model)[0]


def scan_presets(
    *, user_dir: Path | None = None, model: ModelInfo | None = None
) -> tuple[list[Preset], dict[Path, str]]:
    """``list_presets``'s presets, and each user file that cannot be read as one → why (one
    line naming it): a file written by hand or by another version costs that file alone."""
    found: dict[str, Preset] = {}
    broken: dict[Path, str] = {}
    user, shipped = _search_dirs(user_dir)
    _add_files(found, user, broken)
    for preset in model_presets(model) if model is not None else []:
        found.setdefault(preset.name, preset)
    _add_files(found, shipped)
    return [found[name] for name in sorted(found)], broken


def _add_files(
    found: dict[str, Preset], directory: Path, broken: dict[Path, str] | None = None
) -> None:
    """The folder's presets whose names ``found`` lacks (a hidden one is not even read); with
    ``broken``, a file that fails goes there with its error instead of failing the whole."""
    if directory.is_dir():
        for path in sorted(directory.glob("*" + PRESET_SUFFIX)):
            if not path.name.startswith(".") and path.stem not in found:
                try:
                    found[path.stem] = _load_named(path, path.stem)
                except PresetError as err:
                    if broken is None:
                        raise
                    broken[path] = str(err)


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
    for directory in (d / BANKS_SUBDIR for d in _search_dirs(user_dir)):
        for name in _names_in([directory]):
            path = directory / f"{name}{PRESET_SUFFIX}"
            if name not in found:
                try:
                    found[name] = load_bank_file(path, user_dir=user_dir, model=model)
                except PresetError as err:
                    broken[path] = str(err)
    return [found[name] for name in sorted(found)], broken


def is_shipped(item: Preset | Bank) -> bool:
    """Whether it was read from the shipped (read-only) folder."""
    if item.path is None:
        return False
    return shipped_presets_dir() in item.path.resolve().parents


def save_preset(preset: Preset, directory: Path | None = None) -> Path:
    """Write ``<directory>/<name>.yaml`` atomically (default: the user presets dir); return it."""
    directory = Path(directory) if directory is not None else user_presets_dir()
    if directory.resolve() == shipped_presets_dir().resolve():
        raise PresetError(f"{directory}: the shipped presets are read-only; save to the user dir")
    _make_dir(directory, "presets")
    return write_text_atomic(directory / f"{preset.name}{PRESET_SUFFIX}", preset.to_yaml())


def _make_dir(directory: Path, what: str) -> None:
    """Create a user folder, or one clear line saying why it cannot be."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PresetError(
            f"{directory}: cannot create the {what} folder ({err.strerror})"
        ) from None


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
        _make_dir(directory, "banks")
        target = directory / f"{bank.name}{PRESET_SUFFIX}"
        if bank.path is not None:  # the shipped text's comments may name the old controller
            text = f"# Your copy of {bank.path}, saved by {why}.\n" + text
    return write_text_atomic(target, text)


def delete_preset(name: str, *, user_dir: Path | None = None) -> Path:
    """Delete a user preset; returns its path. Shipped presets cannot be deleted."""
    check_name("presets rm", name)
    user = user_dir if user_dir is not None else user_presets_dir()
    target = user / f"{name}{PRESET_SUFFIX}"
    if target.is_file():
        try:
            target.unlink()
        except OSError as err:
            raise PresetError(f"{target}: cannot delete ({err.strerror})") from None
        return target
    shipped = shipped_presets_dir() / f"{name}{PRESET_SUFFIX}"
    if shipped.is_file():
        raise PresetError(
            f"'{name}' is a shipped preset ({shipped}) and read-only; only presets in {user} "
            "can be deleted"
        )
    raise PresetError(f"unknown preset '{name}' (known: {', '.join(_names_in([user])) or 'none'})")


# --- making new presets ---------------------------------------------------------------------------


def user_preset_path(name: str, user_dir: Path | None = None) -> Path:
    """Where the user preset ``name`` is (or would be) saved."""
    return (user_dir if user_dir is not None else user_presets_dir()) / f"{name}{PRESET_SUFFIX}"


def name_holder(name: str, *, user_dir: Path | None = None, shipped: bool = True) -> Path | None:
    """The preset file that holds ``name`` already: the user's, else (``shipped``) the shipped
    one; None when the name is free. The one rule for a new preset's name: every caller that
    saves under a new name (``presets new``/``save``, the browser and OSC, the save button) asks
    here."""
    places = [user_preset_path(name, user_dir)]
    places += [shipped_presets_dir() / f"{name}{PRESET_SUFFIX}"] if shipped else []
    return next((path for path in places if path.is_file()), None)


def check_free(
    where: str,
    name: object,
    *,
    user_dir: Path | None = None,
    keep: Path | None = None,
    shipped: bool = True,
    has_force: bool = False,
) -> str:
    """``name`` as a new user preset's name: valid (``check_name``), and held by no user preset
    (but ``keep``, the file saved in place) and, with ``shipped``, no shipped one (a user preset
    of a shipped name takes its place everywhere). Otherwise one PresetError line, naming
    ``--force`` when the caller has it (``has_force``)."""
    check_name(where, name)
    assert isinstance(name, str)
    holder = name_holder(name, user_dir=user_dir, shipped=shipped)
    if holder is None or (keep is not None and holder.resolve() == keep.resolve()):
        return name
    remedy = "--force to replace it, or choose another name" if has_force else "choose another name"
    if holder.parent.resolve() == shipped_presets_dir().resolve():
        raise PresetError(
            f"{where}: '{name}' is a shipped preset; a new one of that name would take its "
            f"place everywhere ({remedy})"
        )
    raise PresetError(f"{where}: {holder}: a user preset '{name}' exists already ({remedy})")


def create_preset(
    name: str,
    *,
    seed: int | None = None,
    random: bool = False,
    between: tuple[str, str] | None = None,
    at: float = 0.5,
    latent_size: int = LATENT_SIZE,
    from_preset: str | None = None,
    move: Callable[[np.ndarray], np.ndarray] | None = None,
    move_note: str = "",
    changes: Mapping[str, Any] | None = None,
    force: bool = False,
    user_dir: Path | None = None,
    model: ModelInfo | None = None,
) -> tuple[Preset, Path]:
    """``presets new``: from a seed, a random seed, a point between two presets, or another
    preset (``from_preset``) whose latent ``move`` changes (the timbre knobs; ``move_note`` says
    how, in the description); saved.

    For ``between``, an explicit latent in either preset sets the size (else ``latent_size``).
    ``changes`` sets other fields (gain_db, attack_s, release_s, program, loop, description).
    With ``model``, the source presets must suit it, and a new explicit latent records it (else
    the model its sources record, if any).
    """
    if sum((seed is not None, random, between is not None, from_preset is not None)) != 1:
        raise PresetError(
            "presets new: give exactly one of --seed N, --random, --between A B, --from PRESET"
        )
    check_name("presets new", name)
    if not force:
        check_free("presets new", name, user_dir=user_dir, has_force=True)
    if model is not None:
        latent_size = model.latent_size
    if from_preset is not None:
        source = find_preset(from_preset, user_dir=user_dir, model=model)
        preset = source.copy(name=name, program=None, description=f"from {source.name}")
        if move is not None:
            latent = move(source.latent_vector(latent_size))
            note = f", {move_note}" if move_note else ""
            preset = preset.copy(
                latent=tuple(latent.tolist()),
                model=model.preset_model if model is not None else source.model,
                description=f"from {source.name}{note}",
            )
    elif between is not None:
        a, b = (find_preset(n, user_dir=user_dir, model=model) for n in between)
        sizes = {len(p.latent) for p in (a, b) if p.latent is not None}
        if len(sizes) > 1:
            raise PresetError(f"presets new: {a.name} and {b.name} have latents of different sizes")
        made_for = model.preset_model if model is not None else a.model or b.model
        preset = preset_between(name, a, b, at, sizes.pop() if sizes else latent_size, made_for)
    else:
        preset = Preset(name=name, seed=random_seed() if random else seed, latent=None)
    if changes:
        preset = preset.copy(**changes)
    return preset, save_preset(preset, user_dir)


def save_copy(
    source: str,
    *,
    new_name: str | None = None,
    changes: Mapping[str, Any] | None = None,
    force: bool = False,
    user_dir: Path | None = None,
    model: ModelInfo | None = None,
) -> tuple[Preset, Path]:
    """``presets save``: copy a preset (shipped, user, a file, or with ``model`` one of its own
    timbres) to the user dir, renamed or edited; the copy records the model its source does.

    Saving a shipped preset under its own name makes a user copy that shadows it (``presets rm``
    brings the shipped one back); saving a user preset under its own name edits it in place.
    """
    original = find_preset(source, user_dir=user_dir, model=model)
    preset = original.copy(**{**(changes or {}), **({"name": new_name} if new_name else {})})
    if not force:  # a shipped name is fine: the copy shadows it on purpose
        check_free(
            "presets save",
            preset.name,
            user_dir=user_dir,
            keep=original.path,
            shipped=False,
            has_force=True,
        )
    return preset, save_preset(preset, user_dir)
