"""The contract between exporter and runtime: what a model's ONNX ``metadata_props`` hold.

Every key is prefixed ``gansynth.``; values are JSON text. The exporter writes
``ModelInfo.to_props()``, the runtime reads ``ModelInfo.from_props()``; nothing else parses them.

Graph contract (format version 1):
  inputs  ``z`` float32 [B, latent_size], ``pitch`` int64 [B] (MIDI note numbers from ``pitches``)
  output  ``spectrogram`` float32 [B, frames, bins, 2]: the *denormalised* generator output
          (channel 0 = log mel magnitude², channel 1 = mel instantaneous frequency / π), i.e.
          Magenta's ``generator_fn_specgram`` output before ``data_to_waves``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass, field, fields, replace

from gansynth_instrument.errors import ModelError

FORMAT_VERSION = 1
PREFIX = "gansynth."
INPUT_LATENT = "z"
INPUT_PITCH = "pitch"
OUTPUT_SPECTROGRAM = "spectrogram"
# Magenta's prespecified normaliser (specgrams_prespecified_normalizer): x_norm = a·x + b per
# channel, as (a, b); one copy for the exporter, the trainer and the runtime.
MAG_NORMALIZER = (0.0661371661726, 0.113718730221)  # log magnitude
P_NORMALIZER = (0.8, 0.0)  # instantaneous frequency
# A preset's name (a model timbre's too): letters, digits, "-" and "_"; it is also a file name and
# is typed on command lines.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
# A family name (and so what a preset's ``model`` field holds: a family or a hex digest): typed on
# command lines and written in preset files.
FAMILY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class Representation:
    """How the spectrogram maps to audio (Magenta's SpecgramsHelper settings, data_type 'mel')."""

    data_type: str = "mel"
    n_fft: int = 2048
    hop_length: int = 512
    frames: int = 128
    bins: int = 1024
    pad_front: int = 3072
    ifreq: bool = True
    mag_normalizer_a: float = MAG_NORMALIZER[0]
    mag_normalizer_b: float = MAG_NORMALIZER[1]
    p_normalizer_a: float = P_NORMALIZER[0]
    p_normalizer_b: float = P_NORMALIZER[1]


@dataclass(frozen=True)
class ModelTimbre:
    """An instrument the model was trained to play, as a soundfont carries its presets.

    ``latent`` plays it; ``instrument`` is its name in the training data (what ``train
    --init-from`` matches), ``name`` the preset name it is offered under, ``program`` and
    ``bank`` (bank select) where it sits in the default bank, as in a General MIDI synth.
    """

    name: str
    instrument: str
    latent: tuple[float, ...]
    program: int | None = None
    description: str = ""
    bank: int = 0


@dataclass(frozen=True)
class ModelInfo:
    """Everything the runtime needs to know about a model, stored inside the ONNX file."""

    latent_size: int
    pitches: tuple[int, ...]
    sample_rate: int = 16000
    audio_length: int = 64000
    representation: Representation = field(default_factory=Representation)
    source: str = ""
    source_step: int = 0
    progress: float = 6.0
    digest: str = ""
    exporter_version: str = ""
    format_version: int = FORMAT_VERSION
    timbres: tuple[ModelTimbre, ...] = ()
    # Models that share a latent space (a model and its retrained successors) share a family, so
    # presets with explicit latents made for one suit the others; "" = a family of its own.
    family: str = ""

    @property
    def preset_model(self) -> str:
        """What an explicit-latent preset made for this model records: its family, else its
        digest."""
        return self.family or self.digest

    def to_props(self) -> dict[str, str]:
        """Flatten to ONNX ``metadata_props`` (key → JSON text)."""
        return {PREFIX + k: json.dumps(v) for k, v in asdict(self).items()}

    @classmethod
    def from_props(cls, props: dict[str, str], where: str = "model") -> ModelInfo:
        """Parse ``metadata_props``; raises ModelError naming ``where`` and the bad key."""
        values = {}
        for f in fields(cls):
            key = PREFIX + f.name
            if key not in props:
                if f.name in ("latent_size", "pitches"):
                    raise ModelError(
                        f"{where}: not a gansynth-instrument model (no '{key}' metadata)"
                    )
                continue
            try:
                values[f.name] = json.loads(props[key])
            except json.JSONDecodeError as err:
                raise ModelError(f"{where}: metadata '{key}' is not valid JSON: {err}") from None
        if values.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
            raise ModelError(
                f"{where}: model format {values['format_version']} is newer than this runtime "
                f"understands ({FORMAT_VERSION}); upgrade gansynth-instrument"
            )
        try:
            values["pitches"] = tuple(int(p) for p in values["pitches"])
            if "representation" in values:
                values["representation"] = Representation(**values["representation"])
            latent_size = int(values["latent_size"])
        except (TypeError, ValueError) as err:
            raise ModelError(f"{where}: malformed gansynth metadata: {err}") from None
        values["timbres"] = _timbres(values.get("timbres", []), latent_size, where)
        family = values.get("family", "")
        if family != "" and not (isinstance(family, str) and FAMILY_PATTERN.fullmatch(family)):
            raise ModelError(
                f"{where}: malformed gansynth metadata: family {family!r} is not a name "
                "(1-64 letters, digits, '.', '-' or '_')"
            )
        return cls(**values)


def _timbres(raw: object, latent_size: int, where: str) -> tuple[ModelTimbre, ...]:
    """The ``timbres`` metadata checked: a list of ModelTimbre fields, latents of the model's
    size, unique names, programs 0..127 or null, banks 0..127, one timbre per bank and program."""

    def bad(what: str) -> ModelError:
        return ModelError(f"{where}: malformed timbre metadata: {what}")

    if not isinstance(raw, list):
        raise bad("'gansynth.timbres' is not a list")
    timbres = []
    for i, item in enumerate(raw):
        try:
            timbre = ModelTimbre(**item)
            timbre = replace(timbre, latent=tuple(float(v) for v in timbre.latent))
        except (TypeError, ValueError) as err:
            raise bad(f"timbre {i}: {err}") from None
        if not isinstance(timbre.name, str) or not NAME_PATTERN.fullmatch(timbre.name):
            raise bad(f"timbre {i}: {timbre.name!r} is not a preset name")
        if not all(math.isfinite(v) for v in timbre.latent):
            raise bad(f"timbre '{timbre.name}': its latent holds NaN or infinity")
        if len(timbre.latent) != latent_size:
            raise bad(
                f"timbre '{timbre.name}': {len(timbre.latent)} latent values, the model's "
                f"latent has {latent_size}"
            )
        program = timbre.program
        if program is not None and (
            isinstance(program, bool) or not isinstance(program, int) or not 0 <= program <= 127
        ):
            raise bad(f"timbre '{timbre.name}': program {program!r} is not 0..127 or null")
        bank = timbre.bank
        if isinstance(bank, bool) or not isinstance(bank, int) or not 0 <= bank <= 127:
            raise bad(f"timbre '{timbre.name}': bank {bank!r} is not 0..127")
        timbres.append(timbre)
    names = [t.name for t in timbres]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise bad(f"two timbres named '{duplicate}'")
    slots: dict[tuple[int, int], str] = {}
    for t in timbres:
        if t.program is not None and slots.setdefault((t.bank, t.program), t.name) != t.name:
            raise bad(
                f"timbres '{slots[t.bank, t.program]}' and '{t.name}' are both bank {t.bank} "
                f"program {t.program}"
            )
    return tuple(timbres)


def format_pitches(pitches: Iterable[int]) -> str:
    """Compact list of MIDI pitches: ``24–84`` or ``36, 43, 48–50``."""
    runs: list[list[int]] = []
    for p in sorted(pitches):
        if runs and p == runs[-1][-1] + 1:
            runs[-1].append(p)
        else:
            runs.append([p])
    return ", ".join(f"{r[0]}–{r[-1]}" if len(r) > 2 else ", ".join(map(str, r)) for r in runs)


def check_pitches(known: Collection[int], pitches: Iterable[int]) -> None:
    """Every pitch at once, before any work: a ModelError naming the first one the model does not
    know, and the ones it does."""
    unknown = sorted({int(p) for p in pitches} - set(known))
    if unknown:
        raise ModelError(
            f"pitch {unknown[0]} is not one this model knows (its pitches: {format_pitches(known)})"
        )
