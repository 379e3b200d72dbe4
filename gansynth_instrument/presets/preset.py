"""Presets (a named timbre plus gain and envelope) and banks (program → preset, and a morph path).

Both are small YAML files a musician can read and edit (``preset_yaml`` reads and writes them,
``preset_files`` finds and saves them). A preset names its timbre either by a seed
(``random_latent(seed)``: compact, the same sound forever) or by an explicit latent vector (what
``presets new --between`` writes). Files are untrusted (people share them), so both value objects
validate every field when made: a bad value is a ``PresetError`` naming the file and the field.

Program numbers follow General MIDI: a preset's ``program`` is the GM program it stands for, and
its ``bank`` the bank select (CC0) value that reaches it (0, the GM bank, by default). The shipped
trained presets sit on their GM programs in bank 0, their soft variants on the same programs in
bank 1. A bank file may name a ``drums:`` kit or preset for channel 10 (GM percussion).

A kit (``Kit``, a file under ``kits/``) gives each drum key a sound the model makes: a preset's
timbre at a pitch, shaped into a hit by a hold and a decay (``note.shape_hit``).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from gansynth_instrument.errors import PresetError
from gansynth_instrument.model.latent import LATENT_SIZE, random_latent, slerp
from gansynth_instrument.model.metadata import FAMILY_PATTERN, NAME_PATTERN
from gansynth_instrument.notes.timbre import blend_settings
from gansynth_instrument.presets.knobs import EXPLORE_CCS, KNOB_CCS
from gansynth_instrument.presets.mpe import MpeSettings
from gansynth_instrument.presets.pad import PAD_CCS, PAD_SIZE, check_ccs, check_size
from gansynth_instrument.presets.preset_yaml import dump_yaml

SEED_MAX = 2**32 - 1  # NumPy's RandomState seed range
GAIN_DB_RANGE = (-60.0, 24.0)
ATTACK_S_RANGE = (0.0, 4.0)  # a note lasts 4 s; a longer attack never reaches full level
RELEASE_S_RANGE = (0.0, 10.0)
PROGRAM_RANGE = (0, 127)
BANK_RANGE = (0, 127)  # bank select MSB (CC0)
# CC 0-119 are controllers; 120-127 are channel-mode messages. 64 is the sustain pedal.
MORPH_CC_RANGE = (0, 119)
RESERVED_CCS = {64: "the sustain pedal"}
MORPH_STEPS_RANGE = (2, 128)
KIT_KEY_RANGE = (0, 127)  # a General MIDI kit fills 35-81
KIT_PITCH_RANGE = (0, 127)
HOLD_MS_RANGE = (0.0, 4000.0)  # a note lasts 4 s
DECAY_MS_RANGE = (1.0, 4000.0)
BANK_HEADER = "# gansynth-instrument bank\n"  # the first line of every bank file written

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
_BANK_KEYS = (
    "name",
    "description",
    "programs",
    "variations",
    "drums",
    "morph",
    "pad",
    "knobs",
    "mpe",
)
_KIT_KEYS = ("name", "description", "kit")
_SOUND_KEYS = ("preset", "pitch", "hold_ms", "decay_ms", "gain_db")
_MORPH_KEYS = ("path", "cc", "steps")
_PAD_KEYS = ("corners", "cc", "size")
_KNOBS_KEYS = ("cc",)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_float32(value: object) -> bool:
    """A finite number float32 can hold: float32 is what the model takes, so a value that
    overflows it (1e39, a 400-digit integer) counts as not finite."""
    if not _is_number(value):
        return False
    try:
        with np.errstate(over="ignore"):
            return bool(np.isfinite(np.float32(value)))  # type: ignore[arg-type]
    except OverflowError:
        return False


def check_name(where: str, value: object, field_name: str = "name") -> None:
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise PresetError(
            f"{where}: field '{field_name}': {value!r} is not a valid name "
            "(1-64 letters, digits, '-' or '_', starting with a letter or digit)"
        )


def _check_known(
    where: str, fields: Mapping[Any, Any], known: tuple[str, ...], parent: str = ""
) -> None:
    """A PresetError naming the first field of ``fields`` (under ``parent``) not in ``known``."""
    unknown = sorted(str(k) for k in fields if k not in known)
    if unknown:
        name = f"{parent}.{unknown[0]}" if parent else unknown[0]
        raise PresetError(f"{where}: unknown field '{name}' (known: {', '.join(known)})")


def _section(
    where: str, data: Mapping[Any, Any], key: str, known: tuple[str, ...]
) -> Mapping[Any, Any]:
    """A file's field ``key``: a mapping of ``known`` fields only ({} when absent or empty)."""
    section = data.get(key) or {}
    if not isinstance(section, Mapping):
        shown = ", ".join(f"{k}:" for k in known)
        raise PresetError(f"{where}: field '{key}': expected a mapping ({shown})")
    _check_known(where, section, known, key)
    return section


def _check_range(where: str, name: str, value: object, bounds: tuple[float, float]) -> None:
    lo, hi = bounds
    if not _is_number(value) or not math.isfinite(float(value)):  # type: ignore[arg-type]
        raise PresetError(f"{where}: field '{name}': expected a number, got {value!r}")
    if not lo <= float(value) <= hi:  # type: ignore[arg-type]
        raise PresetError(f"{where}: field '{name}': {value} is outside {lo:g}..{hi:g}")


def _check_int(where: str, name: str, value: object, bounds: tuple[int, int]) -> None:
    if not _is_int(value):
        raise PresetError(f"{where}: field '{name}': expected an integer, got {value!r}")
    if not bounds[0] <= int(value) <= bounds[1]:  # type: ignore[call-overload]
        raise PresetError(f"{where}: field '{name}': {value} is outside {bounds[0]}..{bounds[1]}")


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
            _check_int(where, "seed", self.seed, (0, SEED_MAX))
            object.__setattr__(self, "seed", int(self.seed))
        if self.latent is not None:
            if isinstance(self.latent, (str, bytes)) or not isinstance(self.latent, Iterable):
                raise PresetError(f"{where}: field 'latent': expected a list of numbers")
            values = list(self.latent)
            for i, v in enumerate(values):
                if not _is_float32(v):
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
        _check_range(where, "gain_db", self.gain_db, GAIN_DB_RANGE)
        _check_range(where, "attack_s", self.attack_s, ATTACK_S_RANGE)
        _check_range(where, "release_s", self.release_s, RELEASE_S_RANGE)
        for name in ("gain_db", "attack_s", "release_s"):
            object.__setattr__(self, name, float(getattr(self, name)))
        if self.program is not None:
            _check_int(where, "program", self.program, PROGRAM_RANGE)
            object.__setattr__(self, "program", int(self.program))
        _check_int(where, "bank", self.bank, BANK_RANGE)
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
        _check_known(where, data, _PRESET_KEYS)
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


def _check_programs(where: str, field_name: str, programs: object) -> None:
    """One bank select's programs (``programs``, or one of ``variations``): program → name."""
    if not isinstance(programs, Mapping):
        raise PresetError(
            f"{where}: field '{field_name}': expected a mapping program → preset name"
        )
    for program, preset_name in programs.items():
        _check_int(where, field_name, program, PROGRAM_RANGE)
        check_name(where, preset_name, f"{field_name}.{program}")


@dataclass(frozen=True)
class Bank:
    """Program numbers → preset names, plus a morph path (≥ 2 preset names, or empty for none)
    and an XY pad (4 corner preset names, or empty for none).

    ``programs`` is bank select 0 (General MIDI's bank); ``variations`` maps other bank select
    (CC0) values to their programs. ``drums`` plays channel 10 (None: its notes are skipped):
    a kit's name (loaded, it is in ``kit``), or a preset's.
    The morph controller ``morph_cc`` moves along ``morph_path`` in ``morph_steps`` steps; the
    pad's controllers ``pad_ccs`` (x, y) move over a ``pad_size``² grid between ``pad_corners``
    (A, B, C, D at (0, 0), (1, 0), (0, 1), (1, 1)). Every name is checked to resolve
    (``find_preset``) when the bank is loaded. ``mpe`` says where an MPE note's slide and
    pressure go (``mpe.MpeSettings``); a target the bank lacks (the morph or a pad axis) is
    refused here.

    A bank loaded for a model (``preset_files.load_bank_file``) holds the presets its names
    stand for in ``presets`` (the model's own timbres have no file to find them by again), and
    in ``notice`` the lines that say which presets it skipped: one for those not suiting the
    model, one warning per broken user file.
    """

    name: str
    programs: dict[int, str]
    morph_path: tuple[str, ...] = ()
    morph_cc: int = 1
    morph_steps: int = 17
    pad_corners: tuple[str, ...] = ()
    pad_ccs: tuple[int, int] = PAD_CCS
    pad_size: int = PAD_SIZE
    knob_ccs: tuple[int, ...] = KNOB_CCS
    description: str = ""
    variations: dict[int, dict[int, str]] = field(default_factory=dict)
    drums: str | None = None
    mpe: MpeSettings = field(default_factory=MpeSettings)
    path: Path | None = field(default=None, compare=False, repr=False)
    presets: Mapping[str, Preset] = field(default_factory=dict, compare=False, repr=False)
    notice: str = field(default="", compare=False, repr=False)
    kit: Kit | None = field(default=None, compare=False, repr=False)  # when ``drums`` is a kit

    def __post_init__(self) -> None:
        where = str(self.path) if self.path is not None else f"bank '{self.name}'"
        check_name(where, self.name)
        _check_programs(where, "programs", self.programs)
        object.__setattr__(self, "programs", dict(self.programs))
        if not isinstance(self.variations, Mapping):
            raise PresetError(f"{where}: field 'variations': expected bank → program → preset")
        for number, programs in self.variations.items():
            _check_int(where, "variations", number, (1, BANK_RANGE[1]))
            _check_programs(where, f"variations.{number}", programs)
        object.__setattr__(
            self, "variations", {b: dict(p) for b, p in sorted(self.variations.items())}
        )
        if self.drums is not None:
            check_name(where, self.drums, "drums")
        if isinstance(self.morph_path, str) or not isinstance(self.morph_path, Iterable):
            raise PresetError(f"{where}: field 'morph.path': expected a list of preset names")
        path_names = tuple(self.morph_path)
        if len(path_names) == 1:
            raise PresetError(f"{where}: field 'morph.path': needs 2 or more presets (or none)")
        for name in path_names:
            check_name(where, name, "morph.path")
        object.__setattr__(self, "morph_path", path_names)
        _check_int(where, "morph.cc", self.morph_cc, MORPH_CC_RANGE)
        if self.morph_cc in RESERVED_CCS:
            raise PresetError(
                f"{where}: field 'morph.cc': CC{self.morph_cc} is {RESERVED_CCS[self.morph_cc]}"
            )
        _check_int(where, "morph.steps", self.morph_steps, MORPH_STEPS_RANGE)
        self._check_knobs(where)
        self._check_pad(where)
        self._check_mpe(where)
        if not isinstance(self.description, str):
            raise PresetError(f"{where}: field 'description': expected text")

    def _check_knobs(self, where: str) -> None:
        ccs = self.knob_ccs
        if isinstance(ccs, (str, bytes)) or not isinstance(ccs, Iterable):
            raise PresetError(f"{where}: field 'knobs.cc': expected a list of {len(KNOB_CCS)} CCs")
        ccs = tuple(ccs)
        if len(ccs) != len(KNOB_CCS):
            raise PresetError(
                f"{where}: field 'knobs.cc': needs {len(KNOB_CCS)} controllers, got {len(ccs)}"
            )
        # Not checked against the morph's: a learned morph may take a knob's CC (it wins there).
        taken = dict(RESERVED_CCS)
        taken.update((cc, what) for what, cc in EXPLORE_CCS.items())
        for i, cc in enumerate(ccs):
            _check_int(where, "knobs.cc", cc, MORPH_CC_RANGE)
            if cc in taken:
                raise PresetError(
                    f"{where}: field 'knobs.cc': knob {i + 1}'s CC{cc} is {taken[cc]}"
                )
            taken[cc] = f"knob {i + 1}'s too"
        object.__setattr__(self, "knob_ccs", ccs)

    def _check_pad(self, where: str) -> None:
        if isinstance(self.pad_corners, str) or not isinstance(self.pad_corners, Iterable):
            raise PresetError(f"{where}: field 'pad.corners': expected a list of 4 preset names")
        corners = tuple(self.pad_corners)
        if corners and len(corners) != 4:
            raise PresetError(
                f"{where}: field 'pad.corners': needs 4 presets (A B C D), got {len(corners)}"
            )
        for name in corners:
            check_name(where, name, "pad.corners")
        object.__setattr__(self, "pad_corners", corners)
        ccs = self.pad_ccs
        if isinstance(ccs, (str, bytes)) or not isinstance(ccs, Iterable) or len(ccs) != 2:
            raise PresetError(f"{where}: field 'pad.cc': expected two controllers [x, y]")
        if not corners:
            return  # no pad: its controllers stay free for other uses
        taken = dict(RESERVED_CCS)
        taken.update((cc, f"knob {i + 1}") for i, cc in enumerate(self.knob_ccs))
        taken.update((cc, what) for what, cc in EXPLORE_CCS.items())
        if self.morph_path:
            taken[self.morph_cc] = "the morph controller"
        try:
            object.__setattr__(self, "pad_ccs", check_ccs(*tuple(ccs), taken))
            check_size(self.pad_size)
        except PresetError as err:
            raise PresetError(f"{where}: field 'pad': {err}") from None

    def _check_mpe(self, where: str) -> None:
        if not isinstance(self.mpe, MpeSettings):
            raise PresetError(f"{where}: field 'mpe': expected slide:, pressure:, bend_range:")
        lacks = {"morph": not self.morph_path, "pad": not self.pad_corners}
        for role, target in (("slide", self.mpe.slide), ("pressure", self.mpe.pressure)):
            what = target.partition("_")[0]
            if lacks.get(what):
                needs = (
                    "a morph path (morph: path:)" if what == "morph" else "a pad (pad: corners:)"
                )
                raise PresetError(
                    f"{where}: field 'mpe.{role}': {target} needs {needs}, and this bank has none"
                )

    def preset_names(self) -> list[str]:
        """Every preset the bank refers to, each once, programs first (in program order)."""
        names = [self.programs[p] for p in sorted(self.programs)]
        for programs in self.variations.values():
            names += [programs[p] for p in sorted(programs)]
        names += list(self.morph_path) + list(self.pad_corners)
        if self.kit is not None:
            names += self.kit.preset_names()
        elif self.drums:
            names.append(self.drums)
        return list(dict.fromkeys(names))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name}
        if self.description:
            data["description"] = self.description
        data["programs"] = {p: self.programs[p] for p in sorted(self.programs)}
        if self.variations:
            data["variations"] = {
                b: {p: programs[p] for p in sorted(programs)}
                for b, programs in self.variations.items()
            }
        if self.drums:
            data["drums"] = self.drums
        if self.morph_path:
            data["morph"] = {
                "path": list(self.morph_path),
                "cc": self.morph_cc,
                "steps": self.morph_steps,
            }
        if self.pad_corners:
            data["pad"] = {
                "corners": list(self.pad_corners),
                "cc": list(self.pad_ccs),
                "size": self.pad_size,
            }
        if self.knob_ccs != KNOB_CCS:
            data["knobs"] = {"cc": list(self.knob_ccs)}
        if self.mpe != MpeSettings():
            data["mpe"] = self.mpe.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: object, where: str, path: Path | None = None) -> Bank:
        """Build from parsed YAML; unknown or missing fields are PresetErrors naming ``where``."""
        if not isinstance(data, Mapping):
            raise PresetError(f"{where}: expected a mapping of fields (name:, programs:, morph:)")
        _check_known(where, data, _BANK_KEYS)
        if "name" not in data:
            raise PresetError(f"{where}: field 'name' is missing")
        morph = _section(where, data, "morph", _MORPH_KEYS)
        pad = _section(where, data, "pad", _PAD_KEYS)
        knobs = _section(where, data, "knobs", _KNOBS_KEYS)
        return cls(
            name=data["name"],
            programs=data.get("programs") or {},
            morph_path=morph.get("path") or (),
            morph_cc=morph.get("cc", 1),
            morph_steps=morph.get("steps", 17),
            pad_corners=pad.get("corners") or (),
            pad_ccs=pad.get("cc", PAD_CCS),
            pad_size=pad.get("size", PAD_SIZE),
            knob_ccs=knobs.get("cc", KNOB_CCS),
            description=data.get("description", ""),
            variations=data.get("variations") or {},
            drums=data.get("drums"),
            mpe=MpeSettings.from_dict(data.get("mpe") or {}, where),
            path=path,
        )

    def to_yaml(self) -> str:
        return bank_text(self.to_dict())


def bank_text(data: Mapping[str, Any]) -> str:
    """A bank file's text from its fields (``Bank.to_dict``'s, or a file's own read back):
    the one place a bank is written out, under ``BANK_HEADER``."""
    return BANK_HEADER + dump_yaml(data)


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
    _check_int(where, "kit", key, KIT_KEY_RANGE)
    field_name = f"kit.{key}"
    if isinstance(sound, KitSound):
        sound = sound.to_dict()
    if not isinstance(sound, Mapping):
        raise PresetError(f"{where}: field '{field_name}': expected a mapping (preset:, pitch:)")
    _check_known(where, sound, _SOUND_KEYS, field_name)
    for required in ("preset", "pitch", "decay_ms"):
        if required not in sound:
            raise PresetError(f"{where}: field '{field_name}.{required}' is missing")
    check_name(where, sound["preset"], f"{field_name}.preset")
    _check_int(where, f"{field_name}.pitch", sound["pitch"], KIT_PITCH_RANGE)
    _check_range(where, f"{field_name}.decay_ms", sound["decay_ms"], DECAY_MS_RANGE)
    hold_ms, gain_db = sound.get("hold_ms", 0.0), sound.get("gain_db", 0.0)
    _check_range(where, f"{field_name}.hold_ms", hold_ms, HOLD_MS_RANGE)
    _check_range(where, f"{field_name}.gain_db", gain_db, GAIN_DB_RANGE)
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
        _check_known(where, data, _KIT_KEYS)
        for required in ("name", "kit"):
            if required not in data:
                raise PresetError(f"{where}: field '{required}' is missing")
        return cls(data["name"], data["kit"], data.get("description", ""), path=path)

    def to_yaml(self) -> str:
        return "# gansynth-instrument drum kit\n" + dump_yaml(self.to_dict())


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
    if not _is_number(t) or not 0.0 <= float(t) <= 1.0:
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
