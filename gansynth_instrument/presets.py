"""Presets (a named timbre plus gain and envelope) and banks (program → preset, and a morph path).

Both are small YAML files a musician can read and edit. A preset names its timbre either by a
seed (``random_latent(seed)``: compact, the same sound forever) or by an explicit latent vector
(what ``presets new --between`` writes). Files are untrusted (people share them): they are read
with a safe loader only (plain data, never objects; no aliases; bounded size and depth) and
validated field by field: a bad file is a ``PresetError`` naming the file and the field. Writes
are atomic.

Lookup order for a name: an explicit path (anything ending in .yaml/.yml or holding a "/"), then
the user presets dir (``<platformdirs user data dir>/presets``), then the shipped ``presets/``
folder. A user preset with a shipped name shadows it (``presets save NAME`` makes such an editable
copy on purpose; ``presets new`` with a shipped name refuses without ``--force``); shipped presets
are read-only. Banks live in a ``banks/`` subfolder of either presets dir.

Program numbers follow General MIDI: a preset's ``program`` is the GM program it stands for, and
its ``bank`` the bank select (CC0) value that reaches it (0, the GM bank, by default). The shipped
trained presets sit on their GM programs in bank 0, their soft variants on the same programs in
bank 1. A bank file may name a ``drums:`` preset for channel 10 (GM percussion).
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs
import yaml

from gansynth_instrument.errors import PresetError
from gansynth_instrument.fileio import write_text_atomic
from gansynth_instrument.knobs import EXPLORE_CCS, KNOB_CCS
from gansynth_instrument.latent import LATENT_SIZE, random_latent, slerp
from gansynth_instrument.pad import PAD_CCS, PAD_SIZE, check_ccs, check_size
from gansynth_instrument.timbre import blend_settings

APP_NAME = "gansynth-instrument"
PRESET_SUFFIX = ".yaml"
BANKS_SUBDIR = "banks"
# Letters, digits, "-" and "_": the name is also the file name and is typed on command lines.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
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
PROGRAMS_FROM_PRESETS = "presets"  # bank files: "programs: presets" = each preset's own number
# Shared files are untrusted: a real preset is a few kB (a 256-value latent) and at most 3 levels
# deep (bank → morph → path); a bigger or deeper file is refused before it is parsed or walked.
MAX_FILE_BYTES = 1024 * 1024
MAX_NESTING = 8

_PRESET_KEYS = (
    "name",
    "description",
    "seed",
    "latent",
    "gain_db",
    "attack_s",
    "release_s",
    "program",
    "bank",
    "loop",
)
_BANK_KEYS = ("name", "description", "programs", "variations", "drums", "morph", "pad", "knobs")
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


def _check_name(where: str, value: object, field_name: str = "name") -> None:
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise PresetError(
            f"{where}: field '{field_name}': {value!r} is not a valid name "
            "(1-64 letters, digits, '-' or '_', starting with a letter or digit)"
        )


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


class _Dumper(yaml.SafeDumper):
    """Block-style mappings, but lists (a 256-value latent, a morph path) on flowing lines."""


_Dumper.add_representer(
    list, lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, True)
)
# PyYAML writes U+0085/U+2028/U+2029 raw under allow_unicode, and reads them back as line
# breaks: strings holding one are written double-quoted, where they are escaped.
_Dumper.add_representer(
    str,
    lambda dumper, data: dumper.represent_scalar(
        "tag:yaml.org,2002:str",
        data,
        style='"' if any(c in data for c in "\x85\u2028\u2029") else None,
    ),
)


def _dump_yaml(data: dict[str, Any]) -> str:
    return yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        width=100,
        allow_unicode=True,
    )


@dataclass(frozen=True)
class Preset:
    """A timbre (exactly one of ``seed`` / ``latent``) with gain and envelope, validated when made.

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
    path: Path | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        where = self.where
        _check_name(where, self.name)
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

    def copy(self, **changes: Any) -> Preset:
        """A validated copy with some fields replaced (``name=``, ``gain_db=``, ...); no file."""
        if "seed" in changes and "latent" not in changes:
            changes["latent"] = None
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
        unknown = sorted(str(k) for k in data if k not in _PRESET_KEYS)
        if unknown:
            raise PresetError(
                f"{where}: unknown field '{unknown[0]}' (known: {', '.join(_PRESET_KEYS)})"
            )
        if "name" not in data:
            raise PresetError(f"{where}: field 'name' is missing")
        values = {k: data[k] for k in _PRESET_KEYS if k in data}
        values.setdefault("seed", None)
        values.setdefault("latent", None)
        return cls(**values, path=path)

    def to_yaml(self) -> str:
        """The preset file's text (block style; the latent as one flow list)."""
        header = "# gansynth-instrument preset\n"
        return header + _dump_yaml(self.to_dict())


@dataclass(frozen=True)
class Bank:
    """Program numbers → preset names, plus a morph path (≥ 2 preset names, or empty for none)
    and an XY pad (4 corner preset names, or empty for none).

    ``programs`` is bank select 0 (General MIDI's bank); ``variations`` maps other bank select
    (CC0) values to their programs. ``drums`` plays channel 10 (None: its notes are skipped).
    The morph controller ``morph_cc`` moves along ``morph_path`` in ``morph_steps`` steps; the
    pad's controllers ``pad_ccs`` (x, y) move over a ``pad_size``² grid between ``pad_corners``
    (A, B, C, D at (0, 0), (1, 0), (0, 1), (1, 1)). Every name is checked to resolve
    (``find_preset``) when the bank is loaded.
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
    path: Path | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        where = str(self.path) if self.path is not None else f"bank '{self.name}'"
        _check_name(where, self.name)
        if not isinstance(self.programs, Mapping):
            raise PresetError(
                f"{where}: field 'programs': expected a mapping program → preset name"
            )
        for program, preset_name in self.programs.items():
            _check_int(where, "programs", program, PROGRAM_RANGE)
            _check_name(where, preset_name, f"programs.{program}")
        object.__setattr__(self, "programs", dict(self.programs))
        if not isinstance(self.variations, Mapping):
            raise PresetError(f"{where}: field 'variations': expected bank → program → preset")
        for number, programs in self.variations.items():
            _check_int(where, "variations", number, (1, BANK_RANGE[1]))
            if not isinstance(programs, Mapping):
                raise PresetError(f"{where}: field 'variations.{number}': expected a mapping")
            for program, preset_name in programs.items():
                _check_int(where, f"variations.{number}", program, PROGRAM_RANGE)
                _check_name(where, preset_name, f"variations.{number}.{program}")
        object.__setattr__(
            self, "variations", {b: dict(p) for b, p in sorted(self.variations.items())}
        )
        if self.drums is not None:
            _check_name(where, self.drums, "drums")
        if isinstance(self.morph_path, str) or not isinstance(self.morph_path, Iterable):
            raise PresetError(f"{where}: field 'morph.path': expected a list of preset names")
        path_names = tuple(self.morph_path)
        if len(path_names) == 1:
            raise PresetError(f"{where}: field 'morph.path': needs 2 or more presets (or none)")
        for name in path_names:
            _check_name(where, name, "morph.path")
        object.__setattr__(self, "morph_path", path_names)
        _check_int(where, "morph.cc", self.morph_cc, MORPH_CC_RANGE)
        if self.morph_cc in RESERVED_CCS:
            raise PresetError(
                f"{where}: field 'morph.cc': CC{self.morph_cc} is {RESERVED_CCS[self.morph_cc]}"
            )
        _check_int(where, "morph.steps", self.morph_steps, MORPH_STEPS_RANGE)
        self._check_knobs(where)
        self._check_pad(where)
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
            _check_name(where, name, "pad.corners")
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

    def preset_names(self) -> list[str]:
        """Every preset the bank refers to, each once, programs first (in program order)."""
        names = [self.programs[p] for p in sorted(self.programs)]
        for programs in self.variations.values():
            names += [programs[p] for p in sorted(programs)]
        names += list(self.morph_path) + list(self.pad_corners)
        names += [self.drums] if self.drums else []
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
        return data

    @classmethod
    def from_dict(cls, data: object, where: str, path: Path | None = None) -> Bank:
        """Build from parsed YAML; unknown or missing fields are PresetErrors naming ``where``."""
        if not isinstance(data, Mapping):
            raise PresetError(f"{where}: expected a mapping of fields (name:, programs:, morph:)")
        unknown = sorted(str(k) for k in data if k not in _BANK_KEYS)
        if unknown:
            raise PresetError(
                f"{where}: unknown field '{unknown[0]}' (known: {', '.join(_BANK_KEYS)})"
            )
        if "name" not in data:
            raise PresetError(f"{where}: field 'name' is missing")
        morph = data.get("morph") or {}
        if not isinstance(morph, Mapping):
            raise PresetError(f"{where}: field 'morph': expected a mapping (path:, cc:, steps:)")
        unknown = sorted(str(k) for k in morph if k not in _MORPH_KEYS)
        if unknown:
            raise PresetError(
                f"{where}: unknown field 'morph.{unknown[0]}' (known: {', '.join(_MORPH_KEYS)})"
            )
        pad = data.get("pad") or {}
        if not isinstance(pad, Mapping):
            raise PresetError(f"{where}: field 'pad': expected a mapping (corners:, cc:, size:)")
        unknown = sorted(str(k) for k in pad if k not in _PAD_KEYS)
        if unknown:
            raise PresetError(
                f"{where}: unknown field 'pad.{unknown[0]}' (known: {', '.join(_PAD_KEYS)})"
            )
        knobs = data.get("knobs") or {}
        if not isinstance(knobs, Mapping):
            raise PresetError(f"{where}: field 'knobs': expected a mapping (cc:)")
        unknown = sorted(str(k) for k in knobs if k not in _KNOBS_KEYS)
        if unknown:
            raise PresetError(f"{where}: unknown field 'knobs.{unknown[0]}' (known: cc)")
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
            path=path,
        )

    def to_yaml(self) -> str:
        return "# gansynth-instrument bank\n" + _dump_yaml(self.to_dict())


# --- where files live ---------------------------------------------------------------------------


def user_presets_dir() -> Path:
    """The user's presets folder (made on first save), e.g. ~/.local/share/…/presets."""
    return Path(platformdirs.user_data_dir(APP_NAME)) / "presets"


def shipped_presets_dir() -> Path:
    """The read-only presets shipped with the package.

    In a wheel they are installed as the data package ``gansynth_instrument/shipped_presets``; in a
    source checkout (and an editable install) they are the repository's top-level ``presets/``.
    """
    here = Path(__file__).resolve().parent
    installed = here / "shipped_presets"
    return installed if installed.is_dir() else here.parent / "presets"


def _search_dirs(user_dir: Path | None) -> list[Path]:
    return [user_dir if user_dir is not None else user_presets_dir(), shipped_presets_dir()]


def _looks_like_path(name_or_path: str | Path) -> bool:
    text = str(name_or_path)
    return isinstance(name_or_path, Path) or "/" in text or text.endswith((".yaml", ".yml"))


class _SafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` (plain data only) without anchors/aliases and with a depth limit.

    Aliases let a few hundred bytes stand for a structure with billions of items (a "billion
    laughs" file), which any walk of the value, even an error message's repr, then expands; deep
    nesting overflows the recursive composer. No preset needs either.
    """

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, "anchors and aliases (*name) are not allowed", event.start_mark
            )
        if self._depth >= MAX_NESTING:
            raise yaml.composer.ComposerError(
                None, None, f"nested more than {MAX_NESTING} levels deep", event.start_mark
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self._depth -= 1


def _read_yaml(path: Path) -> object:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)  # bounded: a huge file or /dev/zero is not read
        if len(data) > MAX_FILE_BYTES:
            raise PresetError(
                f"{path}: larger than {MAX_FILE_BYTES} bytes; preset and bank files are a few kB"
            )
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise PresetError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise PresetError(f"{path}: cannot read ({err})") from None
    try:
        return yaml.load(text, Loader=_SafeLoader)  # a SafeLoader: plain data only
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or "syntax error"
        raise PresetError(f"{path}: not valid YAML{line} ({problem})") from None


def load_preset_file(path: Path) -> Preset:
    """Read and validate one preset file."""
    path = Path(path)
    return Preset.from_dict(_read_yaml(path), str(path), path)


def load_bank_file(path: Path, *, user_dir: Path | None = None) -> Bank:
    """Read and validate one bank file, checking that every preset it names can be found.

    ``programs: presets`` (instead of a mapping) takes each preset's own ``bank`` and ``program``
    fields, so a preset saved with ``--program N`` joins the bank without editing it.
    """
    path = Path(path)
    data = _read_yaml(path)
    if isinstance(data, Mapping) and data.get("programs") == PROGRAMS_FROM_PRESETS:
        banks = programs_from_presets(user_dir=user_dir)
        variations = {b: p for b, p in banks.items() if b != 0}
        data = {**data, "programs": banks.get(0, {}), "variations": variations}
    bank = Bank.from_dict(data, str(path), path)
    for program, name in sorted(bank.programs.items()):
        _resolve_in_bank(path, f"programs.{program}", name, user_dir)
    for number, programs in bank.variations.items():
        for program, name in sorted(programs.items()):
            _resolve_in_bank(path, f"variations.{number}.{program}", name, user_dir)
    for name in bank.morph_path:
        _resolve_in_bank(path, "morph.path", name, user_dir)
    if bank.drums is not None:
        _resolve_in_bank(path, "drums", bank.drums, user_dir)
    for name in bank.pad_corners:
        _resolve_in_bank(path, "pad.corners", name, user_dir)
    return bank


def programs_from_presets(*, user_dir: Path | None = None) -> dict[int, dict[int, str]]:
    """Bank → program → preset name from the presets' own ``bank`` and ``program`` fields.

    A user preset takes a number from a shipped one; two user (or two shipped) presets with the
    same bank and program are a PresetError naming the second file.
    """
    owners: dict[tuple[int, int], Preset] = {}
    for preset in list_presets(user_dir=user_dir):
        if preset.program is None:
            continue
        slot = (preset.bank, preset.program)
        other = owners.get(slot)
        if other is None or (is_shipped(other) and not is_shipped(preset)):
            owners[slot] = preset
        elif is_shipped(other) == is_shipped(preset):
            where = f"bank {preset.bank} program {preset.program}"
            raise PresetError(f"{preset.where}: field 'program': {where} is also {other.name}'s")
    banks: dict[int, dict[int, str]] = {}
    for number, program in sorted(owners):
        banks.setdefault(number, {})[program] = owners[number, program].name
    return banks


def _resolve_in_bank(bank_path: Path, field_name: str, name: str, user_dir: Path | None) -> None:
    try:
        find_preset(name, user_dir=user_dir)
    except PresetError as err:
        raise PresetError(f"{bank_path}: field '{field_name}': {err}") from None


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


def find_preset(name_or_path: str | Path, *, user_dir: Path | None = None) -> Preset:
    """A preset by file path, or by name from the user dir, then the shipped presets."""
    if _looks_like_path(name_or_path):
        return load_preset_file(Path(name_or_path))
    name = str(name_or_path)
    dirs = _search_dirs(user_dir)
    for d in dirs:
        candidate = d / f"{name}{PRESET_SUFFIX}"
        if candidate.is_file():
            return _load_named(candidate, name)
    known = ", ".join(_names_in(dirs)) or "none"
    raise PresetError(f"unknown preset '{name}' (known: {known})")


def find_bank(name_or_path: str | Path, *, user_dir: Path | None = None) -> Bank:
    """A bank by file path, or by name from ``<user dir>/banks``, then the shipped banks."""
    if _looks_like_path(name_or_path):
        return load_bank_file(Path(name_or_path), user_dir=user_dir)
    name = str(name_or_path)
    dirs = [d / BANKS_SUBDIR for d in _search_dirs(user_dir)]
    for d in dirs:
        candidate = d / f"{name}{PRESET_SUFFIX}"
        if candidate.is_file():
            return load_bank_file(candidate, user_dir=user_dir)
    known = ", ".join(_names_in(dirs)) or "none"
    raise PresetError(f"unknown bank '{name}' (known: {known})")


def list_presets(*, user_dir: Path | None = None) -> list[Preset]:
    """Every preset, sorted by name; a user preset hides the shipped one of the same name."""
    found: dict[str, Preset] = {}
    for d in _search_dirs(user_dir):
        if not d.is_dir():
            continue
        for path in sorted(d.glob("*" + PRESET_SUFFIX)):
            if not path.name.startswith(".") and path.stem not in found:
                found[path.stem] = _load_named(path, path.stem)
    return [found[name] for name in sorted(found)]


def list_banks(*, user_dir: Path | None = None) -> list[Bank]:
    """Every bank, sorted by name; a user bank hides the shipped one of the same name."""
    names = _names_in(d / BANKS_SUBDIR for d in _search_dirs(user_dir))
    return [find_bank(name, user_dir=user_dir) for name in names]


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


# A bank file's own "cc:" line under "morph:" (block style), so a learned controller can be saved
# without losing the file's comments or its "programs: presets".
_CC_LINE = re.compile(r"^(?P<head>[ \t]+cc:[ \t]*)\d+(?=[ \t]*(#.*)?$)", re.MULTILINE)


def save_morph_cc(bank: Bank, cc: int, *, user_dir: Path | None = None) -> Path:
    """Remember a learned morph controller (``play --learn``): write the bank with ``morph.cc``.

    A shipped bank is never modified: the copy goes to the user banks folder under the same name,
    where ``find_bank`` looks first. A user bank, or one read from a path, is rewritten in place.
    The file's text is kept (comments, ``programs: presets``) when only its ``cc:`` line needs to
    change; otherwise its fields are written out anew. Atomic either way; returns the path.
    """
    if not bank.morph_path:
        raise PresetError(f"bank '{bank.name}' has no morph path, so no morph controller to save")
    learned = replace(bank, morph_cc=cc)  # validates the controller number
    text = learned.to_yaml() if bank.path is None else _bank_text_with_cc(bank, cc)
    return _save_learned(bank, text, f"'play --learn' (morph: CC{cc})", user_dir)


def save_knob_cc(bank: Bank, knob: int, cc: int, *, user_dir: Path | None = None) -> Path:
    """Remember a learned knob controller (``play --learn-knob``): write the bank with
    ``knobs.cc`` (knob 0-based), where ``save_morph_cc`` would write it. The file's fields are
    written out anew (its comments go; ``programs: presets`` stays). Atomic; returns the path."""
    ccs = list(bank.knob_ccs)
    ccs[knob] = cc
    replace(bank, knob_ccs=tuple(ccs))  # validates: range, the pedal, collisions
    raw = _read_yaml(bank.path) if bank.path is not None else bank.to_dict()
    if not isinstance(raw, Mapping):
        raise PresetError(f"{bank.path}: no longer a mapping of fields; not saved")
    data = {**raw, "knobs": {"cc": ccs}}
    Bank.from_dict({**data, "programs": bank.programs}, bank.name)  # still valid as a file?
    text = "# gansynth-instrument bank\n" + _dump_yaml(data)
    return _save_learned(bank, text, f"'play --learn-knob' (knob {knob + 1}: CC{cc})", user_dir)


def _save_learned(bank: Bank, text: str, why: str, user_dir: Path | None) -> Path:
    """A user or path bank in place; a shipped (or unsaved) bank as the user copy."""
    if bank.path is not None and not is_shipped(bank):
        target = bank.path
    else:
        directory = (user_dir if user_dir is not None else user_presets_dir()) / BANKS_SUBDIR
        _make_dir(directory, "banks")
        target = directory / f"{bank.name}{PRESET_SUFFIX}"
        if bank.path is not None:  # the shipped text's comments may name the old controller
            text = f"# Your copy of {bank.path}, saved by {why}.\n" + text
    return write_text_atomic(target, text)


def _bank_text_with_cc(bank: Bank, cc: int) -> str:
    """The bank file's text with ``morph.cc`` set: its own text with the one line changed when
    that parses to exactly the intended fields, else the fields dumped anew."""
    assert bank.path is not None
    data = _read_yaml(bank.path)
    morph = data.get("morph") if isinstance(data, Mapping) else None
    if not isinstance(data, Mapping) or not isinstance(morph, Mapping):
        raise PresetError(f"{bank.path}: field 'morph': no longer a mapping; not saved")
    expected = {**data, "morph": {**morph, "cc": cc}}
    Bank.from_dict({**expected, "programs": bank.programs}, str(bank.path))  # still valid?
    text = bank.path.read_text(encoding="utf-8")
    edited, count = _CC_LINE.subn(rf"\g<head>{cc}", text)
    if count == 1 and yaml.load(edited, Loader=_SafeLoader) == expected:
        return edited
    return "# gansynth-instrument bank\n" + _dump_yaml(expected)


def delete_preset(name: str, *, user_dir: Path | None = None) -> Path:
    """Delete a user preset; returns its path. Shipped presets cannot be deleted."""
    _check_name("presets rm", name)
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


def random_seed() -> int:
    """A fresh seed for ``presets new --random`` (stored, so the sound can be recalled)."""
    return secrets.randbelow(SEED_MAX + 1)


def preset_between(name: str, a: Preset, b: Preset, t: float, latent_size: int) -> Preset:
    """A new preset at ``t`` (0 = a, 1 = b) on the slerp path; gain and envelope lerp.

    The timbre is stored as an explicit latent, because a point between two timbres has no seed.
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
    )


def _check_free(name: str, user_dir: Path | None, force: bool, keep: Path | None = None) -> None:
    """Refuse to overwrite a different user preset unless ``force`` (``keep``: the file edited)."""
    target = (user_dir if user_dir is not None else user_presets_dir()) / f"{name}{PRESET_SUFFIX}"
    if target.is_file() and not force and (keep is None or target.resolve() != keep.resolve()):
        raise PresetError(
            f"{target}: a user preset '{name}' exists already (--force to replace it)"
        )


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
) -> tuple[Preset, Path]:
    """``presets new``: from a seed, a random seed, a point between two presets, or another
    preset (``from_preset``) whose latent ``move`` changes (the timbre knobs; ``move_note`` says
    how, in the description); saved.

    For ``between``, an explicit latent in either preset sets the size (else ``latent_size``).
    ``changes`` sets other fields (gain_db, attack_s, release_s, program, loop, description).
    """
    if sum((seed is not None, random, between is not None, from_preset is not None)) != 1:
        raise PresetError(
            "presets new: give exactly one of --seed N, --random, --between A B, --from PRESET"
        )
    _check_name("presets new", name)
    _check_free(name, user_dir, force)
    if not force and name in _names_in([shipped_presets_dir()]):
        raise PresetError(
            f"presets new: '{name}' is a shipped preset; a new one of that name would take its "
            "place everywhere (--force to do so, or choose another name)"
        )
    if from_preset is not None:
        source = find_preset(from_preset, user_dir=user_dir)
        preset = source.copy(name=name, program=None, description=f"from {source.name}")
        if move is not None:
            latent = move(source.latent_vector(latent_size))
            note = f", {move_note}" if move_note else ""
            preset = preset.copy(
                latent=tuple(latent.tolist()), description=f"from {source.name}{note}"
            )
    elif between is not None:
        a, b = (find_preset(n, user_dir=user_dir) for n in between)
        sizes = {len(p.latent) for p in (a, b) if p.latent is not None}
        if len(sizes) > 1:
            raise PresetError(f"presets new: {a.name} and {b.name} have latents of different sizes")
        preset = preset_between(name, a, b, at, sizes.pop() if sizes else latent_size)
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
) -> tuple[Preset, Path]:
    """``presets save``: copy a preset (shipped, user or a file) to the user dir, renamed or edited.

    Saving a shipped preset under its own name makes a user copy that shadows it (``presets rm``
    brings the shipped one back); saving a user preset under its own name edits it in place.
    """
    original = find_preset(source, user_dir=user_dir)
    preset = original.copy(**{**(changes or {}), **({"name": new_name} if new_name else {})})
    _check_free(preset.name, user_dir, force, keep=original.path)
    return preset, save_preset(preset, user_dir)
