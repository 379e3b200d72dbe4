"""Banks: program → preset name per bank select, a morph path, an XY pad, knob controllers and
MPE targets, as a small YAML file a musician edits (``preset_files`` finds and saves them).

Program numbers follow General MIDI: ``programs`` is bank select 0, ``variations`` the other bank
select (CC0) values. A bank may name a ``drums:`` kit or preset for channel 10 (GM percussion).
``bank_text`` is the one place a bank file's text is made.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gansynth_instrument.errors import PresetError
from gansynth_instrument.presets.kit import Kit
from gansynth_instrument.presets.knobs import EXPLORE_CCS, KNOB_CCS
from gansynth_instrument.presets.mpe import MpeSettings
from gansynth_instrument.presets.pad import PAD_CCS, PAD_SIZE, check_ccs, check_size
from gansynth_instrument.presets.preset import Preset
from gansynth_instrument.presets.preset_fields import (
    BANK_RANGE,
    PROGRAM_RANGE,
    check_int,
    check_known,
    check_name,
)
from gansynth_instrument.presets.preset_yaml import dump_yaml

# CC 0-119 are controllers; 120-127 are channel-mode messages. 64 is the sustain pedal.
MORPH_CC_RANGE = (0, 119)
RESERVED_CCS = {64: "the sustain pedal"}
MORPH_STEPS_RANGE = (2, 128)
BANK_HEADER = "# gansynth-instrument bank\n"  # the first line of every bank file written

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
_MORPH_KEYS = ("path", "cc", "steps")
_PAD_KEYS = ("corners", "cc", "size")
_KNOBS_KEYS = ("cc",)


def _section(
    where: str, data: Mapping[Any, Any], key: str, known: tuple[str, ...]
) -> Mapping[Any, Any]:
    """A file's field ``key``: a mapping of ``known`` fields only ({} when absent or empty)."""
    section = data.get(key) or {}
    if not isinstance(section, Mapping):
        shown = ", ".join(f"{k}:" for k in known)
        raise PresetError(f"{where}: field '{key}': expected a mapping ({shown})")
    check_known(where, section, known, key)
    return section


def _check_programs(where: str, field_name: str, programs: object) -> None:
    """One bank select's programs (``programs``, or one of ``variations``): program → name."""
    if not isinstance(programs, Mapping):
        raise PresetError(
            f"{where}: field '{field_name}': expected a mapping program → preset name"
        )
    for program, preset_name in programs.items():
        check_int(where, field_name, program, PROGRAM_RANGE)
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

    A bank loaded for a model (``bank_files.load_bank_file``) holds the presets its names
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
            check_int(where, "variations", number, (1, BANK_RANGE[1]))
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
        check_int(where, "morph.cc", self.morph_cc, MORPH_CC_RANGE)
        if self.morph_cc in RESERVED_CCS:
            raise PresetError(
                f"{where}: field 'morph.cc': CC{self.morph_cc} is {RESERVED_CCS[self.morph_cc]}"
            )
        check_int(where, "morph.steps", self.morph_steps, MORPH_STEPS_RANGE)
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
            check_int(where, "knobs.cc", cc, MORPH_CC_RANGE)
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
        check_known(where, data, _BANK_KEYS)
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
