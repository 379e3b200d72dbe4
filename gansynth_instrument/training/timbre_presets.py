"""Presets from a regression run's timbre latents: one per trained instrument, named after it.

    python -m gansynth_instrument.training.timbre_presets TRAIN_DIR OUT_DIR [--prefix fluid-]

A regression run (``train --objective regression``) writes ``timbres.json``: every dataset
instrument's fixed latent, which the model learned to play as that instrument. Soundfont
instruments (``program024-v100``) get General MIDI names (``fluid-nylon-guitar``, and
``-soft`` for the quieter velocity); others keep their dataset name. Written with
``Preset.to_yaml``, so they load like any preset (explicit-latent presets).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from gansynth_instrument.fileio import write_text_atomic
from gansynth_instrument.presets import PRESET_SUFFIX, Preset
from gansynth_instrument.training.regression import TIMBRES_JSON

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


def timbre_presets(train_dir: Path, prefix: str, source: str) -> list[Preset]:
    """One explicit-latent preset per instrument of the run's ``timbres.json``."""
    timbres: dict[str, list[float]] = json.loads((train_dir / TIMBRES_JSON).read_text("utf-8"))
    velocities = [int(m[2]) for m in map(SOUNDFONT_NAME.fullmatch, timbres) if m is not None]
    loudest = max(velocities, default=0)
    return [
        Preset(
            name=preset_name(instrument, prefix, loudest),
            seed=None,
            latent=tuple(latent),
            description=f"{source}: the timbre latent of '{instrument}'",
        )
        for instrument, latent in timbres.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("train_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--prefix", default="fluid-", help="preset name prefix (fluid-)")
    parser.add_argument(
        "--source", default="bundled model (FluidR3 GM)", help="what the descriptions name"
    )
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for preset in timbre_presets(args.train_dir, args.prefix, args.source):
        path = write_text_atomic(args.out_dir / f"{preset.name}{PRESET_SUFFIX}", preset.to_yaml())
        print(path)


if __name__ == "__main__":
    main()
