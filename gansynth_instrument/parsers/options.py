"""The options several subcommands share, each defined once here (its flag, type, default and
help), so that play, render, bake and the cache agree on them."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_max_memory(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--max-memory-mb",
        type=float,
        help="notes held in memory; past it the least recently used drop to disk (default 512)",
    )


def add_cache_dir(p: argparse.ArgumentParser, holds: str = "") -> None:
    p.add_argument(
        "--cache-dir",
        type=Path,
        help=f"note cache{holds} (default: the user cache dir)",
    )


def add_sample_rate(p: argparse.ArgumentParser, hint: str = "") -> None:
    """The output rate; the note cache keeps notes per rate, so warm, render and play share it
    (``config.check_sample_rate`` holds it to ``config.SAMPLE_RATES``)."""
    p.add_argument(
        "--sample-rate",
        "--samplerate",
        type=int,
        default=48000,
        help=f"output rate in Hz the notes are resampled to, 8000..192000{hint} (default 48000)",
    )


def add_preset_or_bank(
    p: argparse.ArgumentParser | argparse._MutuallyExclusiveGroup,
) -> None:
    """The timbres of render and play (play takes one or the other)."""
    p.add_argument("--preset", help="play every note with this preset, or drum kit (name or .yaml)")
    p.add_argument("--bank", help="bank: program changes + morph path (default: default)")


def add_channels(p: argparse.ArgumentParser, flag: str) -> None:
    p.add_argument(
        flag,
        metavar="LIST",
        help="MIDI channels to play, counted 1-16: 1 or 1,2,10 or 1-4 (default: all)",
    )


def add_drums(p: argparse.ArgumentParser) -> None:
    drums = p.add_mutually_exclusive_group()
    drums.add_argument(
        "--drums",
        metavar="KIT",
        help="play channel 10 (General MIDI percussion) with this drum kit, or a preset (each "
        "key at its own pitch); default: the bank's 'drums:' (the default bank's: gm-kit), "
        "gm-kit with --preset",
    )
    drums.add_argument(
        "--no-drums", action="store_true", help="do not play channel 10 (GM percussion)"
    )


def add_preset_fields(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gain-db", type=float, help="output gain in dB (-60..24)")
    p.add_argument("--attack-s", type=float, help="attack time in seconds (0..4)")
    p.add_argument("--release-s", type=float, help="release time in seconds after note-off (0..10)")
    p.add_argument("--program", type=int, help="General MIDI program 0-127 that selects it")
    p.add_argument("--bank", type=int, help="bank select (CC0) 0-127 that reaches --program (0)")
    p.add_argument(
        "--loop",
        action=argparse.BooleanOptionalAction,
        help="held notes loop the middle of the note instead of ending after 4 s (default off)",
    )
    p.add_argument("--description", help="a line of text shown by 'presets list'")
    p.add_argument("--force", action="store_true", help="replace a user preset of that name")


def add_model_path(p: argparse.ArgumentParser) -> None:
    """--model alone: the model whose timbres and presets a command means."""
    p.add_argument(
        "--model",
        type=Path,
        help="an exported .onnx model (default: $GANSYNTH_MODEL, else the package's bundled "
        "models/default.onnx when it has one)",
    )


def add_model_options(p: argparse.ArgumentParser) -> None:
    """--model/--backend/--threads/--precision, read by commands.load_model_from_args."""
    add_model_path(p)
    p.add_argument(
        "--backend",
        choices=("auto", "cuda", "openvino", "cpu"),
        default="auto",
        help="inference backend; auto = CUDA if it works, else OpenVINO, else onnxruntime's CPU",
    )
    p.add_argument(
        "--threads",
        type=int,
        help="CPU threads for inference (default: all cores; play leaves one free for the audio)",
    )
    p.add_argument(
        "--precision",
        choices=("f32", "bf16"),
        default="f32",
        help="bf16: OpenVINO on CPUs with native bf16, ~2x faster but audibly different: "
        "spectral SNR vs f32 about 10 dB mean / 7 dB worst on a full-size model, 7.6 dB on "
        "magenta-tiny (benchmarks/bench_generate.py); default f32",
    )


def add_mpe(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--mpe",
        choices=("lower", "upper", "both"),
        help="MPE zones for a controller that does not send the MPE Configuration Message "
        "(lower: manager channel 1, members 2-16; upper: manager 16, members 15-1; both: 7 "
        "members each); without it, zones follow that message",
    )


def add_staging(p: argparse.ArgumentParser) -> None:
    """The gain staging options of play and render (see levels.py)."""
    add_velocity_curve(p)
    add_gain_db(p, "chords")


def add_gain_db(p: argparse.ArgumentParser, summed: str) -> None:
    """The master gain of every command that stages its output as the instrument does."""
    p.add_argument(
        "--gain-db",
        type=float,
        default=0.0,
        help=(
            "master gain in dB, -60..24 (default 0: a full-velocity middle C of any timbre peaks "
            f"near -12 dBFS; a limiter keeps {summed} below -1 dBFS)"
        ),
    )


def add_velocity_curve(p: argparse.ArgumentParser) -> None:
    """A curve name, checked by ``levels.velocity_exponent`` (a one-line error names the
    choices; argparse ``choices`` would print usage too)."""
    p.add_argument(
        "--velocity-curve",
        default="gm",
        metavar="CURVE",
        help=(
            "how key velocity sets loudness, amplitude = (velocity/127)^e: gm (e = 2, General "
            "MIDI's curve, the default), linear (1), soft (0.5, louder at a light touch), fixed "
            "(0, every note full)"
        ),
    )
