"""Exploring from the keyboard: a fresh random timbre, and keeping the one playing as a preset.

The course's way of finding sounds is to draw random latents until one is interesting; here one
control draws one, and another saves whatever plays (a preset, a random draw, a morph step or pad
point, knob offsets included) as a user preset under a generated name, so nothing found is lost
to a typo or a closed terminal.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np

from gansynth_instrument.errors import PresetError
from gansynth_instrument.presets import (
    PRESET_SUFFIX,
    Preset,
    random_seed,
    save_preset,
    user_presets_dir,
)

FOUND_PREFIX = "found"
_MAX_SAME_SECOND = 1000


def random_preset(template: Preset) -> Preset:
    """A fresh random timbre (a stored seed, so it can be saved compactly) with the level and
    envelope of ``template`` (what was playing): only the timbre changes."""
    seed = random_seed()
    return template.copy(
        name=f"random-{seed}", seed=seed, program=None, description=f"random draw, seed {seed}"
    )


def found_name(user_dir: Path | None = None, now: datetime.datetime | None = None) -> str:
    """``found-YYYYMMDD-HHMMSS`` (local time: when it was found), with ``-2``, ``-3``... when a
    user preset of that name exists already."""
    directory = user_dir if user_dir is not None else user_presets_dir()
    stamp = f"{FOUND_PREFIX}-{(now or datetime.datetime.now()):%Y%m%d-%H%M%S}"
    for n in range(1, _MAX_SAME_SECOND):
        name = stamp if n == 1 else f"{stamp}-{n}"
        if not (directory / f"{name}{PRESET_SUFFIX}").exists():
            return name
    raise PresetError(f"{directory}: {_MAX_SAME_SECOND} presets named {stamp}-N already")


def save_found(
    template: Preset,
    latent: np.ndarray | None,
    *,
    note: str = "",
    user_dir: Path | None = None,
    now: datetime.datetime | None = None,
) -> tuple[Preset, Path]:
    """Save what plays as a new user preset: ``template``'s level and envelope, and its seed
    when ``latent`` is None (the timbre is the template's own), else ``latent`` exactly (float32
    values, so it reloads to bit-identical notes). ``note`` (e.g. the knob offsets) goes into the
    description. Atomic; a full or read-only folder is one error line and no file changes."""
    name = found_name(user_dir, now)
    description = f"from {template.name}" + (f", {note}" if note else "")
    if latent is None:
        preset = template.copy(name=name, program=None, description=description)
    else:
        values = tuple(np.asarray(latent, dtype=np.float32).tolist())
        preset = template.copy(name=name, latent=values, program=None, description=description)
    return preset, save_preset(preset, user_dir)
