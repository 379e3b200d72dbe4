"""Drum kits: a file under ``kits/`` that gives each drum key a sound the model makes, a
preset's timbre at a pitch, shaped into a hit by a hold and a decay (``note.shape_hit``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gansynth_instrument.errors import PresetError
from gansynth_instrument.presets.preset import Preset
from gansynth_instrument.presets.preset_fields import (
    GAIN_DB_RANGE,
    check_int,
    check_known,
    check_name,
    check_range,
)
from gansynth_instrument.presets.preset_yaml import dump_yaml

KIT_KEY_RANGE = (0, 127)  # a General MIDI kit fills 35-81
KIT_PITCH_RANGE = (0, 127)
HOLD_MS_RANGE = (0.0, 4000.0)  # a note lasts 4 s
DECAY_MS_RANGE = (1.0, 4000.0)
_KIT_KEYS = ("name", "description", "kit")
_SOUND_KEYS = ("preset", "pitch", "hold_ms", "decay_ms", "gain_db")


@dataclass(frozen=True)
class KitSound:
    """One drum key's sound: ``preset``'s timbre at MIDI ``pitch``, as made for ``hold_ms``, then
    decaying to −60 dB over ``decay_ms``, at ``gain_db`` on top of the preset's gain."""

    preset: str
    pitch: int
    decay_ms: float
    hold_ms: float = 0.0
    gain_db: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"preset": self.preset, "pitch": self.pitch}
        if self.hold_ms:
            data["hold_ms"] = self.hold_ms
        data["decay_ms"] = self.decay_ms
        if self.gain_db:
            data["gain_db"] = self.gain_db
        return data


def _check_sound(where: str, key: object, sound: object) -> KitSound:
    """``sound`` (a ``KitSound`` or a parsed mapping) for drum ``key``, validated; the fields
    are named ``kit.KEY.FIELD`` in errors."""
    check_int(where, "kit", key, KIT_KEY_RANGE)
    field_name = f"kit.{key}"
    if isinstance(sound, KitSound):
        sound = sound.to_dict()
    if not isinstance(sound, Mapping):
        raise PresetError(f"{where}: field '{field_name}': expected a mapping (preset:, pitch:)")
    check_known(where, sound, _SOUND_KEYS, field_name)
    for required in ("preset", "pitch", "decay_ms"):
        if required not in sound:
            raise PresetError(f"{where}: field '{field_name}.{required}' is missing")
    check_name(where, sound["preset"], f"{field_name}.preset")
    check_int(where, f"{field_name}.pitch", sound["pitch"], KIT_PITCH_RANGE)
    check_range(where, f"{field_name}.decay_ms", sound["decay_ms"], DECAY_MS_RANGE)
    hold_ms, gain_db = sound.get("hold_ms", 0.0), sound.get("gain_db", 0.0)
    check_range(where, f"{field_name}.hold_ms", hold_ms, HOLD_MS_RANGE)
    check_range(where, f"{field_name}.gain_db", gain_db, GAIN_DB_RANGE)
    return KitSound(
        sound["preset"],
        int(sound["pitch"]),
        float(sound["decay_ms"]),
        float(hold_ms),
        float(gain_db),
    )


@dataclass(frozen=True)
class Kit:
    """A drum kit: MIDI key → ``KitSound``, validated when made (a bad field is a PresetError
    naming the file and ``kit.KEY.FIELD``). Its preset names are checked to resolve when it is
    loaded (``preset_files.load_kit_file``), which keeps the presets found in ``presets``."""

    name: str
    sounds: dict[int, KitSound]
    description: str = ""
    path: Path | None = field(default=None, compare=False, repr=False)
    presets: Mapping[str, Preset] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        where = str(self.path) if self.path is not None else f"kit '{self.name}'"
        check_name(where, self.name)
        if not isinstance(self.sounds, Mapping) or not self.sounds:
            raise PresetError(f"{where}: field 'kit': expected a mapping drum key → sound")
        sounds = {k: _check_sound(where, k, v) for k, v in self.sounds.items()}  # keys checked
        object.__setattr__(self, "sounds", {int(k): sounds[k] for k in sorted(sounds, key=int)})
        if not isinstance(self.description, str):
            raise PresetError(
                f"{where}: field 'description': expected text, got {self.description!r}"
            )

    def preset_names(self) -> list[str]:
        """Every preset the kit plays, each once, in key order."""
        return list(dict.fromkeys(sound.preset for sound in self.sounds.values()))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name}
        if self.description:
            data["description"] = self.description
        data["kit"] = {key: sound.to_dict() for key, sound in self.sounds.items()}
        return data

    @classmethod
    def from_dict(cls, data: object, where: str, path: Path | None = None) -> Kit:
        """Build from parsed YAML; unknown or missing fields are PresetErrors naming ``where``."""
        if not isinstance(data, Mapping):
            raise PresetError(f"{where}: expected a mapping of fields (name:, kit:)")
        check_known(where, data, _KIT_KEYS)
        for required in ("name", "kit"):
            if required not in data:
                raise PresetError(f"{where}: field '{required}' is missing")
        return cls(data["name"], data["kit"], data.get("description", ""), path=path)

    def to_yaml(self) -> str:
        return "# gansynth-instrument drum kit\n" + dump_yaml(self.to_dict())
