"""Presets from a regression run's timbre latents: one per trained instrument, named after it.

    python -m gansynth_instrument.training.timbre_presets TRAIN_DIR OUT_DIR [--prefix fluid-]
        [--model FAMILY]

A regression run (``train --objective regression``) writes ``timbres.json``: every dataset
instrument's fixed latent, which the model learned to play as that instrument. Soundfont
instruments (``program024-v100``) get General MIDI names (``fluid-nylon-guitar``, and
``-soft`` for the quieter velocity) and their General MIDI program numbers (the loudest
velocity in bank 0, softer ones in banks 1, 2, ...); others keep their dataset name and no
program. Written with ``Preset.to_yaml``, so they load like any preset (explicit-latent presets,
made for ``--model``: the family the run's export gets). ``export`` stores the same timbres in
the model, where the runtime finds them without these files.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from pathlib import Path

from gansynth_instrument.export.checkpoint import TIMBRES_JSON
from gansynth_instrument.fileio import write_text_atomic
from gansynth_instrument.model.metadata import ModelTimbre
from gansynth_instrument.presets.preset import Preset
from gansynth_instrument.presets.preset_files import PRESET_SUFFIX, timbre_preset

# General MIDI names of the programs the bundled model was trained on (one of each GM family;
# the seashore, a sound effect, sounds the same at every key: docs/model-card.md).
GM_NAMES = {
    0: "piano",
    4: "electric-piano",
    11: "vibraphone",
    19: "church-organ",
    24: "nylon-guitar",
    32: "acoustic-bass",
    40: "violin",
    53: "voice-oohs",
    56: "trumpet",
    65: "alto-sax",
    73: "flute",
    81: "saw-lead",
    89: "warm-pad",
    99: "atmosphere",
    104: "sitar",
    114: "steel-drums",
    122: "seashore",
}
SOUNDFONT_NAME = re.compile(r"program(\d+)-v(\d+)")


def preset_name(instrument: str, prefix: str, loudest_velocity: int) -> str:
    """``program024-v100`` → ``<prefix>nylon-guitar``; a softer velocity adds ``-soft``."""
    match = SOUNDFONT_NAME.fullmatch(instrument)
    if match is None:
        return prefix + instrument
    program, velocity = int(match[1]), int(match[2])
    name = prefix + GM_NAMES.get(program, f"program{program}")
    return name if velocity == loudest_velocity else f"{name}-soft"


def _describe(instrument: str, source: str) -> str:
    match = SOUNDFONT_NAME.fullmatch(instrument)
    if match is None:
        return f"{source}: instrument {instrument}"
    return f"{source}: GM program {int(match[1])}, velocity {int(match[2])}"


def _placements(instruments: list[str]) -> dict[str, tuple[int | None, int]]:
    """(program, bank select) of each instrument, as the shipped General MIDI bank has them:
    a soundfont program on its GM number, its loudest velocity in bank 0 and each softer one a
    bank further; any other instrument on no program (played by name)."""
    parsed = {i: SOUNDFONT_NAME.fullmatch(i) for i in instruments}
    velocities = sorted({int(m[2]) for m in parsed.values() if m is not None}, reverse=True)
    return {
        i: (None, 0) if m is None else (int(m[1]), velocities.index(int(m[2])))
        for i, m in parsed.items()
    }


def model_timbres(
    timbres: dict[str, Sequence[float]], prefix: str, source: str
) -> tuple[ModelTimbre, ...]:
    """A run's instruments (dataset name → latent, its ``timbres.json``) as the timbres a model
    carries: named, described, and placed on their General MIDI programs."""
    velocities = [int(m[2]) for m in map(SOUNDFONT_NAME.fullmatch, timbres) if m is not None]
    loudest = max(velocities, default=0)
    placements = _placements(list(timbres))
    return tuple(
        ModelTimbre(
            name=preset_name(instrument, prefix, loudest),
            instrument=instrument,
            latent=tuple(float(v) for v in latent),
            program=placements[instrument][0],
            bank=placements[instrument][1],
            description=_describe(instrument, source),
        )
        for instrument, latent in timbres.items()
    )


def timbre_presets(
    train_dir: Path, prefix: str, source: str, model: str | None = None
) -> list[Preset]:
    """One explicit-latent preset per instrument of the run's ``timbres.json``, made for
    ``model`` (the export's family; None: unrecorded)."""
    timbres: dict[str, list[float]] = json.loads((train_dir / TIMBRES_JSON).read_text("utf-8"))
    return [timbre_preset(t, model=model) for t in model_timbres(timbres, prefix, source)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("train_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--prefix", default="fluid-", help="preset name prefix (fluid-)")
    parser.add_argument(
        "--source", default="bundled model, FluidR3", help="what the descriptions name"
    )
    parser.add_argument(
        "--model",
        help="the family the run is exported with (export --family): the presets "
        "record it, so they are offered only on models of that family",
    )
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for preset in timbre_presets(args.train_dir, args.prefix, args.source, args.model):
        path = write_text_atomic(args.out_dir / f"{preset.name}{PRESET_SUFFIX}", preset.to_yaml())
        print(path)


if __name__ == "__main__":
    main()
