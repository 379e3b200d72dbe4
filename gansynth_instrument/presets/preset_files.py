"""Where presets and kits live, and finding them: lookup by name or path, and listing.

Lookup order for a name: an explicit path (anything ending in .yaml/.yml or holding a "/"), then
the user presets dir (``<platformdirs user data dir>/presets``), then, given the model that will
play (``model=``, its ``ModelInfo``), the timbres the model carries in its metadata (as a
soundfont carries its presets, ``timbre_preset`` being the one way a timbre becomes a preset),
then the shipped ``presets/`` folder. Given the model, a preset made for another one
(``Preset.misfit``) is a one-line error when asked for by name, and is skipped in a bank with one
notice (``Bank.notice``). A user file that cannot be read costs that file alone: listings and
banks skip it (one warning line each in ``Bank.notice``; ``scan_presets`` and
``bank_files.scan_banks`` say why), and only asking for it by name fails.

A user preset hides a shipped one of its name; shipped presets are read-only. Banks live in a
``banks/`` subfolder of either presets dir (``bank_files``); saving is ``preset_saving``'s. Drum
kits live in a ``kits/`` subfolder: ``--drums`` and a bank's ``drums:`` name a kit, or else a
preset (``find_kit_or_preset``); the shipped default kit is ``DEFAULT_KIT``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs

from gansynth_instrument.errors import PresetError
from gansynth_instrument.model.metadata import ModelInfo, ModelTimbre
from gansynth_instrument.notes.timbre import Timbre
from gansynth_instrument.presets.bank import Bank
from gansynth_instrument.presets.kit import Kit
from gansynth_instrument.presets.preset import Preset
from gansynth_instrument.presets.preset_yaml import read_yaml

APP_NAME = "gansynth-instrument"
PRESET_SUFFIX = ".yaml"
KITS_SUBDIR = "kits"
DEFAULT_BANK = "default"  # play and render without --preset: program changes, the mod-wheel morph
DEFAULT_KIT = "gm-kit"  # channel 10 with a single preset (the default bank names it too)


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


def search_dirs(user_dir: Path | None) -> list[Path]:
    """The presets dirs in lookup order: the user's (``user_dir``, default
    ``user_presets_dir()``), then the shipped one; banks and kits are subfolders of each."""
    return [user_dir if user_dir is not None else user_presets_dir(), shipped_presets_dir()]


def looks_like_path(name_or_path: str | Path) -> bool:
    """Whether a name on the command line means a file (a ``Path``, a "/", a YAML suffix)."""
    text = str(name_or_path)
    return isinstance(name_or_path, Path) or "/" in text or text.endswith((".yaml", ".yml"))


def load_preset_file(path: Path) -> Preset:
    """Read and validate one preset file."""
    path = Path(path)
    return Preset.from_dict(read_yaml(path), str(path), path)


def broken_notice(reason: str) -> str:
    """The one warning line for a user file that is skipped (``reason`` names the file)."""
    return f"warning: skipped a broken file: {reason}"


def misfit(preset: Preset, model: ModelInfo | None) -> str | None:
    """Why ``preset`` does not suit ``model`` (``Preset.misfit``), None when it does or no model
    is given."""
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


def names_in(directories: Iterable[Path]) -> list[str]:
    """The names of the (not hidden) YAML files in ``directories``, sorted, for "known:" lists."""
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
    reason = misfit(preset, model)
    if reason is not None:
        raise PresetError(f"{preset.where}: {reason}")
    return preset


def lookup_preset(
    name_or_path: str | Path, *, user_dir: Path | None = None, model: ModelInfo | None = None
) -> Preset:
    """``find_preset``'s preset, whichever model it suits (``presets show`` shows any)."""
    if looks_like_path(name_or_path):
        return load_preset_file(Path(name_or_path))
    name = str(name_or_path)
    user, shipped = search_dirs(user_dir)
    candidate = user / f"{name}{PRESET_SUFFIX}"
    if candidate.is_file():
        return _load_named(candidate, name)
    own = {p.name: p for p in model_presets(model)} if model is not None else {}
    if name in own:
        return own[name]
    candidate = shipped / f"{name}{PRESET_SUFFIX}"
    if candidate.is_file():
        return _load_named(candidate, name)
    known = ", ".join(sorted({*names_in([user, shipped]), *own})) or "none"
    raise PresetError(f"unknown preset '{name}' (known: {known})")


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
        reason = misfit(preset, model)
        if reason is not None:
            return f"its preset {name} was {reason}"
    return None


def kit_file(name: str, user_dir: Path | None) -> Path | None:
    """The kit file ``name`` stands for (the user's over the shipped one), None if no kit."""
    for d in search_dirs(user_dir):
        candidate = d / KITS_SUBDIR / f"{name}{PRESET_SUFFIX}"
        if candidate.is_file():
            return candidate
    return None


def lookup_kit(
    name_or_path: str | Path, *, user_dir: Path | None = None, model: ModelInfo | None = None
) -> Kit:
    """A kit by file path, or by name from ``<user dir>/kits``, then the shipped kits, whichever
    model it suits."""
    if looks_like_path(name_or_path):
        return load_kit_file(Path(name_or_path), user_dir=user_dir, model=model)
    path = kit_file(str(name_or_path), user_dir)
    if path is None:
        known = ", ".join(names_in(d / KITS_SUBDIR for d in search_dirs(user_dir))) or "none"
        raise PresetError(f"unknown kit '{name_or_path}' (known: {known})")
    return load_kit_file(path, user_dir=user_dir, model=model)


def find_kit_or_preset(
    name_or_path: str | Path, *, user_dir: Path | None = None, model: ModelInfo | None = None
) -> Kit | Preset:
    """What ``--drums`` (or ``--preset``) names: a kit (a file with a ``kit:`` table, or a name
    in ``kits/``), else a preset (``find_preset``; as the drums it plays every key at its own
    pitch). Given ``model``, one that does not suit it is a PresetError naming its file."""
    if looks_like_path(name_or_path):
        data = read_yaml(Path(name_or_path))
        is_kit = isinstance(data, Mapping) and "kit" in data
    else:
        is_kit = kit_file(str(name_or_path), user_dir) is not None
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
    user, shipped = search_dirs(user_dir)
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


def is_shipped(item: Preset | Bank) -> bool:
    """Whether it was read from the shipped (read-only) folder."""
    if item.path is None:
        return False
    return shipped_presets_dir() in item.path.resolve().parents


def make_user_dir(directory: Path, what: str) -> None:
    """Create a user folder, or one clear line saying why it cannot be."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PresetError(
            f"{directory}: cannot create the {what} folder ({err.strerror})"
        ) from None
