"""Soundfonts → a dataset (``dataset from-soundfont``): each program's notes rendered NSynth-style
by FluidSynth (extra ``[soundfont]``), labelled with the played pitch, and checked: silent and
out-of-tune notes are dropped (but for the sound effects, which no key tunes).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gansynth_instrument.errors import DatasetError
from gansynth_instrument.live.channels import gm_family
from gansynth_instrument.training.dataset import (
    NOTE_SAMPLES,
    NSYNTH_PITCHES,
    SAMPLE_RATE,
    Note,
    Summary,
    write_dataset,
)
from gansynth_instrument.training.pitch_labels import detect_pitch, level_db


def render_soundfont(
    sf2: Path,
    *,
    programs: Mapping[int, tuple[int, ...]],
    pitches: tuple[int, ...],
    hold_s: float = 3.0,
) -> Iterator[tuple[int, int, int, np.ndarray]]:
    """Yield (program, velocity, pitch, float32 mono 4 s) per note, NSynth-style, for each
    program at each of its velocities (``programs``: program → velocities).

    Each note is held ``hold_s`` then released, rendered by FluidSynth at 16 kHz with reverb and
    chorus off, from a silent synth (all sounds off between notes).
    """
    try:
        import fluidsynth
    except ImportError:
        raise DatasetError(
            "from-soundfont needs pyfluidsynth and the FluidSynth library: pip install "
            "'gansynth-instrument[soundfont]' and e.g. apt-get install libfluidsynth3"
        ) from None
    if not Path(sf2).is_file():
        raise DatasetError(f"{sf2}: no such file")
    synth = fluidsynth.Synth(
        gain=0.5,
        samplerate=float(SAMPLE_RATE),
        **{"synth.reverb.active": 0, "synth.chorus.active": 0},
    )
    try:
        font = synth.sfload(str(sf2))
        if font < 0:
            raise DatasetError(f"{sf2}: FluidSynth cannot load this soundfont")
        hold = round(hold_s * SAMPLE_RATE)
        for program, velocities in programs.items():
            if synth.program_select(0, font, 0, program) != 0:
                raise DatasetError(f"{sf2}: no preset for program {program} in bank 0")
            for velocity in velocities:
                for pitch in pitches:
                    synth.noteon(0, pitch, velocity)
                    held = synth.get_samples(hold)
                    synth.noteoff(0, pitch)
                    released = synth.get_samples(NOTE_SAMPLES - hold)
                    synth.all_sounds_off(0)
                    synth.get_samples(SAMPLE_RATE // 10)  # let the voices end
                    stereo = np.concatenate([held, released]).reshape(-1, 2)
                    yield program, velocity, pitch, stereo.mean(axis=1, dtype=np.float32) / 32768
    finally:
        synth.delete()


def from_soundfont(
    sf2: Path,
    out_dir: Path,
    *,
    programs: Mapping[int, tuple[int, ...]],
    pitch_range: tuple[int, int] = NSYNTH_PITCHES,
    silence_db: float = -50.0,
    max_detune_cents: float | None = 50.0,
) -> Summary:
    """Render a soundfont's notes (``programs``: program → its velocities) and write the
    dataset; labels are the played pitches.

    The loudest note is scaled to peak 0.9 (one gain for all, so velocity stays audible). Notes a
    preset does not sound, and (unless ``max_detune_cents`` is None) notes whose detected pitch is
    further than that from the played one, are dropped: out-of-tune samples teach the wrong pitch.
    General MIDI's sound effects (a seashore, a helicopter) have no pitch that follows the key;
    their notes are kept whatever their pitch, labelled with the key played, as the soundfont maps
    them (the way a drum kit maps its keys).
    """
    pitches = tuple(range(pitch_range[0], pitch_range[1] + 1))
    total = sum(len(v) for v in programs.values()) * len(pitches)
    rendered = list(
        tqdm(
            render_soundfont(sf2, programs=programs, pitches=pitches),
            total=total,
            desc="rendering",
            unit="note",
            delay=1.0,
        )
    )
    peak = max((float(np.abs(a).max()) for *_, a in rendered), default=0.0)
    gain = 0.9 / peak if peak > 0 else 1.0
    summary = Summary()
    notes = []
    for program, velocity, pitch, audio in rendered:
        audio = audio * np.float32(gain)
        if level_db(audio) < silence_db:
            summary.dropped[f"silent (below {silence_db:g} dBFS RMS)"] += 1
            continue
        if max_detune_cents is not None and gm_family(program) != "sound effects":
            detected = detect_pitch(audio)
            if detected is None or abs(detected - pitch) * 100 > max_detune_cents:
                summary.dropped[f"detected pitch > {max_detune_cents:g} cents off"] += 1
                continue
        notes.append(Note(f"program{program:03d}-v{velocity:03d}", pitch, audio, velocity))
    summary.kept = len(notes)
    if not notes:
        raise DatasetError(f"{sf2}: no usable notes ({summary.line('notes')})")
    write_dataset(iter(notes), len(notes), out_dir)
    return summary
