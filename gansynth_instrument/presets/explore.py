"""Exploring from the keyboard: a fresh random timbre, and keeping the one playing as a preset.

The course's way of finding sounds is to draw random latents until one is interesting; here one
control draws one, and another saves whatever plays (a preset, a random draw, a morph step or pad
point, knob offsets included) as a user preset under a generated name, so nothing found is lost
to a typo or a closed terminal.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from gansynth_instrument.errors import PresetError
from gansynth_instrument.model.latent import random_latent
from gansynth_instrument.notes.timbre import Timbre
from gansynth_instrument.presets.preset import Preset, random_seed
from gansynth_instrument.presets.preset_files import timbre_preset, user_presets_dir
from gansynth_instrument.presets.preset_saving import name_holder, save_preset

FOUND_PREFIX = "found"
_MAX_SAME_SECOND = 1000


def random_timbre(template: Timbre) -> Timbre:
    """A fresh random timbre (named by its seed) with the level and envelope of ``template``
    (what was playing): only the timbre changes."""
    seed = random_seed()
    return template.with_latent(f"random-{seed}", random_latent(seed, len(template.latent)))


def found_name(user_dir: Path | None = None, now: datetime.datetime | None = None) -> str:
    """``found-YYYYMMDD-HHMMSS`` (local time: when it was found), with ``-2``, ``-3``... when a
    preset holds that name already (``name_holder``)."""
    directory = user_dir if user_dir is not None else user_presets_dir()
    stamp = f"{FOUND_PREFIX}-{(now or datetime.datetime.now()):%Y%m%d-%H%M%S}"
    for n in range(1, _MAX_SAME_SECOND):
        name = stamp if n == 1 else f"{stamp}-{n}"
        if name_holder(name, user_dir=directory) is None:
            return name
    raise PresetError(f"{directory}: {_MAX_SAME_SECOND} presets named {stamp}-N already")


def save_found(
    timbre: Timbre,
    *,
    note: str = "",
    user_dir: Path | None = None,
    now: datetime.datetime | None = None,
    model: str | None = None,
) -> tuple[Preset, Path]:
    """Save what plays as a new user preset named ``found_name()`` (``timbre_preset``). Atomic;
    a full or read-only folder is one error line and no file changes."""
    preset = timbre_preset(timbre, found_name(user_dir, now), note=note, model=model)
    return preset, save_preset(preset, user_dir)
