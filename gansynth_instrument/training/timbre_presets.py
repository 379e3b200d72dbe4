"""Presets from a regression run's timbre latents: one per trained instrument, named after it.

    python -m gansynth_instrument.training.timbre_presets TRAIN_DIR OUT_DIR [--prefix fluid-]

A regression run (``train --objective regression``) writes ``timbres.json``: every dataset
instrument's fixed latent, which the model learned to play as that instrument. Soundfont
instruments (``program024-v100``) get General MIDI names (``fluid-nylon-guitar``, and
``-soft`` for the quieter velocity) and program numbers no other preset has (the loud ones at
or just above their GM number); others keep their dataset name. Written with
``Preset.to_yaml``, so they load like any preset (explicit-latent presets).
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from gansynth_export.checkpoint import TIMBRES_JSON

from gansynth_instrument.fileio import write_text_atomic
from gansynth_instrument.metadata import ModelTimbre
from gansynth_instrument.preset_files import PRESET_SUFFIX, is_shipped, list_presets
from gansynth_instrument.presets import PROGRAM_RANGE, Preset

# General MIDI names of the programs `dataset from-soundfont` renders by default.
GM_NAMES = {
    0: "piano",
    4: "electric-piano",
    19: "church-organ",
    24: "nylon-guitar",
    32: "acoustic-bass",
    40: "violin",
    56: "trumpet",
    73: "flute",
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


SOFT_PROGRAMS_FROM = 96  # GM 96-103 are sound effects: free for the softer velocities


def _programs(instruments: list[str], loudest: int, taken: set[int]) -> dict[str, int | None]:
    """Program numbers none of ``taken`` (shipped presets share no number): the loud velocity
    of each soundfont program on its GM number or the next free one, the softer ones on the free
    numbers from 96 up, in GM order."""
    free = set(range(PROGRAM_RANGE[0], PROGRAM_RANGE[1] + 1)) - set(taken)
    programs: dict[str, int | None] = dict.fromkeys(instruments)
    parsed = {i: SOUNDFONT_NAME.fullmatch(i) for i in instruments}
    soundfont = sorted(
        (i for i, m in parsed.items() if m is not None),
        key=lambda i: (int(parsed[i][2]) != loudest, int(parsed[i][1]), -int(parsed[i][2])),
    )
    for instrument in soundfont:
        match = parsed[instrument]
        start = int(match[1]) if int(match[2]) == loudest else SOFT_PROGRAMS_FROM
        candidates = sorted(p for p in free if p >= start) or sorted(free)
        if candidates:
            programs[instrument] = candidates[0]
            free.discard(candidates[0])
    return programs


def model_timbres(
    timbres: dict[str, Sequence[float]],
    prefix: str,
    source: str,
    taken_programs: Iterable[int] = (),
) -> tuple[ModelTimbre, ...]:
    """A run's instruments (dataset name → latent, its ``timbres.json``) as the timbres a model
    carries: named, described, and given program numbers none of ``taken_programs`` has."""
    velocities = [int(m[2]) for m in map(SOUNDFONT_NAME.fullmatch, timbres) if m is not None]
    loudest = max(velocities, default=0)
    programs = _programs(list(timbres), loudest, set(taken_programs))
    return tuple(
        ModelTimbre(
            name=preset_name(instrument, prefix, loudest),
            instrument=instrument,
            latent=tuple(float(v) for v in latent),
            program=programs[instrument],
            description=_describe(instrument, source),
        )
        for instrument, latent in timbres.items()
    )


def shared_programs() -> set[int]:
    """Program numbers of the shipped presets that suit every model (no explicit latent): every
    model's bank holds them beside its own timbres."""
    return {
        p.program
        for p in list_presets()
        if is_shipped(p) and p.latent is None and p.program is not None
    }


def timbre_preset(timbre: ModelTimbre) -> Preset:
    """A model timbre as an explicit-latent preset."""
    return Preset(
        name=timbre.name,
        seed=None,
        latent=timbre.latent,
        program=timbre.program,
        description=timbre.description,
    )


def timbre_presets(
    train_dir: Path, prefix: str, source: str, taken_programs: Iterable[int] = ()
) -> list[Preset]:
    """One explicit-latent preset per instrument of the run's ``timbres.json``."""
    timbres: dict[str, list[float]] = json.loads((train_dir / TIMBRES_JSON).read_text("utf-8"))
    return [timbre_preset(t) for t in model_timbres(timbres, prefix, source, taken_programs)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("train_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--prefix", default="fluid-", help="preset name prefix (fluid-)")
    parser.add_argument(
        "--source", default="bundled model, FluidR3", help="what the descriptions name"
    )
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for preset in timbre_presets(args.train_dir, args.prefix, args.source, shared_programs()):
        path = write_text_atomic(args.out_dir / f"{preset.name}{PRESET_SUFFIX}", preset.to_yaml())
        print(path)


if __name__ == "__main__":
    main()
