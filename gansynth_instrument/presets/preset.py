"""Presets: a named timbre plus gain and envelope, as a small YAML file a musician can read and
edit (``preset_yaml`` reads and writes it, ``preset_files`` finds and saves it).

A preset names its timbre either by a seed (``random_latent(seed)``: compact, the same sound
forever) or by an explicit latent vector (what ``presets new --between`` writes). Files are
untrusted (people share them), so ``Preset`` validates every field when made
(``preset_fields``): a bad value is a ``PresetError`` naming the file and the field.

A preset's ``program`` is the General MIDI program it stands for, and its ``bank`` the bank
select (CC0) value that reaches it (0, the GM bank, by default). The shipped trained presets sit
on their GM programs in bank 0, their soft variants on the same programs in bank 1. Banks
(``banks.py``) and drum kits (``kits.py``) name presets.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from gansynth_instrument.errors import PresetError
from gansynth_instrument.model.latent import LATENT_SIZE, random_latent, slerp
from gansynth_instrument.model.metadata import FAMILY_PATTERN
from gansynth_instrument.notes.timbre import blend_settings
from gansynth_instrument.presets.preset_fields import (
    BANK_RANGE,
    GAIN_DB_RANGE,
    PROGRAM_RANGE,
    check_int,
    check_known,
    check_name,
    check_range,
    is_float32,
    is_number,
)
from gansynth_instrument.presets.preset_yaml import dump_yaml

SEED_MAX = 2**32 - 1  # NumPy's RandomState seed range
ATTACK_S_RANGE = (0.0, 4.0)  # a note lasts 4 s; a longer attack never reaches full level
RELEASE_S_RANGE = (0.0, 10.0)

_PRESET_KEYS = (
    "name",
    "description",
    "seed",
    "latent",
    "model",
    "gain_db",
    "attack_s",
    "release_s",
    "program",
    "bank",
    "loop",
)


@dataclass(frozen=True)
class Preset:
    """A timbre (exactly one of ``seed`` / ``latent``) with gain and envelope, validated when made.

    ``model`` is what an explicit latent was made for (``ModelInfo.preset_model``: the model's
    family, else its digest): a latent means a timbre only to the model it was found on. None
    for a seed preset (a random draw suits every model) and for an explicit latent of unknown
    origin (older files: it suits any model whose latent has its length).

    ``path`` is where it was read from (None for one built in code); it only feeds error messages
    and the shipped/user distinction, and takes no part in equality.
    """

    name: str
    seed: int | None
    latent: tuple[float, ...] | None
    gain_db: float = 0.0
    attack_s: float = 0.01
    release_s: float = 0.3
    program: int | None = None
    description: str = ""
    loop: bool = False
    bank: int = 0  # the bank select (CC0) value that reaches ``program``
    model: str | None = None
    path: Path | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        where = self.where
        check_name(where, self.name)
        if (self.seed is None) == (self.latent is None):
            raise PresetError(f"{where}: needs exactly one of the fields 'seed' and 'latent'")
        if self.seed is not None:
            check_int(where, "seed", self.seed, (0, SEED_MAX))
            object.__setattr__(self, "seed", int(self.seed))
        if self.latent is not None:
            if isinstance(self.latent, (str, bytes)) or not isinstance(self.latent, Iterable):
                raise PresetError(f"{where}: field 'latent': expected a list of numbers")
            values = list(self.latent)
            for i, v in enumerate(values):
                if not is_float32(v):
                    raise PresetError(
                        f"{where}: field 'latent': item {i} is {v!r}, not a finite float32"
                    )
            if not values or not any(values):
                raise PresetError(f"{where}: field 'latent': needs at least one non-zero value")
            # Held as exact float32 values, so a preset equals itself after a save and a load.
            object.__setattr__(self, "latent", tuple(float(np.float32(v)) for v in values))
        if self.model is not None:
            if self.seed is not None:
                raise PresetError(
                    f"{where}: field 'model': a seed suits every model; only a 'latent' names one"
                )
            if not isinstance(self.model, str) or not FAMILY_PATTERN.fullmatch(self.model):
                raise PresetError(
                    f"{where}: field 'model': {self.model!r} is not a model family or digest"
                )
        check_range(where, "gain_db", self.gain_db, GAIN_DB_RANGE)
        check_range(where, "attack_s", self.attack_s, ATTACK_S_RANGE)
        check_range(where, "release_s", self.release_s, RELEASE_S_RANGE)
        for name in ("gain_db", "attack_s", "release_s"):
            object.__setattr__(self, name, float(getattr(self, name)))
        if self.program is not None:
            check_int(where, "program", self.program, PROGRAM_RANGE)
            object.__setattr__(self, "program", int(self.program))
        check_int(where, "bank", self.bank, BANK_RANGE)
        object.__setattr__(self, "bank", int(self.bank))
        if not isinstance(self.loop, (bool, np.bool_)):
            raise PresetError(f"{where}: field 'loop': expected true or false, got {self.loop!r}")
        object.__setattr__(self, "loop", bool(self.loop))
        if not isinstance(self.description, str):
            raise PresetError(
                f"{where}: field 'description': expected text, got {self.description!r}"
            )

    @property
    def where(self) -> str:
        """What error messages name: the file, or the preset's name when it has no file."""
        return str(self.path) if self.path is not None else f"preset '{self.name}'"

    @property
    def gain_amplitude(self) -> float:
        """``gain_db`` as a linear amplitude factor."""
        return float(10.0 ** (self.gain_db / 20.0))

    def latent_vector(self, latent_size: int = LATENT_SIZE) -> np.ndarray:
        """The timbre as float32 [latent_size]; a wrong-length explicit latent is a PresetError."""
        if self.seed is not None:
            return random_latent(self.seed, latent_size)
        assert self.latent is not None
        if len(self.latent) != latent_size:
            raise PresetError(
                f"{self.where}: field 'latent': {len(self.latent)} values, "
                f"but the model expects {latent_size}"
            )
        return np.asarray(self.latent, dtype=np.float32)

    def misfit(self, model: str, latent_size: int) -> str | None:
        """Why this preset does not suit a model (its ``preset_model`` and latent size), or None
        when it does."""
        if self.latent is None:
            return None
        if self.model is not None and self.model != model:
            return f"made for model '{self.model}', not this model ('{model}')"
        if len(self.latent) != latent_size:
            return f"{len(self.latent)} latent values, but the model expects {latent_size}"
        return None

    def copy(self, **changes: Any) -> Preset:
        """A validated copy with some fields replaced (``name=``, ``gain_db=``, ...); no file."""
        if "seed" in changes and "latent" not in changes:
            changes["latent"] = None
            changes.setdefault("model", None)
        if "latent" in changes and "seed" not in changes:
            changes["seed"] = None
        return replace(self, path=None, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for YAML: only the timbre field in use; float32-exact short latent values."""
        data: dict[str, Any] = {"name": self.name}
        if self.description:
            data["description"] = self.description
        if self.seed is not None:
            data["seed"] = self.seed
        else:
            assert self.latent is not None
            if self.model is not None:
                data["model"] = self.model
            # str(np.float32) is the shortest text that reads back to the same float32.
            data["latent"] = [float(str(np.float32(v))) for v in self.latent]
        data["gain_db"] = self.gain_db
        data["attack_s"] = self.attack_s
        data["release_s"] = self.release_s
        if self.program is not None:
            data["program"] = self.program
        if self.bank:  # written only when set, so bank-0 files stay as they were
            data["bank"] = self.bank
        if self.loop:  # written only when set, so files without a loop stay as they were
            data["loop"] = True
        return data

    @classmethod
    def from_dict(cls, data: object, where: str, path: Path | None = None) -> Preset:
        """Build from parsed YAML; unknown or missing fields are PresetErrors naming ``where``."""
        if not isinstance(data, Mapping):
            raise PresetError(f"{where}: expected a mapping of fields (name: ..., seed: ...)")
        check_known(where, data, _PRESET_KEYS)
        if "name" not in data:
            raise PresetError(f"{where}: field 'name' is missing")
        values = {k: data[k] for k in _PRESET_KEYS if k in data}
        values.setdefault("seed", None)
        values.setdefault("latent", None)
        return cls(**values, path=path)

    def to_yaml(self) -> str:
        """The preset file's text (block style; the latent as one flow list)."""
        header = "# gansynth-instrument preset\n"
        return header + dump_yaml(self.to_dict())


# --- making new presets -------------------------------------------------------------------------


def random_seed() -> int:
    """A fresh seed for ``presets new --random`` (stored, so the sound can be recalled)."""
    return secrets.randbelow(SEED_MAX + 1)


def preset_between(
    name: str, a: Preset, b: Preset, t: float, latent_size: int, model: str | None = None
) -> Preset:
    """A new preset at ``t`` (0 = a, 1 = b) on the slerp path; gain and envelope lerp.

    The timbre is stored as an explicit latent, because a point between two timbres has no seed;
    it records ``model``, the model it is made for.
    """
    if not is_number(t) or not 0.0 <= float(t) <= 1.0:
        raise PresetError(f"--at must be between 0 and 1, got {t}")
    z = slerp(a.latent_vector(latent_size), b.latent_vector(latent_size), float(t))
    gain_db, attack_s, release_s, loop = blend_settings(a, b, float(t))  # as a morph step
    return Preset(
        name=name,
        seed=None,
        latent=tuple(z.tolist()),
        gain_db=round(gain_db, 6),
        attack_s=round(attack_s, 6),
        release_s=round(release_s, 6),
        loop=loop,
        description=f"between {a.name} and {b.name} at {float(t):g}",
        model=model,
    )
