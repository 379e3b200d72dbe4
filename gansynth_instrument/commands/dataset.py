"""``gansynth-instrument dataset chop|pad|make|from-soundfont``: options → the dataset
functions' plain values; prints the kept/dropped summary."""

from __future__ import annotations

import argparse

from gansynth_instrument.errors import DatasetError
from gansynth_instrument.training.dataset import META_JSON, SAMPLE_RATE, TFRECORD, write_dataset
from gansynth_instrument.training.recordings import chop, pad, read_note_files
from gansynth_instrument.training.soundfont import from_soundfont


def _range(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    try:
        pitch_range = (int(low), int(high or low))
    except ValueError:
        raise DatasetError(f"--pitch-range '{text}': expected LOW-HIGH, e.g. 24-84") from None
    if not 0 <= pitch_range[0] <= pitch_range[1] <= 127:
        raise DatasetError(f"--pitch-range '{text}': need 0 <= LOW <= HIGH <= 127")
    return pitch_range


def _ints(text: str, what: str, low: int, high: int) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise DatasetError(f"{what} '{text}': expected comma-separated integers") from None
    if not values or not all(low <= v <= high for v in values):
        raise DatasetError(f"{what} '{text}': values must be {low}..{high}")
    return values


def _programs(text: str, velocities: tuple[int, ...]) -> dict[int, tuple[int, ...]]:
    """``--programs`` 'P,P:V/V,...' → program → velocities (``velocities`` where none given)."""
    programs: dict[int, tuple[int, ...]] = {}
    for entry in (e.strip() for e in text.split(",") if e.strip()):
        program, _, own = entry.partition(":")
        (number,) = _ints(program, "--programs", 0, 127)
        programs[number] = (
            _ints(own.replace("/", ","), f"--programs {entry}: velocity", 1, 127)
            if own
            else velocities
        )
    if not programs:
        raise DatasetError(f"--programs '{text}': expected e.g. 0,24,52:100")
    return programs


def run(args: argparse.Namespace) -> int | None:
    if args.action == "make":
        notes = read_note_files(args.in_dir)
        write_dataset(iter(notes), len(notes), args.out_dir)
        pitches = sorted({n.pitch for n in notes})
        print(
            f"wrote {args.out_dir}: {len(notes)} notes, {len({n.instrument for n in notes})} "
            f"instruments, pitches {pitches[0]}..{pitches[-1]} ({len(pitches)} distinct); "
            f"{TFRECORD} + {META_JSON} for Magenta"
        )
        return 0
    common = {
        "silence_db": args.silence_db,
        "pitch_range": _range(args.pitch_range),
    }
    if args.action == "from-soundfont":
        summary = from_soundfont(
            args.soundfont,
            args.out_dir,
            programs=_programs(args.programs, _ints(args.velocities, "--velocities", 1, 127)),
            max_detune_cents=None if args.keep_detuned else 50.0,
            **common,
        )
        print(f"wrote {args.out_dir}: {summary.line('notes')}")
        return 0
    if args.pitch is not None and not 0 <= args.pitch <= 127:
        raise DatasetError(f"--pitch {args.pitch}: not a MIDI note (0..127)")
    if args.action == "chop":
        summary = chop(
            args.in_dir,
            args.out_dir,
            hop_samples=round(args.hop_s * SAMPLE_RATE),
            fixed_pitch=args.pitch,
            **common,
        )
        print(f"wrote {args.out_dir}: {summary.line('windows')}")
    else:
        summary = pad(args.in_dir, args.out_dir, fixed_pitch=args.pitch, **common)
        print(f"wrote {args.out_dir}: {summary.line('files')}")
    return 0
