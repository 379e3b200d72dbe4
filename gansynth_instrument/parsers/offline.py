"""The arguments of the commands that write files from the model: generate, hallucinate,
interpolate, render and bake.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gansynth_instrument.parsers import options


def add_offline(sub: argparse._SubParsersAction) -> None:
    gen = sub.add_parser(
        "generate",
        help="random notes to WAV files, like gansynth_generate",
        description="Write 4 s notes (float32 WAV, 16 kHz) from random or preset timbres.",
    )
    options.add_model_options(gen)
    gen.add_argument("--count", type=int, help="number of notes (default: one per pitch, else 8)")
    gen.add_argument("--pitch", type=int, action="append", help="MIDI pitch (repeatable)")
    gen.add_argument("--pitches", help="comma-separated MIDI pitches, e.g. 48,52,55")
    gen.add_argument("--seed", type=int, help="seed for the random timbres and pitches")
    gen.add_argument("--preset", help="use this preset's timbre (name or .yaml) for every note")
    gen.add_argument(
        "--normalize",
        action="store_true",
        help="scale each note to a peak of 1.0, as Magenta's MIDI renderer does (default: raw)",
    )
    gen.add_argument("-o", "--output-dir", type=Path, default=Path("."), help="default: here")

    hal = sub.add_parser(
        "hallucinate",
        help="a long evolving sound from overlapping notes along a timbre path (course patch)",
        description=(
            "The course's hallucination: random keypoint timbres (or --through presets), slerp "
            "steps between them, one enveloped note per point every --spacing-s seconds. The "
            "--trim/--attack/--sustain/--release weights share the note's 4 s, as in the patch. "
            "Each note is levelled by its timbre as the instrument plays it (not normalised as in "
            "Magenta); a limiter keeps the sum below -1 dBFS."
        ),
    )
    options.add_model_options(hal)
    hal.add_argument("-o", "--output", required=True, type=Path, help="the .wav file to write")
    hal.add_argument("--notes", type=int, default=5, help="random keypoint timbres (default 5)")
    hal.add_argument("--steps", type=int, default=5, help="slerp steps between keypoints (5)")
    hal.add_argument("--spacing-s", type=float, default=2.0, help="seconds between notes (2)")
    hal.add_argument("--trim", type=float, default=0.0, help="start-trim weight (default 0)")
    hal.add_argument("--attack", type=float, default=0.5, help="attack weight (default 0.5)")
    hal.add_argument("--sustain", type=float, default=1.0, help="sustain weight (default 1)")
    hal.add_argument("--release", type=float, default=0.5, help="release weight (default 0.5)")
    hal.add_argument("--pitch", type=int, help="MIDI pitch (default 32 if the model has it)")
    hal.add_argument("--seed", type=int, help="seed for the keypoint timbres")
    hal.add_argument("--through", nargs="+", metavar="TIMBRE", help="presets or seeds as keypoints")
    options.add_gain_db(hal, "the clip")

    itp = sub.add_parser(
        "interpolate",
        help="notes along the slerp path between two presets or seeds",
        description="Write --steps notes from timbre A (t=0) to B (t=1): interp_00.wav, ...",
    )
    itp.add_argument("a", nargs="?", help="preset name, .yaml path or seed")
    itp.add_argument("b", nargs="?", help="preset name, .yaml path or seed")
    options.add_model_options(itp)
    itp.add_argument(
        "--grid",
        nargs=4,
        metavar=("A", "B", "C", "D"),
        help="a 2-D grid between 4 timbres at the corners (0,0) (1,0) (0,1) (1,1): "
        "grid_ROW_COLUMN.wav, each the bilinear slerp of the corners",
    )
    itp.add_argument("--size", type=int, default=5, help="--grid points per side (5)")
    itp.add_argument("--steps", type=int, default=5, help="points including both ends (5)")
    itp.add_argument("--pitch", type=int, default=60, help="MIDI pitch (default 60)")
    options.add_gain_db(itp, "each note")
    itp.add_argument("-o", "--output-dir", type=Path, default=Path("."), help="default: here")

    ren = sub.add_parser(
        "render",
        help="render a MIDI file to WAV",
        description=(
            "Render a MIDI file through the instrument (voices, envelopes, pedal, program change, "
            "morph CC, timbre knobs and XY pad CCs; deterministic), or with --magenta exactly as "
            "gansynth_generate --midi_file does (pitches 36-84, a new random timbre every 6 s, "
            "16 kHz float WAV)."
        ),
    )
    ren.add_argument("midi_file", type=Path, help="the .mid file")
    ren.add_argument("-o", "--output", required=True, type=Path, help="the .wav file to write")
    options.add_model_options(ren)
    options.add_preset_or_bank(ren)
    options.add_sample_rate(ren)
    options.add_cache_dir(ren)
    options.add_channels(ren, "--channels")
    options.add_drums(ren)
    ren.add_argument(
        "--subtype",
        choices=("PCM_16", "PCM_24", "FLOAT"),
        help=".wav sample format (default FLOAT: 32-bit float, never clips)",
    )
    ren.add_argument(
        "--no-knobs",
        action="store_true",
        help="ignore timbre-knob CCs in the file (by default a file that turns a knob has the "
        "model's knob directions found, once per model, as play does)",
    )
    options.add_staging(ren)
    options.add_mpe(ren)
    ren.add_argument(
        "--loudness",
        type=float,
        metavar="LUFS",
        help="integrated loudness of the file (ITU-R BS.1770), -40..-5 LUFS (default -16), true "
        "peak at most -1 dBTP; a song with too little sound to measure is written as it is",
    )
    ren.add_argument(
        "--no-normalize",
        action="store_true",
        help="write the mix at the level play has (master gain and limiter only)",
    )
    ren.add_argument("--magenta", action="store_true", help="gansynth_generate's MIDI mode")
    ren.add_argument("--seed", type=int, help="--magenta: seed for the random timbres")


def add_bake(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bake",
        help="bake presets or a bank into a sample pack (SFZ, DecentSampler) for any sampler",
        description=(
            "Write each preset as a sampler instrument: DIR/NAME.sfz and DIR/NAME.dspreset, "
            "with one WAV per model pitch in DIR/NAME/ (exact notes from the note cache), the "
            "preset's level, envelope and loop, and the instrument's velocity curve. A bank "
            "bakes each of its presets, plus its morph path as DIR/BANK-morph.*, where the "
            "bank's morph CC crossfades the morph steps. The pack appears only when complete."
        ),
    )
    p.add_argument("presets", nargs="*", help="preset names or .yaml paths")
    p.add_argument("--bank", help="every preset of this bank, and its morph path")
    p.add_argument("-o", "--output-dir", type=Path, required=True, help="folder for the pack")
    options.add_model_options(p)
    p.add_argument(
        "--format",
        default="sfz,dspreset",
        help="comma-separated: sfz, dspreset (DecentSampler), multisample (Bitwig, Studio One); "
        "default sfz,dspreset",
    )
    p.add_argument("--rate", type=int, default=48000, help="sample rate: 48000 or 44100 (48000)")
    p.add_argument("--bit-depth", type=int, default=24, help="WAV bits: 16 or 24 (default 24)")
    options.add_velocity_curve(p)
    options.add_cache_dir(p)
