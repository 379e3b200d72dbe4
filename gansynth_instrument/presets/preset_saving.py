"""Saving presets: the one rule for a new preset's name (``name_holder``, ``check_free``), new
presets (``presets new``), copies (``presets save``, rename), atomic saves and deletes.

User presets live in the user presets dir (``preset_files.user_presets_dir``); shipped presets
are read-only. A user preset with a shipped name shadows it (``presets save NAME`` makes such
an editable copy on purpose; ``presets new`` with a shipped name refuses without ``--force``).
Writes go to a temporary name and are renamed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gansynth_instrument.errors import PresetError
from gansynth_instrument.fileio import write_text_atomic
from gansynth_instrument.model.latent import LATENT_SIZE
from gansynth_instrument.model.metadata import ModelInfo
from gansynth_instrument.presets.preset import Preset, preset_between, random_seed
from gansynth_instrument.presets.preset_fields import check_name
from gansynth_instrument.presets.preset_files import (
    PRESET_SUFFIX,
    find_preset,
    make_user_dir,
    names_in,
    shipped_presets_dir,
    user_presets_dir,
)


def save_preset(preset: Preset, directory: Path | None = None) -> Path:
    """Write ``<directory>/<name>.yaml`` atomically (default: the user presets dir); return it."""
    directory = Path(directory) if directory is not None else user_presets_dir()
    if directory.resolve() == shipped_presets_dir().resolve():
        raise PresetError(f"{directory}: the shipped presets are read-only; save to the user dir")
    make_user_dir(directory, "presets")
    return write_text_atomic(directory / f"{preset.name}{PRESET_SUFFIX}", preset.to_yaml())


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
    raise PresetError(f"unknown preset '{name}' (known: {', '.join(names_in([user])) or 'none'})")


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
